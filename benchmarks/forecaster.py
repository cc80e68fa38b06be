"""Sales forecaster benchmark: our global model vs statsforecast's SeasonalNaive, AutoETS and AutoTheta.

One command, one run:

    PYTHONPATH=. python benchmarks/forecaster.py [--data-file PATH]

Datasets (all from the same file): `weekly_product` (the 500 best-selling products before the held-out weeks, last
8 weeks held out), `weekly_shop` (the shop's total units, same weeks) and `daily_product` (same 500 products, last
28 days held out). Every method sees exactly the periods before the hold-out, forecasts it in one shot from that
origin, and is scored with the same code (local_models/forecaster/evaluate.py). Writes
benchmarks/results/forecaster.md and .json. statsforecast is needed only here, not by the forecaster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

# One thread everywhere: the comparison is per core, and the machine is shared.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_models.forecaster import Config, Forecaster  # noqa: E402
from local_models.forecaster.data import build_panel, load_daily_sales  # noqa: E402
from local_models.forecaster.evaluate import mase_scale, metrics, moving_average, season_for  # noqa: E402

TOP = 500
DEV_NOTES = """\
## How the model was chosen (development measurements, not re-run by this script)

Everything below was chosen on the validation window (the 8 weeks before the held-out 8, weighted pinball loss in
MASE-scale units, lower is better; weekly demo data) or on fit time, never on the held-out weeks.

Architecture (first session, seed 0 unless noted, dropout 0.1, lr 3e-3, every origin):

| variant | val loss |
| --- | --- |
| residual MLP, no calendar features (chosen) | 0.596 (seed 1: 0.600) |
| residual MLP, with calendar + holiday features | 0.633 (seed 1: 0.612) |
| GRU encoder (DeepAR-style), hidden 64 | not better on validation (2.248 vs 2.238 in the earlier unweighted loss) and 4-5x slower |
| learned per-product embedding (dim 8) | worse (2.284 vs 2.238, unweighted loss) |

Speed (second session). Work = training windows x epochs run, which is what fit time follows on a loaded machine.
Rows marked "no prices" are without the price model; the others were screened with an earlier price model (raw
last price, price history in the trunk; loss with prices held), seeds 0-1 unless noted:

| variant | val loss | work per fit |
| --- | --- | --- |
| first-session defaults: dropout 0.1, lr 3e-3, batch 1024, every origin (no prices, seeds 0-3) | 0.598 | 109-163k |
| batch 2048 (lr 3e-3 / 6e-3) | 0.605 / 0.600 | 219-255k / 128-182k |
| cosine decay over 6 / 4 epochs | 0.612 / 0.626 | 109k / 73k |
| dropout 0 | 0.596 | 164k |
| dropout 0, every 2nd product origin | 0.609 | 65-121k |
| dropout 0, every 2nd product origin, lr 6e-3 (chosen; no prices, seeds 0-3) | 0.601 | 65-74k |
| same with dropout 0.1 (seeds 0-3) | 0.602 | 65-112k |
| every 3rd product origin (seeds 0-3) | 0.616 | 43-87k |
| hidden 96 (seeds 0-3) | 0.610 | 84-131k |

Aggregates (the shop and 64 synthetic sums) keep every origin: thinning them too raised the shop's validation MASE
from 1.24 to 1.43 (no prices, mean of seeds 0-7; the shop is one series, single seeds range 1.0-1.6). Also free of accuracy
cost: fused AdamW, one packed shuffle per epoch and inference_mode (same validation losses to 4 decimals).

Prices. The period price is the median order-line price (the average price per unit moves with order size in
this wholesale data), smoothed to a level (median of the last 3 selling periods) so that one-day blips do not count as
price changes; without that smoothing the daily price model's validation loss with prices held was 2.5% worse than
without prices. Trained jointly with the trunk, prices raised the shop's validation MASE (1.41 vs 1.24 without
prices, seeds 0-7, price history fed to the trunk; 1.28 vs 1.24 with the price history fed only to the elasticity)
at no gain on products (0.598 vs 0.599). Hence the final design: the trunk trains exactly as without prices and the
elasticity head is fitted afterwards on the frozen trunk, so prices cannot change a forecast at the current price
(a test checks the forecasts are bit-identical) and only add the "what if the price changed?" answer. Kept on by
default for that reason; how much the price response helps is the validation gap reported above each table's note.

