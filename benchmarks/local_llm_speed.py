"""Measure the local model runtime: load time, prompt and generation speed, prefix-cache reuse, RAM.

Run: ``PYTHONPATH=. python benchmarks/local_llm_speed.py [--variant 1.5b] [--model PATH]``.
Prints one JSON object. Timings on a shared machine are noisy, so the load average is recorded
next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from assistant.local_llm import LocalLlamaRuntime

# About 1,100 tokens, like a real system prompt with tool descriptions: the cost of reading it
# once, and again from the KV cache, is what decides how responsive the chat feels.
_RULES = [
    "Answer the shop operator's question using only numbers returned by tools.",
    "Name the table, period and filter behind every figure you quote.",
    "When a forecast is given, quote its range and its backtest error against the naive baseline.",
    "When you recommend products, give the reason for each pick in one short sentence.",
    "If a tool fails, say what went wrong and what the operator can do about it.",
    "Keep answers short: at most five sentences unless the operator asks for detail.",
    "Reply in the operator's language, Chinese or English.",
    "Never reveal customer e-mail addresses or phone numbers.",
]


def _system_prompt(target_words: int = 800) -> str:
    lines, words, n = [], 0, 0
    while words < target_words:
        rule = f"{n + 1}. {_RULES[n % len(_RULES)]} (section {n // len(_RULES) + 1})"
        lines.append(rule)
        words += len(rule.split())
        n += 1
    return "You are Shopkeeper, an assistant for online shop operators.\n" + "\n".join(lines)


def _rss_mib() -> dict[str, float]:
    status = Path("/proc/self/status").read_text().splitlines()
    wanted = ("VmRSS", "VmHWM", "RssAnon", "RssFile")  # RssFile: the mmap'd model, shareable
    fields = {line.split(":")[0]: line.split()[1] for line in status if line.startswith(wanted)}
    return {key: round(int(value) / 1024, 1) for key, value in fields.items()}


def measure(runtime: LocalLlamaRuntime) -> dict[str, Any]:
    """Run the measurements on a fresh runtime and return them."""
    started = time.perf_counter()
    runtime.start()
    result: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 2), "ram_after_load_mib": _rss_mib()}
    system = {"role": "system", "content": _system_prompt()}

    def ask(question: str, max_tokens: int) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        t0 = time.perf_counter()
        runtime.chat([system, {"role": "user", "content": question}], max_tokens=max_tokens, stats=stats)
        timings = stats["timings"]
        return {
            "wall_s": round(time.perf_counter() - t0, 2),
            "prompt_tokens": stats["usage"]["prompt_tokens"],
            "cached_tokens": timings.get("cache_n", 0),
            "prompt_read": timings["prompt_n"],
            "prompt_s": round(timings["prompt_ms"] / 1000, 2),
            "prompt_tok_per_s": round(timings["prompt_per_second"], 1),
            "generated": timings["predicted_n"],
            "gen_tok_per_s": round(timings["predicted_per_second"], 1),
        }

    result["cold_system_prompt"] = ask("Which product sold best last week?", 8)
    result["cached_system_prompt"] = ask("How many orders came in yesterday?", 8)
    result["generation"] = ask("Write three sentences about keeping a small shop's stock tidy.", 96)
    result["ram_peak_mib"] = _rss_mib()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="1.5b")
    parser.add_argument("--model", default=None, help="any GGUF file instead of the packaged model")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--threads-batch", type=int, default=None)
    args = parser.parse_args()
    runtime = LocalLlamaRuntime(args.model, variant=args.variant, n_ctx=args.n_ctx,
                                n_threads=args.threads, n_threads_batch=args.threads_batch)
    try:
        figures = measure(runtime)
    finally:
        runtime.close()
    figures.update(variant=args.variant if args.model is None else args.model, n_ctx=args.n_ctx,
                   threads=runtime.n_threads, threads_batch=runtime.n_threads_batch,
                   cpus=os.cpu_count(), load_average=[round(x, 2) for x in os.getloadavg()])
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
