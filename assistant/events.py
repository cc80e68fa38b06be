"""The project's own events: what the agent stream tells the chat app, ``ask``, the Python API and the tests.

They are frozen dataclasses with no LangChain types inside, so consumers never import LangChain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool call of a turn, with its result (``result`` is ``ToolResult.to_dict()``, None on error)."""

    call_id: str
    name: str
    args: dict[str, Any]
    ok: bool = True
    summary: str = ""
    result: dict[str, Any] | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Citation:
    """A figure of the answer and the tool call it was found in.

    ``derivation`` is empty when the tool states the figure itself; otherwise it says how the figure follows from
    other figures of the same answer (``"percentage change of 1,461,756.25 vs 1,070,704.67"``).
    """

    figure: str
    call_id: str
    tool: str
    derivation: str = ""


@dataclass(frozen=True)
class Answer:
    """The outcome of one question.

    Attributes:
        text: the answer as shown.
        language: ``en`` or ``zh``.
        tool_calls: every tool call made, in order, with its result.
        citations: each figure of ``text`` with the tool call it came from.
        grounded: every figure of ``text`` was found in a tool result (or the question).
        ungrounded: figures of the model's draft that no tool result supports (they are not in ``text``).
        revised: the model's first draft failed the check and was rewritten (``fallback`` tells how).
        fallback: ``""``, ``"retry"`` (the model rewrote it) or ``"tool_summaries"`` (the tools' own words).
        incomplete: the turn was cut short (error, time budget, cancellation); never saved as final.
        error: the one-sentence reason when ``incomplete``.
        timings: seconds: ``total``, ``first_token`` (when known), ``tools``.
        thread_id: the conversation this turn belongs to.
    """

    text: str
    language: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    grounded: bool = True
    ungrounded: list[str] = field(default_factory=list)
    revised: bool = False
    fallback: str = ""
    incomplete: bool = False
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    thread_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of ``shopkeeper ask --json``."""
        return {
            "answer": self.text,
            "language": self.language,
            "tool_calls": [asdict(c) for c in self.tool_calls],
            "citations": [asdict(c) for c in self.citations],
            "grounded": self.grounded,
            "ungrounded": self.ungrounded,
            "revised": self.revised,
            "fallback": self.fallback,
            "incomplete": self.incomplete,
            "error": self.error,
            "timings": self.timings,
            "thread_id": self.thread_id,
        }


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer as the model writes it (a draft until :class:`AnswerDone`)."""

    text: str


@dataclass(frozen=True)
class ToolStarted:
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolFinished:
    call: ToolCall


@dataclass(frozen=True)
class Revising:
    """The draft failed the grounding check; the shown text is replaced by :class:`AnswerDone`'s."""

    ungrounded: list[str]
    how: str


@dataclass(frozen=True)
class AnswerDone:
    answer: Answer


@dataclass(frozen=True)
class ErrorEvent:
    """The turn failed; ``message`` says what to do. An :class:`AnswerDone` with ``incomplete`` follows."""

    title: str
    message: str


Event = TextDelta | ToolStarted | ToolFinished | Revising | AnswerDone | ErrorEvent
