"""A scripted chat model: replies are queued in advance, every request is recorded.

Used by the tests and the deterministic benchmarks to drive the real agent loop without a language model::

    model = ScriptedChatModel()
    model.enqueue_tool_call("sales_overview", {"period": "last_month"})
    model.enqueue("Revenue was £1,509,496.33.")
    assistant = Assistant.open(shop=path, model=model)

``history`` holds the message lists the model was called with, so a test can check what the model was shown.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

class ScriptedChatModel(BaseChatModel):
    """Replies with queued messages in order; raises a queued exception when its turn comes."""

    script: list[Any] = Field(default_factory=list)
    history: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)
    # ids count per model, so a script gives the same call ids whatever ran before it
    ids: Any = Field(default_factory=lambda: itertools.count(1), exclude=True)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    # -- scripting ----------------------------------------------------------------------------------------------

    def enqueue(self, text: str) -> ScriptedChatModel:
        """Queue a plain answer."""
        self.script.append(AIMessage(content=text))
        return self

    def enqueue_tool_call(self, name: str, args: dict[str, Any], *more: tuple[str, dict[str, Any]],
                          text: str = "") -> ScriptedChatModel:
        """Queue one reply that calls one or more tools (several in one turn with ``more``)."""
        calls = [{"name": n, "args": a, "id": f"call_{next(self.ids)}", "type": "tool_call"}
                 for n, a in ((name, args), *more)]
        self.script.append(AIMessage(content=text, tool_calls=calls))
        return self

    def enqueue_error(self, err: BaseException) -> ScriptedChatModel:
        """Queue an exception, raised when the model is next called."""
        self.script.append(err)
        return self

    # -- LangChain interface ------------------------------------------------------------------------------------

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        self.bound_tools = [getattr(t, "name", str(t)) for t in tools]
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self.history.append(list(messages))
        if not self.script:
            raise AssertionError("ScriptedChatModel: the script ran out of replies")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages)
        msg_id = f"run-{next(self.ids)}"
        for token in re.split(r"(\s)", message.content) if message.content else []:
            if token:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=msg_id))
                if run_manager:
                    run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk
        if message.tool_calls:
            yield ChatGenerationChunk(message=AIMessageChunk(content="", id=msg_id, tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type":
                 "tool_call_chunk"} for i, c in enumerate(message.tool_calls)]))
