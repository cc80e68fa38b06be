"""Turn the shop's tool specs (``tools/``) into LangChain tools bound to one shop.

Each tool returns ``(text for the model, ToolResult.to_dict())`` (``response_format="content_and_artifact"``), so
the model reads a short text while the event stream carries the structured result. Expected, correctable failures
(:class:`tools.base.ToolInputError`, a bad argument) become ``ToolException``: the model sees the message and can
try again. Anything else is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from tools.base import ToolInputError, ToolSpec
from tools.registry import ALL_TOOLS
from tools.workspace import Shop


def make_tools(shop: Shop, specs: Sequence[ToolSpec] = ALL_TOOLS) -> list[Any]:
    """LangChain ``StructuredTool`` objects for ``specs`` working on ``shop``."""
    from langchain_core.tools import StructuredTool, ToolException

    def bind(spec: ToolSpec):
        def run(**kwargs: Any) -> tuple[str, dict[str, Any]]:
            try:
                result = spec.run(shop, **kwargs)
            except ToolInputError as err:
                raise ToolException(str(err)) from err
            except ValidationError as err:
                raise ToolException(f"Invalid arguments for {spec.name}: {_brief(err)}.") from err
            return result.text_for_model(), result.to_dict()

        return StructuredTool.from_function(
            func=run, name=spec.name, description=spec.description, args_schema=spec.args,
            response_format="content_and_artifact", handle_tool_error=True,
            handle_validation_error=lambda err: f"Invalid arguments for {spec.name}: {_brief(err)}. "
                                                f"Check the tool's argument schema and try again.")

    return [bind(spec) for spec in specs]


def _brief(err: Exception) -> str:
    """A pydantic error as one line: 'field: problem; field: problem'."""
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in err.errors())
    return str(err).splitlines()[0]
