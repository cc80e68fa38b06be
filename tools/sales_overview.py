"""Tool ``sales_overview``: revenue, orders, units and average order value for a period, compared with the period
before and the same period a year earlier, optionally broken down, with the top movers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.periods import PERIOD_HELP, PERIOD_PATTERN, Period, resolve_period
from tools.workspace import Shop, fetch_dicts, scalar

# Revenue and units are net of cancellations and returns: their lines carry negative quantities, so a big order
# cancelled the same day (the demo has one of 80,995 units) does not count as a sale.
SOLD = "status IN ('ok', 'cancelled', 'returned')"
SOLD_O = "o.status IN ('ok', 'cancelled', 'returned')"

GROUPS = {
    "product": "o.product_id",
    "country": "COALESCE(o.country, '(unknown)')",
    "channel": "COALESCE(o.channel, '(unknown)')",
    "category": "COALESCE(p.category, '(uncategorised)')",
    "day": "strftime(o.ordered_at, '%Y-%m-%d')",
    "week": "strftime(date_trunc('week', o.ordered_at), '%Y-%m-%d')",
    "month": "strftime(o.ordered_at, '%Y-%m')",
}


class SalesOverviewArgs(BaseModel):
    period: str = Field("last_30_days", description=f"Period: {PERIOD_HELP}.", pattern=PERIOD_PATTERN)
    group_by: Literal["none", "product", "country", "channel", "category", "day", "week", "month"] = Field(
        "none", description="Break the totals down by this.")
    limit: int = Field(10, ge=1, le=50, description="Rows of a ranking and of the top movers (a time series keeps every period).")


def _totals(con, period: Period) -> dict:
    row = fetch_dicts(con, f"""
        SELECT COALESCE(sum(o.quantity * o.unit_price), 0)::DOUBLE AS revenue,
               count(DISTINCT o.order_id) FILTER (WHERE o.status = 'ok') AS orders,
               COALESCE(sum(o.quantity), 0)::BIGINT AS units,
               count(DISTINCT o.customer_id) FILTER (WHERE o.status = 'ok') AS customers,
               -- postage and fees are charges, not products
               count(DISTINCT o.product_id) FILTER (WHERE o.status = 'ok' AND p.kind = 'merchandise') AS products,
               count(DISTINCT o.country) FILTER (WHERE o.status = 'ok') AS countries,
               count(DISTINCT o.order_id) FILTER (WHERE o.status = 'cancelled') AS cancelled_orders
        FROM orders o LEFT JOIN products p USING (product_id)
        WHERE {SOLD_O} AND o.ordered_at >= ? AND o.ordered_at < ?""", [period.start, period.end])[0]
    row["aov"] = row["revenue"] / row["orders"] if row["orders"] else None
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return round((now - before) / before * 100, 1)


def _money(x: float | None, symbol: str) -> str:
    return "n/a" if x is None else f"{symbol}{x:,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}%"


def sales_overview(shop: Shop, args: SalesOverviewArgs) -> ToolResult:
    """Use for sales questions: revenue, orders, units, customers (how many bought), products, countries, cancelled
    orders and average order value in a period (vs the previous period and last year), best sellers (group_by
    product), by country, or by month (limit 12 for a year); period: last_month, last_week, last_30_days,
    this_year, all (all time), a year '2011', a month '2011-05' or '2011-11-01..2011-11-15'."""
    with shop.connect(read_only=True) as con:
        first, last = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders WHERE status = 'ok'"
                                  ).fetchall()[0]
        if first is None:
            raise ToolInputError("This shop has no sales yet. Import orders with `shopkeeper import FILE --kind "
                                 "orders`.")
        symbol = (con.execute("SELECT value FROM meta WHERE key = 'currency_symbol'").fetchall() or [[""]])[0][0]
        period = resolve_period(args.period, first.date(), last.date())
        prev, year = period.previous(), period.year_before()
        now = _totals(con, period)
        # A comparison is only made with a period the data covers (at least 3/4 of its days); comparing with a
        # period that mostly predates the data would report a meaningless jump.
        def covered(p: Period) -> bool:
            days = (p.end - max(p.start, first.date())).days
            return days > 0 and days >= 0.75 * p.days

        before = _totals(con, prev) if covered(prev) else None
        last_year = _totals(con, year) if covered(year) else None
        breakdown: list[dict] = []
        groups_total = None
        if args.group_by != "none":
            key = GROUPS[args.group_by]
            # Postage and fees are part of revenue but are not products to rank.
            merch = "AND p.kind = 'merchandise'" if args.group_by == "product" else ""
            series = args.group_by in ("day", "week", "month")
            # a time series keeps every period (its peak and its latest periods must not fall off a LIMIT); a
            # ranking keeps the top `limit`
            order = "key" if series else "revenue DESC"
            limit = "" if series else f"LIMIT {args.limit}"
            breakdown = fetch_dicts(con, f"""
                SELECT {key} AS key, any_value(p.title) AS title,
                       round(sum(o.quantity * o.unit_price), 2)::DOUBLE AS revenue,
                       sum(o.quantity)::BIGINT AS units,
                       count(DISTINCT o.order_id) FILTER (WHERE o.status = 'ok') AS orders
                FROM orders o LEFT JOIN products p USING (product_id)
                WHERE {SOLD_O} AND o.ordered_at >= ? AND o.ordered_at < ? {merch}
                GROUP BY key ORDER BY {order} {limit}""", [period.start, period.end])
            # "How many countries / products?" is answered by the group count (groups with a sale), not the rows.
            groups_total = scalar(con, f"""
                SELECT count(DISTINCT {key}) FROM orders o LEFT JOIN products p USING (product_id)
                WHERE o.status = 'ok' AND o.ordered_at >= ? AND o.ordered_at < ? {merch}""",
                                  [period.start, period.end])
            if args.group_by != "product":
                for row in breakdown:
                    row.pop("title")
        movers = fetch_dicts(con, f"""
            WITH cur AS (SELECT product_id, sum(quantity * unit_price) AS r FROM orders
                         WHERE {SOLD} AND ordered_at >= ? AND ordered_at < ? GROUP BY 1),
                 pre AS (SELECT product_id, sum(quantity * unit_price) AS r FROM orders
                         WHERE {SOLD} AND ordered_at >= ? AND ordered_at < ? GROUP BY 1)
            SELECT product_id, p.title, round(COALESCE(cur.r, 0), 2)::DOUBLE AS revenue,
                   round(COALESCE(pre.r, 0), 2)::DOUBLE AS previous_revenue,
                   round(COALESCE(cur.r, 0) - COALESCE(pre.r, 0), 2)::DOUBLE AS change
            FROM cur FULL JOIN pre USING (product_id) LEFT JOIN products p USING (product_id)
            WHERE p.kind = 'merchandise'
            ORDER BY abs(COALESCE(cur.r, 0) - COALESCE(pre.r, 0)) DESC LIMIT {min(args.limit, 10)}""",
                             [period.start, period.end, prev.start, prev.end])

    partial = period.end.toordinal() > last.date().toordinal() + 1 or period.start < first.date()
    metrics = ("revenue", "orders", "units", "aov")
    changes = {
        "vs_previous": {m: _change(now[m], before[m]) for m in metrics} if before else None,
        "vs_last_year": {m: _change(now[m], last_year[m]) for m in metrics} if last_year else None,
    }
    lines = [
        # each figure after its name ("customers 1,665"): a small model read "2,884 orders, … 1,665 customers" and
        # took the wrong number for the Chinese 顾客
        f"Sales {period.label()} ({period.name}; shop data ends {last:%Y-%m-%d}): revenue "
        f"{_money(now['revenue'], symbol)}; orders {now['orders']:,}; units {now['units']:,}; "
        f"customers {now['customers']:,}; products {now['products']:,}; countries {now['countries']:,}; "
        f"average order value {_money(now['aov'], symbol)}; cancelled orders {now['cancelled_orders']:,} "
        "(netted out above)."]
    if before:
        lines.append(f"Previous period {prev.label()}: revenue {_money(before['revenue'], symbol)} "
                     f"({_pct(changes['vs_previous']['revenue'])}), {before['orders']:,} orders "
                     f"({_pct(changes['vs_previous']['orders'])}).")
    else:
        lines.append(f"No comparison with the previous period: the data starts {first:%Y-%m-%d}.")
    if last_year:
        lines.append(f"Same period last year {year.label()}: revenue {_money(last_year['revenue'], symbol)} "
                     f"({_pct(changes['vs_last_year']['revenue'])}).")
    else:
        lines.append(f"No comparison with last year: the data starts {first:%Y-%m-%d}.")
    if partial:
        lines.append("Note: the period reaches beyond the shop's data, so it is incomplete.")
    if breakdown:
        # The model reads the latest max(limit, 12) periods of a time series (a month-by-month question for a year
        # needs all 12), the top 5 of a ranking; the data keeps every row either way.
        shown = breakdown[-max(args.limit, 12):] if args.group_by in ("day", "week", "month") else breakdown[:5]
        if args.group_by in ("day", "week", "month"):
            head = ", ".join(f"{r['key']} {_money(r['revenue'], symbol)}" for r in shown)
        else:
            # a ranking also states each group's orders ("how many orders came from Germany?"), each figure after
            # its name: with "Germany £207,135.37 (427 orders)" the small model answered with the units total
            head = "; ".join(f"{r['key']}{' ' + r['title'] if r.get('title') else ''}: revenue "
                             f"{_money(r['revenue'], symbol)}, orders {r['orders']:,}" for r in shown)
        noun = {"country": "countries", "category": "categories"}.get(args.group_by, f"{args.group_by}s")
        peak = ""
        if args.group_by in ("day", "week", "month") and len(breakdown) > 1:  # rows are in time order
            top = max(breakdown, key=lambda r: r["revenue"])
            peak = f" Highest {args.group_by}: {top['key']} {_money(top['revenue'], symbol)}."
        lines.append(f"By {args.group_by} ({groups_total:,} {noun} with sales in the period): {head}.{peak}")
    if movers and before:
        lines.append("Top movers vs previous period: " + ", ".join(
            f"{m['product_id']} {m['title'] or ''} {'+' if m['change'] >= 0 else ''}{m['change']:,.2f}".replace(
                "  ", " ") for m in movers[:3]) + ".")
    # The comparison periods are named in the summary above; repeating them here only costs a small model time.
    evidence = (Evidence("orders", f"net of cancellations and returns, {period.label()}"),)
    data = {"period": {"name": period.name, "start": period.start, "end": period.last_day},
            "previous_period": {"start": prev.start, "end": prev.last_day},
            "same_period_last_year": {"start": year.start, "end": year.last_day},
            "currency_symbol": symbol, "totals": now, "previous": before, "last_year": last_year,
            "changes_pct": changes, "breakdown": breakdown, "group_by": args.group_by, "groups_total": groups_total,
            "top_movers": movers,
            "incomplete_period": partial}
    return ToolResult(" ".join(lines), data, evidence, kind="sales")


SPEC = ToolSpec("sales_overview", SalesOverviewArgs, sales_overview)
