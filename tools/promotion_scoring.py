"""The promotion planner's scoring: a pure function of the sales history up to a cutoff and optional signals.

``plan_promotions`` (the tool) and ``benchmarks/planner.py`` (the week-by-week replay) both call
:func:`score_candidates`, so the benchmark measures the code the operator runs. Nothing here reads the shop: the
callers compute the inputs with an as-of cutoff, which is what keeps the replay free of leakage.

Weeks are 7-day blocks ending at the cutoff (block 0 is the week just before it), so "last week" always means the
last seven days of data, whatever weekday the data ends on.

Signals, each mapped onto -1..1 and multiplied by its weight (:data:`WEIGHTS`); a signal the inputs lack is
listed in ``missing`` and contributes nothing:

* ``demand``: expected units in the planned week (a forecast's P50 when given, else a momentum estimate), as a
  percentile among the candidates: a promotion on something that sells moves more units.
* ``expected_change``: that expectation against the product's own trailing average (log2 ratio, clipped), times
  the share of the last 12 weeks the product sold in: it is about to rise, and not by the luck of one order.
* ``momentum``: units per week over the last 2 weeks against the 6 before (log2 ratio, clipped).
* ``seasonality``: how the product moved in the same week a year earlier against the (up to 4) weeks before it
  (log2 ratio, clipped); missing where the history does not reach back a year.
* ``reach``: customers who recently bought the product's bought-together partners but never the product, as a
  percentile among the candidates: who a promotion could pull in.
* ``reviews``: positive minus negative share of the product's reviews, shrunk towards 0 for few reviews; open
  complaints (negative reviews in the last 90 days) push it down.
* ``stock``: 0 when stock covers the P90 of the planned week, down to -1 when nothing is in stock.
* ``margin``: unit margin share against the candidates' median (0.25 apart = 1).
* ``popularity`` (only with ``long_tail``): minus the popularity percentile, which favours less popular products.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Weights of the signals. Set from what each signal means for a promotion (stock-outs veto), then adjusted on a
#: validation window that ends before the replayed weeks (``benchmarks/planner.py --window validate``, weeks
#: 2011-06-25..2011-09-16 of the demo): chasing the last two weeks' momentum and the biggest sellers picked products
#: that fell back the next week, so momentum and demand weigh less than the expected change against the product's
#: own average. Co-purchase reach also lowered precision there (0.59 without it, 0.52 at 0.5), but a promotion's
#: pull through bought-together items is what the replay cannot see (nothing was promoted), so it keeps a small
#: weight. The replayed weeks were not looked at to set these.
WEIGHTS: dict[str, float] = {
    "demand": 0.5,
    "expected_change": 1.0,
    "momentum": 0.25,
    "seasonality": 0.5,
    "reach": 0.25,
    "reviews": 1.0,
    "stock": 3.0,
    "margin": 0.5,
    "popularity": 1.5,
}
SIGNALS = tuple(WEIGHTS)
HISTORY_WEEKS = 60  # enough for the same week last year (52) plus the 4 weeks before it
TRAILING_WEEKS = 4  # the product's own trailing average, the base of "expected change" and of the replay's lift
RECENT_WEEKS, PREVIOUS_WEEKS = 2, 6  # momentum: the last 2 weeks against the 6 before
RANGE_WEEKS = 12  # the momentum estimate's P10-P90 come from this many weeks of the product's own dispersion


@dataclass(frozen=True)
class WeekHistory:
    """Units per product in 7-day blocks ending at ``cutoff``.

    Attributes:
        product_ids: Row labels.
        units: (P, W) units, column 0 the oldest block, column W-1 the week just before ``cutoff``.
        cutoff: First day after the history (the first day of the planned week).
        covered: (W,) whether the shop's data covers each block (False before the first sale).
    """

    product_ids: list[str]
    units: np.ndarray
    cutoff: dt.date
    covered: np.ndarray

    def block(self, weeks_ago: int) -> tuple[dt.date, dt.date]:
        """First and last day of the block ``weeks_ago`` weeks before the cutoff (1 = last week)."""
        start = self.cutoff - dt.timedelta(days=7 * weeks_ago)
        return start, start + dt.timedelta(days=6)


def week_history(sales: pd.DataFrame, cutoff: dt.date, first_day: dt.date | None = None,
                 n_weeks: int = HISTORY_WEEKS) -> WeekHistory:
    """Weekly units per product from a daily sales frame, using only days before ``cutoff``.

    Args:
        sales: Columns product_id, date, units (merchandise sales; any dates, later ones are ignored).
        cutoff: First day of the planned week; nothing on or after it is read.
        first_day: The shop's first day of data; blocks starting before it are marked not covered. Defaults to
            the first date in ``sales``.
        n_weeks: Blocks to keep.

    Returns:
        The history.
    """
    day = pd.to_datetime(sales["date"]).to_numpy(dtype="datetime64[D]")
    cut = np.datetime64(cutoff, "D")
    start = cut - np.timedelta64(7 * n_weeks, "D")
    keep = (day < cut) & (day >= start)
    col = ((day[keep] - start).astype(np.int64)) // 7
    # factorize hashes; np.unique would sort hundreds of thousands of strings
    rows, pids = pd.factorize(sales["product_id"].astype(str).to_numpy()[keep], sort=True)
    units = np.zeros((len(pids), n_weeks))
    np.add.at(units, (rows, col), sales["units"].to_numpy(dtype=float)[keep])
    first = np.datetime64(first_day, "D") if first_day is not None else (day.min() if len(day) else cut)
    starts = start + np.arange(n_weeks) * np.timedelta64(7, "D")
    return WeekHistory([str(p) for p in pids], units, cutoff, starts >= first)


@dataclass(frozen=True)
class Forecast:
    """Units expected in the planned week."""

    p10: float
    p50: float
    p90: float
    method: str


@dataclass(frozen=True)
class Reach:
    """Customers a promotion could reach through bought-together items."""

    customers: int  # recent buyers of the partners who never bought the product
    partners: tuple[tuple[str, int], ...]  # (partner id, customers who bought both), strongest first


@dataclass(frozen=True)
class ReviewSignal:
    """The product's reviews up to the cutoff."""

    n: int
    positive: int
    negative: int
    recent_negative: int  # negative reviews in the last 90 days: open complaints
    negative_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inputs:
    """Everything the scoring reads besides the weekly history. ``None`` means the shop lacks the signal."""

    forecasts: dict[str, Forecast] | None = None
    reach: dict[str, Reach] | None = None
    reviews: dict[str, ReviewSignal] | None = None
    stock: dict[str, float] | None = None
    cost: dict[str, float] | None = None
    price: dict[str, float] | None = None
    forecast_method: str = "momentum estimate"
    notes: dict[str, str] = field(default_factory=dict)  # why a signal is missing, in words


