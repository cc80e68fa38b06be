"""Replay the promotion planner week by week on the demo shop against simple strategies.

For each of the shop's last 12 weeks (7-day blocks ending at its last day of data), every strategy picks 10
products using only the data before that week; the picks are then scored against what sold in the week:

* precision@10: the share of picks whose units that week rose above their own trailing average (the 4 weeks
  before the cutoff);
* lift: units the picks sold that week / the sum of their trailing weekly averages (1.0 = no change).

Strategies, all drawing from the same candidate pool (products sold in at least 2 of the last 4 weeks and
averaging at least 1 unit a week):

* ours: :func:`tools.promotion_scoring.score_candidates`, the code the ``plan_promotions`` tool runs, with the
  signals the demo has as of each cutoff: the momentum estimate of demand (no model forecast; fitting a forecaster
  per replayed week is too slow for this machine, and one fitted before the window uses Monday weeks, not these
  blocks), co-purchase reach from purchases before the cutoff, and the same week last year where the data reaches
  it. The demo has no stock or cost, and its reviews are not linked to its products, so those signals are absent.
* ours_long_tail: the same with ``long_tail=True`` (shown for its popularity, not a target);
* last_week_top: the 10 best sellers of the last week;
* risers: the 10 largest rises in units, last week vs the average of the 4 weeks before it;
* random: 10 products drawn at random (mean of 50 seeded draws).

The run first replays the 12 weeks before those (the validation window, on which the weights in
:data:`tools.promotion_scoring.WEIGHTS` were checked; ``--window validate --weights '{...}'`` tries others there),
so the reported weeks were not used to choose them.

    PYTHONPATH=. python benchmarks/planner.py --shop /tmp/planshop
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tools.promotion_scoring import (
    TRAILING_WEEKS,
    Inputs,
    candidate_pool,
    copurchase_reach,
    score_candidates,
    week_history,
)
from tools.training import daily_sales, purchases
from tools.workspace import Shop

K = 10
WEEKS = 12
RANDOM_DRAWS = 50
RESULTS = Path(__file__).resolve().parent / "results"


def _outcome(hist, pool: np.ndarray, actual: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(next-week units, trailing average) of the pool's rows."""
    trailing = hist.units[pool, -TRAILING_WEEKS:].mean(1)
    nxt = np.array([actual.get(hist.product_ids[i], 0.0) for i in pool])
    return nxt, trailing


def _score(sel: np.ndarray, nxt: np.ndarray, trailing: np.ndarray) -> tuple[float, float]:
    """(precision@K, lift) of the pool positions ``sel``."""
    rose = nxt[sel] > trailing[sel]
    return float(rose.mean()), float(nxt[sel].sum() / trailing[sel].sum())


