"""The first agent tools: sales_overview and query_data, on a shop small enough to check by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.base import ToolInputError
from tools.periods import resolve_period
from tools.query_data import SPEC as QUERY
from tools.sales_overview import SPEC as SALES


def test_month_totals_are_net_of_cancellations_and_compared(small_shop):
    r = SALES.run(small_shop, period="2024-02")
    t = r.data["totals"]
    assert t["revenue"] == 72.5 and t["orders"] == 3 and t["units"] == 7 - 1
    assert r.data["previous"]["revenue"] == 62.5 and r.data["previous"]["orders"] == 2
    assert r.data["changes_pct"]["vs_previous"]["revenue"] == 16.0  # (72.5 - 62.5) / 62.5
    assert r.data["last_year"] is None and "No comparison with last year: the data starts 2024-01-05" in r.summary
    assert "72.50" in r.summary and "+16.0%" in r.summary
    assert r.evidence[0].source == "orders" and "2024-02-01..2024-02-29" in r.evidence[0].detail


def test_product_breakdown_leaves_out_fees(small_shop):
    r = SALES.run(small_shop, period="all", group_by="product")
    keys = [row["key"] for row in r.data["breakdown"]]
    assert keys == ["MUG-BLUE", "TEAPOT", "MUG-RED"]  # POSTAGE is a fee, not a product to rank
    assert r.data["breakdown"][0]["revenue"] == 100.0 and r.data["breakdown"][0]["title"] == "Blue mug"
    assert r.data["totals"]["revenue"] == 135.0  # revenue itself includes the postage charge
    assert r.data["groups_total"] == 3 and "By product (3 products with sales in the period)" in r.summary
    one = SALES.run(small_shop, period="all", group_by="product", limit=1)
    assert len(one.data["breakdown"]) == 1 and one.data["groups_total"] == 3  # the count is not cut by the limit


def test_time_breakdown_is_in_time_order(small_shop):
    r = SALES.run(small_shop, period="all", group_by="month")
    assert [(row["key"], row["revenue"]) for row in r.data["breakdown"]] == [("2024-01", 62.5), ("2024-02", 72.5)]
    assert "Highest month: 2024-02 72.50." in r.summary
    # a time series is never cut by the ranking limit: the peak and the latest months stay
    one = SALES.run(small_shop, period="all", group_by="month", limit=1)
    assert [row["key"] for row in one.data["breakdown"]] == ["2024-01", "2024-02"]
    assert "Highest month: 2024-02 72.50." in one.summary


def test_totals_count_products_countries_and_cancelled_orders(small_shop):
    """Postage is not a product; a cancelled order counts once however many lines it has."""
    totals = SALES.run(small_shop, period="all").data["totals"]
    assert (totals["products"], totals["countries"], totals["cancelled_orders"]) == (3, 3, 1)
    r = SALES.run(small_shop, period="2024-02")
    assert "products 2; countries 2;" in r.summary and "cancelled orders 1 (netted out above)" in r.summary


@pytest.mark.parametrize("spec, start, end", [
    ("last_month", dt.date(2024, 1, 1), dt.date(2024, 2, 1)),
    ("this_month", dt.date(2024, 2, 1), dt.date(2024, 2, 13)),
    ("last_7_days", dt.date(2024, 2, 6), dt.date(2024, 2, 13)),
    ("last_week", dt.date(2024, 2, 5), dt.date(2024, 2, 12)),
    ("2024", dt.date(2024, 1, 1), dt.date(2025, 1, 1)),
    ("2024-01-05", dt.date(2024, 1, 5), dt.date(2024, 1, 6)),
    ("2024-01-03..2024-01-20", dt.date(2024, 1, 3), dt.date(2024, 1, 21)),
])
def test_periods_resolve_against_the_shops_last_day(spec, start, end):
    p = resolve_period(spec, dt.date(2024, 1, 5), dt.date(2024, 2, 12))
    assert (p.start, p.end) == (start, end)


def test_bad_period_is_a_tool_error_that_lists_the_choices(small_shop):
    with pytest.raises(ToolInputError, match="last_month"):
        resolve_period("fortnight", dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    with pytest.raises(Exception, match="pattern"):  # the argument schema refuses it before the tool runs
        SALES.run(small_shop, period="fortnight")


def test_query_data_runs_one_select_and_shows_it(small_shop):
    r = QUERY.run(small_shop, sql="SELECT product_id, sum(quantity) AS units FROM orders WHERE status = 'ok' "
                                  "GROUP BY 1 ORDER BY units DESC, product_id", max_rows=2)
    assert r.data["rows"] == [{"product_id": "MUG-BLUE", "units": 10}, {"product_id": "MUG-RED", "units": 1}]
    assert r.data["truncated"] is True and r.summary.startswith("Query: SELECT product_id")


@pytest.mark.parametrize("sql, message", [
    ("DELETE FROM orders", "Only SELECT"),
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
    ("SELEC 1", "does not parse"),
    ("COPY orders TO '/tmp/out.csv'", "Only SELECT"),
    ("SET enable_external_access = true", "Only SELECT"),
    ("", "empty"),
])
def test_query_data_refuses_anything_but_reading(small_shop, sql, message):
    with pytest.raises(ToolInputError, match=message):
        QUERY.run(small_shop, sql=sql)
    assert QUERY.run(small_shop, sql="SELECT count(*) AS n FROM orders").data["rows"] == [{"n": 7}]


def test_query_data_time_limit(small_shop):
    from tools.query_data import run_query

    with pytest.raises(ToolInputError, match="longer than"):
        run_query(small_shop, "SELECT count(*) FROM range(100000000) a, range(1000) b", timeout_s=0.5)
