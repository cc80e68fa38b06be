"""The agent: a LangChain ``create_agent`` loop over the shop's tools, turned into the project's own event stream.

The chat model is injected (``assistant.providers`` makes one from settings; tests pass a scripted one). The tools
compute every conclusion; the model chooses tools and phrases the answer. Before an answer is final, every figure
in it must be found in the turn's tool results (``assistant.grounding``): if not, the model is asked once to
rewrite it with that feedback, and if it still fails, the answer falls back to the tools' own summaries. An
ungrounded figure is never presented as the final answer.

Limits: at most ``max_tool_rounds`` model↔tool rounds and ``time_budget_s`` seconds per question.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import prompts
from assistant.events import (
    Answer,
    AnswerDone,
    ErrorEvent,
    Event,
    Revising,
    TextDelta,
    ToolCall,
    ToolFinished,
    ToolStarted,
)
from assistant.grounding import check
from assistant.hints import question_hints
from assistant.providers import translate_error
from tools.base import ToolSpec
from tools.errors import ShopkeeperError
from tools.registry import ALL_TOOLS
from tools.untrusted import strip_links
from tools.workspace import Shop

_CJK = re.compile(r"[\u3400-\u9fff]")


def detect_language(text: str, preferred: str = "auto") -> str:
    """``zh`` when the question is written in Chinese script (or zh is configured), else ``en``."""
    if preferred in ("zh", "en"):
        return preferred
    return "zh" if _CJK.search(text or "") else "en"


@dataclass
class _Turn:
    """What one pass through the agent graph produced."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)  # the AI and tool messages, to continue from
    first_token_s: float | None = None
    hit_round_limit: bool = False


