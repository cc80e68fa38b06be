"""Training loop: seeded, early stopping on a validation window that ends where the test would begin.

`fit_at_cutoff` is the whole procedure for one cutoff (the first period the model may not learn from): train on
windows whose targets end `val_periods` before the cutoff, stop on the validation window just before the cutoff,
calibrate the interval there, then (optionally) retrain on everything before the cutoff for the chosen number of
epochs. The backtest calls it with the cutoff at the start of the held-out periods, so nothing is ever selected on
them; the final model calls it with the cutoff at the end of the data.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from local_models.forecaster._util import seed_everything
from local_models.forecaster.data import N_STATIC, Panel, Windows, first_nonzero, make_windows, training_pairs
from local_models.forecaster.evaluate import mase_scale, season_for
from local_models.forecaster.config import Config
from local_models.forecaster.model import QuantileForecaster, pinball_loss, price_factor

_FIELDS = ("hist", "hist_mask", "shop", "static", "cal", "price", "fprice", "y", "y_mask")
_INPUTS = tuple(k for k in _FIELDS if k not in ("y", "y_mask")) + ("series",)


@dataclass
class FitInfo:
    """What one `fit_at_cutoff` run did, kept in the checkpoint's metrics.

    `val_loss` is the best validation loss at the current price (the trunk's early-stopping criterion, the same
    with or without prices); `val_loss_prices_charged` is the loss once the fitted elasticity is applied to the
    validation weeks' actual price level. Their gap is how much the price response helped on validation (NaN
    without prices).
    """

    cutoff: int
    best_epoch: int
    val_loss: float
    conformal_q: float
    val_coverage_raw: float
    n_train_windows: int
    n_val_windows: int
    epochs_run: int
    seconds: float
    history: list[float] = field(default_factory=list)
    val_loss_prices_charged: float = float("nan")
    val_windows_price_changed: int = 0
    elasticity_steps: int = 0


def _tensors(w: Windows, emb_ids: np.ndarray, device: str) -> dict[str, torch.Tensor]:
    t = {k: torch.from_numpy(np.ascontiguousarray(getattr(w, k))).to(device) for k in _FIELDS}
    t["series"] = torch.from_numpy(emb_ids.astype(np.int64)).to(device)
    return t


class _Packed:
    """A window set's float fields side by side in one (N, D) matrix, so an epoch's shuffle is one gather."""

    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        n = data["hist"].shape[0]
        self.n = n
        self.series = data["series"]
        self.layout: list[tuple[str, int, int, tuple[int, ...]]] = []
        col = 0
        for k in _FIELDS:
            width = int(np.prod(data[k].shape[1:]))
            self.layout.append((k, col, col + width, tuple(data[k].shape[1:])))
            col += width
        self.matrix = torch.cat([data[k].reshape(n, -1) for k in _FIELDS], dim=1)  # (N, D)

    def batches(self, batch_size: int, gen: torch.Generator):
        perm = torch.randperm(self.n, generator=gen).to(self.matrix.device)
        m, series = self.matrix[perm], self.series[perm]
        for i in range(0, self.n, batch_size):
            rows = m[i : i + batch_size]
            b = rows.shape[0]
            batch = {k: rows[:, a:z].reshape(b, *shape) for k, a, z, shape in self.layout}
            batch["series"] = series[i : i + batch_size]
            yield batch


def _run_epoch(model, opt, data: _Packed, batch_size: int, gen: torch.Generator, sched=None) -> None:
    model.train()
    for batch in data.batches(batch_size, gen):
        _, loss = model(**batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], 1.0)
        opt.step()
        if sched is not None:
            sched.step()


@torch.inference_mode()
def _predict_normalised(model, data: dict[str, torch.Tensor], batch_size: int = 8192,
                        hold_price: bool = False) -> torch.Tensor:
    """(N, H, Q) normalised quantiles; with `hold_price` the target periods keep the current price (fprice = 0)."""
    model.eval()
    n = data["hist"].shape[0]
    outs = []
    for i in range(0, n, batch_size):
        batch = {k: data[k][i : i + batch_size] for k in _INPUTS}
        if hold_price:
            batch["fprice"] = torch.zeros_like(batch["fprice"])
        outs.append(model(**batch)[0])
    return torch.cat(outs) if outs else torch.zeros(0, model.config.horizon, len(model.config.quantiles))


def _new_model(config: Config, n_cal: int, n_series: int, device: str) -> tuple[QuantileForecaster, torch.optim.Optimizer]:
    model = QuantileForecaster(config, n_static=N_STATIC, n_calendar=n_cal, n_series=n_series).to(device)
    # The fused kernel updates every parameter in one call instead of a Python loop over tensors (CPU and CUDA).
    # Only the trunk: the elasticity head is fitted afterwards (`fit_elasticity`), and leaving it out of the
    # optimiser and the gradient clipping keeps the trunk bit-identical to a model without prices.
    if config.use_price:
        model.elasticity_head.requires_grad_(False)
    opt = torch.optim.AdamW(model.trunk_parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    return model, opt


def conformal_quantile(pred: np.ndarray, y: np.ndarray, mask: np.ndarray, config: Config) -> tuple[float, float]:
    """Split-conformal (CQR) correction of the outer interval, in units of each window's scale.

    Args:
        pred: (N, H, Q) normalised predictions on the validation window.
        y: (N, H) normalised targets.
        mask: (N, H) which targets count.
        config: For the quantile levels.

    Returns:
        (q, raw coverage): add q × scale outward to the outer pair to reach the nominal coverage (q < 0 narrows);
        raw coverage is the interval's coverage before correction.
    """
    lo, hi = pred[..., 0], pred[..., -1]
    keep = mask > 0
    if not keep.any():
        return 0.0, float("nan")
    scores = np.maximum(lo - y, y - hi)[keep]
    nominal = config.quantiles[-1] - config.quantiles[0]
    n = scores.size
    level = min(1.0, np.ceil((n + 1) * nominal) / n)
    raw_cov = float((scores <= 0).mean())
    return float(np.quantile(scores, level, method="higher")), raw_cov


def apply_conformal(pred: np.ndarray, q: float, quantiles: tuple[float, ...]) -> np.ndarray:
    """Moves every non-median quantile outward by q, scaled by its distance from the median (outer pair gets q)."""
    q_levels = np.asarray(quantiles)
    reach = (q_levels - 0.5) / (q_levels[-1] - 0.5)  # -1 for the lowest, 0 for the median, 1 for the highest
    out = pred + q * reach
    return np.sort(out, axis=-1)


def fit_at_cutoff(
    panel: Panel,
    rows: np.ndarray,
    emb_ids: np.ndarray,
    cutoff: int,
    config: Config,
    cal: np.ndarray,
    device: str,
    log=None,
) -> tuple[QuantileForecaster, FitInfo]:
    """Trains, early-stops, calibrates and optionally refits the model using only periods before `cutoff`.

    Args:
        panel: Series to learn from (launch indices computed from data before `cutoff`).
        rows: (S',) panel rows to train on.
        emb_ids: (S',) embedding row per trained series (1-based; 0 is "unknown").
        cutoff: First period the model may not see as a target.
        config: Hyperparameters.
        cal: (T + H, F) calendar features.
        device: Where to train.
        log: Optional callable taking a progress line.

    Returns:
        (model in eval mode, FitInfo).
    """
    c = config
    t0 = time.perf_counter()
    if c.threads:
        torch.set_num_threads(c.threads)
    val_start = cutoff - c.val_periods
    if val_start <= 1:
        raise ValueError(f"too little history: {cutoff} periods before the cutoff, need more than {c.val_periods + 1}")
    emb_of_row = np.zeros(panel.values.shape[0], dtype=np.int64)
    emb_of_row[rows] = emb_ids

    def windows(first, last, target_end, stride):
        s, o = training_pairs(panel, rows, first, last, stride)
        w = make_windows(panel, s, o, c.lookback, c.horizon, target_end, cal)
        return w, _tensors(w, emb_of_row[s], device)

    train_panel, train_rows = with_synthetic_aggregates(panel, rows, c.synthetic_aggregates, c.seed)
    emb_of_train = np.zeros(train_panel.values.shape[0], dtype=np.int64)
    emb_of_train[: len(emb_of_row)] = emb_of_row

    is_agg = train_panel.kinds[train_rows] != "product"

    def train_windows(target_end):
        # Aggregates (the shop, categories, synthetic sums: a few dozen series) use every origin; they are cheap, and
        # thinning them too raised the shop's validation MASE from 1.24 to 1.43 (8 seeds).
        s1, o1 = training_pairs(train_panel, train_rows[~is_agg], 1, target_end - 1, c.window_stride)
        s2, o2 = training_pairs(train_panel, train_rows[is_agg], 1, target_end - 1, 1)
        s, o = np.concatenate([s1, s2]), np.concatenate([o1, o2])
        w = make_windows(train_panel, s, o, c.lookback, c.horizon, target_end, cal)
        return _tensors(w, emb_of_train[s], device)

    train_data = train_windows(val_start)
    # The trunk learns forecasts at the current price, exactly as without prices; the elasticity comes after.
    train = _Packed(train_data | {"fprice": torch.zeros_like(train_data["fprice"])})
    val_w, val = windows(val_start, max(val_start, cutoff - c.horizon), cutoff, 1)
    # Validation loss in comparable units: each window's pinball (in its own scale) times scale / MASE scale, so
    # configurations with different lookbacks or scalings can be compared on the same number.
    season = season_for(panel.granularity, val_start)
    mscale = mase_scale(panel.values[:, :val_start], first_nonzero(panel.values[:, :val_start]), season)
    w_val = val_w.scale / np.nan_to_num(mscale[val_w.series], nan=1.0)
    val["y_mask"] = val["y_mask"] * torch.from_numpy(w_val.astype(np.float32)).to(device)[:, None]
    n_val_targets = float(val_w.y_mask.sum())
    norm = float(val["y_mask"].sum()) / max(n_val_targets, 1.0)

    def val_loss_of(model, hold_price=False) -> tuple[float, torch.Tensor]:
        pred = _predict_normalised(model, val, hold_price=hold_price)
        return pinball_loss(pred, val["y"], val["y_mask"], model.q).item() * norm, pred

    seed_everything(c.seed)
    gen = torch.Generator().manual_seed(c.seed)
    model, opt = _new_model(c, cal.shape[1], len(rows), device)
    sched = _schedule(opt, c, train.n)
    best, best_epoch, best_state, history, bad = float("inf"), 0, None, [], 0
    for epoch in range(1, c.max_epochs + 1):
        _run_epoch(model, opt, train, c.batch_size, gen, sched)
        val_loss, _ = val_loss_of(model, hold_price=True)
        history.append(val_loss)
        if log:
            log(f"epoch {epoch}: val pinball {val_loss:.4f}")
        if val_loss < best - 1e-5:
            best, best_epoch, best_state, bad = val_loss, epoch, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= c.patience:
                break
    epochs_run = len(history)
    if best_epoch != epochs_run:
        model.load_state_dict(best_state)
    # The interval is calibrated as forecasts are made when no price is planned: at the current price.
    pred = _predict_normalised(model, val, hold_price=True).cpu().numpy()
    q, raw_cov = conformal_quantile(pred, val_w.y, val_w.y_mask, c) if c.conformal else (0.0, float("nan"))
    charged, steps = float("nan"), 0
    if c.use_price:
        charged, steps = fit_elasticity(model, train_data, val, c, val_norm=norm)

    n_train = train.n
    if c.refit:
        full_data = train_windows(cutoff)
        full = _Packed(full_data | {"fprice": torch.zeros_like(full_data["fprice"])})
        n_train = full.n
        seed_everything(c.seed)
        gen = torch.Generator().manual_seed(c.seed)
        model, opt = _new_model(c, cal.shape[1], len(rows), device)
        sched = _schedule(opt, c, full.n)
        for _ in range(best_epoch):
            _run_epoch(model, opt, full, c.batch_size, gen, sched)
        if c.use_price:
            fit_elasticity(model, full_data, None, c, steps=steps)
    model.eval()
    info = FitInfo(cutoff, best_epoch, best, q, raw_cov, n_train, len(val_w), epochs_run,
                   time.perf_counter() - t0, history, charged, int((np.abs(val_w.fprice) > 0).any(1).sum()), steps)
    return model, info


def fit_elasticity(model: QuantileForecaster, data: dict[str, torch.Tensor], val: dict[str, torch.Tensor] | None,
                   c: Config, val_norm: float = 1.0, steps: int = 0, max_steps: int = 400, every: int = 2,
                   patience: int = 10, max_windows: int = 4096) -> tuple[float, int]:
    """Fits the elasticity head on the frozen trunk, full-batch, on the training windows whose prices changed.

    Only windows with a price change carry information about the elasticity (elsewhere the demand multiplier is 1),
    so only they are used; the trunk's outputs for them and for the validation windows are computed once.

    Args:
        model: A trained model with `use_price`; only its elasticity head changes.
        data: Training tensors from `_tensors`, with the target periods' real prices in "fprice".
        val: Validation tensors (real prices, weighted y_mask); early stopping checks the loss every `every` steps
            and keeps the best head. None to run exactly `steps` steps (refit).
        c: Config (for the weight decay).
        val_norm: Factor turning the weighted validation loss into the reported units (see `fit_at_cutoff`).
        steps: Steps to run when `val` is None.
        max_steps: Upper bound on steps with early stopping.
        every: Steps between validation checks.
        patience: Checks without improvement before stopping.
        max_windows: At most this many training windows (a seeded sample): plenty for a head of hidden + L
            weights, and it keeps the step cost of the daily model (tens of thousands of windows) small.

    Returns:
        (best validation loss given the prices charged, or NaN without `val`; steps of the kept head).
    """
    head = model.elasticity_head
    model.eval()

    def frozen(d: dict[str, torch.Tensor], keep: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            base, h = model.encode(**{k: d[k][keep] for k in ("hist", "hist_mask", "shop", "static", "cal", "series")})
        return (base, h) + tuple(d[k][keep] for k in ("price", "fprice", "y", "y_mask"))

    def loss_of(t: tuple[torch.Tensor, ...]) -> torch.Tensor:
        base, h, price, fprice, y, y_mask = t
        return pinball_loss(base * price_factor(model.elasticity(h, price), fprice).unsqueeze(-1), y, y_mask, model.q)

    n_steps = max_steps if val is not None else steps
    if n_steps <= 0:
        return float("nan"), 0
    keep = torch.nonzero((data["fprice"].abs().sum(1) > 0) & (data["y_mask"].sum(1) > 0)).squeeze(1)
    if keep.numel() > max_windows:
        pick = torch.randperm(keep.numel(), generator=torch.Generator().manual_seed(c.seed))[:max_windows]
        keep = keep[pick.to(keep.device).sort().values]
    train = frozen(data, keep)
    check = None
    if val is not None:
        check = frozen(val, torch.ones(val["hist"].shape[0], dtype=torch.bool, device=val["hist"].device))

        def val_loss() -> float:
            with torch.no_grad():
                return loss_of(check).item() * val_norm

    head.requires_grad_(True)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=c.weight_decay)
    best, best_step, best_state, bad = (val_loss() if check else float("nan")), 0, copy.deepcopy(head.state_dict()), 0
    for step in range(1, n_steps + 1):
        loss = loss_of(train)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if check is not None and step % every == 0:
            v = val_loss()
            if v < best - 1e-6:
                best, best_step, best_state, bad = v, step, copy.deepcopy(head.state_dict()), 0
            else:
                bad += 1
                if bad >= patience:
                    break
    if check is None:
        return float("nan"), n_steps
    head.load_state_dict(best_state)
    return best, best_step


def _schedule(opt: torch.optim.Optimizer, c: Config, n_windows: int):
    """Cosine decay of the learning rate to 5% over `max_epochs`, per step; None for a constant rate."""
    if c.lr_schedule == "constant":
        return None
    if c.lr_schedule != "cosine":
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {c.lr_schedule!r}")
    steps = c.max_epochs * -(-n_windows // c.batch_size)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=0.05 * c.lr)


def with_synthetic_aggregates(panel: Panel, rows: np.ndarray, n: int, seed: int) -> tuple[Panel, np.ndarray]:
    """Appends `n` training-only aggregate series, each the sum of a random subset of the trained products.

    A shop has one total and a handful of categories, so without help the network would learn aggregates from a
    few windows among tens of thousands of product windows, and treat the smooth shop total like a lumpy product.
    Random product subsets are cheap, realistic aggregates that teach it how sums behave.

    Returns:
        (panel with the extra rows flagged as categories, training rows including them).
    """
    prods = rows[panel.kinds[rows] == "product"]
    if n <= 0 or len(prods) < 4:
        return panel, rows
    rng = np.random.default_rng(seed)
    extra = []
    for _ in range(n):
        k = int(rng.integers(max(2, len(prods) // 20), max(3, len(prods) // 2) + 1))
        extra.append(panel.values[rng.choice(prods, size=k, replace=False)].sum(0))
    values = np.concatenate([panel.values, np.stack(extra).astype(np.float32)])
    keys = list(panel.keys) + [f"category:~synthetic-{i}" for i in range(n)]
    price = None
    if panel.price is not None:  # aggregates have no price of their own
        price = np.concatenate([panel.price, np.full((n, panel.price.shape[1]), np.nan, np.float32)])
    aug = Panel(keys, values, first_nonzero(values), panel.periods, panel.granularity, panel.value, price)
    return aug, np.concatenate([rows, np.arange(len(panel.keys), len(keys))])
