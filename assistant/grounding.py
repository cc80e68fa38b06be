"""Is every figure of an answer backed by a tool result?

:func:`check` extracts the figures of an answer (numbers with thousands separators or decimals, percentages,
currency amounts, k/M/万/亿 scales, full-width digits, Chinese numerals with a measure word or 百分之 ("二十三个",
"百分之十五"), ISO and Chinese dates) and looks for each in the values of the turn's tool results, allowing for the
rounding the answer shows ("£1.51M" matches 1,509,496.33) and for a sign written as words ("fell 11.1%" matches
-11.1). Figures the question itself contains are allowed, and so are bare integers up to 10 (list positions,
"top 5"), which carry no claim about the shop.

A figure no tool states may still be *derived*: the sum, difference, ratio or percentage change of two figures that
the same answer states and that are themselves traced ("from £1.07M to £1.46M, up £391k"). Operands must be in the
answer, so the reader can redo the arithmetic; deriving from any pair of the hundreds of numbers a tool returns
would let almost any figure through. A derived figure's citation names the derivation.
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

# Chinese numerals: a figure only with a measure word after it or 百分之 before it, so words such as 一些, 统一 or
# 十分 (very) are not read as numbers; ordinals (第十二) are positions, not claims.
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "[零〇一二两三四五六七八九十百千万亿]"
_CN_FIGURE = re.compile(
    rf"(?<!第)(?<!{_CN_NUM})(?:(?P<pct>百分之)(?P<p>{_CN_NUM}+(?:点[零〇一二三四五六七八九]+)?)|"
    rf"(?P<n>{_CN_NUM}+)(?=(?:多)?(?:个|位|件|笔|单|名|种|天|周|个月|月份|年|次|倍|家|款|条|项|元|英镑|美元|欧元|"
    r"订单|顾客|客户|国家|商品)))")


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
    """NFKC (full-width digits and signs to ASCII) and the Unicode minus to '-'.

    A full-width comma separates items, never digit groups: it becomes ", " so that "560,000.26（2011-01），498,062.65"
    keeps both figures (NFKC alone turns it into "," right after a number, and the second figure was lost).
    """
    text = text.replace("，", ", ")
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


def chinese_number(text: str) -> float | None:
    """The value of a Chinese numeral (``二十三`` 23, ``两千零五`` 2005, ``一万二千`` 12000, ``三点五`` 3.5)."""
    whole, _, frac = text.partition("点")
    total, section, digit = 0, 0, None
    for ch in whole:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit = None
        elif ch in ("万", "亿"):
            total = (total + section + (digit or 0)) * (1e4 if ch == "万" else 1e8)
            section, digit = 0, None
        else:
            return None
    value = total + section + (digit or 0)
    if frac:
        value += float("0." + "".join(str(_CN_DIGITS[c]) for c in frac))
    return float(value)


def _chinese_figures(text: str) -> list[Figure]:
    out = []
    for m in _CN_FIGURE.finditer(text):
        raw = m.group("p") or m.group("n")
        value = chinese_number(raw)
        if value is None or (value <= 10 and not m.group("pct")):
            continue  # small counts ("一个", "三种") make no claim about the shop
        decimals = len(raw.partition("点")[2])
        out.append(Figure(m.group(0), value, decimals, 1.0, bool(m.group("pct"))))
    return out


def extract_figures(text: str) -> list[Figure]:
    """The numeric claims of ``text`` (dates removed first, list markers ignored)."""
    text = _LIST_MARKER.sub(" ", _DATE.sub(" ", normalise(text)))
    figures = _chinese_figures(text)
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


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every leaf of nested data with the keys on its way (``("changes_pct", "vs_previous", "revenue")``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, str(k)))
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v, path)
    else:
        yield path, value


# A percentage in an answer must come from a value that is one: a figure written with % in a tool's text, or a
# data field named as a share, rate or ratio (a fraction such as 0.365 counts as 36.5%). Matching it to any number
# let "up 22,172.38%" pass on a product's revenue change of 22,172.38.
_PERCENT_WORDS = {"pct", "percent", "percentile", "share", "rate", "ratio", "prob", "probability", "coverage",
                  "recall", "precision", "accuracy", "auc", "f1", "hr", "ndcg", "mrr", "lift", "confidence",
                  "support", "retention", "growth", "churn", "wape", "smape", "mape"}


def _is_percent_field(path: tuple[str, ...], value: float) -> bool:
    words = {w for key in path for w in re.split(r"[_\W]+", key.lower()) if w}
    if words & _PERCENT_WORDS or any(re.fullmatch(r"m\d+", key) for key in path):  # cohort months m1, m2…
        return True
    return "change" in words and abs(value) <= 1.5  # a change given as a fraction (-0.0173)


def values_of(texts: Sequence[str], data: Sequence[Any] = ()) -> tuple[set[float], set[str]]:
    """All numbers and dates stated by tool results: their texts and every leaf of their data."""
    numbers, dates, _ = _values(texts, data)
    return numbers, dates


def percents_of(texts: Sequence[str], data: Sequence[Any] = ()) -> set[float]:
    """The values a percentage may be traced to: figures written with % and share/rate/ratio fields."""
    return _values(texts, data)[2]


def _values(texts: Sequence[str], data: Sequence[Any]) -> tuple[set[float], set[str], set[float]]:
    numbers: set[float] = set()
    percents: set[float] = set()
    dates: set[str] = set()
    strings = list(texts)
    for d in data:
        for path, leaf in _leaves(d):
            if isinstance(leaf, bool) or leaf is None:
                continue
            if isinstance(leaf, (int, float)):
                if math.isfinite(leaf):
                    numbers.add(float(leaf))
                    if _is_percent_field(path, float(leaf)):
                        percents.add(float(leaf))
            else:
                strings.append(str(leaf))
    for s in strings:
        found = extract_dates(s)
        dates.update(found)
        for iso in found:  # a date also states its year, month and day
            numbers.update(float(p) for p in iso.split("-"))
        for f in extract_figures(s):
            numbers.add(f.value * f.scale)
            if f.percent:
                percents.add(f.value)
    return numbers, dates, percents


def matches(fig: Figure, value: float) -> bool:
    """Whether ``fig`` (as written, with its rounding and scale) states ``value``, up to sign."""
    for candidate in (value, -value, value * 100, -value * 100) if fig.percent else (value, -value):
        tolerance = 0.5 * 10 ** (-fig.decimals) * fig.scale + 1e-9 * max(1.0, abs(candidate))
        if abs(candidate - fig.value * fig.scale) <= tolerance:
            return True
    return False


def _derive(fig: Figure, operands: Sequence[tuple[Figure, float, Any]]) -> tuple[str, Any] | None:
    """How ``fig`` follows from two of the answer's traced figures (each with the tool value it matched)."""
    for i, (fa, a, call) in enumerate(operands):
        for fb, b, _ in operands[i + 1:]:
            if fa.percent or fb.percent:
                continue
            candidates = [(a + b, "sum"), (a - b, "difference"), (b - a, "difference")]
            if b:
                candidates += [(a / b, "ratio"), ((a - b) / abs(b) * 100, "percentage change"),
                               (a / b * 100, "share")]
            if a:
                candidates += [(b / a, "ratio"), ((b - a) / abs(a) * 100, "percentage change"),
                               (b / a * 100, "share")]
            for value, how in candidates:
                if how in ("percentage change", "share") and not fig.percent:
                    continue
                if how not in ("percentage change", "share") and fig.percent:
                    continue
                if matches(Figure(fig.text, fig.value, fig.decimals, fig.scale), value):
                    return f"{how} of {fa.text} and {fb.text}", call
    return None


