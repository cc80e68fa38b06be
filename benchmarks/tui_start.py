"""Chat start-up: time from launching a process to an interactive prompt, and to a warmed-up model.

Usage: ``python benchmarks/tui_start.py [--shop PATH] [--runs N] [--provider local|openai|none]``

Each run starts a fresh Python process that opens the chat headless on the shop (built with ``shopkeeper demo``
if missing) and reports when the first frame with the focused prompt is on screen ("interactive"), and, once per
benchmark, when the assistant finished warming up (the local model loaded and its system prompt read).
Writes ``benchmarks/results/tui_start.md`` and ``tui_start.json``
(``{"demo": {"shopkeeper": {"interactive_s": …, "model_ready_s": …}}}``). Target: interactive ≤ 1.5 s.
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
RESULTS = ROOT / "benchmarks" / "results"

CHILD = r"""
import os, sys, time
from pathlib import Path
from assistant.app.app import ShopkeeperApp, create_app
from assistant.config import load_settings
from tools.workspace import Shop

wait_model = sys.argv[2] == "1"
provider = sys.argv[3]

def on_ready(self):
    if self.focused is not None and self.focused.id == "prompt":
        print(f"interactive {time.time()}", flush=True)
    if not wait_model:
        os._exit(0)

original = ShopkeeperApp._assistant_is_ready
def model_ready(self):
    original(self)
    print(f"model_ready {time.time()}", flush=True)
    os._exit(0)

ShopkeeperApp.on_ready = on_ready
if wait_model:
    ShopkeeperApp._assistant_is_ready = model_ready
settings = load_settings()
if provider != "auto":
    settings.provider.name = provider
factory = (lambda s: None) if provider == "none" else None
app = create_app(Shop.open(Path(sys.argv[1])), settings, factory)
app.run(headless=True, size=(100, 30))
"""


def one_run(shop: Path, wait_model: bool, provider: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, str(shop), "1" if wait_model else "0", provider],
                         capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    marks = {}
    for line in out.stdout.splitlines():
        name, _, stamp = line.partition(" ")
        if name in ("interactive", "model_ready"):
            marks[f"{name}_s"] = round(float(stamp) - t0, 3)
    if "interactive_s" not in marks:
        raise RuntimeError(f"the chat did not report an interactive prompt:\n{out.stdout}\n{out.stderr[-2000:]}")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", type=Path, default=None, help="shop folder (default: a fresh demo shop)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--provider", default="local", choices=["local", "openai", "auto", "none"],
                        help="provider warmed up in the model-ready run ('none' skips it)")
    args = parser.parse_args()
    shop = args.shop
    tmp = None
    if shop is None:
        tmp = tempfile.TemporaryDirectory()
        shop = Path(tmp.name) / "demo"
        subprocess.run([sys.executable, "-m", "assistant.cli", "demo", "--no-chat", "--shop", str(shop)],
                       check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    load_before = os.getloadavg()
    runs = [one_run(shop, False, "none")["interactive_s"] for _ in range(args.runs)]
    ready = one_run(shop, True, args.provider) if args.provider != "none" else {}
    load_after = os.getloadavg()
    result = {"interactive_s": round(statistics.median(runs), 3), "interactive_runs": runs}
    if ready.get("model_ready_s") is not None:
        result["model_ready_s"] = ready["model_ready_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tui_start.json").write_text(json.dumps({"demo": {"shopkeeper": result}}, indent=2) + "\n")
    md = ["# Chat start-up", "",
          f"`python benchmarks/tui_start.py {' '.join(sys.argv[1:])}`".replace(" `", "`") + f" on {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f} (1-min); {dt.datetime.now():%Y-%m-%d %H:%M}.", "",
          "| measure | seconds | target |", "| --- | ---: | --- |",
          f"| launch → interactive prompt (median of {len(runs)}: {', '.join(f'{r:.2f}' for r in runs)}) | "
          f"{result['interactive_s']:.2f} | ≤ 1.5 s |"]
    if "model_ready_s" in result:
        md.append(f"| launch → {args.provider} model warmed up (prompt usable meanwhile) | "
                  f"{result['model_ready_s']:.1f} | — |")
    md.append("")
    (RESULTS / "tui_start.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
