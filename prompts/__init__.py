"""System and explanation prompts (zh and en), loaded by name: ``load("system", "zh")`` reads ``system_zh.md``.

Prompts are kept short on purpose: a small local model reads the system prompt at ~50 tokens/s on two cores.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGUAGES = ("en", "zh")


@cache
def load(name: str, language: str = "en") -> str:
    """Return the prompt ``name`` in ``language`` (falling back to English)."""
    lang = language if language in LANGUAGES else "en"
    path = HERE / f"{name}_{lang}.md"
    if not path.exists():
        path = HERE / f"{name}_en.md"
    if not path.exists():
        raise FileNotFoundError(f"No prompt named {name!r} in {HERE}.")
    return path.read_text(encoding="utf-8").strip()
