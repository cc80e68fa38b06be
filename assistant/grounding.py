"""Is every figure of an answer backed by a tool result?

:func:`check` extracts the figures of an answer (numbers with thousands separators or decimals, percentages,
currency amounts, k/M/万/亿 scales, full-width digits, ISO and Chinese dates) and looks for each in the values of the
turn's tool results, allowing for the rounding the answer shows ("£1.51M" matches 1,509,496.33) and for a sign
written as words ("fell 11.1%" matches -11.1). Figures the question itself contains are allowed, and so are bare
integers up to 10 (list positions, "top 5"), which carry no claim about the shop.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.events import Citation, ToolCall

_SCALES = {"k": 1e3, "K": 1e3, "thousand": 1e3, "M": 1e6, "m": 1e6, "million": 1e6, "mn": 1e6, "bn": 1e9,
           "billion": 1e9, "万": 1e4, "千": 1e3, "百万": 1e6, "亿": 1e8}
_DATE = re.compile(r"(?<!\d)(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?|年(\d{1,2})月(?:(\d{1,2})日)?)(?!\d)")
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.,])(?P<sign>[-+−])?(?P<cur>[£$¥€])?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<suffix>\s?(?:%|百分点|百万|万|亿|千|bn|mn|million|billion|thousand|[kKM](?![A-Za-z])))?")
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)、]\s", re.MULTILINE)


@dataclass(frozen=True)
class Figure:
    text: str
    value: float
    decimals: int
    scale: float = 1.0
    percent: bool = False


@dataclass(frozen=True)
class GroundingReport:
    grounded: bool
    citations: list[Citation]
    unmatched: list[str]


def normalise(text: str) -> str:
    """NFKC (full-width digits and signs to ASCII) and the Unicode minus to '-'."""
    return unicodedata.normalize("NFKC", text).replace("−", "-")


def extract_dates(text: str) -> list[str]:
    """Dates as ISO strings (``2011-11``, ``2011-11-30``); a bare year is left to the number rules."""
    out = []
    for m in _DATE.finditer(normalise(text)):
        year, month, day = m.group(1), m.group(2) or m.group(4), m.group(3) or m.group(5)
        if month is None:
            continue
        out.append(f"{year}-{int(month):02d}" + (f"-{int(day):02d}" if day else ""))
    return out


def extract_figures(text: str) -> list[Figure]:
    """The numeric claims of ``text`` (dates removed first, list markers ignored)."""
    text = _LIST_MARKER.sub(" ", _DATE.sub(" ", normalise(text)))
    figures = []
    for m in _NUMBER.finditer(text):
        num = m.group("num")
        value = float(num.replace(",", ""))
        suffix = (m.group("suffix") or "").strip()
        if m.group("sign") in ("-", "−"):
            value = -value
        decimals = len(num.split(".")[1]) if "." in num else 0
        figures.append(Figure(m.group(0).strip(), value, decimals, _SCALES.get(suffix, 1.0),
                              suffix in ("%", "百分点")))
    return figures


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def values_of(texts: Sequence[str], data: Sequence[Any] = ()) -> tuple[set[float], set[str]]:
    """All numbers and dates stated by tool results: their texts and every leaf of their data."""
    numbers: set[float] = set()
    dates: set[str] = set()
    strings = list(texts)
    for d in data:
        for leaf in _leaves(d):
            if isinstance(leaf, bool) or leaf is None:
                continue
            if isinstance(leaf, (int, float)):
                if math.isfinite(leaf):
                    numbers.add(float(leaf))
            else:
                strings.append(str(leaf))
    for s in strings:
        found = extract_dates(s)
        dates.update(found)
        for iso in found:  # a date also states its year, month and day
            numbers.update(float(p) for p in iso.split("-"))
        numbers.update(f.value * f.scale for f in extract_figures(s))
    return numbers, dates


def matches(fig: Figure, value: float) -> bool:
    """Whether ``fig`` (as written, with its rounding and scale) states ``value``, up to sign."""
    for candidate in (value, -value, value * 100, -value * 100) if fig.percent else (value, -value):
        tolerance = 0.5 * 10 ** (-fig.decimals) * fig.scale + 1e-9 * max(1.0, abs(candidate))
        if abs(candidate - fig.value * fig.scale) <= tolerance:
            return True
    return False


def check(answer: str, calls: Sequence[ToolCall], question: str = "") -> GroundingReport:
    """Match every figure of ``answer`` to the tool calls' results (or the question)."""
    per_call = [(c, *values_of([c.summary], [c.result["data"]] if c.result else [])) for c in calls if c.ok]
    q_numbers, q_dates = values_of([question])
    citations: list[Citation] = []
    unmatched: list[str] = []
    for iso in extract_dates(answer):
        source = next((c for c, _, dates in per_call if iso in dates or any(d.startswith(iso) for d in dates)),
                      None)
        if source is not None:
            citations.append(Citation(iso, source.call_id, source.name))
        elif iso not in q_dates:
            unmatched.append(iso)
    for fig in extract_figures(answer):
        source = next((c for c, numbers, _ in per_call if any(matches(fig, v) for v in numbers)), None)
        if source is not None:
            citations.append(Citation(fig.text, source.call_id, source.name))
        elif any(matches(fig, v) for v in q_numbers):
            continue
        elif fig.scale == 1 and not fig.percent and fig.decimals == 0 and 0 <= abs(fig.value) <= 10:
            continue
        else:
            unmatched.append(fig.text)
    return GroundingReport(not unmatched, citations, unmatched)
