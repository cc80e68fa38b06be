"""The expected facts of the agent benchmark, computed independently from the committed demo file with pandas.

Nothing here calls the project's tools or its DuckDB shop: the figures an answer must contain are recomputed from
``data/demo/online_retail.parquet`` (UCI Online Retail, values stored as text) following the documented business
rules, so a bug in a tool shows up as a wrong answer instead of agreeing with itself.

Rules (see ``data/README.md`` and ``tools/sales_overview.py``):

* a line is a **cancellation** when its invoice is ``C…`` and its quantity negative; a **stock adjustment** when its
  quantity is negative at price 0 without a ``C`` invoice (not a sale); the 2 negative-price "Adjust bad debt" lines
  are rejected. Everything else is a sale line.
* **revenue** = sum(quantity * unit_price) over sale and cancellation lines (net of cancellations); **units** the
  same sum of quantity; **orders** = distinct invoices of sale lines; **customers** = distinct customer ids of sale
  lines; **AOV** = revenue / orders.
* **periods** are named as in ``tools/periods.py`` and resolved against the shop's own calendar: "now" is the last
  order date 2011-12-09 (``last_month`` = 2011-11, ``last_week`` = the Monday-Sunday before the current week…).
* **best sellers** rank merchandise by revenue; postage, fees, manual lines and discounts are not merchandise.

A fact in the question file is ``{"name": <one of FACTS>, "args": {...}}``; :func:`compute` returns its number.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = ROOT / "data" / "demo" / "online_retail.parquet"

# Charges rather than goods, by product title (an independent restatement of the rule, not the importer's regex).
_FEE = re.compile(r"(?i)^\s*((\w+\s+){0,2}(postage|carriage|shipping|delivery charges?|manual|discount|samples?|"
                  r"bank charges?|fees?|commission)|adjust\w*( .*)?)\s*$")


@cache
def lines(path: str = str(DATA_FILE)) -> pd.DataFrame:
    """The order lines that count for sales (sale + cancellation lines), typed, with a ``status`` column."""
    raw = pd.read_parquet(path)
    df = pd.DataFrame({
        "order_id": raw["InvoiceNo"].str.strip(),
        "product_id": raw["StockCode"].str.strip(),
        "title": raw["Description"].str.strip().replace("", None),
        "quantity": pd.to_numeric(raw["Quantity"]).astype("int64"),
        "unit_price": pd.to_numeric(raw["UnitPrice"]).astype("float64"),
        "ordered_at": pd.to_datetime(raw["InvoiceDate"], format="%Y-%m-%d %H:%M:%S"),
        "customer_id": raw["CustomerID"].str.strip().replace("", None),
        "country": raw["Country"].str.strip(),
    })
    cancelled = df["order_id"].str.fullmatch(r"C\d+") & (df["quantity"] < 0)
    adjustment = ~cancelled & (df["quantity"] < 0) & (df["unit_price"] == 0)
    rejected = (df["unit_price"] < 0) | (df["quantity"] == 0) | (~cancelled & ~adjustment & (df["quantity"] < 0))
    df["status"] = "ok"
    df.loc[cancelled, "status"] = "cancelled"
    df = df[~adjustment & ~rejected].copy()
    df["revenue"] = df["quantity"] * df["unit_price"]
    df["day"] = df["ordered_at"].dt.normalize()
    return df.reset_index(drop=True)


@cache
def _kinds() -> dict[str, str]:
    """product_id -> 'fee' or 'merchandise', from its most common title."""
    counts = lines().dropna(subset=["title"]).value_counts(["product_id", "title"]).reset_index()
    titles = counts.drop_duplicates("product_id")  # value_counts sorts by count, most common first
    return {pid: ("fee" if _FEE.search(t) else "merchandise") for pid, t in zip(titles["product_id"], titles["title"])}


def calendar() -> tuple[dt.date, dt.date]:
    df = lines()
    ok = df[df["status"] == "ok"]["ordered_at"]
    return ok.min().date(), ok.max().date()


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, 1)


def period_range(name: str) -> tuple[dt.date, dt.date]:
    """[start, end) of a named period, as of the shop's last order date."""
    first, last = calendar()
    end = last + dt.timedelta(days=1)
    monday = last - dt.timedelta(days=last.weekday())
    if m := re.fullmatch(r"last_(\d+)_days", name):
        return end - dt.timedelta(days=int(m.group(1))), end
    fixed = {
        "all": (first, end),
        "last_week": (monday - dt.timedelta(days=7), monday),
        "this_week": (monday, end),
        "this_month": (last.replace(day=1), end),
        "last_month": (_add_months(last.replace(day=1), -1), last.replace(day=1)),
        "this_year": (dt.date(last.year, 1, 1), end),
        "last_year": (dt.date(last.year - 1, 1, 1), dt.date(last.year, 1, 1)),
    }
    if name in fixed:
        return fixed[name]
    if re.fullmatch(r"\d{4}", name):
        return dt.date(int(name), 1, 1), dt.date(int(name) + 1, 1, 1)
    if re.fullmatch(r"\d{4}-\d{2}", name):
        start = dt.date(int(name[:4]), int(name[5:]), 1)
        return start, _add_months(start, 1)
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", name):
        a, b = (dt.date.fromisoformat(x) for x in m.groups())
        return a, b + dt.timedelta(days=1)
    raise ValueError(f"unknown period {name!r}")


