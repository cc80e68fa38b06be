"""The shop's canonical schema, in one place.

Every table in ``shop.duckdb`` is declared here, with the importable fields of each kind of file, their types, whether
they are required, and the column names recognised automatically (English and Chinese spellings). ``docs/schema.md``
is generated from this module (``python -m tools.schema``), so the documentation cannot drift from the code.

Quarantine reason codes are listed in :data:`REASONS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Field:
    """One importable field of a canonical table.

    Attributes:
        name: canonical column name.
        type: ``text``, ``integer``, ``decimal``, ``timestamp`` or ``rating``.
        required: a record without it is quarantined (``missing_value``).
        doc: one line for the documentation.
        synonyms: header spellings recognised automatically (compared after :func:`normalise_header`).
    """

    name: str
    type: str
    required: bool
    doc: str
    synonyms: tuple[str, ...] = field(default_factory=tuple)


ORDER_FIELDS = (
    Field("order_id", "text", True, "Order (invoice) number; several lines may share it.",
          ("order id", "order", "order no", "order number", "invoice", "invoice no", "invoice number", "invoiceno",
           "订单号", "订单编号", "订单id", "订单", "单号")),
    Field("line", "integer", False, "Line number within the order. When absent, lines are told apart by content.",
          ("line", "line no", "line number", "行号", "明细行号")),
    Field("customer_id", "text", False, "Customer id; empty for guest checkouts.",
          ("customer", "customer id", "customerid", "client id", "buyer id", "user id", "member id",
           "客户id", "客户编号", "客户", "买家id", "买家", "用户id", "会员id", "会员")),
    Field("product_id", "text", True, "Product id (SKU, stock code).",
          ("product id", "productid", "product", "sku", "stock code", "stockcode", "item id", "item code", "product code",
           "商品id", "商品编号", "商品编码", "货号", "sku编码", "商品sku")),
    Field("title", "text", False, "Product title as written on the order line.",
          ("description", "product name", "product title", "item name", "title", "name",
           "商品名称", "商品标题", "商品名", "品名", "宝贝标题")),
    Field("quantity", "integer", True, "Units on the line; negative only for cancellations and returns.",
          ("quantity", "qty", "units", "amount units", "数量", "购买数量", "商品数量", "件数")),
    Field("unit_price", "decimal", True, "Price of one unit in the shop's currency.",
          ("unit price", "unitprice", "price", "price each", "单价", "价格", "商品单价", "售价")),
    Field("ordered_at", "timestamp", True, "When the order was placed (shop's local time).",
          ("ordered at", "order date", "order time", "invoice date", "invoicedate", "date", "created at",
           "timestamp", "time", "下单时间", "订单时间", "创建时间", "付款时间", "订单创建时间", "日期")),
    Field("country", "text", False, "Country of the customer or shipment.",
          ("country", "country code", "国家", "国家地区")),
    Field("channel", "text", False, "Sales channel (web, app, marketplace…).",
          ("channel", "sales channel", "platform", "渠道", "平台", "销售渠道")),
    Field("status", "text", False,
          "Order status; mapped to ok / cancelled / returned. When absent, an order id of the form C123 with a "
          "negative quantity is a cancellation (the convention of the UCI export and several ERPs), and another "
          "negative quantity at price 0 is a stock adjustment (write-off), not a sale.",
          ("status", "order status", "state", "订单状态", "状态", "交易状态")),
)

PRODUCT_FIELDS = (
    Field("product_id", "text", True, "Product id (SKU, stock code).", ORDER_FIELDS[3].synonyms),
    Field("title", "text", False, "Product title.", ORDER_FIELDS[4].synonyms),
    Field("category", "text", False, "Category path or name.",
          ("category", "category name", "product category", "type", "类目", "分类", "品类", "商品类目", "类别")),
    Field("price", "decimal", False, "List price.",
          ("price", "list price", "unit price", "unitprice", "价格", "售价", "单价", "标价")),
    Field("cost", "decimal", False, "Unit cost, when known (enables margin).",
          ("cost", "unit cost", "cost price", "成本", "成本价", "进价")),
    Field("stock", "integer", False, "Units in stock, when known (enables stock cover).",
          ("stock", "inventory", "on hand", "stock level", "库存", "库存数量", "可用库存")),
)

REVIEW_FIELDS = (
    Field("review_id", "text", False, "Review id. When absent: `<collection>:<line>`.",
          ("review id", "reviewid", "id", "评论id", "评价id")),
    Field("product_id", "text", False, "Product the review is about, within its collection.",
          ORDER_FIELDS[3].synonyms),
    Field("customer_id", "text", False, "Author's customer id.", ORDER_FIELDS[2].synonyms),
    Field("rating", "rating", False, "Star rating, 1-5.",
          ("rating", "stars", "star rating", "score", "评分", "星级", "打分")),
    Field("title", "text", False, "Review title.", ("title", "summary", "headline", "标题", "评价标题")),
    Field("text", "text", True, "Review text (a review with neither text nor title is quarantined).",
          ("text", "review", "review text", "reviewtext", "content", "comment", "body", "评论", "评价",
           "评价内容", "评论内容", "内容")),
    Field("created_at", "timestamp", False, "When the review was written.",
          ("created at", "date", "review date", "time", "timestamp", "评价时间", "评论时间", "日期", "时间")),
    Field("language", "text", False, "Language code; detected (zh for Chinese script, else en) when absent.",
          ("language", "lang", "语言")),
    Field("category", "text", False, "Category of the reviewed product.", PRODUCT_FIELDS[2].synonyms + ("cat",)),
    Field("label", "integer", False, "Sentiment label when the source has one (1 positive, 0 negative).",
          ("label", "sentiment", "polarity", "情感", "标签", "情感标签")),
)

KINDS: dict[str, tuple[Field, ...]] = {
    "orders": ORDER_FIELDS,
    "products": PRODUCT_FIELDS,
    "reviews": REVIEW_FIELDS,
}

#: Quarantine reason codes: code -> what it means and what to do.
REASONS: dict[str, str] = {
    "ragged_row": "The record has a different number of fields from the header. Check the delimiter or quoting.",
    "unbalanced_quote": "A quoted field is never closed on this line; the line was set aside and reading resumed "
                        "on the next one.",
    "bad_encoding": "The line has bytes that are not valid in the file's encoding. Re-export as UTF-8.",
    "missing_value": "A required field is empty.",
    "bad_number": "The value is not a number (or not a whole number where one is needed).",
    "bad_date": "The value is not a date in the file's date format, or is outside 1990..next year.",
    "negative_price": "The price is below zero.",
    "zero_quantity": "The quantity is zero.",
    "negative_quantity": "A negative quantity at a price above zero on a line not marked cancelled or returned. "
                         "Map a status column to import returns.",
    "bad_rating": "The rating is not between 1 and 5.",
    "duplicate_key": "The same id appears earlier in the same file; the first one was kept.",
}

# The DuckDB tables. Kept as DDL so `docs/schema.md` can show them verbatim.
DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE IF NOT EXISTS import_seq START 1;
CREATE TABLE IF NOT EXISTS orders (
    order_id VARCHAR NOT NULL,
    line INTEGER NOT NULL,          -- line within the order (as given, or numbered in file order)
    line_key VARCHAR NOT NULL,      -- dedupe key: the given line, or a content hash + occurrence
    customer_id VARCHAR,
    product_id VARCHAR NOT NULL,
    title VARCHAR,
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(18, 4) NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    country VARCHAR,
    channel VARCHAR,
    status VARCHAR NOT NULL,        -- ok | cancelled | returned | adjustment (only ok lines are sales)
    import_id INTEGER NOT NULL,
    source_line BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    product_id VARCHAR PRIMARY KEY,
    title VARCHAR,
    category VARCHAR,
    price DECIMAL(18, 4),
    cost DECIMAL(18, 4),
    stock INTEGER,
    source VARCHAR NOT NULL,        -- 'products' (imported file) | 'orders' (derived from order lines)
    kind VARCHAR NOT NULL           -- 'merchandise' | 'fee' (postage, fees, discounts: told by the title)
);
CREATE TABLE IF NOT EXISTS customers (
    customer_id VARCHAR PRIMARY KEY,
    first_order_at TIMESTAMP,
    last_order_at TIMESTAMP,
    orders INTEGER,
    country VARCHAR
);
CREATE TABLE IF NOT EXISTS reviews (
    review_id VARCHAR PRIMARY KEY,
    collection VARCHAR NOT NULL,    -- review collection (source); product ids are scoped by it
    product_id VARCHAR,
    customer_id VARCHAR,
    rating DOUBLE,
    title VARCHAR,
    text VARCHAR NOT NULL,
    created_at TIMESTAMP,
    language VARCHAR NOT NULL,
    category VARCHAR,
    label INTEGER,
    import_id INTEGER NOT NULL,
    source_line BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS import_log (
    import_id INTEGER PRIMARY KEY,
    kind VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    collection VARCHAR,
    encoding VARCHAR,
    delimiter VARCHAR,
    date_format VARCHAR,
    mapping VARCHAR NOT NULL,       -- JSON: canonical field -> source column
    records BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    already_present BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    import_id INTEGER NOT NULL,
    source_file VARCHAR NOT NULL,
    line BIGINT NOT NULL,           -- physical line in a text file; row number in Parquet / Excel
    field VARCHAR,
    reason VARCHAR NOT NULL,
    value VARCHAR,
    record VARCHAR                  -- the record as read (JSON object, or the raw line)
);
"""