def candidate_pool(hist: WeekHistory, min_weekly_units: float = 1.0) -> np.ndarray:
    """Rows worth planning for: sold in at least 2 of the last 4 weeks and averaging ``min_weekly_units``."""
    last = hist.units[:, -TRAILING_WEEKS:]
    return np.flatnonzero(((last > 0).sum(1) >= 2) & (last.mean(1) >= min_weekly_units))


def momentum_estimate(hist: WeekHistory, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P10, P50, P90) of next week's units from the recent past alone.

    P50 is an exponentially weighted mean of the last 12 weeks with a half-life of 6 weeks: it leans on the
    product's 12-week level, because on the validation weeks (see ``benchmarks/planner.py``) weekly units went back
    towards that level more often than they followed the last week or two. P10/P90 are the product's own 10th/90th
    percentile weekly units over the same 12 weeks, scaled to that level.
    """
    u = hist.units[rows]
    w = 0.5 ** (np.arange(RANGE_WEEKS)[::-1] / 6.0)  # oldest..newest
    p50 = (u[:, -RANGE_WEEKS:] * w).sum(1) / w.sum()
    recent = u[:, -RANGE_WEEKS:]
    mean = recent.mean(1)
    scale = np.divide(p50, mean, out=np.ones_like(p50), where=mean > 0)
    p10 = np.quantile(recent, 0.1, axis=1) * scale
    p90 = np.quantile(recent, 0.9, axis=1) * scale
    return np.minimum(p10, p50), p50, np.maximum(p90, p50)


def _pct(values: np.ndarray) -> np.ndarray:
    """Percentile rank in 0..1 (ties share the mean rank)."""
    if len(values) <= 1:
        return np.full(len(values), 0.5)
    return (pd.Series(values).rank(method="average").to_numpy() - 1) / (len(values) - 1)


def _log2_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log2((a + 1) / (b + 1)) clipped to -1..1: +1 is doubling or more; the +1 keeps tiny sellers calm."""
    return np.clip(np.log2((a + 1.0) / (b + 1.0)), -1.0, 1.0)


