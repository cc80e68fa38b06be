"""Explicit dates in a question, turned into the tools' period names and handed to the model next to the question.

A small local model reads "in 2011" and still asks for ``last_year`` or ``all`` (the agent benchmark caught it on
about a third of the dated questions), although the system prompt spells out the mapping. The mapping is not a
judgement call, so code does it: :func:`period_hint` finds the years, months and days named in the question
("November 2011", "2011年3月", "2010-12", "in 2011") and returns one line that names the matching ``period`` values
and their dates, appended to the question the model sees (the conversation keeps the question as asked).
Words for the whole history ("ever", "in total", "有史以来", "一共", or "have we sold" with no time named) give
``period='all'`` when no date is named.
Relative periods ("so far this year", "上个月", "最近30天") get their period name the same way: the model picked
``all`` for "so far this year" in one benchmark run, though the name is in the prompt.
Exclusions ("outside the UK") and questions about what customers complain about or like (:func:`opinion_hint`,
pointing to ``review_insights``) get a line too.
"""

from __future__ import annotations

import calendar
import re

from assistant.grounding import normalise

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTH_WORD = "|".join(sorted(_MONTHS, key=len, reverse=True))
_PATTERNS = (
    # 2011年3月5日, 2011年3月, 2011年
    re.compile(r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*年(?:\s*(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*[日号])?)?"),
    # 2011-03-05, 2011-03, 2011/3
    re.compile(r"(?<!\d)(?P<y>(?:19|20)\d{2})[-/](?P<m>\d{1,2})(?:[-/](?P<d>\d{1,2}))?(?!\d)"),
    # 5 March 2011, March 2011, March 5, 2011
    re.compile(rf"(?i)(?:(?P<d>\d{{1,2}})\s+)?\b(?P<mw>{_MONTH_WORD})\.?\s+(?:(?P<d2>\d{{1,2}}),?\s+)?"
               r"(?P<y>(?:19|20)\d{2})(?!\d)"),
    # a bare year: "in 2011", "2011's"
    re.compile(r"(?<![\d-])(?P<y>(?:19|20)\d{2})(?![\d年-])"),
)


def explicit_periods(question: str) -> list[str]:
    """The period values (``2011``, ``2011-03``, ``2011-03-05``) for the dates the question names, in order."""
    text = normalise(question)
    found: list[tuple[int, str]] = []
    taken: list[range] = []
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            span = range(m.start(), m.end())
            if any(span.start < t.stop and t.start < span.stop for t in taken):
                continue  # already read by a more specific pattern
            groups = m.groupdict()
            month = _MONTHS.get((groups.get("mw") or "").lower()) or (int(groups["m"]) if groups.get("m") else None)
            day = groups.get("d") or groups.get("d2")
            if month is not None and not 1 <= month <= 12:
                continue
            value = groups["y"] + (f"-{month:02d}" if month else "") + (f"-{int(day):02d}" if month and day else "")
            taken.append(span)
            found.append((m.start(), value))
    out: list[str] = []
    for _, value in sorted(found):
        if value not in out:
            out.append(value)
    return out


# "ever", "in total", "有史以来": the whole history, when the question names no date
_ALL_TIME = re.compile(r"(?i)\b(?:ever|all[- ]time|in total|since (?:we|the) (?:start|began|opened))\b|"
                       r"有史以来|一共|总共|累计|迄今|至今")
# "How many countries have we sold to?": the present perfect with no time named also means the whole history
_PERFECT = re.compile(r"(?i)\bhave we (?:\w+ )?(?:sold|shipped|delivered|served|had|made|sent)\b")
_RELATIVE = re.compile(r"(?i)\b(?:last|this|past|previous|recent(?:ly)?|today|yesterday|week|month|year|quarter|"
                       r"days?|since)\b")


# relative periods with a name of their own, most specific first
_RELATIVE_PERIODS = (
    (re.compile(r"(?i)\b(?:last|past|previous)\s+(\d{1,3})\s+days\b|(?:最近|近|过去)(\d{1,3})\s*天"), "last_{}_days"),
    (re.compile(r"(?i)\blast\s+week\b|上周|上星期|上个星期"), "last_week"),
    (re.compile(r"(?i)\bthis\s+week\b|本周|这周|这个星期"), "this_week"),
    (re.compile(r"(?i)\blast\s+month\b|上个月|上月"), "last_month"),
    (re.compile(r"(?i)\bthis\s+month\b|本月|这个月"), "this_month"),
    (re.compile(r"(?i)\blast\s+year\b|去年"), "last_year"),
    (re.compile(r"(?i)\bthis\s+year\b|\byear\s+to\s+date\b|\bytd\b|今年|本年"), "this_year"),
)


def relative_periods(question: str) -> list[str]:
    """The named relative periods (``last_month``, ``last_30_days``…) of ``question``, in order of appearance."""
    text = normalise(question)
    found = []
    for pattern, name in _RELATIVE_PERIODS:
        for m in pattern.finditer(text):
            days = next((g for g in m.groups() if g), None)
            if days is not None and not 1 <= int(days) <= 999:
                continue
            found.append((m.start(), name.format(days) if days else name))
    out: list[str] = []
    for _, name in sorted(found):
        if name not in out:
            out.append(name)
    return out


def _dates(period: str) -> str:
    parts = [int(p) for p in period.split("-")]
    if len(parts) == 1:
        return f"{parts[0]}-01-01..{parts[0]}-12-31"
    if len(parts) == 2:
        return f"{period}-01..{period}-{calendar.monthrange(parts[0], parts[1])[1]:02d}"
    return period


def period_hint(question: str, language: str = "en") -> str:
    """One line naming the tools' ``period`` for each date in ``question``; empty when it names none."""
    periods = explicit_periods(question)
    if not periods:
        text = normalise(question)
        relative = relative_periods(text)
        if relative:
            listed = ", ".join(f"period='{p}'" for p in relative)
            return f"（问题中的时间：{listed}）" if language == "zh" else f"(Period in this question: {listed}.)"
        if _ALL_TIME.search(text) or (_PERFECT.search(text) and not _RELATIVE.search(text)):
            return "（问题问的是全部时间：period='all'）" if language == "zh" else "(The question is about all time: period='all'.)"
        return ""
    listed = ", ".join(f"period='{p}' ({_dates(p)})" for p in periods)
    if language == "zh":
        return f"（问题中的时间：{listed}）"
    return f"(Dates in this question: {listed}.)"


# "2011年除英国以外…", "outside the UK": a small model answered with the UK's own figure (agent benchmark), so the
# exclusion is restated as an instruction next to the question.
_EXCLUDE_ZH = re.compile(r"除(?:了)?(?P<x>[^，,。？?！!以之]{1,12}?)(?:以外|之外)")
_EXCLUDE_EN = re.compile(r"\b(?:outside(?: of)?|other than|excluding|except(?: for)?|apart from|besides)\s+"
                         r"(?:the\s+)?(?P<x>[A-Z][\w.&'-]*(?:\s+(?:and\s+)?[A-Z][\w.&'-]*)*)")


def exclusion_hint(question: str, language: str = "en") -> str:
    """One line restating what the question leaves out ("outside the UK"); empty when it leaves out nothing."""
    text = normalise(question)
    m = _EXCLUDE_ZH.search(text) or _EXCLUDE_EN.search(text)
    if not m:
        return ""
    x = m.group("x").strip()
    if language == "zh":
        return f"（问题排除了{x}：不要用{x}的数字作答）"
    return f"(The question leaves out {x}: do not answer with {x}'s figures.)"


# "What do people complain about in dresses?": the local model searched reviews for the word "dresses" (mostly praise)
# instead of asking review_insights for the complaint themes, and named no review, though the system prompt says
# which tool fits. Questions about what customers complain about or like are restated as that instruction.
_OPINION_EN = re.compile(r"(?i)\b(?:complain\w*|complaints?|dislike\w*|unhappy|annoy\w*|"
                         r"(?P<pos>like|love|praise\w*)) (?:about|with|in|of)\b")
_OPINION_ZH = re.compile(r"(?:抱怨|投诉|吐槽|不满|差评|(?P<pos>喜欢|好评|称赞))")
_WHAT_ZH = re.compile(r"什么|哪些|啥|主要")


def opinion_hint(question: str, language: str = "en") -> str:
    """One line pointing a question about what customers complain about or like to ``review_insights``."""
    text = normalise(question)
    m = _OPINION_EN.search(text) or (_OPINION_ZH.search(text) if _WHAT_ZH.search(text) else None)
    if not m:
        return ""
    polarity = "positive" if m.group("pos") else "negative"
    if language == "zh":
        return (f"（问的是顾客的{'好评' if polarity == 'positive' else '抱怨'}：用 review_insights，"
                f"polarity='{polarity}'，target 用问题里的原词，不要翻译；回答时写出一两条评价的编号）")
    return (f"(This asks what customers {'like' if polarity == 'positive' else 'complain about'}: use "
            f"review_insights with polarity='{polarity}' and the target as the question words it, and name one or "
            f"two review ids.)")


def question_hints(question: str, language: str = "en") -> str:
    """Every hint for ``question`` (periods, exclusions, review opinions), one per line; empty when there is none."""
    return "\n".join(h for h in (period_hint(question, language), exclusion_hint(question, language),
                                  opinion_hint(question, language)) if h)
