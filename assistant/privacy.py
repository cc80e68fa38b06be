"""What leaves the machine: pseudonymised, redacted and logged.

When the chat model is remote, it is wrapped in :class:`PrivateChatModel`:

* customer ids in everything sent (the question, the history, tool results) are replaced by stable pseudonyms
  (``CUST-0001``); the mapping stays in memory on this machine, and pseudonyms in the model's replies (its text and
  its tool-call arguments) are turned back into the real ids before anything is shown or run;
* personal data in free text (emails, phone numbers, Chinese resident ids, card numbers, street addresses) is
  redacted (:func:`local_models.text.pii.redact`, the same redactor that cleans review text before indexing);
* every request body that goes to the endpoint is appended to the shop's ``audit.log`` (JSON lines, owner-only),
  from the HTTP client itself, so the log shows exactly what was sent. Keys are never logged.

``privacy = "local-only"`` (``--offline``) refuses remote providers before any connection is made.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from local_models.text.pii import redact

ALIAS = re.compile(r"CUST-\d{4,6}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


class Pseudonymizer:
    """Stable pseudonyms for the shop's customer ids, for one session; the mapping never leaves the process."""

    def __init__(self, customer_ids: Iterable[str]) -> None:
        self.known = {c for c in customer_ids if c}
        self._alias: dict[str, str] = {}
        self._real: dict[str, str] = {}
        self._lock = threading.Lock()

    def alias(self, customer_id: str) -> str:
        with self._lock:
            if customer_id not in self._alias:
                a = f"CUST-{len(self._alias) + 1:04d}"
                self._alias[customer_id], self._real[a] = a, customer_id
            return self._alias[customer_id]

    def hide(self, text: str) -> str:
        """Customer ids in ``text`` (as whole tokens) to pseudonyms, then personal data redacted."""
        hidden = _TOKEN.sub(lambda m: self.alias(m.group()) if m.group() in self.known else m.group(), text)
        return redact(hidden)

    def reveal(self, text: str) -> str:
        return ALIAS.sub(lambda m: self._real.get(m.group(), m.group()), text)

    def reveal_obj(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.reveal(value)
        if isinstance(value, dict):
            return {k: self.reveal_obj(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.reveal_obj(v) for v in value]
        return value


class AuditLog:
    """JSON lines of every request sent to a remote model (owner-only file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            os.chmod(self.path, 0o600)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def log_request(self, request: Any) -> None:
        """httpx request hook: record the endpoint and the exact body, never the headers (the key is there)."""
        body = request.content.decode("utf-8", errors="replace") if request.content else ""
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = body
        self.append({"time": dt.datetime.now().isoformat(timespec="seconds"), "method": request.method,
                     "url": str(request.url), "bytes": len(request.content or b""), "body": payload})


def http_clients(audit: AuditLog, timeout: float) -> tuple[Any, Any]:
    """httpx clients (sync, async) that log every request to ``audit`` before it is sent."""
    import httpx

    def hook(request: httpx.Request) -> None:
        audit.log_request(request)

    async def ahook(request: httpx.Request) -> None:
        audit.log_request(request)

    return (httpx.Client(timeout=timeout, event_hooks={"request": [hook]}),
            httpx.AsyncClient(timeout=timeout, event_hooks={"request": [ahook]}))


def _build_private_model_class() -> type:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from pydantic import ConfigDict

    def outbound(guard: Pseudonymizer, messages: list[BaseMessage]) -> list[BaseMessage]:
        out = []
        for m in messages:
            content = guard.hide(m.content) if isinstance(m.content, str) else m.content
            update: dict[str, Any] = {"content": content}
            if isinstance(m, AIMessage) and m.tool_calls:
                update["tool_calls"] = [c | {"args": json.loads(guard.hide(json.dumps(c["args"], ensure_ascii=False)))}
                                        for c in m.tool_calls]
            out.append(m.model_copy(update=update))
        return out

    def inbound(guard: Pseudonymizer, message: AIMessage) -> AIMessage:
        update: dict[str, Any] = {"content": guard.reveal_obj(message.content)}
        if message.tool_calls:
            update["tool_calls"] = [c | {"args": guard.reveal_obj(c["args"])} for c in message.tool_calls]
        return message.model_copy(update=update)

    class PrivateChatModel(BaseChatModel):
        """Wraps a remote chat model: pseudonymises and redacts what goes out, restores ids in what comes back."""

        model_config = ConfigDict(arbitrary_types_allowed=True)
        inner: Any
        guard: Any
        bound: Any = None

        @property
        def _llm_type(self) -> str:
            return "private-" + getattr(self.inner, "_llm_type", "remote")

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self.model_copy(update={"bound": self.inner.bind_tools(tools, **kwargs)})

        @property
        def _target(self) -> Any:
            return self.bound if self.bound is not None else self.inner

        def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                      **kwargs: Any) -> ChatResult:
            reply = self._target.invoke(outbound(self.guard, messages), stop=stop, **kwargs)
            return ChatResult(generations=[ChatGeneration(message=inbound(self.guard, reply))])

        async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                             **kwargs: Any) -> ChatResult:
            reply = await self._target.ainvoke(outbound(self.guard, messages), stop=stop, **kwargs)
            return ChatResult(generations=[ChatGeneration(message=inbound(self.guard, reply))])

        def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                    **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            result = self._generate(messages, stop, run_manager, **kwargs)
            yield from _as_chunks(result.generations[0].message, run_manager)

        async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                           **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
            # Text streams through with a hold-back for a pseudonym cut in two; tool-call chunks are gathered and
            # their arguments restored once complete.
            held, gathered = "", None
            async for chunk in self._target.astream(outbound(self.guard, messages), stop=stop, **kwargs):
                gathered = chunk if gathered is None else gathered + chunk
                if isinstance(chunk.content, str) and chunk.content:
                    held += chunk.content
                    cut = _safe_cut(held)
                    if cut:
                        text = self.guard.reveal(held[:cut])
                        held = held[cut:]
                        piece = ChatGenerationChunk(message=AIMessageChunk(content=text, id=chunk.id))
                        if run_manager:
                            await run_manager.on_llm_new_token(text, chunk=piece)
                        yield piece
            if held:
                yield ChatGenerationChunk(message=AIMessageChunk(content=self.guard.reveal(held)))
            if gathered is not None:
                # The closing chunk carries the provider's metadata (finish_reason tells a complete reply from a
                # cut one) and the tool calls with their real arguments.
                restored = [c | {"args": self.guard.reveal_obj(c["args"])} for c in gathered.tool_calls]
                yield ChatGenerationChunk(message=AIMessageChunk(
                    content="", response_metadata=gathered.response_metadata, tool_call_chunks=[
                        {"name": c["name"], "args": json.dumps(c["args"], ensure_ascii=False), "id": c["id"],
                         "index": i, "type": "tool_call_chunk"} for i, c in enumerate(restored)]))

    def _as_chunks(message: AIMessage, run_manager: Any) -> Iterator[ChatGenerationChunk]:
        if message.content:
            yield ChatGenerationChunk(message=AIMessageChunk(content=message.content))
        if message.tool_calls:
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"], ensure_ascii=False), "id": c["id"], "index": i,
                 "type": "tool_call_chunk"} for i, c in enumerate(message.tool_calls)]))

    return PrivateChatModel


def _safe_cut(text: str) -> int:
    """How much of ``text`` can be released: all but a trailing piece that may be the start of a pseudonym."""
    m = re.search(r"C(?:U(?:S(?:T(?:-\d{0,6})?)?)?)?$", text)
    return m.start() if m else len(text)


_private_class: type | None = None


def private_model(inner: Any, guard: Pseudonymizer) -> Any:
    """Wrap ``inner`` (a remote chat model) in the privacy layer."""
    global _private_class
    if _private_class is None:
        _private_class = _build_private_model_class()
    return _private_class(inner=inner, guard=guard)
