"""Training the shop's models from its workspace: ``shopkeeper train [what]``, ``/train`` in the chat.

Each job reads the shop's tables, fits a model from ``local_models`` and saves it under ``<shop>/models/<name>/``.
A job writes into a temporary folder and swaps it in only when everything is saved, so an interrupted training
(Ctrl-C, kill, crash) leaves the previous model in use and no half-written artifact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_models.common import staged_dir, sweep_staging
from tools.errors import ShopkeeperError
from tools.workspace import Shop

Progress = Callable[[float, str], None]


class TrainingError(ShopkeeperError):
    title = "Training"


class TrainingCancelled(TrainingError):
    """Raised from a progress callback to stop training; nothing is saved and the previous model stays."""


@dataclass(frozen=True)
class TrainReport:
    name: str
    seconds: float
    metrics: dict[str, Any]
    path: str
    summary: str


def daily_sales(shop: Shop):
    """Units, revenue and price (the median order-line unit price, see local_models/forecaster/data.py) per
    merchandise product and day, from sales lines (status 'ok', quantity > 0)."""
    with shop.connect(read_only=True) as con:
        df = con.execute("""
            SELECT o.product_id, CAST(o.ordered_at AS DATE) AS date, sum(o.quantity)::DOUBLE AS units,
                   sum(o.quantity * o.unit_price)::DOUBLE AS revenue,
                   (median(o.unit_price) FILTER (WHERE o.unit_price > 0))::DOUBLE AS price
            FROM orders o JOIN products p USING (product_id)
            WHERE o.status = 'ok' AND o.quantity > 0 AND p.kind = 'merchandise'
            GROUP BY 1, 2 ORDER BY 1, 2""").df()
        categories = dict(con.execute("SELECT product_id, category FROM products WHERE category IS NOT NULL"
                                      ).fetchall())
    import pandas as pd

    df["date"] = pd.to_datetime(df["date"])
    return df, categories


def train_forecaster(shop: Shop, progress: Progress) -> TrainReport:
    """Fit the weekly and the daily sales forecasters (each with its backtest) on the shop's sales."""
    from local_models.forecaster import Config, Forecaster

    t0 = time.perf_counter()
    progress(0.02, "reading sales")
    sales, categories = daily_sales(shop)
    if sales.empty:
        raise TrainingError("The shop has no sales to learn from. Import orders first.")
    shop.models_dir.mkdir(parents=True, exist_ok=True)
    models = {}
    # The weekly model answers most questions; the daily one is fitted second. Each fit runs twice (backtest
    # fit, then the kept fit on all data); epochs reported through `log` move the bar within its half.
    for i, (gran, folder) in enumerate((("W", "forecaster"), ("D", "forecaster_daily"))):
        name = "weekly" if gran == "W" else "daily"
        epochs = {"n": 0}

        def log(line: str, _i: int = i, _name: str = name) -> None:
            epochs["n"] += 1
            progress(min(0.5 * (_i + 1) - 0.02, 0.5 * _i + 0.05 + 0.45 * epochs["n"] / 40),
                     f"{_name} forecaster: {line}")

        progress(0.5 * i + 0.03, f"fitting the {name} forecaster (backtest, then all data)")
        try:
            model = Forecaster.fit(sales, Config.for_granularity(gran), granularity=gran,
                                   category_map=categories or None, log=log)
        except ValueError as err:
            raise TrainingError(f"Cannot train the {name} forecaster on this shop: {err}.") from err
        with staged_dir(shop.models_dir / folder) as tmp:
            model.save(tmp)
        models[name] = model
    progress(1.0, "forecasters saved")
    weekly = models["weekly"]
    product_bt = weekly.metrics.get("backtest", {}).get("levels", {}).get("product", {})
    ratio = product_bt.get("mase_ratio_vs_seasonal_naive")
    summary = (f"weekly product MASE {ratio:.2f}x the naive forecast's on the last "
               f"{weekly.metrics['backtest']['holdout']} weeks" if ratio else "backtest stored with the model")
    metrics = {name: m.metrics.get("backtest", {}) for name, m in models.items()}
    return TrainReport("forecaster", round(time.perf_counter() - t0, 1), metrics,
                       str(shop.models_dir / "forecaster"), summary)