def check(answer: str, calls: Sequence[ToolCall], question: str = "") -> GroundingReport:
    """Match every figure of ``answer`` to the tool calls' results (or the question, or a derivation)."""
    per_call = [(c, *_values([c.summary], [c.result["data"]] if c.result else [])) for c in calls if c.ok]
    q_numbers, q_dates, q_percents = _values([question], [])
    citations: list[Citation] = []
    unmatched: list[str] = []
    for iso in extract_dates(answer):
        source = next((c for c, _, dates, _ in per_call if iso in dates or any(d.startswith(iso) for d in dates)),
                      None)
        if source is not None:
            citations.append(Citation(iso, source.call_id, source.name))
        elif iso not in q_dates:
            unmatched.append(iso)
    traced: list[tuple[Figure, float, Any]] = []  # operands for derivations: figure, the tool value, its call
    pending: list[Figure] = []
    for fig in extract_figures(answer):
        source, value = next(((c, v) for c, numbers, _, percents in per_call
                               for v in (percents if fig.percent else numbers) if matches(fig, v)), (None, None))
        if source is not None:
            citations.append(Citation(fig.text, source.call_id, source.name))
            if not fig.percent:
                traced.append((fig, value, source))
        elif any(matches(fig, v) for v in (q_percents if fig.percent else q_numbers)):
            continue
        elif fig.scale == 1 and not fig.percent and fig.decimals == 0 and 0 <= abs(fig.value) <= 10:
            continue
        else:
            pending.append(fig)
    for fig in pending:
        derived = _derive(fig, traced[:40])  # a long list answer has many figures; pairs of the first 40 suffice
        if derived is None:
            unmatched.append(fig.text)
        else:
            how, call = derived
            citations.append(Citation(fig.text, call.call_id, call.name, how))
    return GroundingReport(not unmatched, citations, unmatched)