Caveat: the first session's development script printed held-out numbers next to the validation loss, so the
held-out weeks are not a pristine test of the architecture. Known weakness: the shop total (one smooth series in
Q4's ramp) is forecast by the same global model, trained with synthetic aggregates, and loses to the naive forecast
and AutoETS there; reported, not hidden.
"""


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc.__class__.__name__})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _stats_long(values: np.ndarray, periods: pd.DatetimeIndex, start: np.ndarray) -> pd.DataFrame:
    """statsforecast's long frame; each series begins at its launch, as our model's history does."""
    parts = []
    for i, row in enumerate(values):
        s = int(start[i])
        parts.append(pd.DataFrame({"unique_id": i, "ds": periods[s:], "y": row[s:].astype(np.float64)}))
    return pd.concat(parts, ignore_index=True)


def run_statsforecast(values, periods, start, horizon, season, freq) -> dict[str, dict]:
    """Fits and predicts each statsforecast model separately, timing each."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    df = _stats_long(values, periods, start)
    out = {}
    for name, model in (("seasonal_naive", SeasonalNaive(season_length=season)),
                        ("autoets", AutoETS(season_length=season)),
                        ("autotheta", AutoTheta(season_length=season))):
        t0 = time.perf_counter()
        fc = StatsForecast(models=[model], freq=freq, n_jobs=1).forecast(df=df, h=horizon, level=[80])
        secs = time.perf_counter() - t0
        col = str(model)
        fc = fc.sort_values(["unique_id", "ds"])
        shape = (values.shape[0], horizon)
        # Units cannot be negative; clipping only helps the baselines.
        out[name] = {
            "point": np.clip(fc[col].to_numpy().reshape(shape), 0, None),
            "lo": np.clip(fc[f"{col}-lo-80"].to_numpy().reshape(shape), 0, None),
            "hi": fc[f"{col}-hi-80"].to_numpy().reshape(shape),
            "secs": secs,
        }
    return out


def score(actual, hist, start, season, pred) -> dict:
    m = metrics(actual, pred["point"], mase_scale(hist, start, season), pred.get("lo"), pred.get("hi"))
    res = {"mase": m["mase"], "wape": m["wape"], "smape": m["smape"]}
    if "coverage" in m:
        res["coverage80"] = m["coverage"]
    if "secs" in pred:
        res["fit_predict_s"] = pred["secs"]
    return res


def benchmark_granularity(sales: pd.DataFrame, granularity: str, holdout: int, log) -> dict[str, dict]:
    full = build_panel(sales, granularity)
    T = len(full.periods)
    cutoff = T - holdout
    first_test = full.periods[cutoff]
    train_sales = sales[sales["date"] < first_test]
    panel = build_panel(train_sales, granularity)
    assert len(panel.periods) == cutoff, "the truncated data should end exactly where the hold-out begins"
    season = season_for(granularity, cutoff)
    prod = [k for k in panel.keys if k.startswith("product:")]
    totals = panel.values[[panel.index[k] for k in prod]].sum(1)
    top = [prod[i] for i in np.argsort(-totals, kind="stable")[:TOP]]
    datasets = {f"{'weekly' if granularity == 'W' else 'daily'}_product": top}
    if granularity == "W":
        datasets["weekly_shop"] = ["shop"]

    config = Config.for_granularity(granularity, horizon=holdout)
    # The price covariate is measured both ways in the same run: "ours" is the default configuration, the other
    # row toggles `use_price`. Neither sees the held-out weeks' prices: forecasts assume the last price holds.
    other = "ours_no_price" if config.use_price else "ours_with_price"
    fits = {}
    for name, cfg in (("ours", config), (other, replace(config, use_price=not config.use_price))):
        log(f"[{granularity}] fitting {name} on {len(panel.periods)} periods ...")
        t0 = time.perf_counter()
        fc = Forecaster.fit(train_sales, cfg, granularity=granularity, backtest=False, device="cpu")
        q_all = fc.predict_keys([k for keys in datasets.values() for k in keys], holdout)
        fits[name] = (fc, q_all, time.perf_counter() - t0)
    results: dict[str, dict] = {}
    offset = 0
    for name, keys in datasets.items():
        sl = slice(offset, offset + len(keys))
        offset += len(keys)
        rows_tr = [panel.index[k] for k in keys]
        hist = panel.values[rows_tr].astype(np.float64)
        actual = full.values[[full.index[k] for k in keys], cutoff:].astype(np.float64)
        start = panel.start[rows_tr]
        res = {}
        med = config.quantiles.index(0.5)
        for label, (fc, q_all, secs) in fits.items():
            q = q_all[sl]
            res[label] = score(actual, hist, start, season, {"point": q[..., med], "lo": q[..., 0], "hi": q[..., -1],
                                                             "secs": secs})
        priced = fits["ours"][0] if config.use_price else fits[other][0]
        if full.price is not None and name.endswith("_product"):
            # Diagnostic, not a forecast: the price model told the held-out weeks' actual price level (known only
            # afterwards), as if it had been the plan. Shows whether the learned price response helps when prices
            # are known.
            level = full.log_price_level()[[full.index[k] for k in keys]]
            change = np.nan_to_num(np.exp(level[:, cutoff:] - level[:, cutoff - 1 : cutoff]) - 1)
            q = priced.predict_keys(keys, holdout, price_change=change)
            res["ours_given_actual_prices"] = score(actual, hist, start, season,
                                                    {"point": q[..., med], "lo": q[..., 0], "hi": q[..., -1]})
            res["_price_changed_series"] = int((np.abs(change) > 1e-9).any(1).sum())
        log(f"[{name}] statsforecast on {len(keys)} series ...")
        freq = "W-MON" if granularity == "W" else "D"
        for method, pred in run_statsforecast(hist, panel.periods, start, holdout, season, freq).items():
            res[method] = score(actual, hist, start, season, pred)
        res["moving_average"] = score(actual, hist, start, season,
                                      {"point": moving_average(hist, holdout, config.ma_window)})
        pf = priced.metrics["fit"]["final"]
        res["_info"] = {"series": len(keys), "train_periods": cutoff, "holdout_periods": holdout, "season": season,
                        "first_holdout_period": str(first_test.date()),
                        "last_holdout_period": str(full.periods[-1].date()),
                        "ours_fit_best_epoch": fits["ours"][0].metrics["fit"]["final"]["best_epoch"],
                        "ours_epochs_run": fits["ours"][0].metrics["fit"]["final"]["epochs_run"],
                        "ours_train_windows": fits["ours"][0].metrics["fit"]["final"]["n_train_windows"],
                        "ours_use_price": config.use_price,
                        "price_val_loss_as_charged": pf["val_loss_prices_charged"],
                        "price_val_loss_held": pf["val_loss"],
                        "price_val_windows_changed": pf["val_windows_price_changed"],
                        "price_val_windows": pf["n_val_windows"],
                        "price_elasticity_steps": pf["elasticity_steps"],
                        "holdout_series_price_changed": res.pop("_price_changed_series", 0),
                        "ours_note": "one model fitted for all series of this granularity; its time covers them all"}
        results[name] = res
    return results


def targets(res: dict) -> list[tuple[str, bool, str]]:
    wp = res["weekly_product"]
    ours, sn = wp["ours"], wp["seasonal_naive"]
    best = min(wp["autoets"]["mase"], wp["autotheta"]["mase"])
    out = [
        ("weekly product MASE <= 0.80 x SeasonalNaive", ours["mase"] <= 0.80 * sn["mase"],
         f"{ours['mase']:.3f} vs {0.80 * sn['mase']:.3f} (= 0.80 x {sn['mase']:.3f})"),
        ("weekly product MASE <= 0.95 x best of AutoETS/AutoTheta", ours["mase"] <= 0.95 * best,
         f"{ours['mase']:.3f} vs {0.95 * best:.3f} (= 0.95 x {best:.3f})"),
        ("weekly product 80% coverage in [0.75, 0.85]", 0.75 <= ours["coverage80"] <= 0.85,
         f"{ours['coverage80']:.3f}"),
        ("weekly product fit+predict <= AutoETS time", ours["fit_predict_s"] <= wp["autoets"]["fit_predict_s"],
         f"{ours['fit_predict_s']:.2f} s vs {wp['autoets']['fit_predict_s']:.2f} s"),
    ]
    if "daily_product" in res:
        dp = res["daily_product"]
        dbest = min(dp["autoets"]["mase"], dp["autotheta"]["mase"])
        out += [
            ("daily product MASE <= 0.80 x SeasonalNaive", dp["ours"]["mase"] <= 0.80 * dp["seasonal_naive"]["mase"],
             f"{dp['ours']['mase']:.3f} vs {0.80 * dp['seasonal_naive']['mase']:.3f}"),
            ("daily product MASE <= 0.95 x best of AutoETS/AutoTheta", dp["ours"]["mase"] <= 0.95 * dbest,
             f"{dp['ours']['mase']:.3f} vs {0.95 * dbest:.3f}"),
            ("daily product 80% coverage in [0.75, 0.85]", 0.75 <= dp["ours"]["coverage80"] <= 0.85,
             f"{dp['ours']['coverage80']:.3f}"),
        ]
    return out


def write_markdown(path: Path, res: dict, meta: dict) -> None:
    lines = ["# Sales forecaster benchmark", "", f"Command: `{meta['command']}`", "",
             "| setting | value |", "| --- | --- |"]
    for k in ("date", "data_file", "machine", "cpus", "threads", "load_before", "load_after", "total_s", "versions"):
        lines.append(f"| {k} | {meta[k]} |")
    lines += ["", "Metrics: MASE (mean over series, scaled by each series' in-sample naive error; weekly season 1 = "
              "naive, daily season 7), WAPE (pooled), sMAPE (%), coverage of the 80% interval, fit+predict seconds "
              "on one thread. Our point forecast is the P50; statsforecast's is its mean forecast. Baseline forecasts "
              "are clipped at 0. Weekly 'SeasonalNaive' is the naive last-week forecast: a 52-week season needs "
              "more than the one year of history the demo shop has.", ""]
    for ds, methods in res.items():
        info = methods["_info"]
        lines += [f"## {ds}", "", f"{info['series']} series, {info['train_periods']} training periods, held out "
                  f"{info['first_holdout_period']} .. {info['last_holdout_period']} ({info['holdout_periods']} "
                  f"periods), season {info['season']}.", "",
                  "| method | MASE | WAPE | sMAPE | coverage80 | fit+predict s |", "| --- | --- | --- | --- | --- | --- |"]
        for m, r in methods.items():
            if m.startswith("_"):
                continue

            def f(key, fmt="{:.3f}"):
                return fmt.format(r[key]) if key in r else "-"

            lines.append(f"| {m} | {f('mase')} | {f('wape')} | {f('smape', '{:.1f}')} | {f('coverage80')} | "
                         f"{f('fit_predict_s', '{:.2f}')} |")
        lines += ["", f"ours ({'with' if info['ours_use_price'] else 'without'} prices, the default): best epoch "
                  f"{info['ours_fit_best_epoch']} of {info['ours_epochs_run']} run, {info['ours_train_windows']} "
                  f"training windows. With and without prices the forecasts at the current price are the same by "
                  f"construction (the trunk trains identically; the elasticity is fitted afterwards on the frozen "
                  f"trunk), so those two rows differ only in time. Price response on the validation window "
                  f"(weighted pinball, lower is better): {info['price_val_loss_held']:.4f} with prices held, "
                  f"{info['price_val_loss_as_charged']:.4f} given the price level actually charged "
                  f"({info['price_val_windows_changed']} of {info['price_val_windows']} validation series saw a price "
                  f"change; elasticity head kept after {info['price_elasticity_steps']} steps)."]
        if "ours_given_actual_prices" in methods:
            lines.append(f"ours_given_actual_prices is a diagnostic, not a forecast: the price model told the held-out "
                         f"periods' actual price level (known only afterwards) as if it had been planned; "
                         f"{info['holdout_series_price_changed']} of {info['series']} series had a price change there.")
        lines.append("")
    lines += ["## Targets", "", "| target | met | numbers |", "| --- | --- | --- |"]
    for name, ok, detail in targets(res):
        lines.append(f"| {name} | {'yes' if ok else 'NO'} | {detail} |")
    lines += ["", "Our fit+predict time is one model for every series of the granularity (weekly: the 500 products "
              "and the shop together), so it is listed under both weekly datasets.", "", DEV_NOTES]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-file", default=str(ROOT / "data/demo/online_retail.parquet"),
                    help="order lines (UCI Online Retail layout) or daily product_id,date,units[,revenue]")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks/results"))
    ap.add_argument("--skip-daily", action="store_true", help="weekly datasets only")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    # torch imports its optimiser machinery on first use (seconds); do it outside the timed region, just as
    # statsforecast's import is.
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    t_start = time.perf_counter()
    load_before = _sh(["uptime"])

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sales = load_daily_sales(args.data_file)
    res = benchmark_granularity(sales, "W", 8, log)
    if not args.skip_daily:
        res.update(benchmark_granularity(sales, "D", 28, log))
    import statsforecast

    meta = {
        "command": "PYTHONPATH=. python benchmarks/forecaster.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "data_file": os.path.relpath(args.data_file, ROOT),
        "machine": f"{platform.machine()} {_cpu_model()}",
        "cpus": os.cpu_count(),
        "threads": f"torch {torch.get_num_threads()}, statsforecast n_jobs=1, OMP/MKL/OpenBLAS 1",
        "load_before": load_before,
        "load_after": _sh(["uptime"]),
        "total_s": round(time.perf_counter() - t_start, 1),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
                    f"statsforecast {statsforecast.__version__}",
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean = {ds: {m: {k: round(float(v), 4) for k, v in r.items()} for m, r in methods.items() if not m.startswith("_")}
             | {"_info": {k: round(v, 4) if isinstance(v, float) else v for k, v in methods["_info"].items()}}
             for ds, methods in res.items()}
    clean["_meta"] = meta
    (out / "forecaster.json").write_text(json.dumps(clean, indent=2) + "\n")
    write_markdown(out / "forecaster.md", res, meta)
    for name, ok, detail in targets(res):
        log(f"{'met ' if ok else 'MISS'} {name}: {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
