"""The CSV/Parquet/Excel readers: every record lands in the table or in the rejects, with its line number."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.errors import ImportFileError
from tools.readers import decode, read_csv_bytes, read_file


def _cells(raw, column):
    return raw.table.column(column).to_pylist()


def test_gbk_file_is_detected_and_decoded(fixtures: Path):
    raw = read_file(fixtures / "orders_gbk.csv")
    assert raw.encoding == "gb18030"
    assert raw.columns[:3] == ["订单号", "商品ID", "商品名称"]
    assert _cells(raw, "商品名称")[0] == "蓝色马克杯"
    assert raw.records == 4 and not raw.rejects


def test_bom_is_stripped_from_the_first_header(fixtures: Path):
    raw = read_file(fixtures / "orders_bom.csv")
    assert raw.encoding == "utf-8-sig"
    assert raw.columns[0] == "订单号"


def test_utf16_with_bom_decodes():
    text, enc = decode("a,b\n1,2\n".encode("utf-16"))
    assert enc == "utf-16" and text.startswith("a,b")


def test_semicolon_delimiter_is_detected(fixtures: Path):
    raw = read_file(fixtures / "orders_semicolon.csv")
    assert raw.delimiter == ";"
    assert raw.columns == ["Order No", "SKU", "Qty", "Price", "Order Date", "Customer"]
    assert _cells(raw, "Price") == ["3,50", "12,00", "3,50"]


def test_tab_and_excel_sep_line():
    raw = read_csv_bytes(b"a\tb\tc\n1\t2\t3\n")
    assert raw.delimiter == "\t" and _cells(raw, "c") == ["3"]
    raw = read_csv_bytes(b"sep=|\na|b\n1|2\n")
    assert raw.delimiter == "|" and _cells(raw, "b") == ["2"]


def test_multiline_field_blank_lines_and_crlf(fixtures: Path):
    raw = read_file(fixtures / "orders_messy.csv")
    assert raw.records == 4 and not raw.rejects
    assert _cells(raw, "Description")[1] == "JAM MAKING SET\r\nPRINTED"
    assert _cells(raw, "Description")[2] == 'RETRO 12" RECORD'  # a quote inside an unquoted field is text
    # Line numbers are physical lines: header 1, row 2, blank 3, the 2-line record starts at 4.
    assert _cells(raw, "_line") == [2, 4, 6, 9]


def test_stray_quote_costs_only_its_line(fixtures: Path):
    raw = read_file(fixtures / "orders_stray_quote.csv")
    assert [(r.line, r.reason) for r in raw.rejects] == [(4, "unbalanced_quote")]
    assert _cells(raw, "_line") == [2, 3, 5, 6]
    assert raw.records == 5


def test_ragged_rows_are_rejected_but_trailing_empty_fields_are_not():
    raw = read_csv_bytes(b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n1,2,3,,\n")
    assert [(r.line, r.reason) for r in raw.rejects] == [(3, "ragged_row"), (4, "ragged_row")]
    assert _cells(raw, "_line") == [2, 5]


def test_invalid_bytes_reject_only_their_line(fixtures: Path):
    raw = read_file(fixtures / "orders_bad_bytes.csv")
    assert [(r.line, r.reason) for r in raw.rejects] == [(3, "bad_encoding")]
    assert "CAF" in raw.rejects[0].raw
    assert raw.records == 3


def test_blank_and_duplicate_headers_get_names():
    raw = read_csv_bytes(b"id,,id\n1,2,3\n")
    assert raw.columns == ["id", "column_2", "id_2"]


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01\x02\x03binary", "binary"),
    (b"\n\n\n", "no header"),
])
def test_unreadable_files_raise(tmp_path: Path, content: bytes, message: str):
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        read_file(f)


def test_missing_file_and_forced_wrong_encoding(tmp_path: Path, fixtures: Path):
    with pytest.raises(ImportFileError, match="does not exist"):
        read_file(tmp_path / "nope.csv")
    with pytest.raises(ImportFileError, match="not valid utf-8"):
        read_file(fixtures / "orders_gbk.csv", encoding="utf-8")


def test_parquet_values_become_text_with_row_numbers(tmp_path: Path):
    f = tmp_path / "t.parquet"
    pq.write_table(pa.table({"order": ["1", "2"], "qty": [3, 4], "price": [1.5, None]}), f)
    raw = read_file(f)
    assert _cells(raw, "qty") == ["3", "4"]
    assert _cells(raw, "price") == ["1.5", None]
    assert _cells(raw, "_line") == [1, 2]


def test_excel_sheet_rows(tmp_path: Path):
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["订单号", "商品ID", "数量", "单价", "下单时间"])
    ws.append(["A1", "SKU-1", 2, 9.9, dt.datetime(2024, 5, 1, 10, 0)])
    ws.append([None, None, None, None, None])
    ws.append(["A2", "SKU-2", 1, 5, dt.datetime(2024, 5, 2, 11, 0), "extra"])
    f = tmp_path / "orders.xlsx"
    book.save(f)
    raw = read_file(f)
    assert _cells(raw, "下单时间") == ["2024-05-01 10:00:00"]
    assert _cells(raw, "数量") == ["2"]
    assert [(r.line, r.reason) for r in raw.rejects] == [(4, "ragged_row")]
