"""Build the bundled demo shop from the public data sets in ../shared/data.

Run once by a developer (``python data/build_demo.py [SHARED_DATA_DIR]``); the product never reads ../shared at
run time. Writes compact zstd Parquet files into ``data/demo/``:

* ``online_retail.parquet`` -- every one of the 541,909 lines of the UCI Online Retail data, columns as published
  (cancellations kept, raw values kept as text so the importer validates them exactly as it would a user's CSV).
* ``reviews_womens_clothing.parquet`` -- the English review collection (its own products and categories).
* ``reviews_online_shopping_zh.parquet`` -- the Chinese review collection (categories, sentiment labels, no ids).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
OUT = HERE / "demo"


def _write(table: pa.Table, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, OUT / name, compression="zstd", compression_level=19, row_group_size=200_000)
    print(f"{name}: {table.num_rows:,} rows, {(OUT / name).stat().st_size / 1e6:.1f} MB")


def build_online_retail(src: Path) -> None:
    files = sorted((src / "online-retail-uci" / "by-day").glob("*.csv"))
    as_text = pacsv.ConvertOptions(column_types={c: pa.string() for c in (
        "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")})
    tables = [pacsv.read_csv(f, convert_options=as_text) for f in files]
    table = pa.concat_tables(tables)
    # CustomerID is published as a float ("17850.0"); the id is the integer part.
    cid = table.column("CustomerID").to_pylist()
    cid = [c[:-2] if c and c.endswith(".0") else c for c in cid]
    table = table.set_column(table.schema.get_field_index("CustomerID"), "CustomerID", pa.array(cid, pa.string()))
    assert table.num_rows == 541_909, table.num_rows
    _write(table, "online_retail.parquet")


def build_reviews(src: Path) -> None:
    wc = pacsv.read_csv(src / "womens-clothing-reviews" / "reviews.csv",
                        convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    wc = wc.rename_columns(["review_id", *wc.column_names[1:]])
    ids = [f"wc-{i}" for i in wc.column("review_id").to_pylist()]
    products = [f"wc-item-{i}" for i in wc.column("Clothing ID").to_pylist()]
    table = pa.table({
        "review_id": ids,
        "product_id": products,
        "rating": wc.column("Rating"),
        "title": wc.column("Title"),
        "text": wc.column("Review Text"),
        "category": wc.column("Class Name"),
        "department": wc.column("Department Name"),
        "recommended": wc.column("Recommended IND"),
    })
    _write(table, "reviews_womens_clothing.parquet")

    zh = pacsv.read_csv(src / "online-shopping-10-cats-zh" / "reviews.csv",
                        convert_options=pacsv.ConvertOptions(column_types={"label": pa.int8()}))
    text = [t.lstrip("\ufeff") if t else t for t in zh.column("review").to_pylist()]
    table = pa.table({
        "review_id": [f"zh-{i + 1}" for i in range(zh.num_rows)],
        "category": zh.column("cat"),
        "label": zh.column("label"),
        "text": text,
    })
    _write(table, "reviews_online_shopping_zh.parquet")


if __name__ == "__main__":
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "data"
    build_online_retail(shared)
    build_reviews(shared)
