"""The grounding check on its own: which figures it reads, what it matches them to, what it lets through."""

from __future__ import annotations

import pytest

from assistant.events import ToolCall
from assistant.grounding import check, chinese_number, extract_dates, extract_figures


def call(data: dict, summary: str = "", call_id: str = "c1", name: str = "sales_overview") -> ToolCall:
    return ToolCall(call_id=call_id, name=name, args={}, ok=True, summary=summary,
                    result={"summary": summary, "data": data, "evidence": []}, seconds=0.1)


SALES = call({"totals": {"revenue": 1461756.25, "orders": 2884, "customers": 1665, "aov": 506.85},
              "previous": {"revenue": 1070704.67, "orders": 2658},
              "changes_pct": {"vs_previous": {"revenue": 36.5}}, "period": {"start": "2011-11-01"}})


@pytest.mark.parametrize("text, values", [
    ("revenue £1,461,756.25 from 2,884 orders", [1461756.25, 2884]),
    ("¥3.5万 and 1.2亿 and $2.5M and 12k", [35000, 1.2e8, 2.5e6, 12000]),
    ("ＡＯＶ ５０６．８５", [506.85]),  # full-width digits
    ("up 36.5% (+2.3 百分点)", [36.5, 2.3]),
    ("共有二十三个国家，百分之十五的顾客，两千零五件商品", [23, 15, 2005]),
    ("一些商品十分好，第十二名，三种商品", []),
    # a full-width comma between figures (NFKC makes it ",", which once hid every figure after the first)
    ("560,000.26（2011-01），498,062.65（2011-02），2,884", [560000.26, 498062.65, 2884]),  # words, an ordinal and a small count are not claims
])
def test_figures_are_read_in_every_notation(text, values):
    assert [f.value * f.scale for f in extract_figures(text)] == pytest.approx(values)


def test_chinese_numerals_and_dates():
    assert [chinese_number(t) for t in ("十", "十五", "一百零三", "一万二千", "三点五")] == [10, 15, 103, 12000, 3.5]
    assert extract_dates("2011年11月 and 2011-11-30, 2011/3") == ["2011-11", "2011-11-30", "2011-03"]


@pytest.mark.parametrize("answer", [
    "Revenue was £1,461,756.25 from 2,884 orders (AOV £506.85).",
    "Revenue reached £1.46M, up 36.5% on the month before.",
    "上个月销售额为1,461,756.25英镑，共2,884个订单，比前一个月增长36.5%。",
    "约146.2万英镑",
    "2011-11-01 起的销售额 £1,461,756",
])
def test_figures_in_the_tool_result_are_traced_with_their_call(answer):
    report = check(answer, [SALES])
    assert report.grounded, report.unmatched
    assert report.citations and all(c.call_id == "c1" and c.derivation == "" for c in report.citations)


@pytest.mark.parametrize("answer, bad", [
    ("Revenue was £1,561,756.25.", "£1,561,756.25"),
    ("Revenue reached £1.56M.", "£1.56M"),
    ("共2,885个订单", "2,885"),
    ("增长了百分之四十", "百分之四十"),
    ("有一千六百个顾客", "一千六百"),
    ("Orders rose 36.6%.", "36.6%"),
])
def test_a_changed_figure_is_caught(answer, bad):
    report = check(answer, [SALES])
    assert not report.grounded and report.unmatched == [bad]


def test_derived_figures_need_their_operands_in_the_answer():
    # the difference 1,461,756.25 - 1,070,704.67 = 391,051.58, stated together with both operands
    full = check("Revenue rose from £1,070,704.67 to £1,461,756.25, i.e. by £391,051.58.", [SALES])
    assert full.grounded
    derived = [c for c in full.citations if c.derivation]
    assert [(c.figure, c.derivation) for c in derived] == [
        ("£391,051.58", "difference of £1,070,704.67 and £1,461,756.25")]
    # alone, the difference is not in any tool result: it is flagged, not guessed at
    assert check("Revenue grew by £391,051.58.", [SALES]).unmatched == ["£391,051.58"]
    # a share of two stated figures: 2,658 of 2,884 orders = 92.2%
    assert check("2,658 of the 2,884 orders, 92.2%, came back.", [SALES]).grounded
    assert check("2,658 of the 2,884 orders, 93.2%, came back.", [SALES]).unmatched == ["93.2%"]


def test_question_figures_small_counts_and_failed_calls():
    assert check("The top 5 products of 2011.", [SALES], question="top 5 in 2011").grounded
    failed = ToolCall(call_id="c2", name="query_data", args={}, ok=False, summary="error 4,321",
                      result=None, seconds=0.1)
    assert check("There were 4,321 rows.", [failed]).unmatched == ["4,321"]  # an error message is no source


def test_a_percentage_must_come_from_a_percentage():
    movers = call({"top_movers": [{"product_id": "A", "change": 22172.38}], "changes_pct": {"revenue": 36.5},
                   "positive_share": 0.494, "change_vs_last_period": -0.0173,
                   "popularity": {"median_percentile": 85.35}}, call_id="c9")
    assert check("Revenue grew 36.5%; 49.4% of reviews are positive; units -1.7%; picks at the 85.3% "
                 "popularity percentile.", [movers]).grounded
    assert check("Product A changed by 22,172.38.", [movers]).grounded  # as an amount it is traced
    assert check("Revenue grew 22,172.38%.", [movers]).unmatched == ["22,172.38%"]  # as a percentage it is not
