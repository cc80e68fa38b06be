"""Helpers shared by the customer-behaviour tools (segments, churn, cohorts, baskets).

Each tool is its own module; what they have in common lives here: the shop's calendar ("now" is the latest sale),
its currency, a fingerprint of the order data that keys on-disk caches, and the money format of the summaries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.base import ToolInputError

if TYPE_CHECKING:
    import duckdb

#: Regular expression of a day argument ('2011-12-09'); argument schemas carry it for constrained decoding.
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def sales_span(con: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date]:
    """First and last day with a sale (status 'ok').

    Raises:
        ToolInputError: the shop has no sales yet.
    """
    first, last = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders WHERE status = 'ok'").fetchall()[0]
    if first is None:
        raise ToolInputError("This shop has no sales yet. Import orders with `shopkeeper import FILE --kind orders`.")
    return first.date(), last.date()


def resolve_day(text: str | None, first: dt.date, last: dt.date) -> dt.date:
    """The day ``text`` names ('YYYY-MM-DD'), or ``last`` when it is empty; it must lie within the shop's data.

    Raises:
        ToolInputError: not a date, or outside ``first..last``.
    """
    if not text:
        return last
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as err:
        raise ToolInputError(f"Bad date {text!r}: {err}. Write it as YYYY-MM-DD.") from err
    if not first <= day <= last:
        raise ToolInputError(f"The date {text} is outside the shop's data ({first}..{last}). Pick a day in that "
                             "range, or leave it out to use the latest day.")
    return day


def currency(con: duckdb.DuckDBPyConnection) -> str:
    """The shop's currency symbol ('' when unknown)."""
    rows = con.execute("SELECT value FROM meta WHERE key = 'currency_symbol'").fetchall()
    return rows[0][0] if rows else ""


def money(x: float | None, symbol: str) -> str:
    return "n/a" if x is None else f"{symbol}{x:,.2f}"


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A cheap key that changes whenever orders or products change (imports only ever add rows)."""
    n, last_import, last_at = con.execute(
        "SELECT count(*), max(import_id), max(ordered_at) FROM orders").fetchall()[0]
    products = con.execute("SELECT count(*), count(*) FILTER (WHERE kind = 'merchandise') FROM products"
                           ).fetchall()[0]
    return f"orders={n};import={last_import};last={last_at};products={products[0]}/{products[1]}"


def read_cache(path: Path, key: str) -> dict[str, Any] | None:
    """The cached JSON document at ``path`` when it was written for ``key``, else None."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing or half-written: recompute
        return None
    return doc if isinstance(doc, dict) and doc.get("key") == key else None


def write_cache(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` atomically (a reader never sees half a file); a read-only shop folder just skips caching."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        return
