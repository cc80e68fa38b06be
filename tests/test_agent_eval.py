"""The agent benchmark's question file is well-formed and every fact computes on the committed demo file."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


agent_eval = _load("agent_eval")
import agent_facts  # noqa: E402  (agent_eval put benchmarks/ on the path)

QUESTIONS = agent_eval.load_questions()


def test_enough_questions_in_both_languages():
    assert len(QUESTIONS) >= 40
    langs = [q["language"] for q in QUESTIONS]
    assert min(langs.count("en"), langs.count("zh")) >= 0.4 * len(QUESTIONS)
    cjk = [q for q in QUESTIONS if any("\u4e00" <= ch <= "\u9fff" for ch in q["question"])]
    assert {q["id"] for q in cjk} == {q["id"] for q in QUESTIONS if q["language"] == "zh"}


def test_expected_tools_exist():
    from tools.registry import ALL_TOOLS

    names = {spec.name for spec in ALL_TOOLS}
    for q in QUESTIONS:
        assert set(q["tools"]["any_of"]) <= names, q["id"]


def test_every_fact_computes_a_number():
    for q in QUESTIONS:
        for fact in q["facts"]:
            value = agent_facts.compute(fact)
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (q["id"], fact)
            assert math.isfinite(value) and value != 0, (q["id"], fact, value)


def test_facts_follow_the_business_rules():
    # Spot checks of the rules themselves, independent of the shop: periods as of the last order date, revenue net
    # of cancellations, orders without cancellation invoices.
    assert agent_facts.calendar()[1].isoformat() == "2011-12-09"
    assert [d.isoformat() for d in agent_facts.period_range("last_month")] == ["2011-11-01", "2011-12-01"]
    assert [d.isoformat() for d in agent_facts.period_range("last_week")] == ["2011-11-28", "2011-12-05"]
    df = agent_facts.lines()
    assert set(df["status"]) == {"ok", "cancelled"} and (df["unit_price"] >= 0).all()
    assert agent_facts.revenue("all") < df.loc[df["status"] == "ok", "revenue"].sum()
    assert agent_facts.orders("all") < df["order_id"].nunique()


@pytest.mark.parametrize(("text", "value", "hit"), [
    ("Revenue was £1,461,756.25.", 1461756.25, True),
    ("Revenue was about £1.46M.", 1461756.25, True),
    ("销售额约为146.2万英镑。", 1461756.25, True),
    ("Revenue rose 36.5%.", 36.5, True),
    ("Revenue was £1.2M.", 1461756.25, False),
    ("2,884 orders", 2884, True),
    ("2,885 orders", 2884, False),
])
def test_fact_matching(text, value, hit):
    assert agent_eval.fact_present(text, value) is hit


def test_limit_takes_both_languages():
    chosen = agent_eval.pick(QUESTIONS, 6, None)
    assert [q["language"] for q in chosen] == ["en"] * 3 + ["zh"] * 3


def test_summary_shape():
    rows = [{"tool_hit": True, "grounded": True, "facts": [{"hit": True}, {"hit": False}], "seconds": 10.0},
            {"tool_hit": False, "grounded": True, "facts": [{"hit": True}], "seconds": 30.0}]
    assert agent_eval.summarise(rows) == {"tool_selection": 0.5, "grounded": 1.0, "facts": 0.667,
                                          "median_s": 20.0, "p95_s": 30.0}
