"""Tool ``plan_promotions``: "what should I promote next week?" — candidates ranked from signals computed in code,
each pick with its score broken down, an expected units range, reasons, risks and evidence.

The scoring itself is :func:`tools.promotion_scoring.score_candidates`, a pure function shared with the replay
benchmark (``benchmarks/planner.py``); this module only gathers its inputs from the shop, as of a cutoff.

Without a trained forecaster the tool still answers, with a momentum estimate of demand, and says so in the
summary and in ``data['missing']``: the forecast is one signal of several, and an operator who has just imported
their orders should get a plan at once rather than an error; the summary tells them how to add the forecast.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tools.analytics import DATE_PATTERN, currency, sales_span
from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.forecast_sales import MODEL_DIRS
from tools.promotion_scoring import (
    SIGNALS,
    WEIGHTS,
    Forecast,
    Inputs,
    ReviewSignal,
    copurchase_reach,
    explain,
    score_candidates,
    top_k,
    week_history,
)
from tools.workspace import Shop, fetch_dicts

RECENT_REVIEW_DAYS = 90
MIN_HISTORY_WEEKS = 8  # momentum reads the last 8 weeks
SIGNAL_WORDS = {
    "forecast": "model forecast",
    "demand": "expected demand",
    "expected_change": "expected change vs own average",
    "momentum": "momentum",
    "seasonality": "same week last year",
    "reach": "co-purchase reach",
    "reviews": "reviews and complaints",
    "stock": "stock cover",
    "margin": "margin",
    "popularity": "long-tail bias",
}


class PlanPromotionsArgs(BaseModel):
    week: str = Field("next", pattern=r"^(next|[0-9]{4}-[0-9]{2}-[0-9]{2})$", description=(
        "'next' for the 7 days after the shop's latest sale, or a past day 'YYYY-MM-DD' to plan the week starting "
        "then with only the data before it (and see what actually sold)."))
    k: int = Field(10, ge=1, le=30, description="How many products to pick.")
    long_tail: bool = Field(False, description="Favour less popular products (bias control: gives slower sellers a "
                                               "chance instead of the usual best sellers).")
    category: str | None = Field(None, description="Only products of this category.")
    exclude: list[str] | None = Field(None, description="Product ids not to pick (already promoted, discontinued).")
    min_weekly_units: float = Field(1.0, ge=0, description="Least units a week (last 4 weeks) for a candidate.")


def _sales(con, cutoff: dt.date) -> pd.DataFrame:
    """Daily units per merchandise product before ``cutoff`` (sales lines, status 'ok')."""
    return con.execute("""
        SELECT o.product_id, CAST(o.ordered_at AS DATE) AS date, sum(o.quantity)::DOUBLE AS units,
               sum(o.quantity * o.unit_price)::DOUBLE AS revenue
        FROM orders o JOIN products p USING (product_id)
        WHERE o.status = 'ok' AND o.quantity > 0 AND p.kind = 'merchandise' AND o.ordered_at < ?
        GROUP BY 1, 2""", [cutoff]).df()


def _purchases(con, cutoff: dt.date) -> pd.DataFrame:
    return con.execute("""
        SELECT DISTINCT o.customer_id, o.product_id, CAST(o.ordered_at AS DATE) AS date
        FROM orders o JOIN products p USING (product_id)
        WHERE o.status = 'ok' AND o.quantity > 0 AND o.customer_id IS NOT NULL AND p.kind = 'merchandise'
          AND o.ordered_at < ?""", [cutoff]).df()


def _reviews(con, cutoff: dt.date) -> tuple[dict[str, ReviewSignal] | None, str]:
    """Review signals of the shop's own products, or None with the reason.

    A review collection counts as this shop's when at least half of its reviewed product ids are products of the
    shop: collections imported from other shops (the demo's) share at most a few ids by chance.
    """
    total = con.execute("SELECT count(*) FROM reviews").fetchall()[0][0]
    if not total:
        return None, "no reviews imported"
    linked = [r[0] for r in con.execute("""
        SELECT r.collection FROM reviews r LEFT JOIN products p ON p.product_id = r.product_id AND
               p.kind = 'merchandise'
        WHERE r.product_id IS NOT NULL GROUP BY 1
        HAVING count(DISTINCT p.product_id) >= 0.5 * count(DISTINCT r.product_id)""").fetchall()]
    if not linked:
        return None, (f"the {total:,} imported reviews are not linked to this shop's products (their product ids "
                      "are not the shop's)")
    rows = con.execute("""
        SELECT product_id, review_id,
               CASE WHEN label IS NOT NULL THEN label = 1 ELSE rating >= 4 END AS positive,
               CASE WHEN label IS NOT NULL THEN label = 0 ELSE rating <= 2 END AS negative,
               created_at
        FROM reviews WHERE collection IN (SELECT unnest(?)) AND product_id IS NOT NULL
          AND (created_at IS NULL OR created_at < ?)""", [linked, cutoff]).fetchall()
    recent_from = dt.datetime.combine(cutoff - dt.timedelta(days=RECENT_REVIEW_DAYS), dt.time())
    acc: dict[str, dict[str, Any]] = {}
    for pid, rid, pos, neg, created in rows:
        a = acc.setdefault(pid, {"n": 0, "pos": 0, "neg": 0, "recent": 0, "ids": []})
        a["n"] += 1
        a["pos"] += bool(pos)
        if neg:
            a["neg"] += 1
            a["recent"] += bool(created is not None and created >= recent_from)
            a["ids"].append(rid)
    signals = {p: ReviewSignal(a["n"], a["pos"], a["neg"], a["recent"], tuple(a["ids"][:3])) for p, a in acc.items()}
    return signals, f"collections {', '.join(linked)}"


def _forecasts(shop: Shop, sales: pd.DataFrame, cutoff: dt.date, product_ids: list[str]
               ) -> tuple[dict[str, Forecast] | None, str, str]:
    """Weekly-model forecasts of the Monday week that overlaps the planned week most, or None with the reason.

    Returns:
        (forecasts, note, evidence detail).
    """
    if not (shop.models_dir / MODEL_DIRS["week"] / "forecaster.pt").exists():
        return None, ("no weekly forecaster is trained: expected units are a momentum estimate (run `shopkeeper "
                      "train forecaster` to use the model)"), ""
    from tools.forecast_sales import load_forecaster

    model = load_forecaster(shop, "week")
    last_period = model.panel.periods[-1].date()
    # A forecaster trained before newer orders were imported forecasts from the newer history (no retraining).
    if last_period + dt.timedelta(days=13) < cutoff:
        model = model.with_history(sales)
        last_period = model.panel.periods[-1].date()
    # The planned 7 days overlap two Monday weeks; the one holding at least 4 of them stands for the plan.
    monday = cutoff - dt.timedelta(days=cutoff.weekday())
    target = monday + dt.timedelta(days=7) if cutoff.weekday() >= 4 else monday
    h = (target - last_period).days // 7
    if not 1 <= h <= model.config.horizon:
        return None, (f"the weekly forecaster's history ends {last_period} and forecasts {model.config.horizon} weeks "
                      "ahead, which does not reach the planned week: expected units are a momentum estimate"), ""
    keys = [f"product:{p}" for p in product_ids
            if f"product:{p}" in model.panel.index
            and int((model.panel.values[model.panel.index[f"product:{p}"]] > 0).sum()) >= model.config.min_nonzero]
    out: dict[str, Forecast] = {}
    if keys:
        q = model.predict_keys(keys, h)[:, h - 1, :]  # (n, Q) quantiles of the target week
        levels = list(model.config.quantiles)
        lo, mid, hi = levels.index(min(levels)), levels.index(0.5), levels.index(max(levels))
        for key, row in zip(keys, q):
            out[key.split(":", 1)[1]] = Forecast(float(row[lo]), float(row[mid]), float(row[hi]),
                                                 "weekly model forecast")
    bt = (model.metrics.get("backtest") or {}).get("levels", {}).get("product", {})
    ratio = bt.get("mase_ratio_vs_seasonal_naive")
    detail = (f"weekly forecaster trained {model.trained_at[:10]}, week of {target} (Monday weeks, {h} ahead of "
              f"its last week {last_period})" + (f"; product backtest MASE {ratio:.2f}x seasonal-naive's"
                                                 if ratio else ""))
    return out, "", detail


def _round_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, v in row.items():
        if isinstance(v, (float, np.floating)):
            v = None if math.isnan(v) else round(float(v), 1 if not key.endswith(("contrib", "score")) and key not in
                                                 SIGNALS else 3)
        elif isinstance(v, np.integer):
            v = int(v)
        out[key] = v
    return out


def plan_promotions(shop: Shop, args: PlanPromotionsArgs) -> ToolResult:
    """Use for "what should I promote next week?": products ranked for a promotion from forecast demand, momentum,
    the same week last year, co-purchase reach, reviews, and stock/margin when known; each with reasons and risks."""
    with shop.connect(read_only=True) as con:
        first, last = sales_span(con)
        earliest = first + dt.timedelta(days=7 * MIN_HISTORY_WEEKS)
        week = args.week
        if week != "next":
            try:
                asked = dt.date.fromisoformat(week)
            except ValueError as err:
                raise ToolInputError(f"Bad date {week!r}: {err}. Write it as YYYY-MM-DD or use 'next'.") from err
            # A day just after the data ends is the week to come ("next week" written as a date): the same plan.
            if last < asked <= last + dt.timedelta(days=14):
                week = "next"
        if week == "next":
            cutoff = last + dt.timedelta(days=1)
            if cutoff < earliest:
                raise ToolInputError(f"Planning needs {MIN_HISTORY_WEEKS} weeks of sales history (momentum compares "
                                     f"the last 2 weeks with the 6 before); this shop's data covers {first}..{last}. "
                                     "Import more orders, or use sales_overview for what sold so far.")
        else:
            cutoff = asked
            if not earliest <= cutoff <= last:
                raise ToolInputError(f"Plan a week starting between {earliest} and {last} ({MIN_HISTORY_WEEKS} weeks "
                                     "of history are needed), or use week='next'.")
        symbol = currency(con)
        sales = _sales(con, cutoff)
        purchases = _purchases(con, cutoff)
        reviews, review_note = _reviews(con, cutoff)
        prod = fetch_dicts(con, "SELECT product_id, title, category, price, cost, stock FROM products WHERE kind = "
                                "'merchandise'")
        actual = None
        if cutoff <= last:
            actual = dict(con.execute("""
                SELECT product_id, sum(quantity)::DOUBLE FROM orders WHERE status = 'ok' AND quantity > 0
                AND ordered_at >= ? AND ordered_at < ? GROUP BY 1""",
                                      [cutoff, cutoff + dt.timedelta(days=7)]).fetchall())
    if sales.empty:
        raise ToolInputError("No merchandise sales before that week to plan from.")
    titles = {p["product_id"]: p["title"] or "" for p in prod}
    stock = {p["product_id"]: float(p["stock"]) for p in prod if p["stock"] is not None}
    cost = {p["product_id"]: float(p["cost"]) for p in prod if p["cost"] is not None}
    recent = sales[pd.to_datetime(sales["date"]) >= pd.Timestamp(cutoff - dt.timedelta(days=84))]
    sums = recent.groupby("product_id")[["revenue", "units"]].sum()
    price = (sums["revenue"] / sums["units"]).to_dict()
    allowed = None
    # Small models fill optional filters with "all": that means no filter, not a category named "all".
    if args.category and args.category.strip().lower() not in ("all", "any", "none", "*", "全部", "所有"):
        allowed = {p["product_id"] for p in prod if (p["category"] or "").lower() == args.category.lower()}
        if not allowed:
            cats = sorted({p["category"] for p in prod if p["category"]})[:20]
            raise ToolInputError(f"No products in category {args.category!r}. Categories: "
                                 f"{', '.join(cats) if cats else 'none (this shop has no product categories)'}.")

    hist = week_history(sales, cutoff, first_day=first)
    # A first pass without the optional signals gives the candidate list the costlier signals are computed for.
    pool, _ = score_candidates(hist, min_weekly_units=args.min_weekly_units)
    if pool.empty:
        raise ToolInputError("No product sold in at least 2 of the last 4 weeks with the minimum weekly units; "
                             "lower min_weekly_units.")
    candidates = pool["product_id"].tolist()
    notes: dict[str, str] = {}
    forecasts, detail = None, ""
    if week == "next":
        forecasts, notes["forecast"], detail = _forecasts(shop, sales, cutoff, candidates)
        if forecasts == {}:
            notes["forecast"] = ("no candidate has enough selling weeks for the weekly model: expected units are a "
                                 "momentum estimate")
    else:
        notes["forecast"] = ("a past week is planned with a momentum estimate: the trained forecaster has seen the "
                             "weeks after it")
    reach = copurchase_reach(purchases, cutoff, candidates) if not purchases.empty else None
    if reach is None:
        notes["reach"] = "no purchases by identified customers"
    if reviews is None:
        notes["reviews"] = review_note
    if not stock:
        notes["stock"] = "the products table has no stock figures"
    if not cost:
        notes["margin"] = "the products table has no unit costs"
    notes["seasonality"] = (f"the data (from {first}) does not cover the same week a year before this one "
                            "and a week before it")
    inputs = Inputs(forecasts=forecasts or None, reach=reach, reviews=reviews, stock=stock or None,
                    cost=cost or None, price=price)
    table, missing = score_candidates(hist, inputs, long_tail=args.long_tail,
                                      min_weekly_units=args.min_weekly_units)
    chosen = top_k(table, args.k, set(args.exclude or ()), allowed)

    picks = []
    for rank, row in enumerate(chosen.to_dict("records"), start=1):
        reasons, risks = explain(row, inputs, titles)
        r = _round_row(row)
        signals = {s: {"value": r[s], "weight": WEIGHTS[s], "contribution": r[f"{s}_contrib"]}
                   for s in SIGNALS if s in r}
        pick = {"rank": rank, "product_id": r["product_id"], "title": titles.get(r["product_id"], ""),
                "score": r["score"], **{f"{s}_contrib": r[f"{s}_contrib"] for s in signals},
                "expected_units_p10": r["expected_p10"], "expected_units_p50": r["expected_p50"],
                "expected_units_p90": r["expected_p90"], "forecast_method": r["forecast_method"],
                "trailing_avg_units": r["trailing_avg"], "last_week_units": r["last_week"],
                "popularity_pct": r["popularity_pct"], "signals": signals, "reasons": reasons, "risks": risks,
                "evidence": _pick_evidence(r, hist, forecasts, reach, reviews)}
        for extra in ("reach_customers", "reviews_n", "reviews_negative", "open_complaints", "stock",
                      "stock_cover_weeks", "margin_pct", "last_year_week"):
            if extra in r:  # every pick has the same keys, so the chat's table has the same columns
                pick[extra] = r[extra]
        if actual is not None:
            pick["actual_units"] = actual.get(r["product_id"], 0.0)
        picks.append(pick)

    bundles = []
    if reach:
        for p in picks[:5]:
            rc = reach.get(p["product_id"])
            if rc and rc.partners:
                partner, shared = rc.partners[0]
                bundles.append({"product_id": p["product_id"], "title": p["title"], "with_product_id": partner,
                                "with_title": titles.get(partner, ""), "customers_together": shared})
    share_top = sum(1 for p in picks if p["popularity_pct"] >= 90)
    units12 = hist.units[:, -12:].sum()
    pick_units = sum(hist.units[hist.product_ids.index(p["product_id"]), -12:].sum() for p in picks)
    popularity = {"median_percentile": float(np.median([p["popularity_pct"] for p in picks])) if picks else None,
                  "picks_in_top_10pct": share_top,
                  "picks_outside_top_10pct": len(picks) - share_top,
                  "share_of_last_12_weeks_units_pct": round(float(100 * pick_units / units12), 1) if units12 else None}
    missing_text = {m: notes.get(m, "not available") for m in missing}
    week_end = cutoff + dt.timedelta(days=6)
    period = {"start": cutoff, "end": week_end, "history_until": cutoff - dt.timedelta(days=1)}
    summary = _summary(args, picks, bundles, popularity, missing_text, period, len(table), symbol, actual)
    evidence = [Evidence("orders", f"merchandise sales (status 'ok') before {cutoff}; weeks = 7-day blocks ending "
                                   f"{cutoff - dt.timedelta(days=1)}; trailing average = last 4 weeks, momentum = "
                                   "last 2 weeks vs the 6 before")]
    if forecasts:
        evidence.append(Evidence("model:forecaster", detail))
    if reach:
        evidence.append(Evidence("orders:co-purchase", f"customers who bought both, purchases before {cutoff}; reach "
                                                       "= buyers of the top 5 partners in the last 90 days who "
                                                       "never bought the product"))
    if reviews:
        evidence.append(Evidence("reviews", f"{review_note}; negative = label 0 or rating 1-2; open complaints = "
                                            f"negative in the last {RECENT_REVIEW_DAYS} days"))
    if stock or cost:
        evidence.append(Evidence("products", "stock and unit cost columns; price = average selling price, last 12 "
                                             "weeks"))
    if actual is not None:
        evidence.append(Evidence("orders", f"actual units {cutoff}..{min(week_end, last)} (after the plan's cutoff)"))
    data = {"week": period, "k": args.k, "long_tail": args.long_tail, "candidates": len(table), "picks": picks,
            "bundles": bundles, "popularity": popularity, "missing": missing_text,
            "weights": {s: WEIGHTS[s] for s in SIGNALS}, "currency_symbol": symbol,
            "signals_used": [s for s in SIGNALS if s not in missing and (s != "popularity" or args.long_tail)]}
    return ToolResult(summary, data, tuple(evidence), kind="table")


def _pick_evidence(r: dict[str, Any], hist, forecasts, reach, reviews) -> list[str]:
    """Which results and periods one pick's figures come from."""
    start4, _ = hist.block(4)
    _, end1 = hist.block(1)
    ev = [f"orders: weekly units {start4}..{end1} (trailing average, momentum, expected units)"]
    if forecasts and r["product_id"] in forecasts:
        ev.append("model:forecaster: P10/P50/P90 of the planned week")
    if reach and r["product_id"] in reach:
        ev.append(f"orders:co-purchase: shared customers before {hist.cutoff}")
    if reviews and r["product_id"] in reviews:
        ids = reviews[r["product_id"]].negative_ids
        ev.append("reviews: negative " + ", ".join(ids) if ids else "reviews: none negative")
    if r.get("last_year_week") is not None:
        ev.append(f"orders: same week last year {hist.block(52)[0]}..{hist.block(52)[1]}")
    return ev


def _summary(args: PlanPromotionsArgs, picks: list[dict], bundles: list[dict], popularity: dict,
             missing: dict[str, str], period: dict, n_candidates: int, symbol: str, actual: dict | None) -> str:
    lines = [f"Promotion plan for {period['start']}..{period['end']} (data up to {period['history_until']}): top "
             f"{len(picks)} of {n_candidates:,} candidates{' (long-tail bias on)' if args.long_tail else ''}."]
    for p in picks:
        top = sorted(p["signals"].items(), key=lambda kv: -abs(kv[1]["contribution"]))[:3]
        parts = ", ".join(f"{SIGNAL_WORDS[s]} {v['contribution']:+.2f}" for s, v in top)
        line = (f"{p['rank']}. {p['product_id']} {p['title']}: score {p['score']:.2f} ({parts}); expects "
                f"{p['expected_units_p10']:,.0f}-{p['expected_units_p90']:,.0f} units (P50 "
                f"{p['expected_units_p50']:,.0f}) vs {p['trailing_avg_units']:,.0f} a week lately")
        if p["risks"]:
            line += f"; risk: {p['risks'][0]}"
        if actual is not None:
            line += f"; actually sold {p['actual_units']:,.0f}"
        lines.append(line.replace("  ", " ") + ".")
    if bundles:
        lines.append("Bundle ideas: " + "; ".join(f"{b['product_id']} with {b['with_product_id']} "
                                                  f"{b['with_title']} ({b['customers_together']:,} customers bought "
                                                  "both)" for b in bundles[:3]) + ".")
    if popularity["median_percentile"] is not None:
        lines.append(f"Popularity: median percentile of the picks {popularity['median_percentile']:.1f}; "
                     f"{popularity['picks_outside_top_10pct']} of {len(picks)} are outside the top 10% of sellers.")
    if missing:
        lines.append("Missing signals (not used): " + "; ".join(f"{SIGNAL_WORDS[m]}: {why}"
                                                               for m, why in missing.items()) + ".")
    return "\n".join(lines)


SPEC = ToolSpec("plan_promotions", PlanPromotionsArgs, plan_promotions)
