"""Analytics speed: how long each customer-behaviour tool takes to answer on the full demo shop.

One command, one run:

    PYTHONPATH=. python benchmarks/analytics_speed.py [--shop PATH] [--repeats K]

Without ``--shop`` the demo shop (UCI Online Retail, 541,909 order lines) is built in a temporary folder first. For
each tool: a cold call with the cached artefacts (churn model, basket pair counts) deleted; then the analytics
training step that `shopkeeper demo` and `shopkeeper train` run (it fits and caches both), the first call after it
(what an operator's first question costs) and ``K`` more (warm, median reported). Target: ≤ 1 s per tool.
Writes ``benchmarks/results/analytics.md`` and ``analytics.json``
(``{"demo": {"customer_segments": {"first_seconds": …, "seconds": …, "cold_seconds": …}, …}}``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
CASES = (  # (tool, arguments, what it does)
    ("customer_segments", {}, "RFM scores and 11 segments of every customer"),
    ("churn_risk", {"top_k": 20}, "P(churn) of every customer, top 20 by value at risk"),
    ("cohort_retention", {"months": 12}, "12 monthly cohorts x months since first order"),
    ("basket_pairs", {"top_k": 10}, "all pairs in ≥ 1% of orders, top 10 by lift"),
    ("basket_pairs", {"product_id": "22697", "top_k": 10}, "pairs of one product (22697)"),
    ("sales_overview", {}, "last 30 days vs previous and last year (reference)"),
)
CACHES = ("churn/model.json", "basket/pairs.json")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def bench(shop_path: Path, repeats: int) -> tuple[list[dict], float]:
    """Per tool: cold (no caches), then, after the analytics training step, the first call and ``repeats`` more."""
    from tools.registry import by_name
    from tools.training import train_analytics
    from tools.workspace import Shop

    shop = Shop.open(shop_path)

    def drop_caches() -> None:
        for rel in CACHES:
            (shop.models_dir / rel).unlink(missing_ok=True)

    cold = {}
    for i, (name, args, _) in enumerate(CASES):
        drop_caches()
        t0 = time.perf_counter()
        by_name(name).run(shop, **args)
        cold[i] = time.perf_counter() - t0
    drop_caches()
    t0 = time.perf_counter()
    train_analytics(shop, lambda frac, text: None)  # what `shopkeeper demo` and `shopkeeper train` run
    step_s = time.perf_counter() - t0
    rows = []
    for i, (name, args, what) in enumerate(CASES):
        spec = by_name(name)
        t0 = time.perf_counter()
        spec.run(shop, **args)
        first = time.perf_counter() - t0
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            spec.run(shop, **args)
            warm.append(time.perf_counter() - t0)
        rows.append({"tool": name, "args": args, "what": what, "first_seconds": round(first, 3),
                     "cold_seconds": round(cold[i], 3), "seconds": round(statistics.median(warm), 3),
                     "max_seconds": round(max(warm), 3)})
        print(f"{name} {args}: first {first:.3f} s, warm median {rows[-1]['seconds']:.3f} s, "
              f"cold {cold[i]:.3f} s", file=sys.stderr)
    return rows, step_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", type=Path, help="an existing demo shop (default: build one in a temp folder)")
    parser.add_argument("--repeats", type=int, default=5, help="warm calls per tool (median reported)")
    args = parser.parse_args()

    import duckdb

    load_before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        shop_path = args.shop
        if shop_path is None:
            from tools.demo import build_demo_shop

            shop_path = Path(tmp) / "demo"
            build_demo_shop(shop_path)
        rows, step_s = bench(shop_path.resolve(), args.repeats)
    load_after = uptime()

    threads = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0]
    blas = ", ".join(f"{v}={os.environ[v]}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                     if v in os.environ) or "OMP/OpenBLAS/MKL unset (library defaults)"
    command = " ".join(["PYTHONPATH=. python", "benchmarks/analytics_speed.py", *sys.argv[1:]])
    results: dict[str, dict] = {"demo": {}}
    for r in rows:
        key = r["tool"] if r["tool"] not in results["demo"] else f"{r['tool']}_one_product"
        results["demo"][key] = {k: r[k] for k in ("first_seconds", "seconds", "cold_seconds", "max_seconds", "args")}
    results["demo"]["analytics_training_step"] = {"seconds": round(step_s, 3)}
    results["settings"] = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                           "python": platform.python_version(), "duckdb": duckdb.__version__,
                           "duckdb_threads": threads, "blas_threads": blas, "repeats": args.repeats,
                           "load_before": load_before, "load_after": load_after,
                           "date": f"{dt.datetime.now():%Y-%m-%d %H:%M}"}
    md = ["# Analytics speed (full demo shop)", "", f"Command: `{command}`", "",
          "| setting | value |", "| --- | --- |",
          *(f"| {k} | {v} |" for k, v in results["settings"].items() if k != "command"), "",
          "Target: each tool answers in ≤ 1 s. `shopkeeper demo` and `shopkeeper train` end with the analytics "
          f"training step (fits the churn model, counts all basket pairs, caches both): {step_s:.2f} s here. "
          "First = the first call after that step, which is what an operator's first question costs; warm = "
          "median (and max) of the repeated calls; cold = a call with the caches deleted (no training step).", "",
          "| tool | what | first s | warm s | max warm s | cold s |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    md += [f"| `{r['tool']}` | {r['what']} | {r['first_seconds']:.3f} | {r['seconds']:.3f} | {r['max_seconds']:.3f} "
           f"| {r['cold_seconds']:.3f} |" for r in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analytics.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (RESULTS / "analytics.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
