"""Tool ``churn_risk``: which customers are slipping away, with a model validated on a time split.

The model is a logistic regression on seven RFM features (:data:`FEATURES`) that predicts "no order in the next
90 days". It is chosen over a BG/NBD-style P(alive) because it needs no distributional assumptions, fits in
milliseconds with Newton's method in numpy, and its validation is direct: the label is exactly what the operator
cares about.

Time split, with ``last`` the shop's latest sale day and H = 90 days:

* train: customers as of ``last - 2H``, labelled by whether they ordered in the H days after;
* validate: the same model scores customers as of ``last - H``; labels are the last H days of data. Reported:
  ROC AUC and precision@k (k = 10% of customers) against a recency-only baseline (days since the last order);
* deploy: the model is refitted on the validation window (the most recent labels) and scores customers as of
  ``last``.

The fitted model and its validation figures are cached in ``models/churn/model.json``, keyed by a fingerprint of
the order data, so only the first call after an import pays for fitting.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools.analytics import currency, fingerprint, money, read_cache, sales_span, write_cache
from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.customer_segments import BY_KEY, SegmentKey, customer_rfm
from tools.workspace import Shop

HORIZON_DAYS = 90
FORMAT_VERSION = 1
FEATURES = ("log_recency", "log_order_days", "log_monetary", "log_tenure", "log_orders_90d", "single_order",
            "log_overdue")
L2 = 1.0  # ridge penalty on standardised coefficients: keeps the fit stable on small shops
MIN_CUSTOMERS = 30


class ChurnRiskArgs(BaseModel):
    top_k: int = Field(20, ge=1, le=200, description="How many customers to return.")
    segment: SegmentKey | None = Field(None, description="Leave null for all customers; set only when the "
                                                         "operator names an RFM segment (see customer_segments).")
    rank_by: Literal["value_at_risk", "probability"] = Field(
        "value_at_risk", description="value_at_risk: P(churn) x past revenue (who is worth winning back); "
                                     "probability: P(churn) alone.")


def _features(rows: list[dict[str, Any]]):
    """The feature matrix of :func:`customer_rfm` rows, shape (N, len(FEATURES))."""
    import numpy as np

    rec = np.array([r["recency_days"] for r in rows], dtype=float)
    days = np.array([r["order_days"] for r in rows], dtype=float)
    mon = np.array([max(r["monetary"], 0.0) for r in rows], dtype=float)
    tenure = np.array([r["recency_days"] + (r["last_order"] - r["first_order"]).days for r in rows], dtype=float)
    recent = np.array([r["orders_90d"] for r in rows], dtype=float)
    gap = _typical_gap(rows)
    single = (days <= 1).astype(float)
    overdue = np.where(single > 0, 0.0, np.log1p(rec / np.maximum(np.nan_to_num(gap, nan=1.0), 1.0)))
    return np.column_stack([np.log1p(rec), np.log1p(days), np.log1p(mon), np.log1p(tenure), np.log1p(recent),
                            single, overdue])


def _typical_gap(rows: list[dict[str, Any]]):
    """Mean days between order days (NaN for one-day customers)."""
    import numpy as np

    return np.array([(r["last_order"] - r["first_order"]).days / (r["order_days"] - 1) if r["order_days"] > 1
                     else np.nan for r in rows], dtype=float)


def _labels(con, customers: list[str], cutoff: dt.date):
    """1 where the customer placed no order in the HORIZON_DAYS after ``cutoff`` (churned), else 0."""
    import numpy as np

    start = cutoff + dt.timedelta(days=1)
    active = {r[0] for r in con.execute(
        "SELECT DISTINCT customer_id FROM orders WHERE status = 'ok' AND customer_id IS NOT NULL "
        "AND ordered_at >= ? AND ordered_at < ?", [start, start + dt.timedelta(days=HORIZON_DAYS)]).fetchall()}
    return np.array([0.0 if c in active else 1.0 for c in customers])


def fit_logistic(x, y, l2: float = L2, iterations: int = 50) -> dict[str, list[float]]:
    """Ridge logistic regression by Newton's method on standardised features.

    Args:
        x: features, shape (N, D).
        y: labels 0/1, shape (N,).
        l2: penalty on the coefficients (not the intercept).
        iterations: Newton steps at most (it converges in well under 20).

    Returns:
        ``{"mean", "std", "coef"}`` with ``coef[0]`` the intercept; plain lists, so the model is JSON.
    """
    import numpy as np

    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant feature (e.g. no one-order customers) carries no weight
    z = np.column_stack([np.ones(len(x)), (x - mean) / std])  # (N, D+1)
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"mean": mean.tolist(), "std": std.tolist(), "coef": w.tolist()}


def predict(model: dict[str, list[float]], x):
    """P(churn) for features ``x`` (N, D)."""
    import numpy as np

    z = (x - np.array(model["mean"])) / np.array(model["std"])
    coef = np.array(model["coef"])
    return 1 / (1 + np.exp(-(coef[0] + z @ coef[1:])))


def auc(score, y) -> float:
    """ROC AUC of ``score`` for positives ``y == 1`` (Mann-Whitney, ties counted half)."""
    import numpy as np

    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    yy = np.asarray(y)[order]
    pos, neg = yy.sum(), len(yy) - yy.sum()
    if pos == 0 or neg == 0:
        return float("nan")
    return float((ranks[yy == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def precision_at_k(score, y, k: int) -> float:
    """Share of churners among the ``k`` highest scores (ties broken by position, stably)."""
    import numpy as np

    top = np.argsort(-np.asarray(score), kind="mergesort")[:k]
    return float(np.asarray(y)[top].mean())


def _fit(con, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Fit, validate and refit the model (see the module docstring)."""
    import numpy as np

    train_at = last - dt.timedelta(days=2 * HORIZON_DAYS)
    valid_at = last - dt.timedelta(days=HORIZON_DAYS)
    if train_at - first < dt.timedelta(days=30):
        raise ToolInputError(
            f"Churn risk needs at least {2 * HORIZON_DAYS + 30} days of order history to train and validate a "
            f"model (this shop has {first}..{last}). Use customer_segments for a rule-based view instead.")
    train_rows, valid_rows = customer_rfm(con, train_at), customer_rfm(con, valid_at)
    if len(train_rows) < MIN_CUSTOMERS:
        raise ToolInputError(f"Churn risk needs at least {MIN_CUSTOMERS} customers with orders before {train_at} "
                             f"(found {len(train_rows)}). Use customer_segments instead.")
    y_train = _labels(con, [r["customer_id"] for r in train_rows], train_at)
    y_valid = _labels(con, [r["customer_id"] for r in valid_rows], valid_at)
    for name, y in (("training", y_train), ("validation", y_valid)):
        if y.min() == y.max():
            raise ToolInputError(f"Every customer in the {name} window {'churned' if y[0] else 'returned'}, so "
                                 "no churn model can be learned. Use customer_segments instead.")
    x_train, x_valid = _features(train_rows), _features(valid_rows)
    model = fit_logistic(x_train, y_train)
    p_valid = predict(model, x_valid)
    baseline = np.array([r["recency_days"] for r in valid_rows], dtype=float)
    k = max(1, round(0.1 * len(valid_rows)))
    validation = {
        "train_as_of": train_at, "valid_as_of": valid_at, "horizon_days": HORIZON_DAYS,
        "train_customers": len(train_rows), "valid_customers": len(valid_rows),
        "valid_churn_rate_pct": round(100 * float(y_valid.mean()), 1),
        "auc": round(auc(p_valid, y_valid), 3), "baseline_auc": round(auc(baseline, y_valid), 3),
        "k": k, "precision_at_k": round(precision_at_k(p_valid, y_valid, k), 3),
        "baseline_precision_at_k": round(precision_at_k(baseline, y_valid, k), 3),
        # the mean predicted rate vs the observed one: a calibration check across the time shift
        "valid_mean_p_churn_pct": round(100 * float(p_valid.mean()), 1)}
    deployed = fit_logistic(x_valid, y_valid)
    return {"format_version": FORMAT_VERSION, "features": list(FEATURES), "model": deployed,
            "validation": {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in validation.items()},
            "fitted_on": f"customers as of {valid_at}, labels {valid_at + dt.timedelta(days=1)}..{last}"}


