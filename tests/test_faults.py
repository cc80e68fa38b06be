"""Faults from an OpenAI-compatible server on loopback: every turn ends within its budget, with a typed error and
a sentence that says what to do; partial answers are marked incomplete and never saved."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from assistant.api import Assistant
from assistant.cli import app
from assistant.config import load_settings
from tests.support.fake_openai import FakeOpenAI


def _bot(shop, server, **provider):
    settings = load_settings(provider={"name": "openai", "base_url": server.base_url, "api_key": "sk-test",
                                       "model": "fake", "timeout": 2, "max_retries": 1} | provider,
                             agent={"time_budget_s": 20})
    return Assistant.open(str(shop.path), settings=settings)


def _ask(shop, script, **provider):
    with FakeOpenAI(script) as server:
        bot = _bot(shop, server, **provider)
        t0 = time.perf_counter()
        answer = bot.ask("How were sales in February 2024?")
        return answer, time.perf_counter() - t0, server, bot


@pytest.mark.parametrize("script, words", [
    ([{"status": 429, "headers": {"Retry-After": "0"}}] * 2, "rate-limiting"),
    ([{"status": 500}] * 2, "HTTP 500"),
    ([{"status": 401, "message": "bad key"}], "API key"),
    ([{"hang": 6}] * 2, "did not answer within 2"),
    ([{"garbage": True}] * 2, "could not be read"),
])
def test_provider_faults_end_in_one_clear_sentence(small_shop, script, words):
    answer, seconds, server, bot = _ask(small_shop, script)
    assert answer.incomplete and words in answer.error
    assert seconds < 20
    assert bot.history.turns(answer.thread_id) == []


def test_rate_limit_is_retried_with_backoff_then_succeeds(small_shop):
    script = [{"status": 429, "headers": {"Retry-After": "0"}},
              {"tool_calls": [("sales_overview", {"period": "2024-02"})]},
              {"content": "February revenue was 72.50."}]
    answer, _, server, bot = _ask(small_shop, script)
    assert not answer.incomplete and answer.grounded and answer.text == "February revenue was 72.50."
    assert len(server.requests) == 3
    assert [t.question for t in bot.history.turns(answer.thread_id)] == ["How were sales in February 2024?"]


def test_connection_cut_mid_stream_is_incomplete_and_not_saved(small_shop):
    script = [{"content": "February revenue was 72.50 and it rose strongly over the month before.", "cut": True}] * 2
    answer, seconds, server, bot = _ask(small_shop, script)
    assert answer.incomplete and seconds < 20
    assert bot.history.turns(answer.thread_id) == []


def test_unknown_tool_and_invalid_arguments_are_recovered(small_shop):
    script = [{"tool_calls": [("delete_everything", {})]},
              {"tool_calls": [("sales_overview", {"period": 12345})]},
              {"tool_calls": [("sales_overview", {"period": "2024-02"})]},
              {"content": "February revenue was 72.50."}]
    answer, _, server, bot = _ask(small_shop, script)
    assert not answer.incomplete and answer.grounded
    oks = [(c.name, c.ok) for c in answer.tool_calls]
    assert oks == [("delete_everything", False), ("sales_overview", False), ("sales_overview", True)]
    assert "not a valid tool" in answer.tool_calls[0].summary
    # the model was told about each error, in the next request it received
    assert "not a valid tool" in str(server.requests[1]["messages"][-1])


def test_cli_exits_non_zero_with_one_line(small_shop, monkeypatch):
    with FakeOpenAI([{"status": 500}] * 3) as server:
        monkeypatch.setenv("SHOPKEEPER_PROVIDER__BASE_URL", server.base_url)
        monkeypatch.setenv("SHOPKEEPER_PROVIDER__NAME", "openai")
        monkeypatch.setenv("SHOPKEEPER_PROVIDER__MAX_RETRIES", "0")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        result = CliRunner().invoke(app, ["ask", "Sales?", "--shop", str(small_shop.path)])
    assert result.exit_code == 1
    assert "HTTP 500" in result.output and "Traceback" not in result.output
