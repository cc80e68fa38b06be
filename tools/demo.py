"""The bundled demo shop: a real UK gift retailer's orders plus two real review collections.

* orders, products, customers: UCI Online Retail (Chen, Sain & Guo 2012; CC BY 4.0), all 541,909 order lines of
  2010-12-01..2011-12-09, cancellations kept as such;
* reviews: "Women's E-Commerce Clothing Reviews" (English, CC0) and "online_shopping_10_cats" (Chinese).

The reviews come from OTHER shops. They are kept as their own review collections with their own product ids and
categories, and are never linked to the retailer's products. Origin and licences: ``data/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tools.importer import ImportReport, import_file
from tools.workspace import Shop

#: (file, kind, review collection)
DEMO_FILES = (
    ("online_retail.parquet", "orders", None),
    ("reviews_womens_clothing.parquet", "reviews", "womens-clothing-en"),
    ("reviews_online_shopping_zh.parquet", "reviews", "online-shopping-zh"),
)


def demo_data_dir() -> Path:
    """Where the demo files are: inside the installed package, or ``data/demo`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "demo_data", here.parent / "data" / "demo"):
        if (candidate / DEMO_FILES[0][0]).exists():
            return candidate
    raise FileNotFoundError("The demo data is missing from this installation (expected tools/demo_data/ or "
                            "data/demo/). Reinstall Shopkeeper from a full checkout.")


def build_demo_shop(path: Path, progress: Callable[[str, str, float], None] | None = None) -> list[ImportReport]:
    """Create (or complete) the demo shop at ``path``. Idempotent: files already imported are skipped."""
    shop = Shop.create(path)
    data = demo_data_dir()
    reports = []
    for name, kind, collection in DEMO_FILES:
        step = (lambda stage, frac, _name=name: progress(_name, stage, frac)) if progress else None
        reports.append(import_file(shop, data / name, kind, collection=collection, progress=step))
    with shop.connect() as con:  # the retailer sells in pounds sterling
        con.execute("INSERT OR REPLACE INTO meta VALUES ('currency_symbol', '£')")
    # Seconds now rather than on the operator's first churn or bought-together question.
    from tools.training import train_analytics
    train_analytics(shop, lambda frac, text: progress("analytics", text, frac) if progress else None)
    return reports