def purchases(shop: Shop):
    """Completed purchases of merchandise by known customers: customer_id, product_id, order_id, timestamp (s)."""
    with shop.connect(read_only=True) as con:
        df = con.execute("""
            SELECT o.customer_id, o.product_id, o.order_id, epoch(o.ordered_at)::BIGINT AS timestamp
            FROM orders o JOIN products p USING (product_id)
            WHERE o.status = 'ok' AND o.quantity > 0 AND o.customer_id IS NOT NULL AND p.kind = 'merchandise'
            ORDER BY o.ordered_at, o.order_id, o.line""").df()
    return df


#: Training budget for the shop's recommender: the best model within it is kept (selection on validation).
RECOMMENDER_BUDGET_S = 300


def train_recommender(shop: Shop, progress: Progress) -> TrainReport:
    """Fit the next-purchase recommender and the bought-together counts on the shop's completed purchases."""
    from local_models.recommender import CoPurchase, Recommender, RecommenderConfig

    t0 = time.perf_counter()
    progress(0.02, "reading purchases")
    df = purchases(shop)
    if df.empty:
        raise TrainingError("The shop has no purchases by known customers to learn from. Import orders with a "
                            "customer id column first.")
    progress(0.05, "counting products bought together")
    copurchase = CoPurchase.fit(df)
    progress(0.1, f"training the recommender (up to {RECOMMENDER_BUDGET_S // 60} minutes)")
    try:
        rec = Recommender.fit(df, RecommenderConfig(train={"max_time_s": RECOMMENDER_BUDGET_S, "patience": 5}))
    except ValueError as err:
        raise TrainingError(f"Cannot train the recommender on this shop: {err}") from err
    progress(0.95, "saving")
    final = shop.models_dir / "recommender"
    with staged_dir(final) as tmp:
        rec.save(tmp)
        copurchase.save(tmp / "copurchase.npz")
    progress(1.0, "recommender saved")
    valid = rec.metrics.get("valid") or {}
    summary = ", ".join(f"validation {k} {v:.4f}" for k, v in valid.items() if isinstance(v, float)) or \
        "trained (no validation split: too few repeat customers)"
    popular = rec.metrics.get("valid_popular") or {}
    if popular:
        summary += "; most-popular list: " + ", ".join(
            f"{k} {popular[k]:.4f}" for k in ("ndcg@10", "coverage@10", "pop_percentile") if k in popular)
    return TrainReport("recommender", round(time.perf_counter() - t0, 1), rec.metrics, str(final), summary)


