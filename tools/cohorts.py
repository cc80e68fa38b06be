"""Tool ``cohort_retention``: monthly acquisition cohorts and the share of each that ordered again, month by month.

A customer's cohort is the calendar month of their first sale (status 'ok'); month k of a cohort is the k-th
calendar month after it, and its retention is the share of the cohort's customers with a sale in that month
(month 0 is 100% by definition). The first month of the data holds every customer already active when the data
starts, not only new ones, and the last month is partial when the data ends before its last day; both are flagged,
and averages leave the partial month out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from tools.analytics import sales_span
from tools.base import Evidence, ToolResult, ToolSpec
from tools.workspace import Shop, fetch_dicts

HEADLINE_AGES = (1, 3, 6)


class CohortRetentionArgs(BaseModel):
    months: int = Field(12, ge=1, le=36, description="How many of the most recent monthly cohorts to show.")


def _month(d: dt.date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _months_between(a: str, b: str) -> int:
    (ya, ma), (yb, mb) = (map(int, a.split("-")), map(int, b.split("-")))
    return (yb - ya) * 12 + mb - ma


def cohort_retention(shop: Shop, args: CohortRetentionArgs) -> ToolResult:
    """Use for retention / repeat-purchase questions: of the customers who first ordered in a month, what share
    ordered again 1, 2, 3… months later (monthly acquisition cohorts with their sizes)."""
    with shop.connect(read_only=True) as con:
        first, last = sales_span(con)
        cells = fetch_dicts(con, """
            WITH s AS (SELECT DISTINCT customer_id, date_trunc('month', ordered_at)::DATE AS m FROM orders
                       WHERE status = 'ok' AND customer_id IS NOT NULL),
                 f AS (SELECT customer_id, min(m) AS cohort FROM s GROUP BY customer_id)
            SELECT strftime(cohort, '%Y-%m') AS cohort, date_diff('month', cohort, m) AS age,
                   count(*) AS customers
            FROM s JOIN f USING (customer_id) GROUP BY ALL ORDER BY cohort, age""")

    last_month = _month(last)
    partial_month = last_month if (last + dt.timedelta(days=1)).month == last.month else None
    counts: dict[str, dict[int, int]] = {}
    for c in cells:
        counts.setdefault(c["cohort"], {})[c["age"]] = c["customers"]
    shown = sorted(counts)[-args.months:]
    max_age = _months_between(shown[0], last_month)
    columns = [f"m{k}" for k in range(max_age + 1)]
    rows: list[dict[str, Any]] = []
    for cohort in shown:
        size = counts[cohort][0]
        observed = _months_between(cohort, last_month)
        row: dict[str, Any] = {"cohort": cohort, "customers": size}
        for k in range(max_age + 1):
            row[f"m{k}"] = round(100 * counts[cohort].get(k, 0) / size, 1) if k <= observed else None
        rows.append(row)

    # Size-weighted average retention at each age over the shown cohorts whose month k is complete.
    averages: dict[str, float | None] = {}
    for k in range(1, max_age + 1):
        pool = [c for c in shown if k <= _months_between(c, last_month)
                and not (partial_month and _months_between(c, partial_month) == k)]
        size = sum(counts[c][0] for c in pool)
        averages[f"m{k}"] = round(100 * sum(counts[c].get(k, 0) for c in pool) / size, 1) if size else None
    m1 = [(r["m1"], r["cohort"]) for r in rows if r.get("m1") is not None and _month_after(r["cohort"]) !=
          partial_month]
    best = max(m1, key=lambda t: (t[0], t[1])) if m1 else None
    worst = min(m1, key=lambda t: (t[0], t[1])) if m1 else None

    first_month = _month(first)
    notes = []
    if first_month in shown:
        notes.append(f"the {first_month} cohort holds every customer already active when the data starts "
                     f"({first}), not only new ones")
    if partial_month:
        notes.append(f"{partial_month} is partial (data ends {last}), so its retention is understated and left "
                     "out of the averages")
    heads = [f"month {k} {averages[f'm{k}']}%" for k in HEADLINE_AGES if averages.get(f"m{k}") is not None]
    summary = (f"Monthly acquisition cohorts {shown[0]}..{shown[-1]} ({len(shown)} cohorts, "
               f"{sum(r['customers'] for r in rows):,} customers; sizes "
               + ", ".join(f"{r['cohort']} {r['customers']:,}" for r in rows) + "). "
               + (f"Average retention (share of a cohort ordering in that month): {', '.join(heads)}. " if heads
                  else "No cohort is old enough for a retention figure yet. ")
               + (f"Month-1 retention is best for {best[1]} ({best[0]}%) and worst for {worst[1]} ({worst[0]}%). "
                  if best and worst and best != worst else "")
               + ("Note: " + "; ".join(notes) + "." if notes else "")).strip()
    evidence = (Evidence("orders", f"sales (status ok) {first}..{last}, identified customers; cohort = month of "
                                   "first sale; month k = share of the cohort with a sale k calendar months later; "
                                   "averages weighted by cohort size over complete months"),)
    data = {"data_start": first, "data_end": last, "partial_month": partial_month, "columns": columns,
            "cohort_count": len(rows), "customers": sum(r["customers"] for r in rows), "cohorts": rows, "average_retention_pct": averages,
            "best_month1": {"cohort": best[1], "m1": best[0]} if best else None,
            "worst_month1": {"cohort": worst[1], "m1": worst[0]} if worst else None, "notes": notes}
    return ToolResult(summary, data, evidence, kind="cohorts")


def _month_after(cohort: str) -> str:
    y, m = map(int, cohort.split("-"))
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


SPEC = ToolSpec("cohort_retention", CohortRetentionArgs, cohort_retention)