def replay(shop: Shop, weeks_back: range, weights: dict[str, float] | None = None, log=print) -> dict:
    """Per-week and mean precision@K and lift of every strategy over the weeks ``weeks_back`` (1 = last week)."""
    sales, _ = daily_sales(shop)
    buys = purchases(shop)
    buys["date"] = pd.to_datetime(buys["timestamp"], unit="s")
    first = pd.to_datetime(sales["date"]).min().date()
    end = pd.to_datetime(sales["date"]).max().date() + dt.timedelta(days=1)
    day = pd.to_datetime(sales["date"]).to_numpy(dtype="datetime64[D]")
    per_week = []
    for back in weeks_back:
        cutoff = end - dt.timedelta(days=7 * back)
        t0 = time.perf_counter()
        hist = week_history(sales, cutoff, first_day=first)  # reads nothing on or after the cutoff
        nxt_rows = (day >= np.datetime64(cutoff)) & (day < np.datetime64(cutoff + dt.timedelta(days=7)))
        actual = sales.loc[nxt_rows].groupby("product_id")["units"].sum().to_dict()
        pool = candidate_pool(hist)
        pos = {hist.product_ids[i]: j for j, i in enumerate(pool)}
        nxt, trailing = _outcome(hist, pool, actual)
        reach = copurchase_reach(buys, cutoff, [hist.product_ids[i] for i in pool])
        picks: dict[str, np.ndarray] = {}
        popularity: dict[str, float] = {}
        for name, long_tail in (("ours", False), ("ours_long_tail", True)):
            table, missing = score_candidates(hist, Inputs(reach=reach), long_tail=long_tail, weights=weights)
            picks[name] = np.array([pos[p] for p in table["product_id"].head(K)])
            popularity[name] = float(table["popularity_pct"].head(K).mean())
        u = hist.units[pool]
        picks["last_week_top"] = np.argsort(-u[:, -1], kind="stable")[:K]
        picks["risers"] = np.argsort(-(u[:, -1] - u[:, -5:-1].mean(1)), kind="stable")[:K]
        row = {"week": f"{cutoff}..{cutoff + dt.timedelta(days=6)}", "pool": len(pool), "missing": missing,
               "base_rate": float((nxt > trailing).mean()), "popularity_pct_of_picks": popularity}
        for name, sel in picks.items():
            p, lift = _score(sel, nxt, trailing)
            row[name] = {"precision@10": p, "lift": lift}
        rng = np.random.default_rng(back)
        draws = [_score(rng.choice(len(pool), K, replace=False), nxt, trailing) for _ in range(RANDOM_DRAWS)]
        row["random"] = {"precision@10": float(np.mean([d[0] for d in draws])),
                         "lift": float(np.mean([d[1] for d in draws]))}
        per_week.append(row)
        log(f"{row['week']}: pool {len(pool)}, base rate {row['base_rate']:.2f}; "
            + ", ".join(f"{n} {row[n]['precision@10']:.1f}/{row[n]['lift']:.2f}" for n in STRATEGIES)
            + f" ({time.perf_counter() - t0:.1f}s)")
    mean = {n: {m: round(float(np.mean([w[n][m] for w in per_week])), 4) for m in ("precision@10", "lift")}
            for n in STRATEGIES}
    # One week's lift can be huge when a pick with a small trailing average gets a wholesale order; the median
    # week shows whether the mean rests on such a week.
    for n in STRATEGIES:
        mean[n]["median_week_lift"] = round(float(np.median([w[n]["lift"] for w in per_week])), 4)
    for n in ("ours", "ours_long_tail"):
        mean[n]["popularity_pct"] = round(float(np.mean([w["popularity_pct_of_picks"][n] for w in per_week])), 1)
    return {"mean": mean, "weeks": per_week}


STRATEGIES = ("ours", "ours_long_tail", "last_week_top", "risers", "random")
SIMPLE = ("last_week_top", "risers", "random")


