"""Analytics speed: how long each customer-behaviour tool takes to answer on the full demo shop.

One command, one run:

    PYTHONPATH=. python benchmarks/analytics_speed.py [--shop PATH] [--repeats K]

Without ``--shop`` the demo shop (UCI Online Retail, 541,909 order lines) is built in a temporary folder first. For
each tool the cached artefacts (churn model, basket pair counts) are deleted, then the tool is called once (cold:
fit or count, then cache) and ``K`` more times (warm: the answer an operator waits for after the first question;
median reported). Everything runs in one process, so "cold" also includes importing numpy for the churn model.
Targets: warm ≤ 1 s. Writes ``benchmarks/results/analytics.md`` and ``analytics.json``
(``{"demo": {"customer_segments": {"seconds": …, "cold_seconds": …}, …}}``).
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


def bench(shop_path: Path, repeats: int) -> list[dict]:
    from tools.registry import by_name
    from tools.workspace import Shop

    shop = Shop.open(shop_path)
    for rel in CACHES:
        (shop.models_dir / rel).unlink(missing_ok=True)
    rows = []
    for name, args, what in CASES:
        spec = by_name(name)
        t0 = time.perf_counter()
        spec.run(shop, **args)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            spec.run(shop, **args)
            warm.append(time.perf_counter() - t0)
        rows.append({"tool": name, "args": args, "what": what, "cold_seconds": round(cold, 3),
                     "seconds": round(statistics.median(warm), 3), "max_seconds": round(max(warm), 3)})
        print(f"{name} {args}: cold {cold:.3f} s, warm median {rows[-1]['seconds']:.3f} s", file=sys.stderr)
    return rows


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
        rows = bench(shop_path.resolve(), args.repeats)
    load_after = uptime()

    threads = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0]
    blas = ", ".join(f"{v}={os.environ[v]}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                     if v in os.environ) or "OMP/OpenBLAS/MKL unset (library defaults)"
    command = " ".join(["PYTHONPATH=. python", "benchmarks/analytics_speed.py", *sys.argv[1:]])
    results: dict[str, dict] = {"demo": {}}
    for r in rows:
        key = r["tool"] if r["tool"] not in results["demo"] else f"{r['tool']}_one_product"
        results["demo"][key] = {k: r[k] for k in ("seconds", "cold_seconds", "max_seconds", "args")}
    results["settings"] = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                           "python": platform.python_version(), "duckdb": duckdb.__version__,
                           "duckdb_threads": threads, "blas_threads": blas, "repeats": args.repeats,
                           "load_before": load_before, "load_after": load_after,
                           "date": f"{dt.datetime.now():%Y-%m-%d %H:%M}"}
    md = ["# Analytics speed (full demo shop)", "", f"Command: `{command}`", "",
          "| setting | value |", "| --- | --- |",
          *(f"| {k} | {v} |" for k, v in results["settings"].items() if k != "command"), "",
          "Warm = median of the repeated calls with the caches in place (target ≤ 1 s); cold = the first call "
          "after the caches were deleted (fits the churn model / counts all basket pairs, then caches them).", "",
          "| tool | what | warm s | max warm s | cold s |", "| --- | --- | ---: | ---: | ---: |"]
    md += [f"| `{r['tool']}` | {r['what']} | {r['seconds']:.3f} | {r['max_seconds']:.3f} | {r['cold_seconds']:.3f} |"
           for r in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analytics.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (RESULTS / "analytics.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
