"""The forecaster's high-level API: fit on a sales frame, save/load, forecast a product, category or the shop.

    fc = Forecaster.fit(sales, Config.for_granularity("W"), granularity="W")
    fc.save(models_dir / "forecaster")
    fc = Forecaster.load(models_dir / "forecaster")
    fc.forecast("product:85123A", horizon=4).to_dict()

How answers are made (the result's `method` says which):

* "global_model": the network, for any product with at least `min_nonzero` selling periods (trained on or not: the
  model is global and reads only the series' own history and the shop's), for each category (if a mapping was
  given) and for the shop.
* "sparse_history:scaled_<shop|category>_pattern": a product that sold in only a few periods. Its sale events are
  modelled as Poisson with the product's own rate since launch, each event its usual size, and the rate follows the
  shop's (or its category's) forecast shape over the horizon; quantiles come from a seeded simulation.
* "new_product:launch_profile(<shop|category>)": a product with no sales yet. Its quantiles are those of the
  products that launched in this shop (or category) during the history, taken at the same number of periods after
  their first sale.

Price scenarios. A model fitted with prices (`Config.use_price`, the default when the sales carry them) answers
`forecast(product, price=-0.2)`: "what if this product is sold 20% cheaper over the horizon?". The network's quantiles
at the current price are multiplied by the demand curve exp(-e · log(1 + change)), e ≥ 0 the product's learned
elasticity, so a discount never lowers a forecast. How far to trust e is stored with the model: the validation
loss with the prices actually charged vs with prices held (`metrics["fit"]["final"]`), which the result quotes.

Levels. Category and shop forecasts come from forecasting the aggregate series directly, not from adding product
forecasts: a sum of product medians is not the median of the sum, and a sum of P10s is far below the P10 of the sum
(independent errors partly cancel), so added-up intervals would be much too wide. The levels are therefore not
reconciled: the shop's P50 need not equal the sum of its products' P50s.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from local_models.forecaster import evaluate
from local_models.forecaster.data import (
    N_STATIC,
    SHOP_KEY,
    Panel,
    build_panel,
    calendar_features,
    first_nonzero,
    future_periods,
    make_windows,
)
from local_models.forecaster.config import Config

FORMAT_VERSION = 1
CHECKPOINT_NAME = "forecaster.pt"
HISTORY_NAME = "history.npz"
_PERIOD_WORD = {"W": "weeks", "D": "days"}


@dataclass
class ForecastResult:
    """A forecast with the evidence needed to trust or doubt it.

    Attributes:
        target: "product:<id>", "category:<name>" or "shop".
        granularity: "W" or "D".
        value: "units" or "revenue".
        periods: Start date (ISO) of each forecast period.
        quantiles: {"p10": [...], "p50": [...], "p90": [...]} per period (keys follow the configured levels).
        method: How the forecast was made (see the module docstring).
        last_period: {"period", "actual"} of the last complete period in the data, or None.
        change_vs_last_period: P50 of the first forecast period vs the last actual, as a fraction, or None.
        change_vs_last_year: Total P50 over the periods that have a same-period-last-year actual vs those actuals,
            as a fraction, with the periods compared; None when the history is shorter than a year.
        backtest: The stored backtest for this level (and this series, when it was scored), with a sentence.
        lacking: What data the forecast lacked, in words.
        price_scenario: With a planned price change: the change per period, the model's elasticity for this
            product, the P50 at the current price, the resulting change in P50, and how the price response was
            validated; None otherwise.
    """

    target: str
    granularity: str
    value: str
    periods: list[str]
    quantiles: dict[str, list[float]]
    method: str
    last_period: dict[str, Any] | None = None
    change_vs_last_period: float | None = None
    change_vs_last_year: dict[str, Any] | None = None
    backtest: dict[str, Any] | None = None
    lacking: list[str] = field(default_factory=list)
    price_scenario: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def _plain(x: Any) -> Any:
    """Converts numpy scalars/arrays inside nested containers to Python types (weights_only-safe, JSON-safe)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    return x