def _report(mean: dict) -> tuple[dict[str, str], dict[str, float]]:
    """Print ours against the best simple strategy per metric; return (best strategy, ratio) per metric."""
    best = {m: max(SIMPLE, key=lambda n: mean[n][m]) for m in ("precision@10", "lift")}
    ratio = {m: mean["ours"][m] / mean[best[m]][m] for m in best}
    for m in best:
        print(f"  {m}: ours {mean['ours'][m]:.3f}, best simple {best[m]} {mean[best[m]][m]:.3f}, ratio "
              f"{ratio[m]:.2f} (target 1.2)")
    return best, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shop", required=True, help="The demo shop folder (shopkeeper demo --shop PATH).")
    parser.add_argument("--window", choices=("both", "validate"), default="both",
                        help="both: the validation window, then the replayed weeks (written to results/); "
                             "validate: only the validation window, to try --weights.")
    parser.add_argument("--weights", help="JSON of weights overriding the defaults (validation only).")
    args = parser.parse_args()
    weights = json.loads(args.weights) if args.weights else None
    if weights and args.window != "validate":
        parser.error("--weights is for the validation window; the replay runs the tool's own weights")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    shop = Shop.open(Path(args.shop))
    t0 = time.perf_counter()
    print("validation window (weights were checked here):")
    val = replay(shop, range(2 * WEEKS, WEEKS, -1), weights)
    _report(val["mean"])
    if args.window == "validate":
        return
    print("replayed weeks:")
    res = replay(shop, range(WEEKS, 0, -1))
    seconds = time.perf_counter() - t0
    mean = res["mean"]
    best, ratio = _report(mean)
    RESULTS.mkdir(exist_ok=True)
    doc = {"replay": {n: mean[n] for n in STRATEGIES},
           "validation": {"weeks": [w["week"] for w in val["weeks"]], **{n: val["mean"][n] for n in STRATEGIES}},
           "target": {m: {"best_simple": best[m], "ratio": round(ratio[m], 3), "met": ratio[m] >= 1.2}
                      for m in best},
           "weeks": res["weeks"], "seconds": round(seconds, 1),
           "command": "PYTHONPATH=. nice -n 5 python benchmarks/planner.py --shop /tmp/planshop",
           "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"), "cpus": os.cpu_count()},
           "uptime": load, "python": platform.python_version()}
    (RESULTS / "planner.json").write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    lines = ["# Promotion planner: 12-week replay on the demo shop", "",
             f"Command: `{doc['command']}` ({seconds:.0f} s; {os.cpu_count()} CPUs, OMP_NUM_THREADS="
             f"{doc['threads']['OMP_NUM_THREADS']}; load before the run: `{load}`).", "",
             "Each week every strategy picks 10 products from the same pool with data before the week only. "
             "precision@10 = share of picks that sold more that week than their own trailing 4-week average; "
             "lift = their units that week / the sum of their trailing averages. Means over the 12 weeks.", "",
             "| strategy | precision@10 | lift | median week's lift |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {mean[n]['precision@10']:.3f} | {mean[n]['lift']:.3f} | {mean[n]['median_week_lift']:.3f} |"
              for n in STRATEGIES]
    lines += ["", f"Popularity percentile of the picks (100 = best seller; mean over the weeks): ours "
                  f"{mean['ours']['popularity_pct']:.1f}, ours_long_tail "
                  f"{mean['ours_long_tail']['popularity_pct']:.1f}.",
              "", "Target: ours >= 1.2 x the best simple strategy (last_week_top, risers, random) on each metric.",
              ""]
    lines += [f"* {m}: best simple is {best[m]} ({mean[best[m]][m]:.3f}); ours / it = {ratio[m]:.2f}: "
              f"{'met' if ratio[m] >= 1.2 else 'not met'}." for m in best]
    lines += ["", "Per week (precision@10 / lift; base rate = share of the whole pool that rose):", "",
              "| week | pool | base rate | " + " | ".join(STRATEGIES) + " |",
              "| --- | --- | --- | " + " | ".join("---" for _ in STRATEGIES) + " |"]
    for w in res["weeks"]:
        lines.append(f"| {w['week']} | {w['pool']} | {w['base_rate']:.2f} | " + " | ".join(
            f"{w[n]['precision@10']:.1f} / {w[n]['lift']:.2f}" for n in STRATEGIES) + " |")
    vm = val["mean"]
    lines += ["", f"Validation window ({val['weeks'][0]['week'][:10]}..{val['weeks'][-1]['week'][-10:]}, the 12 weeks "
                  "before; the weights were checked here, not on the weeks above):", "",
              "| strategy | precision@10 | lift | median week's lift |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {vm[n]['precision@10']:.3f} | {vm[n]['lift']:.3f} | {vm[n]['median_week_lift']:.3f} |"
              for n in STRATEGIES]
    lines += ["", f"Signals missing in the demo (never invented): {', '.join(res['weeks'][-1]['missing'])}; "
                  "the forecast signal is the momentum estimate (see the module docstring). The replay measures "
                  "whether picks rose on their own the next week (nothing was promoted), not what a promotion adds; "
                  "co-purchase reach, which is about a promotion's pull, cannot show its worth here.", ""]
    (RESULTS / "planner.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
