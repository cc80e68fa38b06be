"""Import orders, products and reviews into a shop, validating every record.

The pipeline for one file:

1. :func:`tools.readers.read_file` splits it into text records (structural rejects kept with their line numbers);
2. columns are mapped onto the canonical fields (:mod:`tools.schema`), automatically or by ``--map col=field``;
3. inside ONE DuckDB transaction the records are typed and checked in SQL; good rows are inserted unless already
   present, bad ones go to ``quarantine`` with line, field, reason code and the record itself, and the import is
   logged. Either all of that happens or none of it does.

Invariant, for every file: ``inserted + already_present + quarantined == records``. Re-importing the same file
adds nothing (the file's SHA-256 is remembered; rows are also de-duplicated by key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from tools import schema
from tools.errors import ColumnMappingError, ImportFileError
from tools.readers import LINE_COLUMN, RawTable, read_file
from tools.workspace import Shop, scalar

ProgressFn = Callable[[str, float], None]

#: Date formats tried on a sample of the file's values, in order of preference when several fit equally well.
DATE_FORMATS = (
    "iso",  # anything DuckDB casts to TIMESTAMP: 2011-12-01, 2011-12-01 08:26[:00[.5]], 2011-12-01T08:26:00Z
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日",
    "%Y%m%d",
)

_CANCELLED = ("cancelled", "canceled", "cancel", "void", "voided", "closed", "已取消", "取消", "交易关闭", "已关闭")
_RETURNED = ("returned", "return", "refunded", "refund", "退货", "已退货", "退款", "已退款", "退货退款")


@dataclass(frozen=True)
class ImportReport:
    """What one import did. ``inserted + already_present + quarantined == records``."""

    import_id: int | None
    kind: str
    source_file: str
    records: int
    inserted: int
    already_present: int
    quarantined: int
    reasons: dict[str, int]
    mapping: dict[str, str]
    encoding: str | None
    delimiter: str | None
    date_format: str | None
    skipped: bool = False
    message: str = ""

    @property
    def accepted(self) -> int:
        return self.inserted + self.already_present

    def to_dict(self) -> dict:
        return asdict(self) | {"accepted": self.accepted}


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """Parse ``--map`` options of the form ``source column=canonical field``."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ColumnMappingError(f"--map takes COLUMN=FIELD (e.g. --map 'Order No=order_id'), not {item!r}.")
        col, fld = item.rsplit("=", 1)
        out[fld.strip()] = col.strip()
    return out