def _qname(q: float) -> str:
    return f"p{round(q * 100):d}"


class Forecaster:
    """A fitted global forecaster plus the history it forecasts from. Build with `fit` or `load`."""

    def __init__(
        self,
        config: Config,
        panel: Panel,
        model: Any,
        id_maps: dict[str, Any],
        metrics: dict[str, Any],
        trained_at: str,
        device: str = "cpu",
    ) -> None:
        self.config = config
        self.panel = panel
        self.model = model
        self.id_maps = id_maps
        self.metrics = metrics
        self.trained_at = trained_at
        self.device = device

    @property
    def granularity(self) -> str:
        """"W" or "D"."""
        return self.panel.granularity

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        sales: pd.DataFrame,
        config: Config | None = None,
        granularity: str = "W",
        value: str = "units",
        category_map: dict[str, str] | None = None,
        backtest: bool = True,
        device: str | None = None,
        log=None,
    ) -> Forecaster:
        """Fits the global model on a long sales frame and (optionally) backtests it on the last periods.

        With `backtest=True` the whole procedure runs twice: once with the last `config.holdout` periods hidden
        (scored against seasonal-naive and a moving average from the same origins, stored in `metrics`), and once
        on all data for the model that is kept.

        Args:
            sales: Long frame: product_id, date, units (and revenue when value="revenue").
            config: Hyperparameters; `Config.for_granularity(granularity)` when None.
            granularity: "W" (Monday weeks) or "D" (days).
            value: "units" or "revenue".
            category_map: Optional product_id -> category, adding category-level series.
            backtest: Run and store the held-out backtest.
            device: Force a device; by default CUDA when present, else CPU.
            log: Optional callable receiving progress lines.

        Returns:
            The fitted forecaster.
        """
        from local_models.forecaster._util import pick_device
        from local_models.forecaster.train import fit_at_cutoff

        config = config or Config.for_granularity(granularity)
        device = pick_device(device)
        panel = build_panel(sales, granularity, value, category_map=category_map)
        if config.use_price and panel.price is None:
            config = replace(config, use_price=False)
        T = len(panel.periods)
        cutoff_bt = T - config.holdout if backtest else T
        if cutoff_bt - config.val_periods < 4:
            raise ValueError(
                f"need at least {config.val_periods + config.holdout * backtest + 4} complete periods, have {T}"
            )
        rows = _training_rows(panel, cutoff_bt, config)
        # Embedding ids are 1-based; 0 is kept for series the model never trained on (new products).
        emb_ids = np.arange(1, len(rows) + 1)
        series_ids = {panel.keys[r]: int(e) for r, e in zip(rows, emb_ids)}
        cal = _calendar(panel.periods, config, granularity)
        metrics: dict[str, Any] = {"fit": {}}
        if backtest:
            model_bt, info_bt = fit_at_cutoff(panel.truncate(cutoff_bt), rows, emb_ids, cutoff_bt, config, cal,
                                              device, log)
            probe = cls(config, panel, model_bt, {"series": series_ids}, {}, "", device)
            probe._conformal_q = info_bt.conformal_q
            metrics["backtest"] = probe._backtest(rows, cal)
            metrics["fit"]["backtest"] = asdict(info_bt)
        model, info = fit_at_cutoff(panel, rows, emb_ids, T, config, cal, device, log)
        metrics["fit"]["final"] = asdict(info)
        metrics["conformal_q"] = info.conformal_q
        id_maps = {"series": series_ids, "category_of": dict(category_map or {})}
        trained_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return cls(config, panel, model, id_maps, _plain(metrics), trained_at, device)

    def _backtest(self, rows: np.ndarray, cal: np.ndarray) -> dict[str, Any]:
        """Rolling-origin backtest of the model fitted before the holdout, per level."""
        c, panel = self.config, self.panel
        T = len(panel.periods)
        season = evaluate.season_for(panel.granularity, T - c.holdout)
        cache: dict[int, np.ndarray] = {}

        def predict_all(origin: int) -> np.ndarray:
            if origin not in cache:
                cache[origin] = self._predict_rows(panel.truncate(origin), rows, origin, cal)
            return cache[origin]

        out: dict[str, Any] = {"holdout": c.holdout, "horizon": min(c.horizon, c.holdout), "season": season,
                               "periods": [str(p.date()) for p in panel.periods[T - c.holdout:]], "levels": {},
                               "per_series_mase": {}}
        kinds = panel.kinds[rows]
        for level in ("product", "category", "shop"):
            sel = np.flatnonzero(kinds == level)
            if sel.size == 0:
                continue
            res = evaluate.rolling_origin_backtest(
                panel.values[rows[sel]],
                lambda o, sel=sel: first_nonzero(panel.values[rows[sel], :o]),
                lambda o, sel=sel: predict_all(o)[sel],
                c.holdout, c.horizon, season, c.ma_window,
            )
            sn = res["seasonal_naive"]["mase"]
            res["mase_ratio_vs_seasonal_naive"] = res["model"]["mase"] / sn if sn and sn == sn else float("nan")
            for r, m, s in zip(rows[sel], res["per_series_mase"]["model"], res["per_series_mase"]["seasonal_naive"]):
                out["per_series_mase"][panel.keys[r]] = [float(m), float(s)]
            del res["per_series_mase"]
            out["levels"][level] = res
        return out

    # ------------------------------------------------------------------ prediction

    def _calendar(self, n_periods: int) -> np.ndarray:
        return _calendar(self.panel.periods[:n_periods], self.config, self.granularity)

    def _predict_rows(self, panel: Panel, rows: np.ndarray, origin: int, cal: np.ndarray) -> np.ndarray:
        """(len(rows), H, Q) calibrated quantiles in original units from `origin` at the current price."""
        return self._network(panel, rows, origin, cal)[0]

    def _network(self, panel: Panel, rows: np.ndarray, origin: int, cal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((len(rows), H, Q) calibrated quantiles in original units at the current price, (len(rows),) elasticity)."""
        import torch

        from local_models.forecaster.train import _INPUTS, _tensors, apply_conformal

        c = self.config
        rows = np.asarray(rows, dtype=np.int64)
        w = make_windows(panel, rows, np.full(len(rows), origin), c.lookback, c.horizon, origin, cal)
        emb = np.array([self.id_maps["series"].get(panel.keys[r], 0) for r in rows], dtype=np.int64)
        t = _tensors(w, emb, self.device)
        self.model.eval()
        with torch.inference_mode():
            base, elasticity = self.model.base_quantiles(**{k: t[k] for k in _INPUTS if k != "fprice"})
        pred = apply_conformal(base.cpu().numpy(), getattr(self, "_conformal_q", self.metrics.get("conformal_q", 0.0)),
                               c.quantiles)
        return np.clip(pred * w.scale[:, None, None], 0.0, None), elasticity.cpu().numpy()

    def predict_keys(self, keys: list[str], horizon: int | None = None,
                     price_change: np.ndarray | None = None) -> np.ndarray:
        """Network quantiles for many series at once, from the end of the history (no fallbacks).

        Args:
            keys: Panel keys ("product:<id>", "category:<name>", "shop"); each must have sold at least once.
            horizon: Periods ahead, at most `config.horizon`.
            price_change: Optional (len(keys), horizon) planned price changes relative to the current price
                (-0.2 = 20% cheaper; 0 for series without a plan); needs a model fitted with prices.

        Returns:
            (len(keys), horizon, Q) quantiles in original units.
        """
        horizon = self._check_horizon(horizon)
        T = len(self.panel.periods)
        rows = np.array([self.panel.index[k] for k in keys])
        q, elasticity = self._network(self.panel, rows, T, self._calendar(T))
        q = q[:, :horizon]
        if price_change is None:
            return q
        if not self.config.use_price:
            raise ValueError("this model was trained without prices")
        return q * demand_factor(elasticity[:, None], np.asarray(price_change, dtype=np.float64))[..., None]

    def _check_horizon(self, horizon: int | None) -> int:
        horizon = horizon or self.config.horizon
        if not 1 <= horizon <= self.config.horizon:
            raise ValueError(f"horizon must be 1..{self.config.horizon} {_PERIOD_WORD[self.granularity]} "
                             f"(the model was trained for {self.config.horizon}); got {horizon}")
        return horizon

    def forecast(
        self,
        target: str = SHOP_KEY,
        horizon: int | None = None,
        price: float | list[float] | None = None,
    ) -> ForecastResult:
        """Forecasts one product, category or the whole shop from the end of the history.

        Args:
            target: "shop", "category:<name>", "product:<id>" or a bare product id.
            horizon: Periods ahead (1..config.horizon); config.horizon when None.
            price: A planned price change of a product relative to its current price (-0.2 = 20% cheaper), for
                the whole horizon or one value per period; None (or 0) keeps the current price.

        Returns:
            The forecast with quantiles, changes, backtest evidence, method and what it lacked.

        Raises:
            ValueError: For an unknown target or horizon, or a price change the model cannot answer (a model
                without prices, a category or the shop, a product the network does not forecast, or a change
                outside -90%..+300%).
        """
        horizon = self._check_horizon(horizon)
        change = self._check_price(price, horizon)
        key = target if target == SHOP_KEY or ":" in target else f"product:{target}"
        kind = key.split(":", 1)[0]
        if kind not in ("product", "category", SHOP_KEY):
            raise ValueError(f"target must be 'shop', 'category:<name>' or 'product:<id>', got {target!r}")
        panel, c = self.panel, self.config
        T = len(panel.periods)
        row = panel.index.get(key)
        if kind == "category" and row is None:
            known = [k.split(":", 1)[1] for k in panel.keys if k.startswith("category:")]
            raise ValueError(f"unknown category {target!r}; known: {known or 'none (no category map was given)'}")
        n_selling = 0 if row is None else int((panel.values[row] > 0).sum())
        lacking: list[str] = []
        scenario = None
        if change is not None and kind != "product":
            raise ValueError("a price change applies to one product; forecast the product instead of "
                             f"{'the shop' if kind == SHOP_KEY else 'a category'}")
        if row is not None and (kind != "product" or n_selling >= c.min_nonzero):
            q, elasticity = self._network(panel, np.array([row]), T, self._calendar(T))
            q = q[0, :horizon]
            method = "global_model"
            if key not in self.id_maps["series"]:
                lacking.append("not among the series the model trained on (forecast from its own history)")
            if change is not None:
                q, scenario = self._price_scenario(q, float(elasticity[0]), change)
                if panel.price is None or not np.isfinite(panel.price[row]).any():
                    lacking.append("no prices in this product's history: its price response is the model's "
                                   "estimate from other products")
        elif change is not None:
            raise ValueError(f"{key} has too few selling {_PERIOD_WORD[self.granularity]} ({n_selling}) for the "
                             "network, so a price change cannot be estimated for it")
        elif n_selling > 0:
            q, method = self._sparse_fallback(key, row, horizon)
            lacking.append(f"only {n_selling} selling {_PERIOD_WORD[self.granularity]} (network needs "
                           f"{c.min_nonzero})")
        else:
            q, method, n = self._launch_profile(key, horizon)
            lacking.append(f"no sales history: quantiles of {n} products that launched in this shop")
        periods = future_periods(panel.periods[-1], horizon, self.granularity)
        result = ForecastResult(
            target=key, granularity=self.granularity, value=panel.value,
            periods=[str(p.date()) for p in periods],
            quantiles={_qname(lv): [round(float(v), 3) for v in q[:, i]] for i, lv in enumerate(c.quantiles)},
            method=method, lacking=lacking, price_scenario=scenario,
        )
        med = q[:, list(c.quantiles).index(0.5)]
        if row is not None:
            last = float(panel.values[row, T - 1])
            result.last_period = {"period": str(panel.periods[-1].date()), "actual": last}
            result.change_vs_last_period = None if last <= 0 else round(float(med[0] / last - 1), 4)
            result.change_vs_last_year = self._vs_last_year(row, med)
        if result.change_vs_last_year is None:
            lacking.append("a year of history for these periods: no same-period-last-year comparison")
        result.backtest = self._evidence(key, kind, method)
        return result

    def _check_price(self, price: float | list[float] | None, horizon: int) -> np.ndarray | None:
        """(horizon,) planned relative price changes, or None when there is no plan (all zero counts as none)."""
        if price is None:
            return None
        change = np.asarray(price, dtype=np.float64).reshape(-1)
        if change.size == 1:
            change = np.repeat(change, horizon)
        if change.size != horizon:
            raise ValueError(f"price needs one change or {horizon} (one per period), got {change.size}")
        if not np.all(np.isfinite(change)) or change.min() < -0.9 or change.max() > 3.0:
            raise ValueError("a price change must be between -0.9 (90% cheaper) and 3.0 (4x the price)")
        if not change.any():
            return None
        if not self.config.use_price:
            raise ValueError("this model was trained without prices (the sales had none), so it cannot estimate the "
                             "effect of a price change")
        return change

    def _price_scenario(self, q: np.ndarray, elasticity: float, change: np.ndarray) -> tuple[np.ndarray, dict]:
        """Quantiles under a planned price change and the scenario's evidence (see the module docstring)."""
        factor = demand_factor(elasticity, change)  # (H,)
        med = list(self.config.quantiles).index(0.5)
        fit = self.metrics.get("fit", {}).get("final", {})
        held, known = fit.get("val_loss"), fit.get("val_loss_prices_charged")
        word = _PERIOD_WORD[self.granularity]
        if held and known and known == known:
            how = (f"validated on the {self.config.val_periods} {word} before training ended: given the price level "
                   f"actually charged there, the forecasts' loss was {known:.3f} vs {held:.3f} with prices held "
                   f"({(known / held - 1) * 100:+.1f}%; {fit.get('val_windows_price_changed', 0)} of "
                   f"{fit.get('n_val_windows', 0)} products saw a price change)")
        else:
            how = "no validation of the price response was stored with this model"
        scenario = {
            "price_change": [round(float(x), 4) for x in change],
            "elasticity": round(elasticity, 4),
            "p50_at_current_price": [round(float(v), 3) for v in q[:, med]],
            "p50_change": [round(float(f - 1), 4) for f in factor],
            "validation": how,
            "text": (f"the model's estimate, not a measured effect: demand scaled by (1 + price change)^-e with "
                     f"e = {elasticity:.2f} learned from this shop's past price changes (e >= 0, so a discount never "
                     f"lowers the forecast); {how}"),
        }
        return q * factor[:, None], scenario

    def _vs_last_year(self, row: int, med: np.ndarray) -> dict[str, Any] | None:
        """Compares the forecast with the same periods a year earlier where they exist (52 weeks or 364 days, so
        weekdays line up)."""
        panel = self.panel
        T = len(panel.periods)
        lag = 52 if self.granularity == "W" else 364
        idx = [(j, T + j - lag) for j in range(len(med)) if T + j - lag >= max(panel.start[row], 0)]
        if not idx:
            return None
        before = float(sum(panel.values[row, i] for _, i in idx))
        now = float(sum(med[j] for j, _ in idx))
        return {"periods_compared": [str(panel.periods[i].date()) for _, i in idx], "last_year_actual": before,
                "forecast_p50": round(now, 3), "change": None if before <= 0 else round(now / before - 1, 4)}

    def _evidence(self, key: str, kind: str, method: str) -> dict[str, Any] | None:
        bt = self.metrics.get("backtest")
        if not bt:
            return {"text": "no backtest was stored with this model"}
        if method != "global_model":
            return {"text": f"the {method.split(':')[0]} fallback was not backtested; the network's backtest does not "
                            f"apply to it"}
        level = bt["levels"].get(kind)
        if not level:
            return None
        m, sn = level["model"], level["seasonal_naive"]
        word = _PERIOD_WORD[self.granularity]
        sn_name = "naive (last value)" if bt["season"] == 1 else f"seasonal-naive (season {bt['season']})"
        what = {"product": f"{m['n_series']} products", "category": f"{m['n_series']} categories",
                "shop": "the shop total"}[kind]
        text = (f"on the last {bt['holdout']} {word} this model's MASE over {what} was "
                f"{level['mase_ratio_vs_seasonal_naive']:.2f}x {sn_name}'s ({m['mase']:.2f} vs {sn['mase']:.2f}; "
                f"moving average {level['moving_average']['mase']:.2f}); its "
                f"{round((self.config.quantiles[-1] - self.config.quantiles[0]) * 100)}% interval covered "
                f"{m['coverage']:.0%} of actuals")
        ev = {"text": text, "holdout_periods": bt["periods"], "level": level}
        own = bt["per_series_mase"].get(key)
        if own is not None and kind == "product":
            ev["this_series_mase"] = {"model": own[0], "seasonal_naive": own[1]}
        return ev

    def _pattern(self, key: str, horizon: int) -> tuple[np.ndarray, str]:
        """Forecast shape of the product's category (or the shop): P50 over the horizon / its recent mean level."""
        cat = self.id_maps.get("category_of", {}).get(key.split(":", 1)[1])
        ref = f"category:{cat}" if cat is not None and f"category:{cat}" in self.panel.index else SHOP_KEY
        row = self.panel.index[ref]
        med = self.predict_keys([ref], horizon)[0][:, list(self.config.quantiles).index(0.5)]
        recent = self.panel.values[row, -self.config.lookback:].mean()
        return (med / recent if recent > 0 else np.ones(horizon)), ref.split(":", 1)[0]

    def _sparse_fallback(self, key: str, row: int, horizon: int) -> tuple[np.ndarray, str]:
        v = self.panel.values[row]
        T = len(v)
        active = max(T - int(self.panel.start[row]), 1)
        sold = v[v > 0]
        rate, size = len(sold) / active, float(sold.mean())
        shape, ref = self._pattern(key, horizon)
        rng = np.random.default_rng(self.config.seed)
        events = rng.poisson(np.clip(rate * shape, 0, None)[None, :], size=(4000, horizon))  # (draws, H)
        q = np.quantile(events * size, self.config.quantiles, axis=0).T  # (H, Q)
        return q, f"sparse_history:scaled_{ref}_pattern"

    def _launch_profile(self, key: str, horizon: int) -> tuple[np.ndarray, str, int]:
        panel = self.panel
        T = len(panel.periods)
        cat = self.id_maps.get("category_of", {}).get(key.split(":", 1)[1])
        prods = [i for i, k in enumerate(panel.keys) if k.startswith("product:")]
        scope = "shop"
        if cat is not None:
            in_cat = [i for i in prods if self.id_maps["category_of"].get(panel.keys[i].split(":", 1)[1]) == cat]
            if sum(1 for i in in_cat if 0 < panel.start[i] < T) >= 5:
                prods, scope = in_cat, f"category {cat}"
        # Products selling in the very first period were probably on sale before the data began: not launches.
        launched = [i for i in prods if 0 < panel.start[i] < T]
        q = np.zeros((horizon, len(self.config.quantiles)))
        for j in range(horizon):
            vals = [panel.values[i, panel.start[i] + j] for i in launched if panel.start[i] + j < T]
            if vals:
                q[j] = np.quantile(vals, self.config.quantiles)
        return q, f"new_product:launch_profile({scope})", len(launched)

    # ------------------------------------------------------------------ persistence

    def with_history(self, sales: pd.DataFrame) -> Forecaster:
        """The same fitted model forecasting from newer sales (no retraining); the backtest stays the stored one."""
        panel = build_panel(sales, self.granularity, self.panel.value,
                            category_map=self.id_maps.get("category_of") or None)
        return Forecaster(self.config, panel, self.model, self.id_maps, self.metrics, self.trained_at, self.device)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Writes the checkpoint (one dict) and the history it forecasts from, each atomically.

        Args:
            directory: Folder to write `forecaster.pt` and `history.npz` into (created if missing).

        Returns:
            The checkpoint path.
        """
        from local_models.forecaster._util import save_checkpoint

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        ckpt = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "state_dict": state,
            "id_maps": _plain({**self.id_maps, "granularity": self.granularity, "value": self.panel.value,
                               "n_calendar": int(self._calendar(len(self.panel.periods)).shape[1])}),
            "metrics": self.metrics,
            "trained_at": self.trained_at,
        }
        # The history is data, not weights: it goes next to the checkpoint so the checkpoint stays the agreed dict.
        fd, tmp = tempfile.mkstemp(prefix=HISTORY_NAME + ".", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                extra = {} if self.panel.price is None else {"price": self.panel.price}
                np.savez_compressed(fh, keys=np.array(self.panel.keys, dtype=str), values=self.panel.values,
                                    periods=self.panel.periods.strftime("%Y-%m-%d").to_numpy(dtype=str), **extra)
            os.replace(tmp, directory / HISTORY_NAME)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return save_checkpoint(ckpt, directory / CHECKPOINT_NAME)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], device: str | None = None) -> Forecaster:
        """Rebuilds the model from the checkpoint's config and loads its weights strictly.

        Args:
            directory: A folder written by `save`.
            device: Force a device; CUDA when present, else CPU by default.

        Returns:
            The forecaster, ready to forecast.
        """
        from local_models.forecaster._util import load_checkpoint, pick_device
        from local_models.forecaster.model import QuantileForecaster

        directory = Path(directory)
        ckpt = load_checkpoint(directory / CHECKPOINT_NAME)
        if ckpt.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: checkpoint format {ckpt.get('format_version')}, expected {FORMAT_VERSION}")
        config = Config.from_dict(ckpt["config"])
        ids = ckpt["id_maps"]
        device = pick_device(device)
        model = QuantileForecaster(config, n_static=N_STATIC, n_calendar=ids["n_calendar"], n_series=len(ids["series"]))
        model.load_state_dict(ckpt["state_dict"], strict=True)
        model.to(device).eval()
        with np.load(directory / HISTORY_NAME, allow_pickle=False) as h:
            values = h["values"]
            price = h["price"] if "price" in h.files else None
            panel = Panel([str(k) for k in h["keys"]], values, first_nonzero(values),
                          pd.DatetimeIndex(pd.to_datetime(h["periods"])), ids["granularity"], ids["value"], price)
        id_maps = {"series": dict(ids["series"]), "category_of": dict(ids.get("category_of", {}))}
        return cls(config, panel, model, id_maps, ckpt["metrics"], ckpt["trained_at"], device)


def demand_factor(elasticity: np.ndarray | float, change: np.ndarray) -> np.ndarray:
    """(1 + change)^-elasticity, the relative price clipped as in training (model.price_factor in NumPy)."""
    from local_models.forecaster.data import PRICE_CLIP

    return np.exp(-np.asarray(elasticity) * np.clip(np.log1p(change), -PRICE_CLIP, PRICE_CLIP))


def _calendar(periods: pd.DatetimeIndex, config: Config, granularity: str) -> np.ndarray:
    """(T + H, F) calendar features for the periods and the horizon after them; F = 0 when the model does not use
    them (building holiday calendars is the slowest part of a small fit)."""
    every = periods.append(future_periods(periods[-1], config.horizon, granularity))
    if not config.use_calendar:
        return np.zeros((len(every), 0), dtype=np.float32)
    return calendar_features(every, granularity)


def _training_rows(panel: Panel, cutoff: int, config: Config) -> np.ndarray:
    """Panel rows to train on: the best-selling products before `cutoff` with enough selling periods, plus every
    category and the shop."""
    before = panel.values[:, :cutoff]
    kinds = panel.kinds
    prod = np.flatnonzero((kinds == "product") & ((before > 0).sum(1) >= config.min_nonzero))
    top = prod[np.argsort(-before[prod].sum(1), kind="stable")[: config.max_series]]
    return np.concatenate([np.sort(top), np.flatnonzero(kinds != "product")]).astype(np.int64)
