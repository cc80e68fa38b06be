"""Importing into a shop: validation, quarantine with reason codes, accounting, idempotence, atomicity."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from tools.errors import ColumnMappingError, ImportFileError
from tools.importer import detect_date_format, import_file, map_columns, parse_mapping
from tools.schema import REASONS
from tools.workspace import fetch_dicts


def _rows(shop, sql, params=None):
    with shop.connect(read_only=True) as con:
        return fetch_dicts(con, sql, params)


def _quarantine(shop, import_id):
    return [(r["line"], r["reason"], r["field"]) for r in
            _rows(shop, "SELECT line, reason, field FROM quarantine WHERE import_id = ? ORDER BY line", [import_id])]


def _assert_accounted(report):
    assert report.inserted + report.already_present + report.quarantined == report.records


def test_every_order_reason_lands_in_quarantine_with_its_line(shop, fixtures: Path):
    report = import_file(shop, fixtures / "orders_reasons.csv", "orders")
    _assert_accounted(report)
    assert report.records == 17 and report.inserted == 5
    assert _quarantine(shop, report.import_id) == [
        (6, "missing_value", "order_id"),
        (7, "bad_number", "quantity"),
        (8, "bad_number", "quantity"),
        (9, "bad_date", "ordered_at"),
        (10, "negative_price", "unit_price"),
        (11, "zero_quantity", "quantity"),
        (12, "negative_quantity", "quantity"),
        (13, "ragged_row", None),
        (14, "ragged_row", None),
        (15, "unbalanced_quote", None),
        (17, "bad_number", "quantity"),
        (18, "bad_date", "ordered_at"),
    ]
    # The offending value and the whole record are kept so the operator can fix and re-import.
    row = _rows(shop, "SELECT value, record FROM quarantine WHERE line = 7")[0]
    assert row["value"] == "six" and "ASSORTED BIRD ORNAMENT" in row["record"]
    raw = _rows(shop, "SELECT record FROM quarantine WHERE line = 15")[0]["record"]
    assert raw.startswith('536371,22086,"PAPER CHAIN KIT')


def test_cancellation_convention_and_types(shop, fixtures: Path):
    import_file(shop, fixtures / "orders_reasons.csv", "orders")
    rows = _rows(shop, "SELECT order_id, product_id, quantity, unit_price, ordered_at, customer_id, status "
                       "FROM orders ORDER BY source_line")
    assert rows[0] == {"order_id": "536365", "product_id": "85123A", "quantity": 6, "unit_price": Decimal("2.55"),
                       "ordered_at": dt.datetime(2010, 12, 1, 8, 26), "customer_id": "17850", "status": "ok"}
    assert rows[3]["order_id"] == "C536379" and rows[3]["status"] == "cancelled" and rows[3]["quantity"] == -1


def test_product_and_review_reasons(shop, fixtures: Path):
    products = import_file(shop, fixtures / "products.csv", "products")
    _assert_accounted(products)
    assert _quarantine(shop, products.import_id) == [
        (4, "duplicate_key", "product_id"), (5, "bad_number", "price"), (6, "bad_number", "stock")]
    reviews = import_file(shop, fixtures / "reviews.csv", "reviews")
    _assert_accounted(reviews)
    assert _quarantine(shop, reviews.import_id) == [(5, "bad_rating", "rating"), (6, "missing_value", "text")]


def test_every_documented_reason_is_exercised(shop, fixtures: Path):
    for name, kind in (("orders_reasons.csv", "orders"), ("orders_bad_bytes.csv", "orders"),
                       ("products.csv", "products"), ("reviews.csv", "reviews")):
        import_file(shop, fixtures / name, kind)
    seen = {r["reason"] for r in _rows(shop, "SELECT DISTINCT reason FROM quarantine")}
    assert seen == set(REASONS)


def test_chinese_gbk_export_is_mapped_and_typed(shop, fixtures: Path):
    report = import_file(shop, fixtures / "orders_gbk.csv", "orders")
    assert report.encoding == "gb18030" and report.quarantined == 0
    assert report.mapping == {"order_id": "订单号", "customer_id": "客户ID", "product_id": "商品ID",
                              "title": "商品名称", "quantity": "数量", "unit_price": "单价",
                              "ordered_at": "下单时间", "status": "订单状态"}
    rows = _rows(shop, "SELECT order_id, line, unit_price, status FROM orders ORDER BY source_line")
    assert [r["unit_price"] for r in rows] == [Decimal("39.9"), Decimal("1299"), Decimal("39.9"), Decimal("39.9")]
    assert [r["status"] for r in rows] == ["ok", "ok", "cancelled", "returned"]
    assert [r["line"] for r in rows] == [1, 2, 1, 1]
    title = _rows(shop, "SELECT title FROM products WHERE product_id = 'SKU-9'")[0]["title"]
    assert title == "蓝色马克杯"


def test_bom_file_with_same_rows_adds_nothing(shop, fixtures: Path):
    first = import_file(shop, fixtures / "orders_gbk.csv", "orders")
    second = import_file(shop, fixtures / "orders_bom.csv", "orders")  # same rows, other encoding
    assert first.inserted == 4
    assert not second.skipped and second.inserted == 0 and second.already_present == 4
    assert _rows(shop, "SELECT count(*) AS n FROM orders")[0]["n"] == 4


def test_reimporting_the_same_file_adds_nothing(shop, fixtures: Path):
    first = import_file(shop, fixtures / "orders_reasons.csv", "orders")
    before = _rows(shop, "SELECT (SELECT count(*) FROM orders) AS o, (SELECT count(*) FROM quarantine) AS q")
    again = import_file(shop, fixtures / "orders_reasons.csv", "orders")
    assert again.skipped and again.inserted == 0 and str(first.import_id) in again.message
    after = _rows(shop, "SELECT (SELECT count(*) FROM orders) AS o, (SELECT count(*) FROM quarantine) AS q")
    assert before == after


def test_a_copy_under_another_name_is_recognised_row_by_row(shop, fixtures: Path, tmp_path: Path):
    import_file(shop, fixtures / "orders_messy.csv", "orders")
    copy = tmp_path / "again.csv"
    shutil.copy(fixtures / "orders_messy.csv", copy)
    copy.write_bytes(copy.read_bytes() + b"536999,22961,NEW LINE,1,2010-12-02 09:00:00,1.45,17809,UK\r\n")
    report = import_file(shop, copy, "orders")
    assert report.inserted == 1 and report.already_present == 4
    _assert_accounted(report)


def test_repeated_identical_lines_inside_an_order_are_kept(shop, tmp_path: Path):
    f = tmp_path / "dups.csv"
    f.write_text("order,sku,qty,price,date\n1,A,1,2.0,2024-01-01\n1,A,1,2.0,2024-01-01\n")
    report = import_file(shop, f, "orders")
    assert report.inserted == 2


def test_explicit_line_numbers_deduplicate(shop, tmp_path: Path):
    f = tmp_path / "lines.csv"
    f.write_text("order,line,sku,qty,price,date\n1,1,A,1,2.0,2024-01-01\n1,1,B,1,2.0,2024-01-01\n"
                 "1,2,B,1,2.0,2024-01-01\n")
    report = import_file(shop, f, "orders")
    assert report.inserted == 2
    assert _quarantine(shop, report.import_id) == [(3, "duplicate_key", "order_id")]


def test_semicolon_decimal_comma_and_day_first_dates(shop, fixtures: Path):
    report = import_file(shop, fixtures / "orders_semicolon.csv", "orders")
    assert report.date_format == "%d/%m/%Y %H:%M" and report.quarantined == 0
    rows = _rows(shop, "SELECT unit_price, ordered_at FROM orders ORDER BY source_line")
    assert rows[0] == {"unit_price": Decimal("3.5"), "ordered_at": dt.datetime(2024, 1, 13, 10, 0)}
    assert rows[2]["ordered_at"] == dt.datetime(2024, 2, 2, 14, 30)


def test_date_format_detection():
    assert detect_date_format(["12/1/2010 8:26", "12/31/2010 9:00"]) == "%m/%d/%Y %H:%M"
    assert detect_date_format(["13/01/2024", "02/02/2024"]) == "%d/%m/%Y"
    assert detect_date_format(["2024年3月5日 14:03"]) == "%Y年%m月%d日 %H:%M"
    assert detect_date_format(["2011-12-09 12:50:00"]) == "iso"


def test_map_overrides_and_errors(shop, tmp_path: Path):
    f = tmp_path / "odd.csv"
    f.write_text("Beleg,Artikel,Menge,Preis,Datum\nX1,A,2,1.5,2024-01-01\n")
    with pytest.raises(ColumnMappingError, match="order_id, product_id, quantity, unit_price") as err:
        import_file(shop, f, "orders")
    assert "--map" in str(err.value) and "Beleg" in str(err.value)
    mapping = parse_mapping(["Beleg=order_id", "Artikel=product_id", "Menge=quantity", "Preis=unit_price",
                             "Datum=ordered_at"])
    report = import_file(shop, f, "orders", mapping=mapping)
    assert report.inserted == 1
    with pytest.raises(ColumnMappingError, match="not a orders field"):
        map_columns("orders", ["a"], {"colour": "a"})
    with pytest.raises(ColumnMappingError, match="no column 'zzz'"):
        map_columns("orders", ["a"], {"order_id": "zzz"})
    with pytest.raises(ColumnMappingError, match="COLUMN=FIELD"):
        parse_mapping(["no-equals-sign"])


def test_unreadable_file_leaves_the_shop_unchanged(shop, fixtures: Path, tmp_path: Path):
    import_file(shop, fixtures / "orders_gbk.csv", "orders")
    before = _rows(shop, "SELECT (SELECT count(*) FROM orders) o, (SELECT count(*) FROM import_log) l, "
                         "(SELECT count(*) FROM quarantine) q")
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x00\x00garbage")
    with pytest.raises(ImportFileError):
        import_file(shop, junk, "orders")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("colour,size\nred,M\n")
    with pytest.raises(ColumnMappingError):
        import_file(shop, wrong, "orders")
    after = _rows(shop, "SELECT (SELECT count(*) FROM orders) o, (SELECT count(*) FROM import_log) l, "
                        "(SELECT count(*) FROM quarantine) q")
    assert before == after


def test_failure_midway_rolls_back(shop, fixtures: Path, monkeypatch: pytest.MonkeyPatch):
    import tools.importer as importer

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "_quarantine", boom)
    with pytest.raises(RuntimeError):
        import_file(shop, fixtures / "orders_reasons.csv", "orders")
    counts = _rows(shop, "SELECT (SELECT count(*) FROM orders) o, (SELECT count(*) FROM import_log) l")[0]
    assert counts == {"o": 0, "l": 0}


def test_products_file_is_the_authority_over_order_lines(shop, fixtures: Path):
    import_file(shop, fixtures / "orders_reasons.csv", "orders")
    derived = _rows(shop, "SELECT title, source FROM products WHERE product_id = '85123A'")[0]
    assert derived == {"title": "WHITE HANGING HEART T-LIGHT HOLDER", "source": "orders"}
    import_file(shop, fixtures / "products.csv", "products")
    row = _rows(shop, "SELECT title, category, price, cost, stock, source FROM products WHERE product_id = '85123A'")
    assert row[0] == {"title": "White hanging heart", "category": "Home > Candles", "price": Decimal("2.95"),
                      "cost": Decimal("1.1"), "stock": 240, "source": "products"}


def test_reviews_get_ids_languages_and_collection(shop, fixtures: Path):
    report = import_file(shop, fixtures / "reviews.csv", "reviews", collection="mugs")
    rows = _rows(shop, "SELECT review_id, collection, product_id, rating, language, created_at FROM reviews "
                       "ORDER BY source_line")
    assert [r["review_id"] for r in rows] == ["mugs:2", "mugs:3", "mugs:4"]
    assert [r["language"] for r in rows] == ["en", "en", "zh"]
    assert rows[0]["product_id"] == "mug-1" and rows[0]["rating"] == 5.0
    assert rows[0]["created_at"] == dt.datetime(2024, 3, 1)
    assert report.inserted == 3


def test_customers_are_derived_from_orders(shop, fixtures: Path):
    import_file(shop, fixtures / "orders_gbk.csv", "orders")
    rows = _rows(shop, "SELECT customer_id, orders, first_order_at FROM customers ORDER BY customer_id")
    assert rows == [{"customer_id": "张三", "orders": 1, "first_order_at": dt.datetime(2024, 1, 1, 10, 0)},
                    {"customer_id": "李四", "orders": 2, "first_order_at": dt.datetime(2024, 1, 2, 11, 30)}]


def test_non_finite_and_huge_numbers_are_quarantined_not_crashing(shop, tmp_path: Path):
    f = tmp_path / "odd_numbers.csv"
    f.write_text("order,sku,qty,price,date\n1,A,nan,2.0,2024-01-01\n2,A,1,inf,2024-01-01\n3,A,1,1e30,2024-01-01\n"
                 "4,A,99999999999,1,2024-01-01\n5,A,1,2.0,2024-01-01\n")
    report = import_file(shop, f, "orders")
    assert report.inserted == 1
    assert _quarantine(shop, report.import_id) == [(2, "bad_number", "quantity"), (3, "bad_number", "unit_price"),
                                                    (4, "bad_number", "unit_price"), (5, "bad_number", "quantity")]
    p = tmp_path / "odd_products.csv"
    p.write_text("sku,price,stock,cost\nA,nan,1,1\nB,1,1e12,1\nC,1,1,-inf\n")
    report = import_file(shop, p, "products")
    assert report.quarantined == 3