TABLES = ("orders", "products", "customers", "reviews", "import_log", "quarantine")


def normalise_header(name: str) -> str:
    """Normalise a column header for matching: lower case, separators to single spaces, BOM and brackets gone."""
    name = name.replace("\ufeff", "").strip().lower()
    name = re.sub(r"[\s_\-./:()（）\[\]]+", " ", name)
    return name.strip()


def markdown() -> str:
    """The schema as Markdown (written to ``docs/schema.md``)."""
    out = ["# Shop schema", "", "Generated by `python -m tools.schema` from `tools/schema.py`; do not edit by hand.",
           "", f"Schema version {SCHEMA_VERSION}.", ""]
    for kind, fields in KINDS.items():
        out += [f"## `{kind}` files", "", "| field | type | required | recognised headers | meaning |",
                "| --- | --- | --- | --- | --- |"]
        for f in fields:
            syn = ", ".join(f"`{s}`" for s in (f.name, *f.synonyms))
            out.append(f"| `{f.name}` | {f.type} | {'yes' if f.required else ''} | {syn} | {f.doc} |")
        out.append("")
    out += ["## Quarantine reasons", "", "| code | meaning |", "| --- | --- |"]
    out += [f"| `{code}` | {text} |" for code, text in REASONS.items()]
    out += ["", "## Tables", "", "```sql", DDL.strip(), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