def score_candidates(hist: WeekHistory, inputs: Inputs | None = None, *, long_tail: bool = False,
                     min_weekly_units: float = 1.0, weights: dict[str, float] | None = None,
                     popularity_of: np.ndarray | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Score every candidate product for the week starting at ``hist.cutoff``.

    Args:
        hist: Weekly units up to the cutoff (:func:`week_history`).
        inputs: Optional forecasts, co-purchase reach, reviews, stock, cost and price.
        long_tail: Favour less popular products (adds the ``popularity`` signal).
        min_weekly_units: Least trailing weekly units of a candidate.
        weights: Override :data:`WEIGHTS` (the replay's validation uses it).
        popularity_of: Optional (P,) units per product used for the popularity percentile; by default the last
            12 weeks of ``hist``.

    Returns:
        (table, missing): one row per candidate, best first, with each signal's value (``<signal>``) and
        contribution (``<signal>_contrib``), the expected units and the raw figures the reasons quote; and the
        signals the inputs lacked.
    """
    inputs = inputs or Inputs()
    wts = {**WEIGHTS, **(weights or {})}
    rows = candidate_pool(hist, min_weekly_units)
    pids = [hist.product_ids[i] for i in rows]
    u = hist.units[rows]
    n = len(rows)
    missing: list[str] = []
    popularity_all = hist.units[:, -RANGE_WEEKS:].sum(1) if popularity_of is None else popularity_of
    # Popularity among every product that sold in the last 12 weeks, not only the candidates.
    sold = popularity_all > 0
    pop_rank = np.zeros(len(popularity_all))
    pop_rank[sold] = _pct(popularity_all[sold])
    t = pd.DataFrame({"product_id": pids})
    t["trailing_avg"] = u[:, -TRAILING_WEEKS:].mean(1)
    t["last_week"] = u[:, -1]
    t["recent_avg"] = u[:, -RECENT_WEEKS:].mean(1)
    t["previous_avg"] = u[:, -(RECENT_WEEKS + PREVIOUS_WEEKS):-RECENT_WEEKS].mean(1)
    t["weeks_sold_of_8"] = (u[:, -8:] > 0).sum(1)
    t["popularity_pct"] = np.round(pop_rank[rows] * 100, 1)

    # Expected units: the forecast where given, the momentum estimate elsewhere (and said per product).
    p10, p50, p90 = momentum_estimate(hist, rows)
    method = np.array(["momentum estimate"] * n, dtype=object)
    if inputs.forecasts:
        for j, pid in enumerate(pids):
            f = inputs.forecasts.get(pid)
            if f is not None:
                p10[j], p50[j], p90[j], method[j] = f.p10, f.p50, f.p90, f.method
    else:
        missing.append("forecast")
    t["expected_p10"], t["expected_p50"], t["expected_p90"], t["forecast_method"] = p10, p50, p90, method
    values: dict[str, np.ndarray] = {
        "demand": 2 * _pct(p50) - 1,
        # An expected rise counts in proportion to how regularly the product sells: one sold in 4 of the last 12
        # weeks gets a third, since its "rise" is mostly the luck of one order.
        "expected_change": _log2_ratio(p50, t["trailing_avg"].to_numpy()) * (u[:, -RANGE_WEEKS:] > 0).mean(1),
        "momentum": _log2_ratio(t["recent_avg"].to_numpy(), t["previous_avg"].to_numpy()),
    }

    # Seasonality: the same week a year earlier (52 blocks before the planned week) vs the 4 before it.
    W = hist.units.shape[1]
    ly = W - 52  # column of the planned week's counterpart a year earlier
    before_cols = [c for c in range(ly - 4, ly) if c >= 0 and hist.covered[c]]
    if ly >= 0 and hist.covered[ly] and before_cols:
        ly_week, ly_before = u[:, ly], u[:, before_cols].mean(1)
        has = (ly_week + ly_before) > 0
        values["seasonality"] = np.where(has, _log2_ratio(ly_week, ly_before), 0.0)
        t["last_year_week"] = np.where(has, ly_week, np.nan)
        t["last_year_before_avg"] = np.where(has, ly_before, np.nan)
    else:
        missing.append("seasonality")

    if inputs.reach is not None:
        reach = np.array([inputs.reach[p].customers if p in inputs.reach else 0 for p in pids], dtype=float)
        values["reach"] = 2 * _pct(reach) - 1
        t["reach_customers"] = reach.astype(int)
    else:
        missing.append("reach")

    if inputs.reviews is not None:
        rv = [inputs.reviews.get(p) for p in pids]
        n_rev = np.array([r.n if r else 0 for r in rv], dtype=float)
        pos = np.array([r.positive if r else 0 for r in rv], dtype=float)
        neg = np.array([r.negative if r else 0 for r in rv], dtype=float)
        open_ = np.array([r.recent_negative if r else 0 for r in rv], dtype=float)
        # Shrink towards 0 with few reviews (5 reviews = half weight); open complaints weigh again.
        net = np.divide(pos - neg, n_rev, out=np.zeros(n), where=n_rev > 0) * n_rev / (n_rev + 5)
        values["reviews"] = np.clip(net - np.minimum(open_ / 5.0, 1.0), -1.0, 1.0)
        t["reviews_n"], t["reviews_negative"], t["open_complaints"] = (n_rev.astype(int), neg.astype(int),
                                                                        open_.astype(int))
        t["reviews_negative_pct"] = np.round(np.divide(neg, n_rev, out=np.zeros(n), where=n_rev > 0) * 100, 1)
    else:
        missing.append("reviews")

    if inputs.stock is not None:
        stock = np.array([inputs.stock.get(p, np.nan) for p in pids], dtype=float)
        have = ~np.isnan(stock)
        short = np.clip((np.nan_to_num(stock) - p90) / np.maximum(p90, 1.0), -1.0, 0.0)
        values["stock"] = np.where(have, short, 0.0)
        t["stock"] = stock
        t["stock_cover_weeks"] = np.where(have & (p50 > 0), np.nan_to_num(stock) / np.maximum(p50, 1e-9), np.nan)
    else:
        missing.append("stock")

    if inputs.cost is not None and inputs.price is not None:
        price = np.array([inputs.price.get(p, np.nan) for p in pids], dtype=float)
        cost = np.array([inputs.cost.get(p, np.nan) for p in pids], dtype=float)
        margin = np.where(price > 0, (price - cost) / np.where(price > 0, price, 1.0), np.nan)
        known = ~np.isnan(margin)
        median = float(np.median(margin[known])) if known.any() else 0.0
        values["margin"] = np.where(known, np.clip((margin - median) / 0.25, -1.0, 1.0), 0.0)
        t["margin_pct"] = np.round(margin * 100, 1)
    else:
        missing.append("margin")

    if long_tail:
        values["popularity"] = -(2 * pop_rank[rows] - 1)

    score = np.zeros(n)
    for name in SIGNALS:
        if name in values:
            t[name] = np.round(values[name], 3)
            t[f"{name}_contrib"] = np.round(wts[name] * values[name], 3)
            score += t[f"{name}_contrib"].to_numpy()
    t["score"] = np.round(score, 3)
    t = t.sort_values(["score", "expected_p50", "product_id"], ascending=[False, False, True], kind="stable")
    return t.reset_index(drop=True), missing


def top_k(table: pd.DataFrame, k: int, exclude: set[str] | None = None,
          allowed: set[str] | None = None) -> pd.DataFrame:
    """The best ``k`` rows of a scored table, leaving out ``exclude`` and keeping only ``allowed`` when given."""
    keep = ~table["product_id"].isin(exclude or set())
    if allowed is not None:
        keep &= table["product_id"].isin(allowed)
    return table.loc[keep].head(k)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 or x == round(x) else f"{x:,.1f}"


def explain(row: dict[str, Any], inputs: Inputs, titles: dict[str, str] | None = None) -> tuple[list[str],
                                                                                               list[str]]:
    """(reasons, risks) of one scored row, in plain words, quoting only the row's own figures."""
    titles = titles or {}
    reasons: list[str] = []
    risks: list[str] = []
    lo, mid, hi = row["expected_p10"], row["expected_p50"], row["expected_p90"]
    reasons.append(f"expected {_fmt(mid)} units next week (P10-P90 {_fmt(lo)}-{_fmt(hi)}, {row['forecast_method']}) "
                   f"vs a trailing average of {_fmt(row['trailing_avg'])} a week")
    if row["momentum"] > 0.1:
        reasons.append(f"selling more lately: {_fmt(row['recent_avg'])} a week over the last 2 weeks vs "
                       f"{_fmt(row['previous_avg'])} in the 6 before")
    elif row["momentum"] < -0.1:
        risks.append(f"slowing: {_fmt(row['recent_avg'])} a week over the last 2 weeks vs "
                     f"{_fmt(row['previous_avg'])} in the 6 before")
    if not math.isnan(row.get("last_year_week", math.nan)):
        word = "rose" if row["seasonality"] > 0.1 else "fell" if row["seasonality"] < -0.1 else "held"
        text = (f"the same week last year it {word}: {_fmt(row['last_year_week'])} units vs "
                f"{_fmt(row['last_year_before_avg'])} a week in the weeks before")
        (risks if word == "fell" else reasons).append(text)
    reach = inputs.reach.get(row["product_id"]) if inputs.reach else None
    if reach and reach.customers and reach.partners:
        partner, shared = reach.partners[0]
        name = f"{partner} {titles.get(partner, '')}".strip()
        reasons.append(f"bought with {name} by {shared:,} customers; {reach.customers:,} recent buyers of its "
                       f"bought-together items have not bought it")
    if row.get("reviews_n"):
        share = row["reviews_negative_pct"]
        text = f"{row['reviews_negative']} of its {row['reviews_n']} reviews are negative ({share:.0f}%)"
        if row.get("open_complaints"):
            risks.append(text + f", {row['open_complaints']} in the last 90 days (open complaints)")
        elif share >= 30:
            risks.append(text)
        else:
            reasons.append(f"well reviewed: {text}")
    if not math.isnan(row.get("stock", math.nan)):
        if row["stock"] < hi:
            risks.append(f"stock {_fmt(row['stock'])} is below the P90 of {_fmt(hi)} units: a promotion may sell "
                         "out")
        else:
            reasons.append(f"stock {_fmt(row['stock'])} covers the P90 of {_fmt(hi)} units")
    if not math.isnan(row.get("margin_pct", math.nan)):
        (reasons if row["margin"] >= 0 else risks).append(f"margin {row['margin_pct']:.1f}% of price")
    if row["weeks_sold_of_8"] < 6:
        risks.append(f"irregular seller: sold in {row['weeks_sold_of_8']} of the last 8 weeks")
    if row["forecast_method"] == "momentum estimate" and inputs.forecasts:
        risks.append("no model forecast for it: expected units are a momentum estimate")
    return reasons, risks


def copurchase_reach(purchases: pd.DataFrame, cutoff: dt.date, product_ids: list[str], recent_days: int = 90,
                     n_partners: int = 5, min_shared: int = 3) -> dict[str, Reach]:
    """Who a promotion could pull in through bought-together items, from purchases before ``cutoff`` only.

    A product's partners are the ``n_partners`` products bought by the most of its customers (at least
    ``min_shared``); its reach is the customers who bought any partner in the ``recent_days`` before the cutoff
    and never bought the product.

    Args:
        purchases: Columns customer_id, product_id, date (completed purchases by known customers).
        cutoff: First day of the planned week; later purchases are ignored.
        product_ids: Products to compute reach for.
        recent_days: How recent a partner purchase must be to count the customer as reachable.
        n_partners: Partners per product.
        min_shared: Least customers a partner must share with the product.

    Returns:
        Reach per product id (products without purchases before the cutoff are left out).
    """
    import scipy.sparse as sp

    day = pd.to_datetime(purchases["date"]).to_numpy(dtype="datetime64[D]")
    cut = np.datetime64(cutoff, "D")
    keep = day < cut
    if not keep.any():
        return {}
    cust = purchases["customer_id"].astype(str).to_numpy()[keep]
    prod = purchases["product_id"].astype(str).to_numpy()[keep]
    recent = day[keep] >= cut - np.timedelta64(recent_days, "D")
    ci, _ = pd.factorize(cust)
    pi, items = pd.factorize(prod)
    shape = (int(ci.max()) + 1, len(items))

    def binary(mask: np.ndarray) -> sp.csc_matrix:
        m = sp.csc_matrix((np.ones(int(mask.sum()), dtype=np.float32), (ci[mask], pi[mask])), shape=shape)
        m.data[:] = 1.0  # repeated purchases count once
        return m

    bought, bought_recent = binary(np.ones(len(ci), dtype=bool)), binary(recent)
    index = {p: i for i, p in enumerate(items)}
    cand = [p for p in product_ids if p in index]
    if not cand:
        return {}
    cols = np.array([index[p] for p in cand])
    xc = bought[:, cols]  # (C, n)
    shared = (xc.T @ bought).toarray()  # (n, P) customers who bought both
    shared[np.arange(len(cols)), cols] = 0
    top = np.argpartition(-shared, n_partners, axis=1)[:, :n_partners]  # (n, n_partners), unordered
    top_counts = np.take_along_axis(shared, top, axis=1)
    order = np.argsort(-top_counts, axis=1, kind="stable")
    top, top_counts = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_counts, order, axis=1)
    ok = top_counts >= min_shared
    link = sp.csc_matrix((np.ones(int(ok.sum()), dtype=np.float32),
                          (top[ok], np.nonzero(ok)[0])), shape=(len(items), len(cols)))
    reachable = (bought_recent @ link).tocsc()  # (C, n): recent buyers of any partner
    reachable.data[:] = 1.0
    already = reachable.multiply(xc)  # of those, customers who bought the product itself
    reach = np.asarray(reachable.sum(0)).ravel() - np.asarray(already.sum(0)).ravel()
    out: dict[str, Reach] = {}
    for j, p in enumerate(cand):
        partners = tuple((str(items[top[j, m]]), int(top_counts[j, m])) for m in range(top.shape[1]) if ok[j, m])
        out[p] = Reach(int(reach[j]), partners)
    return out
