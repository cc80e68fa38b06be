"""Grounding benchmark: does the checker trace every figure of real answers, and catch a changed one?

One command, one run:

    PYTHONPATH=. python benchmarks/grounding.py [--answers benchmarks/results/agent_answers.json] [--seed 0]

Input: the agent benchmark's answers (``benchmarks/agent_eval.py`` keeps each answer with the question and every
tool call's text and data as the model saw them). For each final answer:

* **traced**: share of its figures (numbers, percentages, amounts, dates) that the checker matched to a tool result,
  the question or a declared derivation; target 100%;
* **false flags**: unmutated answers the checker flags; target 0;
* **mutation caught**: one figure of the answer (not a bare integer up to 10, which the checker exempts) changed — a digit changed, the value scaled by 1.1, or two digits
  swapped; each kind once per answer that has a traceable figure — and the changed answer checked again; caught
  when the checker flags it; target ≥ 95%. A mutation that happens to land on another value the tools returned is
  counted as missed, not removed.

Writes the ``grounding`` section of ``benchmarks/results/trust.{md,json}`` (see ``benchmarks/trust_results.py``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.events import ToolCall  # noqa: E402
from assistant.grounding import check, extract_figures, normalise  # noqa: E402
from benchmarks import trust_results  # noqa: E402

ANSWERS = ROOT / "benchmarks" / "results" / "agent_answers.json"
KINDS = ("digit", "scale", "swap")


def calls_of(row: dict[str, Any]) -> list[ToolCall]:
    return [ToolCall(call_id=c["call_id"], name=c["name"], args={}, ok=c["ok"], summary=c["summary"] or "",
                     result={"data": c["data"]} if c["ok"] else None) for c in row["tool_results"]]


def _digit(num: str, rng: random.Random) -> str | None:
    positions = [i for i, ch in enumerate(num) if ch.isdigit()]
    if not positions:
        return None
    i = rng.choice(positions)
    new = str((int(num[i]) + rng.randint(1, 9)) % 10)
    if i == positions[0] and new == "0":
        new = "9" if num[i] != "9" else "1"
    return num[:i] + new + num[i + 1:]


def _scale(num: str, rng: random.Random) -> str | None:
    decimals = len(num.split(".")[1]) if "." in num else 0
    value = float(num.replace(",", "")) * 1.1
    return f"{value:,.{decimals}f}" if "," in num else f"{value:.{decimals}f}"


def _swap(num: str, rng: random.Random) -> str | None:
    pairs = [i for i in range(len(num) - 1) if num[i].isdigit() and num[i + 1].isdigit() and num[i] != num[i + 1]]
    if not pairs:
        return None
    i = rng.choice(pairs)
    return num[:i] + num[i + 1] + num[i] + num[i + 2:]


MUTATE = {"digit": _digit, "scale": _scale, "swap": _swap}


def mutate(answer: str, fig_text: str, kind: str, rng: random.Random) -> str | None:
    """``answer`` with the number inside ``fig_text`` changed by ``kind``; None when that kind does not apply."""
    text = normalise(answer)
    m = re.search(r"\d[\d,]*(?:\.\d+)?", fig_text)
    if m is None or fig_text not in text:
        return None
    new_num = MUTATE[kind](m.group(), rng)
    if new_num is None or new_num == m.group():
        return None
    new_fig = fig_text[:m.start()] + new_num + fig_text[m.end():]
    return text.replace(fig_text, new_fig, 1)


def evaluate(rows: list[dict[str, Any]], seed: int) -> tuple[dict[str, Any], list[str], list[list[str]]]:
    rng = random.Random(seed)
    traced = untraced = false_flags = answers = 0
    caught = {k: 0 for k in KINDS}
    tried = {k: 0 for k in KINDS}
    misses: list[str] = []
    flagged: list[str] = []
    for row in rows:
        if row.get("incomplete") or not row.get("answer"):
            continue
        calls = calls_of(row)
        report = check(row["answer"], calls, row["question"])
        answers += 1
        traced += len(report.citations)
        untraced += len(report.unmatched)
        if report.unmatched:
            false_flags += 1
            flagged.append(f"{row['id']}: {report.unmatched}")
        # figures that make a claim: those the checker cited, less the bare integers up to 10 that it exempts by
        # design (list positions, "top 5", "3 TIER" in a product name), where a change cannot be caught
        cited = {c.figure for c in report.citations if not c.derivation}
        figures = [f for f in extract_figures(row["answer"]) if f.text in cited
                   and not (f.scale == 1 and not f.percent and f.decimals == 0 and abs(f.value) <= 10)]
        if not figures:
            continue
        for kind in KINDS:
            for fig in rng.sample(figures, len(figures)):  # the first figure this kind applies to
                mutated = mutate(row["answer"], fig.text, kind, rng)
                if mutated is None:
                    continue
                tried[kind] += 1
                if check(mutated, calls, row["question"]).unmatched:
                    caught[kind] += 1
                else:
                    misses.append(f"{row['id']} ({kind}): {fig.text} → not flagged")
                break
    total_tried = sum(tried.values())
    result = {"traced": round(traced / max(1, traced + untraced), 4),
              "mutation_caught": round(sum(caught.values()) / max(1, total_tried), 4),
              "false_flags": false_flags, "answers": answers, "figures": traced + untraced,
              "mutations": total_tried}
    table = ["| mutation | tried | caught | share |", "| --- | ---: | ---: | ---: |"]
    table += [f"| {k} | {tried[k]} | {caught[k]} | {caught[k] / max(1, tried[k]):.1%} |" for k in KINDS]
    return result, misses + flagged, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, default=ANSWERS, help="agent_eval answers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    load_before = trust_results.uptime()
    doc = json.loads(args.answers.read_text(encoding="utf-8"))
    models = [m for m in doc if m != "meta"]
    rows = [dict(r, id=f"{m}/{r['id']}") for m in models for r in doc[m]["rows"]]
    if not rows or any("tool_results" not in r for r in rows):
        raise SystemExit(f"{args.answers} has no tool results per answer; run benchmarks/agent_eval.py first.")
    result, misses, table = evaluate(rows, args.seed)
    notes = [f"Answers: {result['answers']} final answers of {', '.join(models)} from `{args.answers.name}` "
             f"({doc['meta'].get('command', '')}, {doc['meta'].get('date', '')}); {result['figures']} figures; "
             f"{result['mutations']} mutated answers (one figure each, seed {args.seed}).", "",
             "Missed mutations and flagged answers:" if misses else "No missed mutation, no flagged answer.",
             *(f"- {m}" for m in misses[:30])]
    command = "PYTHONPATH=. python benchmarks/grounding.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(trust_results.update({"grounding": {"ours": result}},
                               {"grounding": {"command": command.strip(), "load_before": load_before,
                                              "load_after": trust_results.uptime(), "notes": notes,
                                              "tables": [table]}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