class Agent:
    """Answers questions about one shop with an injected chat model.

    Args:
        model: a LangChain chat model supporting ``bind_tools`` (OpenAI-compatible, local, or scripted).
        shop: the shop the tools read.
        specs: the tools offered (default: all of ``tools.registry``).
        max_tool_rounds: model↔tool rounds allowed per pass before falling back to the tools' summaries.
        time_budget_s: seconds allowed for a whole question, retries included.
        settings: used to word provider errors (endpoint, timeout).
    """

    def __init__(self, model: Any, shop: Shop, specs: Sequence[ToolSpec] = ALL_TOOLS, *, max_tool_rounds: int = 6,
                 time_budget_s: float = 180.0, settings: Any = None) -> None:
        self.model = model
        self.shop = shop
        self.specs = tuple(specs)
        self.max_tool_rounds = max_tool_rounds
        self.time_budget_s = time_budget_s
        self.settings = settings
        self._graphs: dict[str, Any] = {}
        self._data_range: tuple[str, str] | None = None

    # -- set-up ---------------------------------------------------------------------------------------------------

    def system_prompt(self, language: str) -> str:
        first, last = self._shop_dates()
        return prompts.load("system", language).format(first_date=first, last_date=last)

    def _shop_dates(self) -> tuple[str, str]:
        if self._data_range is None:
            with self.shop.connect(read_only=True) as con:
                first, last = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchall()[0]
            self._data_range = (f"{first:%Y-%m-%d}" if first else "unknown", f"{last:%Y-%m-%d}" if last else "unknown")
        return self._data_range

    def graph(self, language: str) -> Any:
        """The compiled LangChain agent for ``language`` (built once)."""
        if language not in self._graphs:
            from langchain.agents import create_agent

            from assistant.toolkit import make_tools

            self._graphs[language] = create_agent(self.model, make_tools(self.shop, self.specs),
                                                  system_prompt=self.system_prompt(language))
        return self._graphs[language]

    def warm(self, language: str = "en") -> None:
        """Let a local model read the system prompt and tool list now (its KV cache then serves the first
        question); a no-op for models without a cache to warm."""
        from assistant.toolkit import make_tools

        bound = self.model.bind_tools(make_tools(self.shop, self.specs))
        if callable(getattr(bound, "warm", None)):
            bound.warm(self.system_prompt(language))

    # -- one question ---------------------------------------------------------------------------------------------

    async def stream(self, question: str, history: Sequence[tuple[str, str]] = (), *, language: str = "auto",
                     thread_id: str = "") -> AsyncIterator[Event]:
        """Answer ``question``; yield events, ending with exactly one :class:`AnswerDone`.

        Args:
            question: the operator's question.
            history: earlier (question, answer) pairs of the conversation.
            language: ``auto`` (from the question), ``zh`` or ``en``.
            thread_id: the conversation id, copied into the answer.
        """
        from langchain_core.messages import AIMessage, HumanMessage

        lang = detect_language(question, language)
        start = time.perf_counter()
        messages: list[Any] = []
        for q, a in history:
            messages += [HumanMessage(q), AIMessage(a)]
        hint = question_hints(question, lang)  # "in 2011" -> period='2011' (assistant/hints.py says why)
        messages.append(HumanMessage(f"{question}\n{hint}" if hint else question))
        calls: list[ToolCall] = []
        draft = ""
        first_token: float | None = None
        turn = _Turn()
        try:
            async with asyncio.timeout(self.time_budget_s):
                async for event in self._run(lang, messages, turn, start):
                    yield event
                calls += turn.calls
                draft, first_token = turn.text, turn.first_token_s
                text, report = draft, check(draft, calls, question)
                revised, fallback, ungrounded = False, "", []
                if turn.hit_round_limit:
                    revised, fallback = True, "tool_summaries"
                    text = _fallback_text(calls, lang, reason="rounds")
                    report = check(text, calls, question)
                elif not report.grounded:
                    ungrounded = report.unmatched
                    yield Revising(report.unmatched, "retry")
                    retry = prompts.load("retry", lang).format(figures=", ".join(report.unmatched))
                    again = _Turn()
                    async for event in self._run(lang, [*messages, *turn.messages, HumanMessage(retry)], again,
                                                 start):
                        yield event
                    calls += again.calls
                    text, report, revised, fallback = again.text, check(again.text, calls, question), True, "retry"
                    if not report.grounded or again.hit_round_limit:
                        yield Revising(report.unmatched, "tool_summaries")
                        ungrounded = sorted(set(ungrounded) | set(report.unmatched))
                        text, fallback = _fallback_text(calls, lang, reason="ungrounded"), "tool_summaries"
                        report = check(text, calls, question)
        except TimeoutError:
            err = ShopkeeperError(f"No answer within the time budget of {self.time_budget_s:.0f} s. Ask a narrower "
                                  "question, or raise agent.time_budget_s.", title="Time budget")
            calls = _ran(calls, turn)
            yield ErrorEvent(err.title, str(err))
            yield AnswerDone(_incomplete(draft, lang, calls, str(err), start, thread_id))
            return
        except Exception as exc:  # noqa: BLE001 - translated below; anything unknown is re-raised
            calls = _ran(calls, turn)
            done = [c for c in calls if c.ok]
            if getattr(exc, "cut_off", False) and done:
                # The model's wording ran past max_tokens after the tools had answered: show what they found.
                yield Revising([], "tool_summaries")
                text = _fallback_text(done, lang, reason="long")
                report = check(text, done, question)
                yield AnswerDone(Answer(text=text, language=lang, tool_calls=done, citations=report.citations,
                                        grounded=report.grounded, revised=True, fallback="tool_summaries",
                                        timings={"total": round(time.perf_counter() - start, 3)},
                                        thread_id=thread_id))
                return
            err = translate_error(exc, self.settings)
            if err is None:
                raise
            yield ErrorEvent(err.title, str(err))
            yield AnswerDone(_incomplete(draft, lang, calls, str(err), start, thread_id))
            return
        text, _ = strip_links(text)  # no tool returns a URL: one in an answer came from quoted data
        timings = {"total": round(time.perf_counter() - start, 3),
                   "tools": round(sum(c.seconds for c in calls), 3)}
        if first_token is not None:
            timings["first_token"] = round(first_token, 3)
        yield AnswerDone(Answer(text=text, language=lang, tool_calls=calls, citations=report.citations,
                                grounded=report.grounded, ungrounded=ungrounded, revised=revised, fallback=fallback,
                                timings=timings, thread_id=thread_id))

    async def _run(self, lang: str, messages: list[Any], turn: _Turn, start: float) -> AsyncIterator[Event]:
        """One pass through the agent graph; fills ``turn`` and yields text and tool events."""
        from langchain_core.messages import AIMessage, ToolMessage
        from langgraph.errors import GraphRecursionError

        started: dict[str, tuple[str, dict[str, Any], float]] = {}
        config = {"recursion_limit": 2 * self.max_tool_rounds + 1}
        try:
            async for mode, payload in self.graph(lang).astream({"messages": messages}, config=config,
                                                                stream_mode=["messages", "updates"]):
                if mode == "messages":
                    chunk, meta = payload
                    if meta.get("langgraph_node") == "model" and isinstance(chunk.content, str) and chunk.content:
                        if turn.first_token_s is None:
                            turn.first_token_s = time.perf_counter() - start
                        yield TextDelta(chunk.content)
                    continue
                for node, update in payload.items():
                    for msg in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                        turn.messages.append(msg)
                        if isinstance(msg, AIMessage):
                            _check_complete(msg)
                            for call in msg.tool_calls:
                                started[call["id"]] = (call["name"], call["args"], time.perf_counter())
                                yield ToolStarted(call["id"], call["name"], call["args"])
                            if not msg.tool_calls:
                                turn.text = _text_of(msg.content)
                        elif isinstance(msg, ToolMessage):
                            name, args, t0 = started.get(msg.tool_call_id, (msg.name or "?", {}, time.perf_counter()))
                            ok = msg.status != "error"
                            call = ToolCall(msg.tool_call_id, name, args, ok, _text_of(msg.content),
                                            msg.artifact if ok and isinstance(msg.artifact, dict) else None,
                                            round(time.perf_counter() - t0, 3))
                            turn.calls.append(call)
                            yield ToolFinished(call)
        except GraphRecursionError:
            turn.hit_round_limit = True
        # Tools of one turn run in parallel and finish in any order; report them in the order the model asked.
        requested = {call_id: i for i, call_id in enumerate(started)}
        turn.calls.sort(key=lambda c: requested.get(c.call_id, len(requested)))


