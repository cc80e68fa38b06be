"""Agent benchmark: how well each model drives the real agent on the demo shop.

One command:

    PYTHONPATH=. python benchmarks/agent_eval.py [--models local-1.5b local-0.5b] [--limit N] [--questions FILE]

Every question of ``benchmarks/agent_questions.json`` goes through the real agent (``Assistant.stream``, a new
conversation each, asked one after the other; a local model is loaded once per model and reused). Per model:

* ``tool_selection``: share of questions whose tool calls include one of the question's expected tools (``any_of``);
* ``grounded``: share of final answers (after the retry / fallback) whose figures all trace to a tool result;
* ``facts``: share of the expected facts present in the final answers. A fact is a named computation of
  ``benchmarks/agent_facts.py`` over the raw demo file, independent of the tools; it is present when some figure of
  the answer states it in any reasonable rendering (separators, rounding, k/M/万 scales), judged by
  ``assistant.grounding.extract_figures``/``matches``;
* ``median_s`` / ``p95_s``: wall-clock seconds per question, from asking to the final answer.

Models: ``local-1.5b``, ``local-0.5b`` (the packaged GGUF models) and, when OPENAI_API_KEY is set, ``openai`` (or
``openai:MODEL``; base URL from OPENAI_BASE_URL). Writes ``benchmarks/results/agent.md`` (for people) and
``agent.json`` (``{model: {tool_selection, grounded, facts, median_s, p95_s}}``, shares as 0..1).
The demo shop is built once into ``--shop`` (default: a folder in the temp dir) when it is not there yet.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import agent_facts  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "agent_questions.json"
RESULTS = ROOT / "benchmarks" / "results"
LOCAL_MODELS = {"local-1.5b": "1.5b", "local-0.5b": "0.5b"}


# -- the question file -------------------------------------------------------------------------------------------

def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    """The questions of ``path``, checked for shape (raises ValueError naming the bad entry)."""
    questions = json.loads(Path(path).read_text(encoding="utf-8"))["questions"]
    seen: set[str] = set()
    for q in questions:
        where = f"question {q.get('id', '?')!r} of {path}"
        missing = {"id", "language", "question", "tools", "facts"} - set(q)
        if missing:
            raise ValueError(f"{where} lacks {', '.join(sorted(missing))}")
        if q["id"] in seen:
            raise ValueError(f"{where}: duplicate id")
        seen.add(q["id"])
        if q["language"] not in ("en", "zh"):
            raise ValueError(f"{where}: language must be en or zh")
        if not q["tools"].get("any_of"):
            raise ValueError(f"{where}: tools.any_of must name at least one tool")
        if not q["facts"]:
            raise ValueError(f"{where}: no facts")
        for fact in q["facts"]:
            if fact.get("name") not in agent_facts.FACTS:
                raise ValueError(f"{where}: unknown fact {fact.get('name')!r}")
    return questions


def pick(questions: list[dict[str, Any]], limit: int | None, ids: list[str] | None) -> list[dict[str, Any]]:
    """``ids`` if given; else the first ``limit`` taken in turn from each language; grouped by language.

    Questions run grouped by language because each language has its own system prompt, which a local model reads
    once into its prompt cache.
    """
    if ids:
        chosen = [q for q in questions if q["id"] in ids]
    elif limit:
        by_lang: dict[str, list[dict[str, Any]]] = {}
        for q in questions:
            by_lang.setdefault(q["language"], []).append(q)
        chosen, i = [], 0
        while len(chosen) < min(limit, len(questions)):
            for qs in by_lang.values():
                if i < len(qs) and len(chosen) < limit:
                    chosen.append(qs[i])
            i += 1
    else:
        chosen = list(questions)
    return sorted(chosen, key=lambda q: q["language"])


# -- scoring -----------------------------------------------------------------------------------------------------

def fact_present(text: str, value: float) -> bool:
    """Whether some figure of ``text`` states ``value`` (any rounding/scale the figure shows)."""
    from assistant.grounding import extract_figures, matches

    return any(matches(fig, float(value)) for fig in extract_figures(text))


def score(question: dict[str, Any], answer: Any, seconds: float, expected: list[float], error: str = "") -> dict:
    calls = list(answer.tool_calls) if answer is not None else []
    text = answer.text if answer is not None else ""
    names = [c.name for c in calls]
    facts = [{"fact": agent_facts.describe(f), "expected": v, "hit": fact_present(text, v)}
             for f, v in zip(question["facts"], expected)]
    return {
        "id": question["id"], "language": question["language"], "question": question["question"],
        "tools_called": [{"name": c.name, "args": c.args, "ok": c.ok} for c in calls],
        "tool_hit": any(n in question["tools"]["any_of"] for n in names),
        "facts": facts,
        "grounded": bool(answer is not None and answer.grounded and not answer.incomplete),
        "fallback": getattr(answer, "fallback", ""), "incomplete": getattr(answer, "incomplete", True),
        "error": error or getattr(answer, "error", ""),
        "seconds": round(seconds, 1), "answer": text,
        # what the grounding benchmark replays: each call's text and data as the model saw them
        "tool_results": [{"call_id": c.call_id, "name": c.name, "ok": c.ok, "summary": c.summary,
                          "data": (c.result or {}).get("data")} for c in calls],
        "draft_unmatched": list(getattr(answer, "ungrounded", []) or []),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    n_facts = sum(len(r["facts"]) for r in rows)
    secs = [r["seconds"] for r in rows]
    return {
        "tool_selection": round(sum(r["tool_hit"] for r in rows) / len(rows), 3),
        "grounded": round(sum(r["grounded"] for r in rows) / len(rows), 3),
        "facts": round(sum(f["hit"] for r in rows for f in r["facts"]) / n_facts, 3),
        "median_s": round(statistics.median(secs), 1),
        "p95_s": round(percentile(secs, 95), 1),
    }


# -- running -----------------------------------------------------------------------------------------------------

def settings_for(model: str) -> Any:
    from assistant.config import load_settings

    settings = load_settings()
    if model in LOCAL_MODELS:
        provider = settings.provider.model_copy(update={"name": "local"})
        local = settings.local.model_copy(update={"variant": LOCAL_MODELS[model]})
        return settings.model_copy(update={"provider": provider, "local": local})
    if model == "openai" or model.startswith("openai:"):
        name = model.split(":", 1)[1] if ":" in model else (settings.provider.model or "gpt-4o-mini")
        provider = settings.provider.model_copy(update={"name": "openai", "model": name})
        return settings.model_copy(update={"provider": provider})
    raise SystemExit(f"Unknown model {model!r}: use {', '.join(LOCAL_MODELS)}, openai or openai:MODEL.")


async def _ask(bot: Any, question: str) -> Any:
    from assistant.events import AnswerDone

    answer = None
    async for event in bot.stream(question):
        if isinstance(event, AnswerDone):
            answer = event.answer
    return answer


def run_model(model: str, shop: Path, questions: list[dict[str, Any]], expected: dict[str, list[float]]) -> dict:
    from assistant import Assistant

    bot = Assistant.open(shop=str(shop), settings=settings_for(model))
    info: dict[str, Any] = {"provider": bot.provider_name}
    runtime = getattr(bot.model, "runtime", None)
    try:
        if runtime is not None:
            t0 = time.perf_counter()
            runtime.start()
            info.update(load_s=round(time.perf_counter() - t0, 1), threads=runtime.n_threads,
                        threads_batch=runtime.n_threads_batch, n_ctx=runtime.n_ctx,
                        model_file=Path(str(runtime.model_path or runtime._resolve_model_path())).name)
        rows = []
        for i, q in enumerate(questions, 1):
            t0 = time.perf_counter()
            answer, error = None, ""
            try:
                answer = asyncio.run(_ask(bot, q["question"]))
            except Exception as exc:  # noqa: BLE001 - a failed question is scored as failed, the run goes on
                error = f"{type(exc).__name__}: {exc}"
            row = score(q, answer, time.perf_counter() - t0, expected[q["id"]], error)
            rows.append(row)
            hits = sum(f["hit"] for f in row["facts"])
            print(f"[{model} {i}/{len(questions)}] {q['id']}: {row['seconds']} s, tools "
                  f"{[c['name'] for c in row['tools_called']]}, facts {hits}/{len(row['facts'])}, grounded "
                  f"{row['grounded']}{' (' + row['fallback'] + ')' if row['fallback'] else ''}"
                  f"{' ERROR ' + row['error'] if row['error'] else ''}", file=sys.stderr, flush=True)
    finally:
        bot.close()
    return {"info": info, "rows": rows, "summary": summarise(rows)}


def ensure_shop(path: Path) -> Path:
    if not (path / "shop.duckdb").exists():
        from tools.demo import build_demo_shop

        print(f"Building the demo shop in {path} …", file=sys.stderr, flush=True)
        build_demo_shop(path)
    return path


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the report --------------------------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _call(c: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in c["args"].items())
    return f"`{c['name']}({args})`" + ("" if c["ok"] else " ✗")


def report(results: dict[str, dict], meta: dict[str, Any]) -> str:
    out = ["# Agent benchmark", "",
           f"`{meta['command']}` on {meta['machine']}, {meta['date']}; {meta['n_questions']} questions "
           f"({meta['languages']}) from `{meta['questions_file']}`, each a new conversation, asked in turn.", "",
           f"Machine load (`uptime`) before: `{meta['uptime_before']}`; after: `{meta['uptime_after']}`.", "",
           "Targets for the local 1.5B model: tool selection ≥ 90%, grounded 100% (after fallback), facts ≥ 90%, "
           "median ≤ 20 s.", "",
           "| model | tool selection | grounded | facts | median s | p95 s | fallbacks | load s | threads |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for model, res in results.items():
        s, info, rows = res["summary"], res["info"], res["rows"]
        fallbacks = sum(r["fallback"] == "tool_summaries" for r in rows)
        threads = f"{info['threads']} decode / {info['threads_batch']} prompt" if "threads" in info else "—"
        out.append(f"| {model} | {_pct(s['tool_selection'])} | {_pct(s['grounded'])} | {_pct(s['facts'])} | "
                   f"{s['median_s']} | {s['p95_s']} | {fallbacks} | {info.get('load_s', '—')} | {threads} |")
    out += ["", "tool selection: a call to one of the question's expected tools; grounded: every figure of the final "
            "answer traced to a tool result (after retry/fallback); facts: expected figures (computed from the raw "
            "demo file with pandas, `benchmarks/agent_facts.py`) present in the final answer; fallbacks: answers "
            "replaced by the tools' own summaries. Seconds are wall-clock per question with the model already loaded "
            "(the first question of each language also reads its system prompt)."]
    for model, res in results.items():
        out += ["", f"## {model}", "",
                "| question | tools called | facts | grounded | s |", "| --- | --- | --- | --- | ---: |"]
        for r in res["rows"]:
            calls = "<br>".join(_call(c) for c in r["tools_called"]) or "—"
            if not r["tool_hit"]:
                calls += " (expected " + " or ".join(res.get("expected_tools", {}).get(r["id"], [])) + ")"
            facts = " ".join(("✓" if f["hit"] else "✗") + f" {f['fact']}={f['expected']:,}" for f in r["facts"])
            grounded = ("yes" if r["grounded"] else "**no**") + (f" ({r['fallback']})" if r["fallback"] else "")
            if r["error"]:
                grounded += f" — {r['error'][:80]}"
            out.append(f"| `{r['id']}` | {calls} | {facts} | {grounded} | {r['seconds']} |")
        out += ["", "<details><summary>Answers</summary>", ""]
        for r in res["rows"]:
            text = " ".join(r["answer"].split())
            out.append(f"* `{r['id']}` {r['question']} → {text[:400]}{'…' if len(text) > 400 else ''}")
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_models = ["local-1.5b"] + (["openai"] if os.environ.get("OPENAI_API_KEY") else [])
    parser.add_argument("--models", nargs="+", default=default_models,
                        help="local-1.5b, local-0.5b, openai or openai:MODEL (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="ask only N questions, taken in turn from each language")
    parser.add_argument("--ids", nargs="+", help="ask only these question ids")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question file (default: %(default)s)")
    parser.add_argument("--shop", type=Path, default=Path(tempfile.gettempdir()) / "shopkeeper-agent-eval-shop",
                        help="demo shop folder, built when missing (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: %(default)s)")
    args = parser.parse_args(argv)

    questions = pick(load_questions(args.questions), args.limit, args.ids)
    if not questions:
        raise SystemExit("No questions selected.")
    expected = {q["id"]: [agent_facts.compute(f) for f in q["facts"]] for q in questions}
    shop = ensure_shop(args.shop)
    before = uptime()
    results: dict[str, dict] = {}
    for model in args.models:
        results[model] = run_model(model, shop, questions, expected)
        results[model]["expected_tools"] = {q["id"]: q["tools"]["any_of"] for q in questions}
        write(results, questions, args, argv, before)  # after each model, so a stopped run keeps what it measured
    print(json.dumps({m: r["summary"] for m, r in results.items()}, indent=2))
    return 0


def write(results: dict[str, dict], questions: list[dict[str, Any]], args: argparse.Namespace,
          argv: list[str] | None, before: str) -> None:
    langs = {lang: sum(q["language"] == lang for q in questions) for lang in ("en", "zh")}
    meta = {
        "command": "PYTHONPATH=. python benchmarks/agent_eval.py " + " ".join(argv if argv is not None
                                                                             else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "n_questions": len(questions),
        "languages": ", ".join(f"{n} {lang}" for lang, n in langs.items() if n),
        "questions_file": os.path.relpath(args.questions, ROOT), "uptime_before": before, "uptime_after": uptime(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agent.md").write_text(report(results, meta), encoding="utf-8")
    (args.out / "agent.json").write_text(json.dumps({m: r["summary"] for m, r in results.items()}, indent=2) + "\n",
                                         encoding="utf-8")
    (args.out / "agent_answers.json").write_text(json.dumps(
        {"meta": meta, **{m: {"info": r["info"], "rows": r["rows"]} for m, r in results.items()}},
        ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
