"""Training the shop's models from its workspace: ``shopkeeper train [what]``, ``/train`` in the chat.

Each job reads the shop's tables, fits a model from ``local_models`` and saves it under ``<shop>/models/<name>/``.
A job writes into a temporary folder and swaps it in only when everything is saved, so an interrupted training
(Ctrl-C, kill, crash) leaves the previous model in use and no half-written artifact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Units and revenue per merchandise product and day, from sales lines (status 'ok', quantity > 0)."""
    with shop.connect(read_only=True) as con:
        df = con.execute("""
            SELECT o.product_id, CAST(o.ordered_at AS DATE) AS date, sum(o.quantity)::DOUBLE AS units,
                   sum(o.quantity * o.unit_price)::DOUBLE AS revenue
            FROM orders o JOIN products p USING (product_id)
            WHERE o.status = 'ok' AND o.quantity > 0 AND p.kind = 'merchandise'
            GROUP BY 1, 2 ORDER BY 1, 2""").df()
        categories = dict(con.execute("SELECT product_id, category FROM products WHERE category IS NOT NULL"
                                      ).fetchall())
    import pandas as pd

    df["date"] = pd.to_datetime(df["date"])
    return df, categories


def swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (both folders) with a rename, keeping the old one until the new one is in."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def train_forecaster(shop: Shop, progress: Progress) -> TrainReport:
    """Fit the weekly sales forecaster (with its backtest) on the shop's sales."""
    from local_models.forecaster import Config, Forecaster

    t0 = time.perf_counter()
    progress(0.02, "reading sales")
    sales, categories = daily_sales(shop)
    if sales.empty:
        raise TrainingError("The shop has no sales to learn from. Import orders first.")
    epochs = {"n": 0}

    def log(line: str) -> None:  # the fit runs twice (backtest, then all data); epochs tell how far it is
        epochs["n"] += 1
        progress(min(0.95, 0.05 + 0.9 * epochs["n"] / 40), f"forecaster: {line}")

    progress(0.05, "fitting the forecaster (backtest, then all data)")
    try:
        model = Forecaster.fit(sales, Config.for_granularity("W"), granularity="W", category_map=categories or None,
                               log=log)
    except ValueError as err:
        raise TrainingError(f"Cannot train the forecaster on this shop: {err}.") from err
    final = shop.models_dir / "forecaster"
    shop.models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".forecaster-", dir=shop.models_dir))
    model.save(tmp)
    swap_in(tmp, final)
    progress(1.0, "forecaster saved")
    bt = model.metrics.get("backtest", {})
    summary = next((v.get("sentence") for v in bt.values() if isinstance(v, dict) and v.get("sentence")),
                   "backtest stored with the model")
    return TrainReport("forecaster", round(time.perf_counter() - t0, 1), model.metrics, str(final), summary)


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


JOBS: dict[str, Callable[[Shop, Progress], TrainReport]] = {
    "forecaster": train_forecaster,
    "reviews": train_reviews,
}


def train(shop: Shop, what: str | None = None, progress: Progress | None = None) -> list[TrainReport]:
    """Run one job (``what``) or all of them, in order. Raises TrainingError for an unknown job."""
    step = progress or (lambda frac, text: None)
    names = list(JOBS) if what in (None, "all") else [what]
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise TrainingError(f"Unknown model {unknown[0]!r}; choose from {', '.join(JOBS)} or all.")
    reports = []
    for i, name in enumerate(names):
        def scaled(frac: float, text: str, _i: int = i) -> None:
            step((_i + frac) / len(names), text)

        reports.append(JOBS[name](shop, scaled))
    return reports
