"""What every agent tool is: a typed function over the shop that returns a result with its evidence.

A tool module defines a pydantic argument model, a function ``fn(shop, args) -> ToolResult`` whose docstring's first
line says when to use it, and a :class:`ToolSpec` named ``SPEC``. The application (``assistant/toolkit.py``) turns
specs into LangChain tools; nothing here depends on LangChain, so tools are plain functions to test and to call from
Python.

A :class:`ToolResult` is both a short text for the language model (``summary``) and structured data for the screen,
``ask --json`` and the tests (``data``). Every figure it states names where it came from (``evidence``: table,
period, filters, model and its backtest), so an answer can cite it and the grounding check can trace each number.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from tools.errors import ShopkeeperError
from tools.workspace import Shop


class ToolInputError(ShopkeeperError):
    """The arguments cannot be answered as given (unknown id, bad period…). The message says how to fix them;
    the agent shows it to the model, which can try again."""

    title = "Tool input"


@dataclass(frozen=True)
class Evidence:
    """Where a result's figures come from."""

    source: str  # e.g. "orders", "model:forecaster"
    detail: str  # e.g. "status='ok', 2011-11-01..2011-11-30"

    def __str__(self) -> str:
        return f"{self.source} ({self.detail})"


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer: ``summary`` for the model, ``data`` for people and programs, ``evidence`` for both."""

    summary: str
    data: dict[str, Any]
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    kind: str = "generic"  # how a screen should render ``data``: table, series, plan, …

    def text_for_model(self) -> str:
        """The summary plus its evidence, as the language model sees it."""
        if not self.evidence:
            return self.summary
        return self.summary + "\nSources: " + "; ".join(str(e) for e in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "data": jsonable(self.data), "kind": self.kind,
                "evidence": [{"source": e.source, "detail": e.detail} for e in self.evidence]}


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the agent sees it."""

    name: str
    args: type[BaseModel]
    fn: Callable[[Shop, Any], ToolResult]

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or self.name).strip()

    def run(self, shop: Shop, **kwargs: Any) -> ToolResult:
        """Validate ``kwargs`` against the argument model and run the tool."""
        return self.fn(shop, self.args(**kwargs))


def jsonable(value: Any) -> Any:
    """Convert DuckDB/pandas values (Decimal, datetime, numpy) to JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False)
