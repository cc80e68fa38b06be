"""Forecast accuracy: MASE, WAPE, sMAPE, interval coverage, baselines and the rolling-origin backtest.

Conventions, shared by the stored backtest and benchmarks/forecaster.py:

* MASE is computed per series, scaled by that series' in-sample mean absolute seasonal difference (from its launch
  to the forecast origin), then averaged over series (M4 style). Series whose in-sample scale is zero are skipped.
* WAPE pools all series and periods: sum |error| / sum |actual|.
* sMAPE is the mean of 200·|e| / (|y| + |ŷ|) in percent, counting 0 when both are zero (common for slow sellers).
* Coverage is the share of actuals inside [lowest, highest] quantile, bounds included.
* Our point forecast is the median (P50): it is the forecast that minimises absolute error, which is what MASE and
  WAPE score. Baselines give their usual point forecast (last season's value, the recent mean).
* The season is 7 for daily data. For weekly data it is 1 (the naive "last week" forecast): a yearly season of 52
  needs more than a year of history per origin, which a one-year shop does not have, so "seasonal naive" on weekly
  data is the naive forecast, and we say so wherever it is reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def season_for(granularity: str, n_periods: int) -> int:
    """The seasonal period used by seasonal-naive and MASE: 7 for days; 52 for weeks only with 2+ years, else 1."""
    if granularity == "D":
        return 7
    return 52 if n_periods >= 104 else 1


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeats the last observed season. history: (S, T) → (S, H)."""
    T = history.shape[1]
    idx = T - season + (np.arange(horizon) % season)
    return history[:, idx]


def moving_average(history: np.ndarray, horizon: int, window: int) -> np.ndarray:
    """The mean of the last `window` periods, flat over the horizon. history: (S, T) → (S, H)."""
    return np.repeat(history[:, -window:].mean(axis=1, keepdims=True), horizon, axis=1)


def mase_scale(history: np.ndarray, start: np.ndarray, season: int) -> np.ndarray:
    """(S,) in-sample mean absolute seasonal difference of each series since its launch; NaN when undefined."""
    S, T = history.shape
    diff = np.abs(history[:, season:] - history[:, :-season])  # (S, T - season)
    t = np.arange(season, T)[None, :]
    valid = t - season >= start[:, None]
    n = valid.sum(1)
    total = (diff * valid).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = total / n
    return np.where((n > 0) & (scale > 0), scale, np.nan)


def metrics(
    actual: np.ndarray,
    point: np.ndarray,
    scale: np.ndarray,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy of point (and interval) forecasts.

    Args:
        actual: (S, H) actual values (NaN where unknown).
        point: (S, H) point forecasts.
        scale: (S,) MASE scales from `mase_scale`.
        lo: (S, H) lower interval bound, optional.
        hi: (S, H) upper interval bound, optional.

    Returns:
        {"mase", "wape", "smape", "coverage" (only with an interval), "n_series"}.
    """
    ok = ~np.isnan(actual)
    err = np.where(ok, np.abs(actual - point), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_series = err.sum(1) / ok.sum(1) / scale
        denom = np.abs(actual) + np.abs(point)
        sm = np.where(denom > 0, 200.0 * err / denom, 0.0)
    good = np.isfinite(per_series)
    out = {
        "mase": float(np.mean(per_series[good])) if good.any() else float("nan"),
        "wape": float(err.sum() / max(np.abs(np.where(ok, actual, 0)).sum(), 1e-9)),
        "smape": float(sm[ok].mean()) if ok.any() else float("nan"),
        "n_series": int(good.sum()),
    }
    if lo is not None and hi is not None:
        inside = (actual >= lo - 1e-9) & (actual <= hi + 1e-9)
        out["coverage"] = float(inside[ok].mean()) if ok.any() else float("nan")
    return out


def per_series_mase(actual: np.ndarray, point: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(S,) MASE of each series (NaN where the scale is undefined)."""
    ok = ~np.isnan(actual)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, np.abs(actual - point), 0.0).sum(1) / ok.sum(1) / scale


def rolling_origin_backtest(
    values: np.ndarray,
    start_at: Callable[[int], np.ndarray],
    predict: Callable[[int], np.ndarray],
    holdout: int,
    horizon: int,
    season: int,
    ma_window: int,
) -> dict:
    """Scores a model and two baselines on the last `holdout` periods from rolling origins.

    Origins run from T - holdout to T - horizon (one origin when horizon == holdout); at each origin every method
    sees only periods before it. The model is not refitted between origins (it was trained before the first one),
    so the test periods are never learned from.

    Args:
        values: (S, T) the series.
        start_at: origin → (S,) launch index of each series computed from data before that origin.
        predict: origin → (S, H, Q) model quantiles in original units.
        holdout: Periods held out at the end.
        horizon: Periods forecast from each origin (≤ holdout).
        season: Seasonal period for seasonal-naive and MASE.
        ma_window: Window of the moving-average baseline.

    Returns:
        {"model": metrics, "seasonal_naive": metrics, "moving_average": metrics, "per_series_mase": {"model": (S,),
        "seasonal_naive": (S,)}, "origins": [...]} where metrics are pooled over origins.
    """
    S, T = values.shape
    horizon = min(horizon, holdout)
    origins = list(range(T - holdout, T - horizon + 1))
    acts, pts, los, his, sns, mas, scales = [], [], [], [], [], [], []
    for o in origins:
        hist = values[:, :o]
        q = predict(o)  # (S, H, Q)
        acts.append(values[:, o : o + horizon])
        pts.append(q[:, :horizon, q.shape[2] // 2])
        los.append(q[:, :horizon, 0])
        his.append(q[:, :horizon, -1])
        sns.append(seasonal_naive(hist, horizon, season))
        mas.append(moving_average(hist, horizon, ma_window))
        scales.append(mase_scale(hist, start_at(o), season))
    # Stack origins along the period axis; each origin keeps its own MASE scale by repeating it per column block.
    actual = np.concatenate(acts, 1)
    scale = np.mean(np.stack(scales), axis=0)
    point, lo, hi = np.concatenate(pts, 1), np.concatenate(los, 1), np.concatenate(his, 1)
    sn, ma = np.concatenate(sns, 1), np.concatenate(mas, 1)
    return {
        "model": metrics(actual, point, scale, lo, hi),
        "seasonal_naive": metrics(actual, sn, scale),
        "moving_average": metrics(actual, ma, scale),
        "per_series_mase": {"model": per_series_mase(actual, point, scale),
                            "seasonal_naive": per_series_mase(actual, sn, scale)},
        "origins": origins,
    }
