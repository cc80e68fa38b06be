"""Named periods ("last_month", "2011-11", "2011-11-01..2011-11-15") resolved against the shop's own calendar.

"Now" for a shop is the time of its latest order line, not the wall clock: an imported history that ends in 2011 is
analysed as of 2011. Every result states the dates it used.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from tools.base import ToolInputError

PERIOD_HELP = ("last_7_days, last_30_days, last_90_days, last_week (previous Monday-Sunday), this_week, "
               "this_month, last_month, this_year, last_year, all, a year '2011', a month '2011-11', a day "
               "'2011-11-05', or a range '2011-11-01..2011-11-15'")
#: The same, as a regular expression: argument schemas carry it so that constrained decoding (the local model)
#: can only produce a valid period.
PERIOD_PATTERN = (r"^(last_[0-9]{1,3}_days|last_week|this_week|this_month|last_month|this_year|last_year|all|"
                  r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(\.\.[0-9]{4}-[0-9]{2}-[0-9]{2})?)?)?)$")


@dataclass(frozen=True)
class Period:
    """A half-open date range [start, end) with the name it was asked by."""

    name: str
    start: dt.date
    end: dt.date  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def label(self) -> str:
        return f"{self.start.isoformat()}..{self.last_day.isoformat()}"

    def previous(self) -> Period:
        """The period of the same length just before this one (calendar months stay calendar months)."""
        if _is_whole_month(self):
            start = _add_months(self.start, -1)
            return Period("previous period", start, self.start)
        return Period("previous period", self.start - dt.timedelta(days=self.days), self.start)

    def year_before(self) -> Period:
        return Period("same period last year", _add_years(self.start, -1), _add_years(self.end, -1))


def _is_whole_month(p: Period) -> bool:
    return p.start.day == 1 and p.end == _add_months(p.start, 1)


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    return dt.date(d.year + y, m + 1, 1) if d.day == 1 else dt.date(d.year + y, m + 1, min(d.day, 28))


def _add_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def resolve_period(spec: str, first: dt.date, last: dt.date) -> Period:
    """Resolve ``spec`` for a shop whose data runs from ``first`` to ``last`` (inclusive).

    Raises:
        ToolInputError: the spec is not one of :data:`PERIOD_HELP`.
    """
    s = (spec or "last_30_days").strip().lower().replace(" ", "_")
    end = last + dt.timedelta(days=1)
    rolling = re.fullmatch(r"last_(\d+)_days?", s)
    if rolling:
        n = int(rolling.group(1))
        return Period(s, end - dt.timedelta(days=n), end)
    if s == "last_week":
        monday = last - dt.timedelta(days=last.weekday())
        return Period(s, monday - dt.timedelta(days=7), monday)
    if s == "this_week":
        monday = last - dt.timedelta(days=last.weekday())
        return Period(s, monday, end)
    if s == "this_month":
        return Period(s, last.replace(day=1), end)
    if s == "last_month":
        this = last.replace(day=1)
        return Period(s, _add_months(this, -1), this)
    if s == "this_year":
        return Period(s, dt.date(last.year, 1, 1), end)
    if s == "last_year":
        return Period(s, dt.date(last.year - 1, 1, 1), dt.date(last.year, 1, 1))
    if s == "all":
        return Period(s, first, end)
    if re.fullmatch(r"\d{4}", s):
        return Period(s, dt.date(int(s), 1, 1), dt.date(int(s) + 1, 1, 1))
    if re.fullmatch(r"\d{4}-\d{1,2}", s):
        y, m = map(int, s.split("-"))
        if not 1 <= m <= 12:
            raise ToolInputError(f"Unknown month {spec!r}. Periods: {PERIOD_HELP}.")
        start = dt.date(y, m, 1)
        return Period(s, start, _add_months(start, 1))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        s = f"{s}..{s}"
    rng = re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", s)
    if rng:
        try:
            a, b = (dt.date.fromisoformat(x) for x in rng.groups())
        except ValueError as err:
            raise ToolInputError(f"Bad date in {spec!r}: {err}.") from err
        if b < a:
            raise ToolInputError(f"The range {spec!r} ends before it starts.")
        return Period(s, a, b + dt.timedelta(days=1))
    raise ToolInputError(f"Unknown period {spec!r}. Use one of: {PERIOD_HELP}.")
