"""Import speed: the demo shop, a 1,000,000-row synthetic orders CSV, and `shopkeeper --help` start-up.

Usage: ``python benchmarks/import_speed.py [--rows N] [--repeats K]``

Writes ``benchmarks/results/import.md`` (table) and ``benchmarks/results/import.json``
(``{"demo": {"shopkeeper": {"seconds": …}}, "synthetic_1m": {"shopkeeper": {"seconds": …, "rows_per_s": …}},
"cli_help": {"shopkeeper": {"seconds": …}}}``). Targets: the 1M-row file in ≤ 15 s; `--help` in ≤ 0.5 s.

The synthetic file is made to look like a real export: several lines per order, repeated customers and products,
a few cancellations, a Chinese product title now and then, and 0.1% broken records (bad numbers, ragged rows), so
the validation and quarantine paths are part of what is timed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def make_orders_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    start = dt.datetime(2023, 1, 1)
    titles = [f"PRODUCT {i} GIFT SET" for i in range(3000)] + [f"蓝色马克杯 {i}号" for i in range(200)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                    "Country"])
        order, left = 100000, 0
        for i in range(rows):
            if left == 0:
                order += 1
                left = rng.randint(1, 20)
                when = start + dt.timedelta(minutes=order - 100000)
                customer = str(rng.randint(10000, 30000)) if rng.random() > 0.2 else ""
                cancelled = rng.random() < 0.02
            left -= 1
            p = rng.randint(0, len(titles) - 1)
            qty = rng.randint(1, 24) * (-1 if cancelled else 1)
            row = [f"C{order}" if cancelled else str(order), f"{20000 + p}", titles[p], str(qty),
                   when.strftime("%Y-%m-%d %H:%M:%S"), f"{rng.uniform(0.2, 40):.2f}", customer, "United Kingdom"]
            if rng.random() < 0.001:
                if rng.random() < 0.5:
                    row[3] = "many"
                else:
                    row = row[:5]
            w.writerow(row)


def time_help(repeats: int) -> float:
    exe = shutil.which("shopkeeper")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "assistant.cli", "--help"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the synthetic orders CSV")
    parser.add_argument("--repeats", type=int, default=5, help="runs of `shopkeeper --help` (median reported)")
    args = parser.parse_args()

    from tools.demo import build_demo_shop
    from tools.importer import import_file
    from tools.workspace import Shop

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        reports = build_demo_shop(tmp / "demo")
        demo_s = time.perf_counter() - t0
        demo_records = sum(r.records for r in reports)

        csv_path = tmp / "orders_1m.csv"
        make_orders_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        t0 = time.perf_counter()
        report = import_file(Shop.create(tmp / "big"), csv_path, "orders")
        big_s = time.perf_counter() - t0
        assert report.records == args.rows, report
    help_s = time_help(args.repeats)
    load_after = os.getloadavg()

    results = {
        "demo": {"shopkeeper": {"seconds": round(demo_s, 2), "records": demo_records}},
        f"synthetic_{args.rows // 1000}k" if args.rows != 1_000_000 else "synthetic_1m": {
            "shopkeeper": {"seconds": round(big_s, 2), "rows_per_s": round(args.rows / big_s),
                           "quarantined": report.quarantined, "file_mb": round(size_mb, 1)}},
        "cli_help": {"shopkeeper": {"seconds": round(help_s, 3)}},
    }
    env = (f"`{' '.join(['python', 'benchmarks/import_speed.py', *sys.argv[1:]])}` on {platform.machine()}, "
           f"{os.cpu_count()} cores, Python {platform.python_version()}, DuckDB default threads "
           f"({os.cpu_count()}); load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
           f"(1-min); {dt.datetime.now():%Y-%m-%d %H:%M}.")
    md = [
        "# Import speed", "", env, "",
        "| what | records | seconds | rows/s | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| demo shop (3 files, Parquet) | {demo_records:,} | {demo_s:.1f} | {demo_records / demo_s:,.0f} | — |",
        f"| synthetic orders CSV ({size_mb:.0f} MB, {report.quarantined:,} quarantined) | {args.rows:,} | "
        f"{big_s:.1f} | {args.rows / big_s:,.0f} | ≤ 15 s for 1M rows |",
        f"| `shopkeeper --help` (median of {args.repeats}) | — | {help_s:.2f} | — | ≤ 0.5 s |",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import.md").write_text("\n".join(md), encoding="utf-8")
    (RESULTS / "import.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
