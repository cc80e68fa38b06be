"""The forecaster's hyperparameters (no torch import, so the CLI can read a config cheaply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Config:
    """Every hyperparameter of the forecaster, stored in the checkpoint so the model can be rebuilt from it.

    Attributes:
        horizon: H, periods predicted per forecast (and the longest horizon `forecast` answers without chaining).
        lookback: L, periods of history the model reads.
        quantiles: Quantile levels predicted; must include 0.5. The outermost pair is the reported interval.
        arch: "mlp" (residual MLP over the flattened window) or "rnn" (GRU over the history).
        hidden: Width of the hidden layers (MLP) or GRU state.
        n_blocks: Residual blocks in the MLP trunk.
        dropout: Dropout inside residual blocks.
        id_embedding_dim: Size of a learned per-series embedding (0 = none). Unknown/new series use row 0.
        use_calendar: Feed calendar and holiday features of the target periods.
        use_shop_context: Feed the shop's total over the lookback (shop-wide momentum).
        use_price: Scale the forecast by a learned demand curve in the target periods' price relative to the
            current price (see model.py), so a planned price change can be asked about. Turned off at fit time when
            the sales carry no prices.
        lr: AdamW learning rate.
        lr_schedule: "constant", or "cosine" (decay to 5% of `lr` over `max_epochs`, stepped per batch).
        weight_decay: AdamW weight decay.
        batch_size: Windows per optimisation step.
        max_epochs: Upper bound on passes over the training windows.
        patience: Epochs without validation improvement before stopping.
        window_stride: Periods between consecutive training origins of one product (1 = every period); aggregates
            always use every period.
        val_periods: Periods just before the cutoff held out for early stopping and interval calibration.
        refit: After early stopping, retrain from scratch on all periods up to the cutoff for the chosen number of
            epochs, so the freshest periods (the ones used for validation) also shape the model.
        conformal: Widen or narrow the outer interval on the validation window so it covers its nominal share.
        synthetic_aggregates: Training-only sums of random product subsets, so the network learns how smooth
            aggregates (categories, the shop) behave; see `train.with_synthetic_aggregates`.
        max_series: Products trained on (the best-selling ones before the cutoff); every product can still be
            forecast, since the model is global.
        min_nonzero: Products with fewer selling periods than this use the sparse fallback, not the network.
        ma_window: Periods averaged by the moving-average baseline.
        holdout: Periods held out at the end for the backtest that `Forecaster.fit` stores with the model.
        seed: Seed for initialisation, shuffling and dropout.
        threads: torch CPU threads used while training (0 = leave torch's default).
    """

    horizon: int = 8
    lookback: int = 16
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    arch: str = "mlp"
    hidden: int = 64
    n_blocks: int = 1
    dropout: float = 0.0
    id_embedding_dim: int = 0
    use_calendar: bool = False
    use_shop_context: bool = True
    use_price: bool = True
    lr: float = 6e-3
    lr_schedule: str = "constant"
    weight_decay: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 30
    patience: int = 3
    window_stride: int = 2
    val_periods: int = 8
    refit: bool = False
    conformal: bool = True
    synthetic_aggregates: int = 64
    max_series: int = 500
    min_nonzero: int = 3
    ma_window: int = 4
    holdout: int = 8
    seed: int = 0
    threads: int = 0

    @classmethod
    def for_granularity(cls, granularity: str, **overrides) -> Config:
        """Defaults that suit the granularity: 8 weeks ahead from 16 weeks, or 28 days ahead from 56 days."""
        # Weekly: calendar features off, because week-of-year effects cannot be learned from one year of history and
        # they raised the validation loss (benchmarks/results/forecaster.md). Daily: day-of-week is the main signal.
        base = {} if granularity == "W" else dict(horizon=28, lookback=56, val_periods=28, holdout=28, ma_window=28,
                                                  window_stride=3, use_calendar=True)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        """Plain types only, so the checkpoint loads with weights_only=True."""
        d = asdict(self)
        d["quantiles"] = list(self.quantiles)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """Rebuilds a Config from `to_dict` output."""
        d = dict(d)
        d["quantiles"] = tuple(d["quantiles"])
        # Checkpoints written before prices were supported have no price weights.
        d.setdefault("use_price", False)
        return cls(**d)
