"""Shopkeeper: the application (settings, providers, agent, CLI; the Textual app under assistant/app/).

``from assistant import Assistant`` is the Python API (imported lazily, so the CLI starts fast).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Assistant", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Assistant":
        from assistant.api import Assistant

        return Assistant
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
