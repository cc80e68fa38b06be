"""plan_promotions and its scoring: signals named with values and evidence, a grounded summary, missing signals
said out loud, complaints and stock-outs ranked down, and the long-tail option moving picks to slower sellers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from assistant.events import ToolCall
from assistant.grounding import check
from tools.base import ToolInputError
from tools.importer import import_file
from tools.plan_promotions import SPEC
from tools.promotion_scoring import Inputs, ReviewSignal, WeekHistory, score_candidates, week_history
from tools.workspace import Shop

CUTOFF = dt.date(2024, 6, 3)


def _history(units: dict[str, list[float]]) -> WeekHistory:
    """A hand-made weekly history (oldest week first) ending the day before CUTOFF."""
    ids = list(units)
    arr = np.array([units[p] for p in ids], dtype=float)
    return WeekHistory(ids, arr, CUTOFF, np.ones(arr.shape[1], dtype=bool))


# Twelve weeks of three identical steady sellers plus a smaller one and a tiny one.
STEADY = [10.0] * 12
BASE = {"A": STEADY, "B": STEADY, "C": STEADY, "SMALL": [3.0] * 12, "TINY": [1.0] * 12}


def test_complaints_rank_a_product_down():
    hist = _history(BASE)
    reviews = {"A": ReviewSignal(20, 4, 16, 6, ("r1", "r2")), "B": ReviewSignal(20, 18, 1, 0),
               "C": ReviewSignal(0, 0, 0, 0)}
    table, missing = score_candidates(hist, Inputs(reviews=reviews))
    order = table["product_id"].tolist()
    assert order.index("B") < order.index("C") < order.index("A")
    assert table.set_index("product_id").loc["A", "reviews_contrib"] < 0
    assert "reviews" not in missing


def test_stock_out_risk_ranks_a_product_down():
    hist = _history(BASE)
    table, _ = score_candidates(hist, Inputs(stock={"A": 2, "B": 500, "C": 500}))
    order = table["product_id"].tolist()
    assert order[-1] == "A" or order.index("A") > order.index("B")
    row = table.set_index("product_id").loc["A"]
    assert row["stock_contrib"] < 0 and row["stock"] < row["expected_p90"]
    assert table.set_index("product_id").loc["B", "stock_contrib"] == 0


def test_missing_signals_are_listed_and_contribute_nothing():
    table, missing = score_candidates(_history(BASE))
    assert set(missing) == {"forecast", "seasonality", "reach", "reviews", "stock", "margin"}
    assert not any(c.startswith(("reviews", "stock", "margin", "reach", "seasonality")) for c in table.columns)


def test_long_tail_prefers_less_popular_products():
    units = {f"P{i}": [float(5 + 10 * i)] * 12 for i in range(20)}
    hist = _history(units)
    normal, _ = score_candidates(hist)
    tail, _ = score_candidates(hist, long_tail=True)
    assert tail.head(5)["popularity_pct"].mean() < normal.head(5)["popularity_pct"].mean()


def test_history_reads_nothing_on_or_after_the_cutoff():
    sales = pd.DataFrame({"product_id": ["A", "A", "A"], "units": [5.0, 7.0, 100.0],
                          "date": pd.to_datetime(["2024-05-27", "2024-06-02", "2024-06-03"])})
    hist = week_history(sales, CUTOFF, n_weeks=4)
    assert hist.units.sum() == 12.0 and hist.units[0, -1] == 12.0


# ---------------------------------------------------------------------------------------------------- the tool


def _build_shop(folder) -> Shop:
    """Fourteen weeks of daily orders for six products with known customers; one product is rising."""
    rng = np.random.default_rng(0)
    rows = []
    start = dt.date(2024, 1, 1)
    products = {"MUG": 12.0, "TEAPOT": 30.0, "CUP": 4.0, "PLATE": 8.0, "BOWL": 6.0, "SPOON": 2.0}
    n = 0
    for day in range(98):
        date = start + dt.timedelta(days=day)
        for j, (pid, price) in enumerate(products.items()):
            rate = 3 + j + (day / 14 if pid == "CUP" else 0)  # CUP rises through the weeks
            for _ in range(rng.poisson(rate)):
                n += 1
                cust = f"c{rng.integers(40)}"
                rows.append(f"o{n},{pid},{pid.title()},{rng.integers(1, 4)},{price},{date} 12:00:00,{cust}")
                if pid == "MUG" and rng.random() < 0.5:  # mugs are often bought with spoons
                    rows.append(f"o{n},SPOON,Spoon,1,2.0,{date} 12:00:00,{cust}")
    f = folder / "orders.csv"
    f.write_text("order_id,product_id,title,quantity,unit_price,ordered_at,customer_id\n" + "\n".join(rows) + "\n",
                 encoding="utf-8")
    shop = Shop.create(folder / "shop")
    import_file(shop, f, "orders")
    return shop


@pytest.fixture(scope="module")
def planner_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return _build_shop(tmp_path_factory.mktemp("planner"))


def test_every_pick_has_three_signals_with_values_and_evidence(planner_shop):
    r = SPEC.run(planner_shop, k=4)
    picks = r.data["picks"]
    assert r.kind == "table" and len(picks) == 4
    for p in picks:
        named = {s: v for s, v in p["signals"].items() if v["value"] is not None}
        assert len(named) >= 3, p
        assert all("contribution" in v and "weight" in v for v in named.values())
        assert p["evidence"] and p["evidence"][0].startswith("orders:")
        assert p["expected_units_p10"] <= p["expected_units_p50"] <= p["expected_units_p90"]
        assert p["reasons"] and isinstance(p["risks"], list)
        assert p["score"] == pytest.approx(sum(v["contribution"] for v in p["signals"].values()), abs=0.01)
    assert {e.source for e in r.evidence} >= {"orders", "orders:co-purchase"}


def test_summary_figures_are_all_in_the_data(planner_shop):
    r = SPEC.run(planner_shop, k=5)
    # The call's own summary is left out, so every figure must come from the structured data.
    call = ToolCall("c1", "plan_promotions", {"k": 5}, summary="", result=r.to_dict())
    report = check(r.summary, [call])
    assert report.grounded, report.unmatched


def test_missing_signals_are_named_without_a_forecaster(planner_shop):
    r = SPEC.run(planner_shop)
    missing = r.data["missing"]
    assert {"forecast", "reviews", "stock", "margin", "seasonality"} <= set(missing)
    assert "shopkeeper train forecaster" in missing["forecast"]
    assert "Missing signals" in r.summary and "momentum estimate" in r.summary
    assert "forecast" not in r.data["signals_used"]
    assert all(p["forecast_method"] == "momentum estimate" for p in r.data["picks"])


def test_long_tail_option_reports_popularity(planner_shop):
    normal = SPEC.run(planner_shop, k=2)
    tail = SPEC.run(planner_shop, k=2, long_tail=True)
    assert tail.data["popularity"]["median_percentile"] < normal.data["popularity"]["median_percentile"]
    assert "popularity" in tail.data["picks"][0]["signals"]


def test_past_week_is_planned_as_of_then_with_actuals(planner_shop):
    r = SPEC.run(planner_shop, week="2024-03-11", k=3)
    assert r.data["week"]["history_until"] == dt.date(2024, 3, 10)
    assert all("actual_units" in p for p in r.data["picks"])
    with pytest.raises(ToolInputError, match="between"):
        SPEC.run(planner_shop, week="2024-01-10")


def test_a_date_just_after_the_data_is_next_week_and_a_far_one_an_error(planner_shop):
    nxt = SPEC.run(planner_shop, k=3)
    last = nxt.data["week"]["history_until"]
    soon = SPEC.run(planner_shop, week=str(last + dt.timedelta(days=6)), k=3, category="all")
    assert soon.data["week"] == nxt.data["week"] and soon.data["picks"] == nxt.data["picks"]
    with pytest.raises(ToolInputError, match="between"):
        SPEC.run(planner_shop, week=str(last + dt.timedelta(days=30)))


def test_small_shop_without_enough_history_says_what_to_do(small_shop):
    with pytest.raises(ToolInputError, match="needs 8 weeks of sales history"):
        SPEC.run(small_shop)


def test_a_trained_forecaster_gives_the_expected_units(tmp_path):
    """With a weekly model the expected units come from it, the evidence names it, and forecast is not missing."""
    import torch

    from local_models.forecaster import Config, Forecaster
    from tools.training import daily_sales

    torch.set_num_threads(1)
    shop = _build_shop(tmp_path)
    sales, _ = daily_sales(shop)
    config = Config.for_granularity("W", max_epochs=2, patience=1, val_periods=4, synthetic_aggregates=0)
    Forecaster.fit(sales, config, granularity="W", backtest=False).save(shop.models_dir / "forecaster")
    r = SPEC.run(shop, k=3)
    assert "forecast" not in r.data["missing"]
    assert any(p["forecast_method"] == "weekly model forecast" for p in r.data["picks"])
    assert any(e.source == "model:forecaster" for e in r.evidence)
