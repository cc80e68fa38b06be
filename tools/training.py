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


def _swap_in(tmp: Path, final: Path) -> None:
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
    _swap_in(tmp, final)
    progress(1.0, "forecaster saved")
    bt = model.metrics.get("backtest", {})
    summary = next((v.get("sentence") for v in bt.values() if isinstance(v, dict) and v.get("sentence")),
                   "backtest stored with the model")
    return TrainReport("forecaster", round(time.perf_counter() - t0, 1), model.metrics, str(final), summary)


JOBS: dict[str, Callable[[Shop, Progress], TrainReport]] = {
    "forecaster": train_forecaster,
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
