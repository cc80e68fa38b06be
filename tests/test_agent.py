"""The agent loop, driven by a scripted chat model: tools, streaming events, grounding, errors, history."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from typer.testing import CliRunner

from assistant.agent import Agent, detect_language
from assistant.api import Assistant
from assistant.config import load_settings
from assistant.events import AnswerDone, ErrorEvent, Revising, TextDelta, ToolFinished, ToolStarted
from assistant.testing import ScriptedChatModel


def run(agent: Agent, question: str, **kw):
    async def collect():
        return [e async for e in agent.stream(question, **kw)]

    return asyncio.run(collect())


def final(events):
    done = [e for e in events if isinstance(e, AnswerDone)]
    assert len(done) == 1 and events[-1] is done[0]
    return done[0].answer


def test_tool_call_then_grounded_answer(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("February revenue was 72.50 from 3 orders, up 16.0% on January.")
    events = run(Agent(model, small_shop), "How were sales in February 2024?")
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["ToolStarted", "ToolFinished"] and "TextDelta" in kinds
    answer = final(events)
    assert answer.grounded and not answer.revised and answer.language == "en"
    assert answer.text == "February revenue was 72.50 from 3 orders, up 16.0% on January."
    call = answer.tool_calls[0]
    assert call.name == "sales_overview" and call.ok and call.result["data"]["totals"]["revenue"] == 72.5
    assert {(c.figure, c.tool) for c in answer.citations} >= {("72.50", "sales_overview"), ("16.0%", "sales_overview")}
    # the model was shown the tool's text with its sources
    tool_msg = model.history[-1][-1]
    assert "Sources: orders" in tool_msg.content and "72.50" in tool_msg.content


def test_dates_in_the_question_reach_the_model_as_period_values(small_shop):
    model = ScriptedChatModel().enqueue("Ok.").enqueue("好。")
    final(run(Agent(model, small_shop), "How many orders in February 2024?"))
    assert model.history[0][-1].content == ("How many orders in February 2024?\n"
                                            "(Dates in this question: period='2024-02' (2024-02-01..2024-02-29).)")
    run(Agent(model, small_shop), "2024年2月有多少订单？")
    assert model.history[1][-1].content.endswith("（问题中的时间：period='2024-02' (2024-02-01..2024-02-29)）")


@pytest.mark.parametrize("question, periods", [
    ("How many customers bought from us in 2011?", ["2011"]),
    ("What were sales in March 2011?", ["2011-03"]),
    ("Sales on 5 March 2011 and on March 6, 2011?", ["2011-03-05", "2011-03-06"]),
    ("2010年12月一共卖出了多少件商品？", ["2010-12"]),
    ("2011年3月5日的订单", ["2011-03-05"]),
    ("revenue 2011-11 vs 2011/10", ["2011-11", "2011-10"]),
    ("上个月的销售额是多少？", []),
    ("What was our revenue last month? Order 20110305, SKU 2011-A", []),
])
def test_period_hints(question, periods):
    from assistant.hints import explicit_periods

    assert explicit_periods(question) == periods


def test_a_reply_cut_off_by_max_tokens_after_the_tools_ran_shows_their_results(small_shop):
    from assistant.local_llm import ReplyCutOff

    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue_error(ReplyCutOff("The local model's reply was cut off by max_tokens before it was complete."))
    answer = final(run(Agent(model, small_shop), "How were sales in February 2024?"))
    assert not answer.incomplete and answer.fallback == "tool_summaries" and answer.grounded
    assert answer.text.startswith("Here is what the tools found (the model's answer ran too long")
    assert "72.50" in answer.text and [c.name for c in answer.tool_calls] == ["sales_overview"]
    # without a tool result to show, the cut-off is an error the user can act on
    model = ScriptedChatModel().enqueue_error(ReplyCutOff("cut off by max_tokens"))
    answer = final(run(Agent(model, small_shop), "Hello?"))
    assert answer.incomplete and "max_tokens" in answer.error


def test_all_time_words_hint_period_all_unless_a_date_is_named():
    from assistant.hints import period_hint

    assert period_hint("How many different customers have ever ordered from us?") == \
        "(The question is about all time: period='all'.)"
    assert period_hint("我们的商品一共卖到了多少个国家？", "zh") == "（问题问的是全部时间：period='all'）"
    assert "period='2011'" in period_hint("2011年一共卖出了多少种不同的商品？", "zh")
    assert period_hint("Which products sold best?") == ""
    # the present perfect with no time named is the whole history; with one, it is not
    assert period_hint("How many countries have we sold to?") == "(The question is about all time: period='all'.)"
    assert period_hint("How many countries have we sold to this year?") == "(Period in this question: period='this_year'.)"


@pytest.mark.parametrize("question, language, hint", [
    ("What's our revenue so far this year?", "en", "(Period in this question: period='this_year'.)"),
    ("What did we sell last week?", "en", "(Period in this question: period='last_week'.)"),
    ("Revenue in the last 30 days?", "en", "(Period in this question: period='last_30_days'.)"),
    ("最近30天卖了多少？", "zh", "（问题中的时间：period='last_30_days'）"),
    ("今年和去年比怎么样？", "zh", "（问题中的时间：period='this_year', period='last_year'）"),
    ("上个月的销售额是多少？", "zh", "（问题中的时间：period='last_month'）"),
])
def test_relative_periods_get_their_names(question, language, hint):
    from assistant.hints import period_hint

    assert period_hint(question, language) == hint


def test_exclusions_are_restated_next_to_the_question():
    from assistant.hints import exclusion_hint, question_hints

    assert exclusion_hint("2011年除英国以外，哪个国家的销售额最高？", "zh") == "（问题排除了英国：不要用英国的数字作答）"
    assert exclusion_hint("Revenue excluding Germany and France?") == \
        "(The question leaves out Germany and France: do not answer with Germany and France's figures.)"
    assert exclusion_hint("Which product sold best last week?") == ""
    both = question_hints("Which country outside the UK sold most in 2011?")
    assert both.splitlines() == ["(Dates in this question: period='2011' (2011-01-01..2011-12-31).)",
                                 "(The question leaves out UK: do not answer with UK's figures.)"]


def test_two_tools_in_one_turn(small_shop):
    model = ScriptedChatModel().enqueue_tool_call(
        "sales_overview", {"period": "2024-01"}, ("query_data", {"sql": "SELECT count(*) AS n FROM customers"}))
    model.enqueue("January revenue was 62.50; the shop has 3 customers.")
    answer = final(run(Agent(model, small_shop), "January sales and customer count?"))
    assert [c.name for c in answer.tool_calls] == ["sales_overview", "query_data"]
    assert all(c.ok for c in answer.tool_calls) and answer.grounded


def test_tool_error_is_shown_to_the_model_which_recovers(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("query_data", {"sql": "DELETE FROM orders"})
    model.enqueue_tool_call("query_data", {"sql": "SELECT count(*) AS n FROM orders"})
    model.enqueue("There are 7 order lines.")
    events = run(Agent(model, small_shop), "How many order lines?")
    first = [e for e in events if isinstance(e, ToolFinished)][0].call
    assert not first.ok and "Only SELECT" in first.summary and first.result is None
    answer = final(events)
    assert answer.grounded and [c.ok for c in answer.tool_calls] == [False, True]
    assert "Only SELECT" in model.history[1][-1].content  # the error reached the model


def test_invalid_arguments_are_a_tool_error_too(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "fortnight"})
    model.enqueue_tool_call("sales_overview", {"period": "2024-01"})
    model.enqueue("January revenue was 62.50.")
    answer = final(run(Agent(model, small_shop), "Sales in January?"))
    assert not answer.tool_calls[0].ok and "Invalid arguments for sales_overview" in answer.tool_calls[0].summary
    assert answer.grounded


def test_ungrounded_figure_is_caught_and_corrected_on_retry(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("February revenue was 80.00.")
    model.enqueue("February revenue was 72.50.")
    events = run(Agent(model, small_shop), "February revenue?")
    revising = [e for e in events if isinstance(e, Revising)]
    assert revising == [Revising(["80.00"], "retry")]
    answer = final(events)
    assert answer.text == "February revenue was 72.50." and answer.revised and answer.fallback == "retry"
    assert answer.grounded and answer.ungrounded == ["80.00"]
    assert "80.00" in model.history[-1][-1].content  # the feedback named the figure


def test_ungrounded_twice_falls_back_to_tool_summaries(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("February revenue was 80.00.").enqueue("It was 81.00, I am sure.")
    answer = final(run(Agent(model, small_shop), "February revenue?"))
    assert answer.fallback == "tool_summaries" and answer.grounded
    assert "80.00" not in answer.text and "81.00" not in answer.text
    assert "72.50" in answer.text and answer.text.startswith("Here is what the tools found")
    assert answer.ungrounded == ["80.00", "81.00"]


def test_no_tools_and_invented_figures_get_no_figures(small_shop):
    model = ScriptedChatModel().enqueue("Revenue was 999.").enqueue("Revenue was 998.")
    answer = final(run(Agent(model, small_shop), "Revenue?"))
    assert answer.fallback == "tool_summaries" and "999" not in answer.text and "998" not in answer.text


def test_round_limit_falls_back_to_what_the_tools_found(small_shop):
    model = ScriptedChatModel()
    for _ in range(3):
        model.enqueue_tool_call("sales_overview", {"period": "2024-01"})
    answer = final(run(Agent(model, small_shop, max_tool_rounds=2), "Sales?"))
    assert answer.fallback == "tool_summaries" and "62.50" in answer.text and not answer.incomplete


def test_provider_error_is_one_sentence_and_marks_the_answer_incomplete(small_shop):
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    model = ScriptedChatModel().enqueue_error(openai.APIConnectionError(request=request))
    settings = load_settings()
    events = run(Agent(model, small_shop, settings=settings), "Sales?")
    err = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(err) == 1 and err[0].message.startswith("Can't reach the model at http://127.0.0.1:9/v1")
    answer = final(events)
    assert answer.incomplete and answer.error == err[0].message


@pytest.mark.parametrize("exc, words", [
    (openai.RateLimitError("slow down", response=httpx.Response(429, request=httpx.Request("POST", "http://x")),
                           body=None), "rate-limiting"),
    (openai.AuthenticationError("bad key", response=httpx.Response(401, request=httpx.Request("POST", "http://x")),
                                body=None), "API key"),
    (openai.APITimeoutError(request=httpx.Request("POST", "http://x")), "did not answer within 60"),
])
def test_provider_errors_say_what_to_do(small_shop, exc, words):
    events = run(Agent(ScriptedChatModel().enqueue_error(exc), small_shop, settings=load_settings()), "Sales?")
    assert words in [e for e in events if isinstance(e, ErrorEvent)][0].message


def test_time_budget_ends_the_turn(small_shop):
    class Slow(ScriptedChatModel):
        async def _agenerate(self, *args, **kwargs):
            await asyncio.sleep(5)

        async def _astream(self, *args, **kwargs):
            await asyncio.sleep(5)
            yield  # pragma: no cover

    events = run(Agent(Slow(), small_shop, time_budget_s=0.3), "Sales?")
    assert [e for e in events if isinstance(e, ErrorEvent)][0].title == "Time budget"
    assert final(events).incomplete


def test_an_unknown_bug_is_not_swallowed(small_shop):
    model = ScriptedChatModel().enqueue_error(ZeroDivisionError("bug"))
    with pytest.raises(ZeroDivisionError):
        run(Agent(model, small_shop), "Sales?")


def test_language_follows_the_question():
    assert detect_language("哪些客户快流失了？") == "zh"
    assert detect_language("which customers are slipping away?") == "en"
    assert detect_language("which customers?", "zh") == "zh"


def test_chinese_question_gets_the_chinese_prompt(small_shop):
    model = ScriptedChatModel().enqueue("你好。")
    answer = final(run(Agent(model, small_shop), "你好"))
    assert answer.language == "zh" and "运营助手" in model.history[0][0].content
    assert "2024-02-12" in model.history[0][0].content  # the shop's data range is in the prompt


def test_assistant_api_keeps_conversations(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-01"})
    model.enqueue("January revenue was 62.50.").enqueue("It came from 2 orders.")
    bot = Assistant(small_shop, model, load_settings())
    first = bot.ask("January revenue?")
    assert first.grounded and first.thread_id
    second = bot.ask("How many orders was that?", thread_id=first.thread_id)
    assert second.thread_id == first.thread_id
    # the model saw the earlier question and answer
    seen = [m.content for m in model.history[-1]]
    assert "January revenue?" in seen and "January revenue was 62.50." in seen
    turns = bot.history.turns(first.thread_id)
    assert [t.question for t in turns] == ["January revenue?", "How many orders was that?"]
    assert turns[0].answer_json["tool_calls"][0]["name"] == "sales_overview"


def test_incomplete_answers_are_not_saved(small_shop):
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    bot = Assistant(small_shop, ScriptedChatModel().enqueue_error(openai.APIConnectionError(request=request)),
                    load_settings())
    answer = bot.ask("Sales?")
    assert answer.incomplete and bot.history.turns(answer.thread_id) == []


def test_stream_yields_text_as_it_comes(small_shop):
    model = ScriptedChatModel().enqueue("Hello there, operator.")
    events = run(Agent(model, small_shop), "hi")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, operator."
    assert not any(isinstance(e, ToolStarted) for e in events)


def test_cli_ask_json(small_shop, monkeypatch):
    from assistant.cli import app

    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("February revenue was 72.50.")
    monkeypatch.setattr("assistant.providers.make_chat_model", lambda settings, **kw: model)
    result = CliRunner().invoke(app, ["ask", "February revenue?", "--json", "--shop", str(small_shop.path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "language", "tool_calls", "citations", "grounded", "timings"}
    assert data["answer"] == "February revenue was 72.50." and data["grounded"] is True
    assert data["tool_calls"][0]["result"]["data"]["totals"]["revenue"] == 72.5
    assert data["citations"][0]["tool"] == "sales_overview"


def test_cli_ask_reads_stdin_and_fails_with_one_line(small_shop):
    from assistant.cli import app

    result = CliRunner().invoke(app, ["ask", "-", "--shop", str(small_shop.path)], input="Sales last month?\n")
    assert result.exit_code == 1
    assert "Can't reach the model at http://127.0.0.1:9/v1" in result.output
    assert CliRunner().invoke(app, ["ask", "  ", "--shop", str(small_shop.path)]).exit_code == 2
    assert CliRunner().invoke(app, ["ask", "x", "--provider", "nope"]).exit_code == 2


def test_questions_about_complaints_or_praise_point_to_review_insights():
    from assistant.hints import opinion_hint, question_hints

    assert "review_insights with polarity='negative'" in opinion_hint("What do people complain about in dresses?")
    assert "polarity='positive'" in opinion_hint("What do customers love about product 1078?")
    zh = opinion_hint("顾客对酒店主要抱怨什么？", "zh")
    assert "review_insights" in zh and "polarity='negative'" in zh and "不要翻译" in zh
    assert "polarity='positive'" in opinion_hint("大家喜欢这款书的哪些地方？", "zh")
    # Finding reviews that say something is a search, and other questions get no review hint.
    for question in ("找一下说质量差的评价", "Which customers are slipping away?", "What should I promote next week?",
                     "I like this: how many orders last week?"):
        assert opinion_hint(question, "zh" if "评" in question else "en") == ""
    assert question_hints("What did people complain about in 2011?").count("\n") == 1  # period + opinion
