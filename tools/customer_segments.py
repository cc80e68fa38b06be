"""Tool ``customer_segments``: RFM (recency, frequency, monetary) scores and named customer segments.

Every identified customer with a sale up to the scoring day gets three scores from 1 to 5 by percentile rank among
all such customers: R (fewer days since the last order is better), F (more orders) and M (more net revenue). Ranks
rather than fixed quantile buckets keep ties together: the many customers with exactly one order all get the same
F score. The segment comes from R and FM = (F + M) / 2 rounded half up, on the usual RFM grid (:data:`GRID`), so
the eleven segments cover every score pair and each customer lands in exactly one.

:func:`customer_rfm` is shared with ``churn_risk`` (its ``segment`` filter).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools.analytics import DATE_PATTERN, currency, money, resolve_day, sales_span
from tools.base import Evidence, ToolResult, ToolSpec
from tools.workspace import Shop, fetch_dicts


@dataclass(frozen=True)
class Segment:
    key: str
    name_en: str
    name_zh: str
    rule: str
    action: str


SEGMENTS: tuple[Segment, ...] = (
    Segment("champions", "Champions", "冠军客户", "R 5, FM 4-5",
            "Reward them; early access to new products; ask for reviews."),
    Segment("loyal", "Loyal", "忠诚客户", "R 3-4, FM 4-5", "Upsell higher-value products; loyalty programme."),
    Segment("potential_loyalists", "Potential loyalists", "潜在忠诚客户", "R 4-5, FM 2-3",
            "Membership or bundle offers to make them regulars."),
    Segment("new", "New", "新客户", "R 5, FM 1", "Onboarding; a reason for a second order soon."),
    Segment("promising", "Promising", "有潜力客户", "R 4, FM 1", "Build awareness; a small first-repeat incentive."),
    Segment("need_attention", "Need attention", "需要关注客户", "R 3, FM 3",
            "Limited-time offers based on past purchases."),
    Segment("about_to_sleep", "About to sleep", "即将沉睡客户", "R 3, FM 1-2",
            "Reactivate with popular products and a discount."),
    Segment("at_risk", "At risk", "有流失风险客户", "R 1-2, FM 3-4", "Personal win-back emails; renewal offers."),
    Segment("cant_lose_them", "Can't lose them", "不能失去的客户", "R 1-2, FM 5",
            "Win them back with their favourite products; ask what went wrong."),
    Segment("hibernating", "Hibernating", "沉睡客户", "R 1-2, FM 1-2 (but not R 1, FM 1)",
            "Occasional relevant offers; do not over-spend."),
    Segment("lost", "Lost", "已流失客户", "R 1, FM 1", "Ignore unless a broad reactivation campaign runs."),
)
BY_KEY = {s.key: s for s in SEGMENTS}
SegmentKey = Literal["champions", "loyal", "potential_loyalists", "new", "promising", "need_attention",
                     "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost"]

#: Segment by (R, FM) score: rows R = 1..5, columns FM = 1..5.
GRID: dict[int, tuple[str, ...]] = {
    5: ("new", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
}

RULES = ("R, F, M scores 1-5 = 1 + floor(5 x percent rank) (capped at 5) among customers with a sale; R ranks fewer "
         "days since the last order higher, F more orders, M more net revenue; FM = (F + M) / 2 rounded half up; "
         + "; ".join(f"{s.key}: {s.rule}" for s in SEGMENTS))


def segment_of(r: int, fm: int) -> str:
    """The segment key of an R score and an FM score (both 1..5)."""
    return GRID[r][fm - 1]


def customer_rfm(con, as_of: dt.date) -> list[dict[str, Any]]:
    """One row per identified customer with a sale up to ``as_of`` (inclusive).

    Returns:
        Rows of ``customer_id``, ``recency_days``, ``frequency`` (orders), ``order_days`` (days with an order),
        ``orders_90d`` (orders in the 90 days up to ``as_of``), ``monetary`` (net revenue), ``first_order``,
        ``last_order``, the scores ``r``, ``f``, ``m``, ``fm`` and the ``segment`` key.
    """
    rows = fetch_dicts(con, """
        WITH c AS (
            SELECT customer_id,
                   max(ordered_at) FILTER (WHERE status = 'ok') AS last_at,
                   min(ordered_at) FILTER (WHERE status = 'ok') AS first_at,
                   count(DISTINCT order_id) FILTER (WHERE status = 'ok') AS frequency,
                   count(DISTINCT ordered_at::DATE) FILTER (WHERE status = 'ok') AS order_days,
                   count(DISTINCT order_id) FILTER (WHERE status = 'ok' AND ordered_at >= ?) AS orders_90d,
                   -- net of cancellations and returns, as in sales_overview
                   COALESCE(sum(quantity * unit_price), 0)::DOUBLE AS monetary
            FROM orders
            WHERE customer_id IS NOT NULL AND status IN ('ok', 'cancelled', 'returned') AND ordered_at < ?
            GROUP BY customer_id
            HAVING count(*) FILTER (WHERE status = 'ok') > 0),
        d AS (SELECT *, date_diff('day', last_at::DATE, ?::DATE) AS recency_days FROM c)
        SELECT customer_id, recency_days, frequency, order_days, orders_90d, round(monetary, 2) AS monetary,
               first_at::DATE AS first_order, last_at::DATE AS last_order,
               least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY recency_days DESC)))::INTEGER AS r,
               least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY frequency)))::INTEGER AS f,
               least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY monetary)))::INTEGER AS m
        FROM d ORDER BY customer_id""", [as_of - dt.timedelta(days=89), as_of + dt.timedelta(days=1), as_of])
    for row in rows:
        row["fm"] = (row["f"] + row["m"] + 1) // 2
        row["segment"] = segment_of(row["r"], row["fm"])
    return rows


class CustomerSegmentsArgs(BaseModel):
    as_of: str | None = Field(None, description="Score customers as of this day, YYYY-MM-DD (default: the shop's "
                                                "latest order day).", pattern=DATE_PATTERN)
    segment: SegmentKey | None = Field(None, description="Also list the customers of this segment (highest "
                                                         "revenue first).")
    limit: int = Field(20, ge=1, le=200, description="Customers listed when a segment is given.")


def _pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def customer_segments(shop: Shop, args: CustomerSegmentsArgs) -> ToolResult:
    """Use for questions about customer groups: who are the best, loyal, new, slipping or lost customers (RFM
    segments with sizes, revenue shares and example customer ids), or to list the customers of one segment; not
    for how many customers bought in a period (sales_overview)."""
    with shop.connect(read_only=True) as con:
        first, last = sales_span(con)
        as_of = resolve_day(args.as_of, first, last)
        symbol = currency(con)
        customers = customer_rfm(con, as_of)

    total_rev = sum(c["monetary"] for c in customers)
    groups: dict[str, list[dict[str, Any]]] = {s.key: [] for s in SEGMENTS}
    for c in customers:
        groups[c["segment"]].append(c)
    segments = []
    for s in SEGMENTS:
        members = sorted(groups[s.key], key=lambda c: (-c["monetary"], c["customer_id"]))
        n = len(members)
        revenue = round(sum(c["monetary"] for c in members), 2)
        segments.append({
            "segment": s.key, "name_en": s.name_en, "name_zh": s.name_zh, "customers": n,
            "customers_pct": _pct(n, len(customers)), "revenue": revenue,
            "revenue_pct": _pct(revenue, total_rev),
            "avg_recency_days": round(sum(c["recency_days"] for c in members) / n, 1) if n else None,
            "avg_frequency": round(sum(c["frequency"] for c in members) / n, 2) if n else None,
            "avg_monetary": round(revenue / n, 2) if n else None,
            "example_customers": [c["customer_id"] for c in members[:3]],
            "rule": s.rule, "action": s.action})

    listed: list[dict[str, Any]] = []
    if args.segment:
        members = sorted(groups[args.segment], key=lambda c: (-c["monetary"], c["customer_id"]))
        listed = [{k: c[k] for k in ("customer_id", "recency_days", "frequency", "monetary", "first_order",
                                     "last_order", "r", "f", "m", "segment")} for c in members[:args.limit]]

    head = (f"Customer segments as of {as_of} (RFM over sales up to that day; {len(customers):,} identified "
            f"customers, {money(round(total_rev, 2), symbol)} net revenue from them since {first}).")
    parts = [f"{s['segment']} ({s['name_zh']}): {s['customers']:,} customers ({s['customers_pct']}%), "
             f"{s['revenue_pct']}% of revenue, avg {s['avg_recency_days']} days since last order, "
             f"{s['avg_frequency']} orders, {money(s['avg_monetary'], symbol)}"
             for s in segments if s["customers"]]
    summary = head + " " + "; ".join(parts) + "."
    if args.segment:
        seg = BY_KEY[args.segment]
        summary += (f" Listed: the top {len(listed)} of {len(groups[args.segment]):,} {seg.key} customers by "
                    f"revenue.")
    evidence = (Evidence("orders", f"sales (status ok) {first}..{as_of}, monetary net of cancellations and returns; "
                                   "guest orders (no customer id) left out"),
                Evidence("rules:rfm", RULES))
    data = {"as_of": as_of, "data_start": first, "currency_symbol": symbol, "customers_scored": len(customers),
            "total_revenue": round(total_rev, 2), "segments": segments, "segment": args.segment, "listed": len(listed),
            "customers": listed}
    return ToolResult(summary, data, evidence, kind="segments")


SPEC = ToolSpec("customer_segments", CustomerSegmentsArgs, customer_segments)
