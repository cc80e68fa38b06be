"""forecast_sales: quantiles with backtest evidence, fallbacks said out loud, clear errors."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from tools.base import ToolInputError
from tools.forecast_sales import SPEC
from tools.importer import import_file
from tools.training import daily_sales
from tools.workspace import Shop

FIXTURE = Path(__file__).parent / "fixtures" / "sales_slice.csv"  # daily sales of 20 real demo products


@pytest.fixture(scope="module")
def forecast_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """A shop made of the real slice (one order line per product and day), with a quickly trained weekly model."""
    import torch

    from local_models.forecaster import Config, Forecaster

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("forecast")
    orders = tmp / "orders.csv"
    with FIXTURE.open() as src, orders.open("w", newline="") as dst:
        out = csv.writer(dst)
        out.writerow(["order_id", "product_id", "quantity", "unit_price", "ordered_at"])
        for i, row in enumerate(csv.DictReader(src)):
            units = float(row["units"])
            out.writerow([f"o{i}", row["product_id"], int(units), round(float(row["revenue"]) / units, 4),
                          f"{row['date']} 12:00:00"])
        out.writerow(["o-new", "NEW-1", 1, 9.99, "2011-12-09 10:00:00"])  # sold once, on the last day
    shop = Shop.create(tmp / "shop")
    import_file(shop, orders, "orders")
    sales, _ = daily_sales(shop)
    sales = sales[sales["product_id"] != "NEW-1"]  # the model never saw it: a brand-new product
    config = dataclasses.replace(Config.for_granularity("W"), max_epochs=3, patience=1)
    Forecaster.fit(sales, config, granularity="W").save(shop.models_dir / "forecaster")
    return shop


def test_shop_forecast_has_quantiles_changes_and_backtest(forecast_shop):
    r = SPEC.run(forecast_shop, target="shop", horizon=4)
    q = r.data["quantiles"]
    assert len(r.data["periods"]) == 4 and all(lo <= mid <= hi for lo, mid, hi in zip(q["p10"], q["p50"], q["p90"]))
    assert r.kind == "forecast" and r.data["method"] == "global_model"
    assert "MASE" in r.data["backtest"]["text"] and "Backtest:" in r.summary
    assert f"{q['p50'][0]:,.0f}" in r.summary  # the summary states the tool's own figures
    assert r.evidence[0].source == "model:forecaster"


def test_product_with_two_sales_and_a_new_product_say_how_they_were_made(forecast_shop):
    sparse = SPEC.run(forecast_shop, target="16202A", horizon=2)
    assert sparse.data["method"].startswith("sparse_history") and "Lacking:" in sparse.summary
    new = SPEC.run(forecast_shop, target="NEW-1", horizon=2)
    assert new.data["method"].startswith("new_product") or "not among the series" in new.summary
    assert new.data["lacking"]


def test_errors_say_what_to_do(forecast_shop, small_shop):
    with pytest.raises(ToolInputError, match="No product 'NOPE'.*sales_overview"):
        SPEC.run(forecast_shop, target="NOPE")
    with pytest.raises(ToolInputError, match="at most 8 weeks"):
        SPEC.run(forecast_shop, target="shop", horizon=12)
    with pytest.raises(ToolInputError, match="shopkeeper train forecaster"):
        SPEC.run(small_shop, target="shop")
    with pytest.raises(ToolInputError, match="charge, not a product"):
        SPEC.run(small_shop, target="POST")