def previous_period(name: str) -> str:
    """The period just before ``name``, as a range (a calendar month's predecessor is the month before)."""
    start, end = period_range(name)
    if start.day == 1 and end == _add_months(start, 1):
        prev = _add_months(start, -1)
        return f"{prev:%Y-%m}"
    days = end - start
    return f"{start - days}..{start - dt.timedelta(days=1)}"


@cache
def _in(period: str, country: str | None = None) -> pd.DataFrame:
    df = lines()
    start, end = period_range(period)
    sel = (df["day"] >= pd.Timestamp(start)) & (df["day"] < pd.Timestamp(end))
    if country is not None:
        sel &= df["country"] == country
    return df[sel]


def revenue(period: str, country: str | None = None) -> float:
    return round(float(_in(period, country)["revenue"].sum()), 2)


def orders(period: str, country: str | None = None) -> int:
    df = _in(period, country)
    return int(df.loc[df["status"] == "ok", "order_id"].nunique())


def units(period: str, country: str | None = None) -> int:
    return int(_in(period, country)["quantity"].sum())


def aov(period: str) -> float:
    return round(revenue(period) / orders(period), 2)


def customers(period: str, country: str | None = None) -> int:
    df = _in(period, country)
    return int(df.loc[df["status"] == "ok", "customer_id"].nunique())


def products_sold(period: str) -> int:
    """Distinct merchandise products on sale lines in the period (postage and fees are charges, not products)."""
    df = _in(period)
    sold = df.loc[df["status"] == "ok", "product_id"]
    kinds = _kinds()
    return int(sold[sold.map(lambda p: kinds.get(p, "merchandise")) == "merchandise"].nunique())


def revenue_change_pct(period: str) -> float:
    """Revenue change vs the previous period, in percent, one decimal (as a report would show it)."""
    now, before = revenue(period), revenue(previous_period(period))
    return round((now - before) / before * 100, 1)


def orders_change_pct(period: str) -> float:
    now, before = orders(period), orders(previous_period(period))
    return round((now - before) / before * 100, 1)


def previous_revenue(period: str) -> float:
    return revenue(previous_period(period))


def _products(period: str) -> pd.Series:
    df = _in(period)
    kinds = _kinds()
    df = df[df["product_id"].map(lambda p: kinds.get(p, "merchandise")) == "merchandise"]
    return df.groupby("product_id")["revenue"].sum().sort_values(ascending=False)


def top_product_revenue(period: str, rank: int = 1) -> float:
    """Revenue of the ``rank``-th best-selling merchandise product of the period."""
    return round(float(_products(period).iloc[rank - 1]), 2)


def _countries(period: str) -> pd.Series:
    return _in(period).groupby("country")["revenue"].sum().sort_values(ascending=False)


def top_country_revenue(period: str, rank: int = 1) -> float:
    """Revenue of the ``rank``-th country by revenue in the period."""
    return round(float(_countries(period).iloc[rank - 1]), 2)


def country_count(period: str) -> int:
    """Countries with at least one sale line in the period."""
    df = _in(period)
    return int(df.loc[df["status"] == "ok", "country"].nunique())


def cancelled_orders(period: str) -> int:
    """Distinct cancellation invoices (C…) in the period."""
    df = _in(period)
    return int(df.loc[df["status"] == "cancelled", "order_id"].nunique())


def best_month_revenue(period: str) -> float:
    """Revenue of the calendar month with the highest revenue within the period."""
    df = _in(period)
    return round(float(df.groupby(df["ordered_at"].dt.strftime("%Y-%m"))["revenue"].sum().max()), 2)


FACTS: dict[str, Callable[..., float | int]] = {
    f.__name__: f for f in (revenue, orders, units, aov, customers, products_sold, revenue_change_pct,
                            orders_change_pct, previous_revenue, top_product_revenue, top_country_revenue,
                            country_count, cancelled_orders, best_month_revenue)
}


def compute(fact: dict[str, Any]) -> float | int:
    """The value of one fact entry ``{"name": ..., "args": {...}}``."""
    return FACTS[fact["name"]](**fact.get("args", {}))


def describe(fact: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in fact.get("args", {}).items())
    return f"{fact['name']}({args})"