def map_columns(kind: str, columns: list[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map canonical fields to source columns: overrides first, then recognised spellings.

    Raises:
        ColumnMappingError: an override names an unknown field or column, or a required field has no column.
    """
    fields = schema.KINDS[kind]
    names = {f.name for f in fields}
    mapping: dict[str, str] = {}
    for fld, col in (overrides or {}).items():
        if fld not in names:
            raise ColumnMappingError(f"{fld!r} is not a {kind} field. Fields: {', '.join(sorted(names))}.")
        if col not in columns:
            raise ColumnMappingError(f"The file has no column {col!r}. Its columns: {', '.join(columns)}.")
        mapping[fld] = col
    used = set(mapping.values())
    by_norm = {}
    for col in columns:
        by_norm.setdefault(schema.normalise_header(col), col)
    for f in fields:
        if f.name in mapping:
            continue
        for spelling in (f.name, *f.synonyms):
            col = by_norm.get(schema.normalise_header(spelling))
            if col is not None and col not in used:
                mapping[f.name] = col
                used.add(col)
                break
    missing = [f.name for f in fields if f.required and f.name not in mapping]
    if missing:
        example = " ".join(f"--map 'COLUMN={m}'" for m in missing)
        raise ColumnMappingError(
            f"Could not find a column for {', '.join(missing)} in this {kind} file. Its columns are: "
            f"{', '.join(columns)}. Name the right ones with {example}.")
    return mapping


def detect_date_format(values: list[str]) -> str:
    """Pick the format (from :data:`DATE_FORMATS`) that parses most of the sample; ties go to the earlier one."""
    sample = [v.strip() for v in values if v and v.strip()][:2000]
    if not sample:
        return "iso"
    best, best_hits = "iso", -1
    for fmt in DATE_FORMATS:
        hits = sum(1 for v in sample if _parses(v, fmt))
        if hits > best_hits:
            best, best_hits = fmt, hits
        if hits == len(sample):
            break
    return best


def _parses(value: str, fmt: str) -> bool:
    try:
        if fmt == "iso":
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_file(shop: Shop, path: Path | str, kind: str, *, mapping: Mapping[str, str] | None = None,
                encoding: str | None = None, delimiter: str | None = None, date_format: str | None = None,
                collection: str | None = None, sheet: str | None = None,
                progress: ProgressFn | None = None) -> ImportReport:
    """Import one file into ``shop`` (created if needed). See the module docstring for the guarantees.

    Args:
        shop: the workspace.
        path: CSV/TSV/TXT, Parquet or .xlsx file.
        kind: ``orders``, ``products`` or ``reviews``.
        mapping: canonical field -> source column, overriding the automatic mapping.
        encoding: text encoding; detected when None.
        delimiter: CSV delimiter; detected when None.
        date_format: a strftime format or ``iso``; detected when None.
        collection: review collection name (reviews only); defaults to the file's stem.
        sheet: worksheet name for Excel files (default: the first).
        progress: called with (stage, fraction done) as the import proceeds.

    Raises:
        ImportFileError: the file as a whole cannot be imported; the shop is unchanged.
    """
    if kind not in schema.KINDS:
        raise ImportFileError(f"Unknown kind {kind!r}; use one of {', '.join(schema.KINDS)}.")
    step = progress or (lambda stage, frac: None)
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist or is not a file.")
    step("hashing", 0.0)
    digest = file_sha256(path)
    if not shop.exists():
        shop = Shop.create(shop.path)
    with shop.connect(read_only=True) as con:
        done = con.execute("SELECT import_id, finished_at, records, inserted, already_present, quarantined "
                           "FROM import_log WHERE file_sha256 = ? AND kind = ? ORDER BY import_id LIMIT 1",
                           [digest, kind]).fetchall()
    done = done[0] if done else None
    if done is not None:
        import_id, when, records, _, _, quarantined = done
        return ImportReport(import_id, kind, str(path), records, 0, records - quarantined, quarantined, {}, {},
                            None, None, None, skipped=True,
                            message=f"This file was already imported on {when:%Y-%m-%d %H:%M} (import #{import_id}); "
                                    "nothing was added.")
    step("reading", 0.1)
    raw = read_file(path, encoding=encoding, delimiter=delimiter, sheet=sheet)
    fields = map_columns(kind, raw.columns, mapping)
    staged = _stage(raw, fields, kind)
    date_fields = [f.name for f in schema.KINDS[kind] if f.type == "timestamp" and f.name in fields]
    fmt = date_format or (detect_date_format(staged.column(date_fields[0]).to_pylist()[:5000])
                          if date_fields else None)
    if collection is None and kind == "reviews":
        collection = path.stem
    step("validating", 0.4)
    started = dt.datetime.now()
    with shop.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            import_id = scalar(con, "SELECT nextval('import_seq')")
            con.register("staged", staged)  # queried in place, not copied
            checked_sql = _CHECKS[kind](fields, fmt, collection)
            con.execute(f"CREATE TEMP TABLE checked AS {checked_sql}")
            step("saving", 0.7)
            inserted, present = _INSERTS[kind](con, import_id)
            _quarantine(con, import_id, str(path), raw)
            reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine WHERE import_id = ? "
                                       "GROUP BY reason ORDER BY 2 DESC", [import_id]).fetchall())
            quarantined = sum(reasons.values())
            if inserted + present + quarantined != raw.records:  # the invariant; a failure here is a bug
                raise AssertionError(f"import accounting is off: {inserted}+{present}+{quarantined} "
                                     f"!= {raw.records} records")
            con.execute("INSERT INTO import_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [import_id, kind, str(path), digest, collection, raw.encoding, raw.delimiter, fmt,
                         json.dumps(fields, ensure_ascii=False), raw.records, inserted, present, quarantined,
                         started, dt.datetime.now()])
            if kind == "orders":
                _refresh_derived(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    step("done", 1.0)
    return ImportReport(import_id, kind, str(path), raw.records, inserted, present, quarantined, reasons, fields,
                        raw.encoding, raw.delimiter, fmt)


def _stage(raw: RawTable, fields: dict[str, str], kind: str) -> pa.Table:
    """Select the mapped columns under their canonical names (all text), plus the line and the record as JSON."""
    cols = {name: raw.table.column(src) for name, src in fields.items()}
    n = raw.table.num_rows
    for f in schema.KINDS[kind]:
        cols.setdefault(f.name, pa.nulls(n, pa.string()))
    cols[LINE_COLUMN] = raw.table.column(LINE_COLUMN)
    return pa.table(cols)


# --- SQL building blocks ----------------------------------------------------------------------------------------

def _text(col: str) -> str:
    return f"NULLIF(trim({col}), '')"


def _number(col: str) -> str:
    """Text to DOUBLE, accepting currency signs, thousands separators and a decimal comma."""
    x = f"regexp_replace(trim({col}), '[£$¥￥€元\\s]|RMB|CNY|GBP|USD|EUR', '', 'gi')"
    plain = f"TRY_CAST(trim({col}) AS DOUBLE)"  # most values are plain numbers: skip the regular expressions
    return (f"CASE WHEN {plain} IS NOT NULL THEN {plain} ELSE TRY_CAST(CASE WHEN regexp_full_match({x}, '[-+]?\\d{{1,3}}(,\\d{{3}})+(\\.\\d+)?') "
            f"THEN replace({x}, ',', '') "
            f"WHEN regexp_full_match({x}, '[-+]?\\d+,\\d{{1,2}}') THEN replace({x}, ',', '.') "
            f"ELSE {x} END AS DOUBLE) END")


def _timestamp(col: str, fmt: str | None) -> str:
    value = f"trim({col})"
    if fmt in (None, "iso"):
        return f"TRY_CAST({value} AS TIMESTAMP)"
    if "%H" not in fmt:
        return f"TRY_STRPTIME({value}, ['{fmt}', '{fmt} %H:%M:%S', '{fmt} %H:%M'])"
    return f"COALESCE(TRY_STRPTIME({value}, '{fmt}'), TRY_CAST({value} AS TIMESTAMP))"


def _date_ok(expr: str) -> str:
    return f"({expr} BETWEEN TIMESTAMP '1990-01-01' AND current_timestamp::TIMESTAMP + INTERVAL 366 DAY)"


def _required(names: list[str]) -> list[tuple[str, str, str]]:
    return [(f"{_text('s.' + n)} IS NULL", "missing_value", n) for n in names]


def _checked(select: str, rules: list[tuple[str, str, str | None]], parsed: dict[str, str]) -> str:
    """SELECT the typed columns plus ``_reason``, ``_field``, ``_value`` (raw text blamed), ``_line``, ``_record``.

    ``rules`` are (condition, reason code, field) in order; the first that holds decides the record's fate.
    ``parsed`` names expressions (numbers, dates) computed once per record in an inner query, because the rules
    and the select refer to them several times and each parse runs regular expressions.
    """
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{r}'" for c, r, _ in rules) + " END"
    fld = "CASE " + " ".join(f"WHEN {c} THEN '{f}'" for c, _, f in rules) + " END"
    value = "CASE " + " ".join(f"WHEN {c} THEN s.{f}" for c, _, f in rules) + " END"
    inner = ", ".join(f"{expr} AS {name}" for name, expr in parsed.items())
    return (f"SELECT {select}, {reason} AS _reason, {fld} AS _field, {value} AS _value, "
            f"s.{LINE_COLUMN} AS _line FROM (SELECT s.*{', ' + inner if inner else ''} FROM staged s) s")


def _check_orders(fields: dict[str, str], fmt: str | None, collection: str | None) -> str:
    parsed = {"_q": _number("s.quantity"), "_p": _number("s.unit_price"), "_ts": _timestamp("s.ordered_at", fmt)}
    q, p, ts = "_q", "_p", "_ts"
    status_raw = f"lower({_text('s.status')})"
    cancelled = ", ".join(f"'{v}'" for v in _CANCELLED)
    returned = ", ".join(f"'{v}'" for v in _RETURNED)
    status = (f"CASE WHEN {status_raw} IN ({cancelled}) THEN 'cancelled' "
              f"WHEN {status_raw} IN ({returned}) THEN 'returned' "
              f"WHEN {status_raw} IS NULL AND regexp_full_match(trim(s.order_id), 'C\\d+') AND {q} < 0 "
              f"THEN 'cancelled' "
              f"WHEN {status_raw} IS NULL AND {q} < 0 AND {p} = 0 THEN 'adjustment' ELSE 'ok' END")
    rules = _required(["order_id", "product_id", "quantity", "unit_price", "ordered_at"])
    rules += [
        (f"{q} IS NULL OR NOT isfinite({q}) OR abs({q}) > 1e9 OR {q} <> round({q})", "bad_number", "quantity"),
        (f"{p} IS NULL OR NOT isfinite({p}) OR abs({p}) >= 1e13", "bad_number", "unit_price"),
        (f"{ts} IS NULL OR NOT {_date_ok(ts)}", "bad_date", "ordered_at"),
        (f"{_text('s.line')} IS NOT NULL AND TRY_CAST(trim(s.line) AS INTEGER) IS NULL", "bad_number", "line"),
        (f"{p} < 0", "negative_price", "unit_price"),
        (f"{q} = 0", "zero_quantity", "quantity"),
        (f"{q} < 0 AND ({status}) = 'ok'", "negative_quantity", "quantity"),
    ]
    select = (f"{_text('s.order_id')} AS order_id, TRY_CAST(trim(s.line) AS INTEGER) AS given_line, "
              f"{_text('s.customer_id')} AS customer_id, {_text('s.product_id')} AS product_id, "
              f"{_text('s.title')} AS title, TRY_CAST({q} AS INTEGER) AS quantity, "
              f"TRY_CAST({p} AS DECIMAL(18, 4)) AS unit_price, {ts} AS ordered_at, {_text('s.country')} AS country, "
              f"{_text('s.channel')} AS channel, {status} AS status")
    return _checked(select, rules, parsed)


def _check_products(fields: dict[str, str], fmt: str | None, collection: str | None) -> str:
    parsed = {"_price": _number("s.price"), "_cost": _number("s.cost"), "_stock": _number("s.stock")}
    price, cost, stock = parsed
    rules = _required(["product_id"])
    for name, expr in (("price", price), ("cost", cost)):
        rules += [(f"{_text('s.' + name)} IS NOT NULL AND ({expr} IS NULL OR NOT isfinite({expr}) "
                   f"OR abs({expr}) >= 1e13)", "bad_number", name),
                  (f"{expr} < 0", "negative_price", name)]
    rules.append((f"{_text('s.stock')} IS NOT NULL AND ({stock} IS NULL OR NOT isfinite({stock}) "
                  f"OR abs({stock}) > 1e9 OR {stock} <> round({stock}))",
                  "bad_number", "stock"))
    select = (f"{_text('s.product_id')} AS product_id, {_text('s.title')} AS title, "
              f"{_text('s.category')} AS category, TRY_CAST({price} AS DECIMAL(18, 4)) AS price, "
              f"TRY_CAST({cost} AS DECIMAL(18, 4)) AS cost, TRY_CAST({stock} AS INTEGER) AS stock")
    return _checked(select, rules, parsed)


def _check_reviews(fields: dict[str, str], fmt: str | None, collection: str | None) -> str:
    parsed = {"_rating": _number("s.rating"), "_ts": _timestamp("s.created_at", fmt)}
    rating, ts = parsed
    text = f"COALESCE({_text('s.text')}, '')"
    cjk = f"length(regexp_replace({text} || COALESCE(s.title, ''), '[^\\x{{3400}}-\\x{{9fff}}]', '', 'g'))"
    latin = f"length(regexp_replace({text} || COALESCE(s.title, ''), '[^A-Za-z]', '', 'g'))"
    language = f"COALESCE(lower({_text('s.language')}), CASE WHEN {cjk} > 0 AND {cjk} * 2 >= {latin} " \
               f"THEN 'zh' ELSE 'en' END)"
    coll = (collection or "reviews").replace("'", "''")
    rules = [(f"{_text('s.text')} IS NULL AND {_text('s.title')} IS NULL", "missing_value", "text"),
             (f"{_text('s.rating')} IS NOT NULL AND ({rating} IS NULL OR NOT ({rating} BETWEEN 1 AND 5))",
              "bad_rating", "rating"),
             (f"{_text('s.created_at')} IS NOT NULL AND ({ts} IS NULL OR NOT {_date_ok(ts)})", "bad_date",
              "created_at"),
             (f"{_text('s.label')} IS NOT NULL AND TRY_CAST(trim(s.label) AS INTEGER) IS NULL", "bad_number",
              "label")]
    select = (f"COALESCE({_text('s.review_id')}, '{coll}:' || s.{LINE_COLUMN}) AS review_id, "
              f"'{coll}' AS collection, {_text('s.product_id')} AS product_id, "
              f"{_text('s.customer_id')} AS customer_id, {rating} AS rating, {_text('s.title')} AS title, "
              f"{text} AS text, {ts} AS created_at, {language} AS language, {_text('s.category')} AS category, "
              f"TRY_CAST(trim(s.label) AS INTEGER) AS label")
    return _checked(select, rules, parsed)


_CHECKS = {"orders": _check_orders, "products": _check_products, "reviews": _check_reviews}


def _mark_duplicates(con, key: str) -> None:
    """Quarantine later repeats of a key within the file (the first occurrence is kept)."""
    first = key.split(",")[0].strip()
    con.execute(f"""
        UPDATE checked SET _reason = 'duplicate_key', _field = '{first}', _value = {first}
        WHERE _reason IS NULL AND _line IN (
            SELECT _line FROM (SELECT _line, row_number() OVER (PARTITION BY {key} ORDER BY _line) AS k
                               FROM checked WHERE _reason IS NULL) WHERE k > 1)""")


def _insert_orders(con, import_id: int) -> tuple[int, int]:
    if scalar(con, "SELECT count(*) FROM checked WHERE given_line IS NOT NULL"):
        _mark_duplicates(con, "order_id, given_line")
    # Lines without a given number are told apart by content plus occurrence, so exact repeats inside an order
    # (the data has them) are kept, and the same line re-imported from another file is recognised.
    scalar(con, """
        CREATE TEMP TABLE good AS
        SELECT *,
               COALESCE(given_line, row_number() OVER (PARTITION BY order_id ORDER BY _line)) AS line,
               CASE WHEN given_line IS NOT NULL THEN CAST(given_line AS VARCHAR)
                    ELSE 'h' || substr(md5(concat_ws('|', product_id, quantity, unit_price, ordered_at,
                                                     customer_id, status)), 1, 16)
                         || ':' || row_number() OVER (PARTITION BY order_id, product_id, quantity, unit_price,
                                                      ordered_at, customer_id, status ORDER BY _line)
               END AS line_key
        FROM checked WHERE _reason IS NULL""")
    total = scalar(con, "SELECT count(*) FROM good")
    con.execute(f"""
        INSERT INTO orders
        SELECT g.order_id, g.line, g.line_key, g.customer_id, g.product_id, g.title, g.quantity, g.unit_price,
               g.ordered_at, g.country, g.channel, g.status, {import_id}, g._line
        FROM good g ANTI JOIN orders o ON o.order_id = g.order_id AND o.line_key = g.line_key""")
    inserted = scalar(con, "SELECT count(*) FROM orders WHERE import_id = ?", [import_id])
    return inserted, total - inserted


def _insert_products(con, import_id: int) -> tuple[int, int]:
    _mark_duplicates(con, "product_id")
    total = scalar(con, "SELECT count(*) FROM checked WHERE _reason IS NULL")
    new = scalar(con, """SELECT count(*) FROM checked c WHERE _reason IS NULL AND NOT EXISTS
                         (SELECT 1 FROM products p WHERE p.product_id = c.product_id)""")
    # A products file is the authority on a product: it replaces what was derived from order lines, and fields
    # the file leaves empty keep their earlier values.
    con.execute(f"""
        INSERT INTO products
        SELECT product_id, title, category, price, cost, stock, 'products', {_product_kind('title')}
        FROM checked WHERE _reason IS NULL
        ON CONFLICT (product_id) DO UPDATE SET
            title = COALESCE(excluded.title, products.title),
            category = COALESCE(excluded.category, products.category),
            price = COALESCE(excluded.price, products.price),
            cost = COALESCE(excluded.cost, products.cost),
            stock = COALESCE(excluded.stock, products.stock),
            source = 'products', kind = excluded.kind""")
    return new, total - new


def _insert_reviews(con, import_id: int) -> tuple[int, int]:
    _mark_duplicates(con, "review_id")
    total = scalar(con, "SELECT count(*) FROM checked WHERE _reason IS NULL")
    con.execute(f"""
        INSERT INTO reviews
        SELECT c.review_id, c.collection, c.product_id, c.customer_id, c.rating, c.title, c.text, c.created_at,
               c.language, c.category, c.label, {import_id}, c._line
        FROM checked c ANTI JOIN reviews r ON r.review_id = c.review_id
        WHERE c._reason IS NULL""")
    inserted = scalar(con, "SELECT count(*) FROM reviews WHERE import_id = ?", [import_id])
    return inserted, total - inserted


_INSERTS = {"orders": _insert_orders, "products": _insert_products, "reviews": _insert_reviews}


def _quarantine(con, import_id: int, source: str, raw: RawTable) -> None:
    con.execute("""INSERT INTO quarantine
                   SELECT ?, ?, c._line, c._field, c._reason, left(c._value, 500), to_json(s) FROM checked c
                   JOIN staged s ON s._line = c._line WHERE c._reason IS NOT NULL ORDER BY c._line""",
                [import_id, source])
    if raw.rejects:
        con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, NULL, ?, NULL, ?)",
                        [[import_id, source, r.line, r.reason, r.raw[:2000]] for r in raw.rejects])


#: Titles of order lines that are charges rather than goods (postage, fees, discounts, manual adjustments).
FEE_TITLE = (r"(?i)^\s*((\w+\s+){0,2}(postage|carriage|shipping|delivery charges?|manual|discount|samples?|"
             r"bank charges?|fees?|commission)|adjust\w*( .*)?)\s*$|^(运费|邮费|手续费|折扣|优惠|佣金)")


def _product_kind(title: str) -> str:
    return f"CASE WHEN regexp_matches(COALESCE({title}, ''), '{FEE_TITLE}') THEN 'fee' ELSE 'merchandise' END"


def _refresh_derived(con) -> None:
    """Rebuild ``customers`` and the products known only from order lines, after new order lines."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE derived_products AS
        SELECT product_id, mode(title) AS title,
               median(unit_price) FILTER (WHERE status = 'ok' AND unit_price > 0) AS price
        FROM orders GROUP BY product_id""")
    con.execute(f"""
        INSERT INTO products
        SELECT product_id, title, NULL, price, NULL, NULL, 'orders', {_product_kind('title')} FROM derived_products
        ON CONFLICT (product_id) DO UPDATE SET
            title = CASE WHEN products.source = 'orders' THEN excluded.title
                         ELSE COALESCE(products.title, excluded.title) END,
            price = CASE WHEN products.source = 'orders' THEN excluded.price
                         ELSE COALESCE(products.price, excluded.price) END,
            kind = CASE WHEN products.source = 'orders' THEN excluded.kind ELSE products.kind END""")
    con.execute("DELETE FROM customers")
    con.execute("""
        INSERT INTO customers
        SELECT customer_id, min(ordered_at), max(ordered_at), count(DISTINCT order_id), mode(country)
        FROM orders WHERE customer_id IS NOT NULL GROUP BY customer_id""")