def load_or_fit(shop: Shop, con, first: dt.date, last: dt.date) -> tuple[dict[str, Any], bool]:
    """The cached model for the shop's current data, or a new fit (then cached). Returns (doc, from_cache)."""
    path = shop.models_dir / "churn" / "model.json"
    key = f"v{FORMAT_VERSION};{fingerprint(con)}"
    doc = read_cache(path, key)
    if doc is not None:
        return doc, True
    doc = _fit(con, first, last) | {"key": key, "trained_at": dt.datetime.now().isoformat(timespec="seconds")}
    write_cache(path, doc)
    return doc, False


def _days(n: float) -> str:
    return f"{n:.0f} day" if round(n) == 1 else f"{n:.0f} days"


def _reason(row: dict[str, Any], gap: float) -> str:
    days = row["recency_days"]
    if row["order_days"] <= 1:
        return f"no order for {_days(days)}; ordered only once"
    if row["order_days"] == 2:  # one interval is no rhythm: state it as it is
        return f"no order for {_days(days)}; ordered on 2 days, {_days(gap)} apart"
    text = f"no order for {_days(days)}; used to order every {_days(gap)}"
    return text + (f" ({round(days / gap, 1)}x the usual gap)" if gap >= 1 and days > gap else "")


def churn_risk(shop: Shop, args: ChurnRiskArgs) -> ToolResult:
    """Use for "which customers are slipping away / likely to churn / worth winning back": customers most at risk
    of not ordering in the next 90 days, with their past revenue, days since last order, P(churn) and a reason."""
    with shop.connect(read_only=True) as con:
        first, last = sales_span(con)
        symbol = currency(con)
        doc, cached = load_or_fit(shop, con, first, last)
        rows = customer_rfm(con, last)
    p = predict(doc["model"], _features(rows))
    gaps = _typical_gap(rows)
    candidates = [i for i, r in enumerate(rows) if args.segment is None or r["segment"] == args.segment]
    score = (lambda i: p[i] * max(rows[i]["monetary"], 0.0)) if args.rank_by == "value_at_risk" else (lambda i: p[i])
    # Customers whose returns cancel out their purchases have nothing to win back: scored, never listed.
    listable = [i for i in candidates if rows[i]["monetary"] > 0]
    ranked = sorted(listable, key=lambda i: (-score(i), rows[i]["customer_id"]))[:args.top_k]
    customers = []
    for i in ranked:
        r, gap = rows[i], gaps[i]
        customers.append({
            "customer_id": r["customer_id"], "p_churn": round(float(p[i]), 3),
            "revenue": r["monetary"], "value_at_risk": round(float(p[i]) * max(r["monetary"], 0.0), 2),
            "days_since_last_order": r["recency_days"], "last_order": r["last_order"], "orders": r["frequency"],
            "typical_gap_days": None if math.isnan(gap) else round(float(gap)),
            "overdue_ratio": round(r["recency_days"] / gap, 1) if r["order_days"] > 2 and gap >= 1 else None,
            "segment": r["segment"], "segment_zh": BY_KEY[r["segment"]].name_zh,
            "reason": _reason(r, gap)})
    v = doc["validation"]
    pool = [p[i] for i in candidates]
    expected = round(float(sum(pool)))
    scope = f"{args.segment} customers" if args.segment else "customers"
    # The customers come first: they answer "who is slipping away?"; the counts follow as context.
    lines = [f"Customers most at risk of not ordering in the next {HORIZON_DAYS} days (as of {last}), top "
             f"{len(customers)} by {args.rank_by.replace('_', ' ')}:"]
    lines += [f"{i}. customer {c['customer_id']}: P(churn) {c['p_churn']}, revenue {money(c['revenue'], symbol)}, "
              f"{c['reason']}." for i, c in enumerate(customers[:10], 1)]
    lines.append(f"Model check on a time split (trained as of {v['train_as_of']}, validated as of "
                 f"{v['valid_as_of']} on {v['valid_customers']:,} customers): AUC {v['auc']} vs "
                 f"{v['baseline_auc']} for days-since-last-order alone; precision@{v['k']} {v['precision_at_k']} vs "
                 f"{v['baseline_precision_at_k']}.")
    if v["auc"] <= v["baseline_auc"]:
        lines.append("Note: the model does not beat the recency-only baseline on this shop; treat P(churn) as a "
                     "recency ranking.")
    lines.append(f"Of {len(candidates):,} {scope} scored, about {expected:,} are expected not to order in that time.")
    evidence = (
        Evidence("orders", f"sales (status ok) {first}..{last}, identified customers, revenue net of cancellations"),
        Evidence("model:churn", f"logistic regression on {', '.join(FEATURES)}; {doc['fitted_on']}; "
                                f"validation AUC {v['auc']} (baseline {v['baseline_auc']}), precision@{v['k']} "
                                f"{v['precision_at_k']} (baseline {v['baseline_precision_at_k']}), churn rate "
                                f"{v['valid_churn_rate_pct']}%; {'cached' if cached else 'fitted now'}"))
    data = {"as_of": last, "horizon_days": HORIZON_DAYS, "currency_symbol": symbol, "segment": args.segment,
            "rank_by": args.rank_by, "listed": len(customers), "customers_scored": len(candidates), "expected_churners": expected,
            "customers": customers, "validation": v, "model": {"kind": "logistic regression", "features": FEATURES,
                                                               "fitted_on": doc["fitted_on"], "cached": cached}}
    return ToolResult("\n".join(lines), data, evidence, kind="customers")


SPEC = ToolSpec("churn_risk", ChurnRiskArgs, churn_risk)