def _check_complete(msg: Any) -> None:
    """An OpenAI-compatible stream that ended without a finish reason was cut off: never take it as an answer."""
    meta = msg.response_metadata or {}
    if meta.get("model_provider") == "openai" and not meta.get("finish_reason"):
        from assistant.providers import ProviderError

        raise ProviderError("The connection to the model was cut off in the middle of the answer. Try again.")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content or [])


def _ran(calls: list[ToolCall], turn: _Turn) -> list[ToolCall]:
    """Every tool call of the question so far, once each: those already collected and those of the pass that was
    cut short (an error or the time budget ends a pass before its calls are collected)."""
    return list({c.call_id: c for c in [*calls, *turn.calls]}.values())


def _fallback_text(calls: Sequence[ToolCall], lang: str, *, reason: str) -> str:
    """The tools' own summaries, used when the model's wording cannot be verified."""
    ok = [c for c in calls if c.ok and c.summary]
    if not ok:
        return ("我无法用工具结果核实这个回答中的数字，因此不给出数字。请换一种问法，例如询问某个时间段的销售额。"
                if lang == "zh" else
                "I could not back the figures of that answer with any tool result, so I won't state them. Try "
                "asking about a specific period, product or customer group.")
    if lang == "zh":
        head = "以下是工具的原始结果" + {"ungrounded": "（模型的措辞无法用工具结果核实）：",
                                        "long": "（模型的回答过长，未能写完）："}.get(reason, "（分析步骤达到上限）：")
    else:
        head = {"ungrounded": "Here is what the tools found (the model's wording could not be verified against "
                              "them):",
                "long": "Here is what the tools found (the model's answer ran too long to finish):"}.get(
            reason, "Here is what the tools found (the step limit was reached):")
    return head + "\n\n" + "\n\n".join(f"**{c.name}**: {c.summary}" for c in ok)


def _incomplete(draft: str, lang: str, calls: list[ToolCall], error: str, start: float, thread_id: str) -> Answer:
    return Answer(text=draft, language=lang, tool_calls=calls, grounded=False, incomplete=True, error=error,
                  timings={"total": round(time.perf_counter() - start, 3)}, thread_id=thread_id)