def train_reviews(shop: Shop, progress: Progress) -> TrainReport:
    """Build or update the review search index and, where the shop has ratings or labels, its sentiment head."""
    import numpy as np

    from local_models.text.sentiment import SentimentModel, macro_f1
    from tools import review_store

    t0 = time.perf_counter()
    if not review_store.review_ids(shop):
        # Not an error: `train all` on a shop without reviews should still train the other models.
        progress(1.0, "no reviews")
        return TrainReport("reviews", 0.0, {"reviews_indexed": 0}, str(review_store.index_path(shop)),
                           "No reviews to index; import some with `shopkeeper import FILE --kind reviews`.")
    index, added = review_store.build_or_update(shop, lambda f, t: progress(0.9 * f, t))
    metrics: dict[str, Any] = {"reviews_indexed": len(index), "added": added, "index_kind": index.kind,
                               "embedder": index.model_id}
    progress(0.92, "training the sentiment head")
    meta = index.meta
    label = meta["label"].astype("float64")
    rating = meta["rating"].astype("float64")
    # A label is the shop's own verdict; a rating of 4-5 is praise and 1-2 a complaint, 3 is mixed and left out.
    y = np.where(label.notna(), label, np.where(rating >= 4, 1.0, np.where(rating <= 2, 0.0, np.nan)))
    known = np.flatnonzero(~np.isnan(y))
    counts = np.bincount(y[known].astype(int), minlength=2) if len(known) else np.zeros(2, int)
    summary = f"{len(index):,} reviews indexed ({added:,} new, {index.kind} index, {index.model_id})."
    if counts.min() >= 50:
        rng = np.random.default_rng(0)
        # Large shops: a sample keeps training to seconds; 20,000 rows are plenty for a head this size.
        chosen = rng.permutation(known)[:20_000]
        n_test = max(1, len(chosen) // 5)
        test, fit_rows = chosen[:n_test], chosen[n_test:]
        X = index.vectors(chosen)
        texts = [review_store.embed_text(t, x) for t, x in zip(meta["title"].iloc[chosen], meta["text"].iloc[chosen])]
        yy = y[chosen].astype(int)
        model = SentimentModel.fit(X[n_test:], yy[n_test:], index.model_id, texts=texts[n_test:])
        pred = (model.predict_proba(X[:n_test], texts[:n_test]) >= 0.5).astype(int)
        model.metrics.update({"test_accuracy": round(float((pred == yy[:n_test]).mean()), 4),
                              "test_macro_f1": round(macro_f1(yy[:n_test], pred), 4), "test_rows": int(n_test),
                              "train_rows_total": int(len(fit_rows))})
        review_store.save_head(shop, model)
        metrics["sentiment"] = model.metrics
        summary += (f" Sentiment head: held-out accuracy {model.metrics['test_accuracy']:.3f}, macro-F1 "
                    f"{model.metrics['test_macro_f1']:.3f} on {n_test:,} reviews.")
    else:
        summary += (" Too few rated or labelled reviews for a shop sentiment head (50 of each kind needed); the "
                    "default head is used.")
    progress(1.0, "reviews done")
    return TrainReport("reviews", round(time.perf_counter() - t0, 1), metrics, str(review_store.index_path(shop)),
                       summary)


def train_analytics(shop: Shop, progress: Progress) -> TrainReport:
    """Fit the churn model and count the shop's basket pairs now, so the first question about either is answered
    from the cache in well under a second instead of paying the fit / the pair count (seconds on the demo)."""
    from tools import basket, churn
    from tools.analytics import sales_span
    from tools.base import ToolInputError
    from tools.workspace import scalar

    t0 = time.perf_counter()
    with shop.connect(read_only=True) as con:
        if not scalar(con, "SELECT count(*) FROM orders"):
            progress(1.0, "no orders")
            return TrainReport("analytics", 0.0, {}, str(shop.models_dir),
                               "No orders yet; import some with `shopkeeper import FILE`.")
        first, last = sales_span(con)
        progress(0.1, "fitting the churn model")
        try:
            model, _ = churn.load_or_fit(shop, con, first, last)
            auc = model.get("validation", {}).get("auc")
            churn_note = "Churn model fitted" + (f" (validation AUC {auc:.3f})" if isinstance(auc, float) else "")
        except ToolInputError as err:  # too little history: churn_risk will say so; the rest still trains
            model, churn_note = {}, f"No churn model: {err}"
        progress(0.5, "counting basket pairs")
        pairs = basket.warm_cache(shop, con)
    progress(1.0, "analytics ready")
    metrics = {"churn_validation": model.get("validation", {}), "basket_pairs_cached": pairs}
    summary = f"{churn_note}; {pairs:,} basket pairs counted and cached."
    return TrainReport("analytics", round(time.perf_counter() - t0, 1), metrics, str(shop.models_dir), summary)


JOBS: dict[str, Callable[[Shop, Progress], TrainReport]] = {
    "analytics": train_analytics,
    "forecaster": train_forecaster,
    "recommender": train_recommender,
    "reviews": train_reviews,
}


def train(shop: Shop, what: str | None = None, progress: Progress | None = None) -> list[TrainReport]:
    """Run one job (``what``) or all of them, in order. Raises TrainingError for an unknown job."""
    step = progress or (lambda frac, text: None)
    names = list(JOBS) if what in (None, "all") else [what]
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise TrainingError(f"Unknown model {unknown[0]!r}; choose from {', '.join(JOBS)} or all.")
    sweep_staging(shop.models_dir)  # what a killed earlier run left half-written
    reports = []
    for i, name in enumerate(names):
        def scaled(frac: float, text: str, _i: int = i) -> None:
            step((_i + frac) / len(names), text)

        reports.append(JOBS[name](shop, scaled))
    return reports
