"""The customer-behaviour tools (customer_segments, churn_risk, cohort_retention, basket_pairs) on shops small
enough to check by hand, and the churn model on a 300-customer slice of the real demo data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from tools.base import ToolInputError
from tools.basket import SPEC as BASKET
from tools.churn import SPEC as CHURN
from tools.churn import auc, fit_logistic, precision_at_k, predict
from tools.cohorts import SPEC as COHORTS
from tools.customer_segments import GRID, SEGMENTS, segment_of
from tools.customer_segments import SPEC as SEGMENTS_TOOL
from tools.registry import by_name

HEADER = "order_id,product_id,title,quantity,unit_price,ordered_at,customer_id,country\n"
LAST_DAY = dt.date(2024, 6, 30)


def _shop(tmp_path: Path, name: str, lines: list[str]):
    from tools.importer import import_file
    from tools.workspace import Shop

    f = tmp_path / f"{name}.csv"
    f.write_text(HEADER + "".join(lines), encoding="utf-8")
    shop = Shop.create(tmp_path / name)
    import_file(shop, f, "orders")
    return shop


def _day(days_before_last: int) -> str:
    return f"{LAST_DAY - dt.timedelta(days=days_before_last)} 10:00:00"


# Five customers whose recency, frequency and revenue are all different, so with five customers the percentile
# rank scores are exactly 1..5. (customer, days since last order, orders, revenue per order)
RFM_CUSTOMERS = [("A", 0, 1, 20), ("B", 5, 5, 100), ("C", 50, 3, 100), ("D", 100, 4, 100), ("E", 200, 2, 100)]


@pytest.fixture
def rfm_shop(tmp_path: Path):
    """A: R5 F1 M1 -> FM 1 -> new. B: R4 F5 M5 -> loyal. C: R3 F3 M3 (a 20.00 cancellation takes 320 to 300) ->
    need_attention. D: R2 F4 M4 -> at_risk. E: R1 F2 M2 -> hibernating. Plus one guest order, left out."""
    lines = []
    for cust, recency, n, value in RFM_CUSTOMERS:
        for k in range(n):  # orders a week apart, the last one `recency` days before the shop's last day
            price = value + (20 if cust == "C" and k == 0 else 0)
            lines.append(f"N{cust}{k},SKU-1,Mug,1,{price:.2f},{_day(recency + 7 * (n - 1 - k))},{cust},UK\n")
    lines.append(f"C900,SKU-1,Mug,-1,20.00,{_day(60)},C,UK\n")
    lines.append(f"G1,SKU-1,Mug,3,10.00,{_day(1)},,UK\n")
    return _shop(tmp_path, "rfm", lines)


def test_rfm_scores_and_segments_by_hand(rfm_shop):
    r = SEGMENTS_TOOL.run(rfm_shop)
    assert r.data["as_of"] == LAST_DAY and r.data["customers_scored"] == 5  # the guest order is not a customer
    assert r.data["total_revenue"] == 20 + 500 + 300 + 400 + 200
    seg = {s["segment"]: s for s in r.data["segments"]}
    expected = {"new": "A", "loyal": "B", "need_attention": "C", "at_risk": "D", "hibernating": "E"}
    for key, cust in expected.items():
        assert seg[key]["customers"] == 1 and seg[key]["example_customers"] == [cust], key
    assert sum(s["customers"] for s in r.data["segments"]) == 5
    assert seg["loyal"]["revenue"] == 500 and seg["loyal"]["revenue_pct"] == 35.2  # 500 / 1420
    assert seg["need_attention"]["revenue"] == 300 and seg["need_attention"]["revenue_pct"] == 21.1
    assert seg["at_risk"]["avg_recency_days"] == 100 and seg["at_risk"]["avg_frequency"] == 4
    assert seg["new"]["name_zh"] == "新客户" and seg["champions"]["customers"] == 0
    assert "need_attention (需要关注客户): 1 customers (20.0%), 21.1% of revenue" in r.summary
    assert "R, F, M scores 1-5" in r.evidence[1].detail and "2024-06-30" in r.evidence[0].detail

    listed = SEGMENTS_TOOL.run(rfm_shop, segment="loyal").data["customers"]
    assert [(c["customer_id"], c["r"], c["f"], c["m"], c["recency_days"], c["frequency"]) for c in listed] == [
        ("B", 4, 5, 5, 5, 5)]


def test_rfm_as_of_an_earlier_day_and_outside_the_data(rfm_shop):
    r = SEGMENTS_TOOL.run(rfm_shop, as_of=str(LAST_DAY - dt.timedelta(days=110)))
    assert r.data["customers_scored"] == 2  # D (first order 121 days before the end) and E; A, B, C came later
    with pytest.raises(ToolInputError, match="outside the shop's data"):
        SEGMENTS_TOOL.run(rfm_shop, as_of="2030-01-01")


def test_segment_grid_covers_every_score_pair_with_all_eleven_segments():
    cells = {segment_of(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert cells == {s.key for s in SEGMENTS} and len(SEGMENTS) == 11
    assert segment_of(5, 5) == "champions" and segment_of(1, 1) == "lost" and segment_of(1, 5) == "cant_lose_them"
    assert all(len(row) == 5 for row in GRID.values())


# --- churn ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slice_shop(tmp_path_factory: pytest.TempPathFactory):
    """300 real customers of the demo shop, one line per order (tests/fixtures/make_churn_slice.py)."""
    from tools.importer import import_file
    from tools.workspace import Shop

    shop = Shop.create(tmp_path_factory.mktemp("slice") / "shop")
    import_file(shop, Path(__file__).parent / "fixtures" / "churn_slice.csv", "orders")
    return shop


def test_churn_model_is_validated_on_a_time_split_and_beats_recency_alone(slice_shop):
    r = CHURN.run(slice_shop, top_k=5)
    v = r.data["validation"]
    assert (v["train_as_of"], v["valid_as_of"]) == ("2011-06-12", "2011-09-10")  # last sale 2011-12-09 - 180/90
    assert v["auc"] > v["baseline_auc"] and v["auc"] > 0.65
    assert v["precision_at_k"] >= v["baseline_precision_at_k"]
    assert f"AUC {v['auc']} vs {v['baseline_auc']}" in r.summary
    assert any(e.source == "model:churn" and f"AUC {v['auc']}" in e.detail for e in r.evidence)
    rows = r.data["customers"]
    assert len(rows) == 5 and all(0 <= c["p_churn"] <= 1 for c in rows)
    assert [c["value_at_risk"] for c in rows] == sorted((c["value_at_risk"] for c in rows), reverse=True)
    by_p = CHURN.run(slice_shop, top_k=200, rank_by="probability").data["customers"]
    assert by_p and all(c["revenue"] > 0 for c in by_p)  # net-zero (all returned) customers are not listed
    for c in rows:
        assert c["reason"].startswith(f"no order for {c['days_since_last_order']} day")


def test_churn_model_is_cached_and_gives_the_same_answer(slice_shop):
    first = CHURN.run(slice_shop, top_k=3, rank_by="probability")
    again = CHURN.run(slice_shop, top_k=3, rank_by="probability")
    assert again.data["model"]["cached"] is True
    assert (slice_shop.models_dir / "churn" / "model.json").exists()
    assert again.data["customers"] == first.data["customers"]
    ps = [c["p_churn"] for c in again.data["customers"]]
    assert ps == sorted(ps, reverse=True)


def test_the_analytics_training_step_warms_both_caches(slice_shop):
    """`shopkeeper train analytics` (also run by `shopkeeper demo`) leaves the first questions nothing to fit."""
    from tools.training import train

    for cache in ("churn/model.json", "basket/pairs.json"):
        (slice_shop.models_dir / cache).unlink(missing_ok=True)
    steps = []
    [report] = train(slice_shop, "analytics", lambda frac, text: steps.append(frac))
    assert report.name == "analytics" and steps[-1] == 1.0
    assert (slice_shop.models_dir / "basket" / "pairs.json").exists() and "basket pairs counted" in report.summary
    assert CHURN.run(slice_shop, top_k=3).data["model"]["cached"] is True
    assert "from cache" in BASKET.run(slice_shop).evidence[0].detail


def test_churn_segment_filter(slice_shop):
    r = CHURN.run(slice_shop, segment="champions", top_k=50)
    assert r.data["customers"] and all(c["segment"] == "champions" for c in r.data["customers"])
    assert r.data["customers_scored"] < 300


def test_churn_needs_enough_history(small_shop):
    with pytest.raises(ToolInputError, match="days of order history"):
        CHURN.run(small_shop)


def test_auc_precision_and_logistic_fit_by_hand():
    # positives at 0.35 and 0.8, negatives at 0.1 and 0.4: 3 of the 4 (pos, neg) pairs are ordered right
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5  # a tie counts half
    assert precision_at_k(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 1]), 2) == 0.5
    x = np.linspace(-3, 3, 200)[:, None]
    y = (x[:, 0] > 0).astype(float)
    p = predict(fit_logistic(x, y), x)
    assert p[0] < 0.1 and p[-1] > 0.9 and np.all(np.diff(p) > 0)


# --- cohorts -------------------------------------------------------------------------------------------------

@pytest.fixture
def cohort_shop(tmp_path: Path):
    """January: u1-u4 start. February: u1, u2 return; u5 starts. March: u1, u3, u5 return; u6 starts; the data
    ends on 31 March, so no month is partial."""
    orders = [("u1", "2024-01-03"), ("u2", "2024-01-10"), ("u3", "2024-01-15"), ("u4", "2024-01-20"),
              ("u1", "2024-02-02"), ("u2", "2024-02-14"), ("u5", "2024-02-20"),
              ("u1", "2024-03-01"), ("u3", "2024-03-05"), ("u5", "2024-03-06"), ("u6", "2024-03-31")]
    return _shop(tmp_path, "cohorts", [f"O{i},SKU-1,Mug,1,5.00,{d} 09:00:00,{c},UK\n"
                                       for i, (c, d) in enumerate(orders)])


def test_cohort_table_by_hand(cohort_shop):
    r = COHORTS.run(cohort_shop)
    assert r.data["columns"] == ["m0", "m1", "m2"] and r.data["partial_month"] is None
    assert r.data["cohorts"] == [
        {"cohort": "2024-01", "customers": 4, "m0": 100.0, "m1": 50.0, "m2": 50.0},   # u1, u2 | u1, u3
        {"cohort": "2024-02", "customers": 1, "m0": 100.0, "m1": 100.0, "m2": None},  # u5 | not yet observable
        {"cohort": "2024-03", "customers": 1, "m0": 100.0, "m1": None, "m2": None}]
    # month 1: (2 + 1) of (4 + 1) customers; month 2: 2 of 4
    assert r.data["average_retention_pct"] == {"m1": 60.0, "m2": 50.0}
    assert r.data["best_month1"] == {"cohort": "2024-02", "m1": 100.0}
    assert r.data["worst_month1"] == {"cohort": "2024-01", "m1": 50.0}
    assert "month 1 60.0%" in r.summary and "already active when the data starts" in r.summary

    two = COHORTS.run(cohort_shop, months=2)
    assert [c["cohort"] for c in two.data["cohorts"]] == ["2024-02", "2024-03"] and two.data["columns"] == ["m0",
                                                                                                        "m1"]


def test_cohorts_flag_a_partial_last_month_and_ignore_cancellations(small_shop):
    r = COHORTS.run(small_shop)  # c1, c2 start in January; c3 in February; c2's February line is a cancellation
    assert r.data["partial_month"] == "2024-02"  # the data ends on 12 February
    assert r.data["cohorts"][0] == {"cohort": "2024-01", "customers": 2, "m0": 100.0, "m1": 50.0}
    assert r.data["average_retention_pct"] == {"m1": None}  # January's month 1 is the partial month
    assert "partial" in r.summary


# --- baskets -------------------------------------------------------------------------------------------------

BASKET_ORDERS = {"O1": "ABC", "O2": "AB", "O3": "AC", "O4": "BD", "O5": "ABD"}


@pytest.fixture
def basket_shop(tmp_path: Path):
    """Five orders (above) plus postage on O4 and a cancelled order of A and D, both of which must not count.

    Orders with A: 4, B: 4, C: 2, D: 2. Together: AB 3, AC 2, BD 2, AD 1, BC 1, CD 0.
    """
    lines = [f"{o},{p},Item {p},1,2.00,2024-03-0{i + 1} 10:00:00,c{i},UK\n"
             for i, (o, items) in enumerate(BASKET_ORDERS.items()) for p in items]
    lines.append("O4,POST,POSTAGE,1,5.00,2024-03-04 10:00:00,c3,UK\n")
    lines += ["C6,A,Item A,-1,2.00,2024-03-06 10:00:00,c6,UK\n", "C6,D,Item D,-1,2.00,2024-03-06 10:00:00,c6,UK\n"]
    return _shop(tmp_path, "basket", lines)


def test_basket_pairs_support_confidence_lift_by_hand(basket_shop):
    r = BASKET.run(basket_shop, min_support=0.4)  # at least 2 of the 5 orders
    assert r.data["orders"] == 5 and r.data["min_orders"] == 2 and r.data["pairs_found"] == 3
    got = [(p["product_a"], p["product_b"], p["orders_together"], p["support_pct"], p["confidence_pct"],
            p["reverse_confidence_pct"], p["lift"]) for p in r.data["pairs"]]
    assert got == [
        ("C", "A", 2, 40.0, 100.0, 50.0, 1.25),  # lift = (2/5) / ((2/5) * (4/5)); from the rarer product C
        ("D", "B", 2, 40.0, 100.0, 50.0, 1.25),
        ("A", "B", 3, 60.0, 75.0, 75.0, 0.94)]   # (3/5) / ((4/5) * (4/5)) = 0.9375
    by_support = BASKET.run(basket_shop, min_support=0.4, sort_by="support").data["pairs"]
    assert (by_support[0]["product_a"], by_support[0]["product_b"]) == ("A", "B")


def test_basket_pairs_of_one_product_and_the_cache(basket_shop):
    r = BASKET.run(basket_shop, product_id="A", min_support=0.2, sort_by="confidence")
    assert [(p["product_b"], p["orders_together"], p["confidence_pct"]) for p in r.data["pairs"]] == [
        ("B", 3, 75.0), ("C", 2, 50.0), ("D", 1, 25.0)]  # of A's 4 orders; the cancelled A+D order is not one
    assert r.data["product_orders"] == 4 and r.data["pairs"][2]["lift"] == pytest.approx(0.625, abs=0.006)

    # all pairs: computed at a 40% floor and cached; a higher floor is served from the cache, a lower one recounts
    first = BASKET.run(basket_shop, min_support=0.4)
    assert "from cache" not in first.evidence[0].detail
    higher = BASKET.run(basket_shop, min_support=0.6)
    assert "from cache" in higher.evidence[0].detail and [p["orders_together"] for p in higher.data["pairs"]] == [3]
    lower = BASKET.run(basket_shop, min_support=0.2)
    assert "from cache" not in lower.evidence[0].detail and lower.data["pairs_found"] == 5  # CD never meet


def test_unknown_or_fee_product_is_a_tool_error_that_says_how_to_find_ids(basket_shop):
    with pytest.raises(ToolInputError, match=r"Unknown product id 'Z9'.*query_data.*SELECT product_id, title"):
        BASKET.run(basket_shop, product_id="Z9")
    with pytest.raises(ToolInputError, match=r"Similar: A \(Item A\)"):
        BASKET.run(basket_shop, product_id="item a")
    with pytest.raises(ToolInputError, match="POST .* is a fee"):
        BASKET.run(basket_shop, product_id="POST")


# --- all four ------------------------------------------------------------------------------------------------

def test_the_four_tools_are_registered_with_a_when_to_use_line():
    for name in ("customer_segments", "churn_risk", "cohort_retention", "basket_pairs"):
        assert by_name(name).description.startswith("Use ")


@pytest.mark.parametrize("tool, args, shop_fixture", [
    ("customer_segments", {}, "rfm_shop"),
    ("customer_segments", {"segment": "loyal"}, "rfm_shop"),
    ("churn_risk", {"top_k": 10}, "slice_shop"),
    ("churn_risk", {"top_k": 5, "segment": "at_risk", "rank_by": "probability"}, "slice_shop"),
    ("cohort_retention", {}, "cohort_shop"),
    ("cohort_retention", {}, "small_shop"),
    ("basket_pairs", {"min_support": 0.2}, "basket_shop"),
    ("basket_pairs", {"product_id": "A", "min_support": 0.2}, "basket_shop"),
])
def test_every_figure_of_a_summary_is_in_its_data(tool, args, shop_fixture, request):
    """The traceability the grounding check relies on: the summary states nothing the data does not hold."""
    from assistant.grounding import extract_dates, extract_figures, matches, percents_of, values_of

    result = by_name(tool).run(request.getfixturevalue(shop_fixture), **args).to_dict()
    numbers, dates = values_of([], [result["data"]])
    percents = percents_of([], [result["data"]])
    missing = [f.text for f in extract_figures(result["summary"])
               if not any(matches(f, v) for v in (percents if f.percent else numbers))]
    missing += [d for d in extract_dates(result["summary"]) if not any(x.startswith(d) for x in dates)]
    assert missing == [], result["summary"]
