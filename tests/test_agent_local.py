"""The agent end to end with the REAL local model: in-process, and through the openai provider path against the
same model served over llama.cpp's OpenAI-compatible HTTP API on 127.0.0.1 (no network beyond loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from assistant.agent import Agent
from assistant.config import load_settings
from assistant.events import AnswerDone, ErrorEvent
from assistant.providers import make_chat_model
from tests.test_local_llm import _missing_local_model
from tools.sales_overview import SPEC as SALES

# One tool keeps the prompt short: these tests are about the provider paths, and a small model on a loaded 2-core
# machine reads ~20 prompt tokens a second.
TOOLS = (SALES,)

pytestmark = pytest.mark.local_llm


@pytest.fixture(scope="module")
def runtime() -> Iterator[object]:
    reason = _missing_local_model()
    if reason:
        pytest.skip(reason)
    from assistant.local_llm import LocalLlamaRuntime

    rt = LocalLlamaRuntime(n_ctx=4096, api_key="local-test-key")
    rt.start()
    yield rt
    rt.close()


def _run(agent: Agent, question: str):
    async def collect():
        return [e async for e in agent.stream(question)]

    events = asyncio.run(collect())
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors == [], errors
    return events[-1].answer if isinstance(events[-1], AnswerDone) else None


def test_in_process_local_model_calls_the_sales_tool(runtime, small_shop):
    settings = load_settings(provider={"name": "local"})
    model = make_chat_model(settings, runtime=runtime)
    answer = _run(Agent(model, small_shop, TOOLS, settings=settings, time_budget_s=600),
                  "What was the revenue in 2024-02?")
    assert answer is not None and not answer.incomplete
    calls = [c for c in answer.tool_calls if c.name == "sales_overview" and c.ok]
    assert calls, "the model did not get a sales_overview result"
    assert answer.grounded  # every figure shown is one a tool returned (after retry/fallback if needed)
    # How well a 1.5B model words the answer is measured by benchmarks/agent_eval.py, not asserted here.


def test_openai_provider_path_against_a_real_local_http_server(runtime, small_shop):
    settings = load_settings(provider={"name": "openai", "base_url": runtime.base_url, "api_key": runtime.api_key,
                                       "model": "local", "timeout": 300, "max_tokens": 64})
    model = make_chat_model(settings)
    assert type(model).__name__ == "ChatOpenAI" and model.request_timeout == 300 and model.max_tokens == 64
    answer = _run(Agent(model, small_shop, TOOLS, settings=settings, time_budget_s=600),
                  "Say hello to the shop owner.")
    assert answer is not None and not answer.incomplete and answer.text.strip()
    assert answer.grounded


def test_openai_provider_reports_a_wrong_key_in_one_sentence(runtime, small_shop):
    settings = load_settings(provider={"name": "openai", "base_url": runtime.base_url, "api_key": "wrong-key",
                                       "model": "local", "timeout": 60, "max_retries": 0})
    events = asyncio.run(_collect(Agent(make_chat_model(settings), small_shop, TOOLS, settings=settings), "hi"))
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and "API key" in errors[0].message
    assert events[-1].answer.incomplete


async def _collect(agent: Agent, question: str):
    return [e async for e in agent.stream(question)]
