"""Sales tables to dense series and training windows for the forecaster.

Everything here is NumPy/pandas (no torch), so a CLI can import it cheaply. The forecaster never reads files
itself: `load_daily_sales` is only an adapter for the demo data (UCI Online Retail) and for shops benchmarked the
same way; the shop tool will pass the DuckDB `orders` table aggregated to the same long frame
(product_id, date, units, revenue).

Periods. Daily periods are calendar days (days the shop was closed are real zeros, so a weekly season of 7 is
meaningful). Weekly periods run Monday to Sunday and are labelled by their Monday. A period only partly covered by
the data (the demo starts on a Wednesday and ends on a Friday) is dropped, because a half week looks like a sales
collapse to every method.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

# UCI Online Retail stock codes that are fees, postage or manual adjustments rather than goods.
NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "m", "BANK CHARGES", "AMAZONFEE", "D", "CRUK", "C2", "S", "B", "PADS", "ADJUST", "ADJUST2"}
)

SHOP_KEY = "shop"
N_STATIC = 6  # width of Windows.static


def load_daily_sales(path: str | Path) -> pd.DataFrame:
    """Loads order lines from a file and aggregates them to one row per product and day.

    Two layouts are understood: the UCI Online Retail columns (InvoiceNo, StockCode, Quantity, InvoiceDate,
    UnitPrice, ... as strings; invoices starting with "C" are cancellations), and an already aggregated long frame
    with product_id, date, units and optionally revenue. Cancellations, lines with non-positive quantity and the
    non-goods codes in `NON_PRODUCT_CODES` are dropped.

    Args:
        path: A .parquet or .csv file.

    Returns:
        A frame with columns product_id (str), date (datetime64, midnight), units (float), revenue (float).
    """
    import duckdb

    path = Path(path)
    reader = "read_parquet" if path.suffix.lower() == ".parquet" else "read_csv_auto"
    con = duckdb.connect()
    try:
        src = f"{reader}(?)"
        cols = {c.lower() for c in con.execute(f"select * from {src} limit 0", [str(path)]).df().columns}
        if {"invoiceno", "stockcode", "quantity", "invoicedate"} <= cols:
            sql = f"""
                select StockCode::varchar as product_id,
                       cast(substr(InvoiceDate::varchar, 1, 10) as date) as date,
                       sum(cast(Quantity as double)) as units,
                       sum(cast(Quantity as double) * cast(UnitPrice as double)) as revenue
                from {src}
                where not InvoiceNo::varchar like 'C%' and cast(Quantity as double) > 0
                group by 1, 2
            """
        elif {"product_id", "date", "units"} <= cols:
            revenue = "sum(cast(revenue as double))" if "revenue" in cols else "cast(null as double)"
            sql = f"""
                select product_id::varchar as product_id, cast(date as date) as date,
                       sum(cast(units as double)) as units, {revenue} as revenue
                from {src} where cast(units as double) > 0 group by 1, 2
            """
        else:
            raise ValueError(f"{path}: expected UCI Online Retail columns or product_id/date/units, got {sorted(cols)}")
        df = con.execute(sql, [str(path)]).df()
    finally:
        con.close()
    df = df[~df["product_id"].isin(NON_PRODUCT_CODES)]
    df["date"] = pd.to_datetime(df["date"])
    return df.sort_values(["product_id", "date"], ignore_index=True)


def period_start(dates: pd.Series | pd.DatetimeIndex, granularity: str) -> pd.DatetimeIndex:
    """Maps dates to the start of their period: the day itself ("D") or the Monday of its week ("W")."""
    d = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    if granularity == "D":
        return d
    if granularity == "W":
        return d - pd.to_timedelta(d.dayofweek, unit="D")
    raise ValueError(f"granularity must be 'D' or 'W', got {granularity!r}")


def period_offset(granularity: str) -> pd.DateOffset:
    """The length of one period."""
    return pd.DateOffset(days=1 if granularity == "D" else 7)


def future_periods(last: pd.Timestamp, horizon: int, granularity: str) -> pd.DatetimeIndex:
    """The `horizon` period starts following `last`."""
    step = 1 if granularity == "D" else 7
    return pd.DatetimeIndex([last + pd.Timedelta(days=step * (i + 1)) for i in range(horizon)])


@dataclass
class Panel:
    """Dense sales series on a shared period grid.

    Attributes:
        keys: One key per series: "product:<id>", "category:<name>" or "shop".
        values: (S, T) units (or revenue) per series and period; zeros where nothing sold.
        start: (S,) index of each series' first non-zero period (its launch); T when it never sold. Periods before
            it are treated as "not yet on sale", not as zero demand.
        periods: (T,) period starts.
        granularity: "D" or "W".
        value: What `values` counts: "units" or "revenue".
    """

    keys: list[str]
    values: np.ndarray
    start: np.ndarray
    periods: pd.DatetimeIndex
    granularity: str
    value: str = "units"
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {k: i for i, k in enumerate(self.keys)}

    @property
    def kinds(self) -> np.ndarray:
        """(S,) "product", "category" or "shop" per series."""
        return np.array([k.split(":", 1)[0] for k in self.keys])

    def truncate(self, end: int) -> Panel:
        """The panel as it looked before period `end` (launches recomputed, so nothing leaks from later)."""
        values = self.values[:, :end]
        return Panel(list(self.keys), values, first_nonzero(values), self.periods[:end], self.granularity, self.value)

    def select(self, keys: list[str]) -> Panel:
        """A panel with only `keys`, in that order."""
        idx = [self.index[k] for k in keys]
        return Panel(list(keys), self.values[idx], self.start[idx], self.periods, self.granularity, self.value)


def first_nonzero(values: np.ndarray) -> np.ndarray:
    """(S,) index of the first non-zero entry in each row of (S, T) `values`, or T if the row is all zeros."""
    nz = values > 0
    return np.where(nz.any(axis=1), nz.argmax(axis=1), values.shape[1])


def build_panel(
    sales: pd.DataFrame,
    granularity: str = "W",
    value: str = "units",
    products: list[str] | None = None,
    category_map: dict[str, str] | None = None,
    complete_through: pd.Timestamp | None = None,
) -> Panel:
    """Turns a long sales frame into a dense panel of product, category and shop series.

    Args:
        sales: Long frame with product_id, date and the `value` column (one row per product and day or finer).
        granularity: "D" for days, "W" for Monday-to-Sunday weeks.
        value: "units" or "revenue".
        products: Product ids to keep as their own series (others still count towards categories and the shop);
            all products when None.
        category_map: Optional product_id -> category; adds one aggregate series per category.
        complete_through: The last day the data fully covers; defaults to the last date in `sales`. A trailing
            period that ends after it is dropped as incomplete.

    Returns:
        The panel: products first (in the order given, or by id), then categories, then the shop.
    """
    if sales.empty:
        raise ValueError("no sales to build series from")
    dates = pd.to_datetime(sales["date"])
    first_day, last_day = dates.min().normalize(), (complete_through or dates.max()).normalize()
    p = period_start(dates, granularity)
    step = pd.Timedelta(days=1 if granularity == "D" else 7)
    lo = p.min() if p.min() >= first_day else p.min() + step
    hi = p.max() if p.max() + step - pd.Timedelta(days=1) <= last_day else p.max() - step
    periods = pd.date_range(lo, hi, freq=step)
    if len(periods) == 0:
        raise ValueError("the sales cover less than one complete period")
    t_idx = ((p - lo) // step).to_numpy()
    ok = (t_idx >= 0) & (t_idx < len(periods))
    pid = sales["product_id"].astype(str).to_numpy()[ok]
    t_idx = t_idx[ok]
    v = sales[value].to_numpy(dtype=np.float64)[ok]
    v = np.nan_to_num(v)
    T = len(periods)

    pi, all_products = pd.factorize(pid, sort=True)
    prod_index = {k: i for i, k in enumerate(all_products)}
    full = np.zeros((len(all_products), T), dtype=np.float64)
    np.add.at(full, (pi, t_idx), v)

    keep = sorted(all_products) if products is None else [str(x) for x in products]
    rows, keys = [], []
    for k in keep:
        rows.append(full[prod_index[k]] if k in prod_index else np.zeros(T))
        keys.append(f"product:{k}")
    if category_map:
        cats: dict[str, np.ndarray] = {}
        for k, i in prod_index.items():
            c = category_map.get(k)
            if c is not None:
                cats.setdefault(str(c), np.zeros(T))
                cats[str(c)] += full[i]
        for c in sorted(cats):
            rows.append(cats[c])
            keys.append(f"category:{c}")
    rows.append(full.sum(axis=0))
    keys.append(SHOP_KEY)
    values = np.stack(rows).astype(np.float32)
    return Panel(keys, values, first_nonzero(values), periods, granularity, value)


@lru_cache(maxsize=16)
def _holiday_days(country: str, years: tuple[int, ...]) -> frozenset[dt.date]:
    import holidays

    # England's bank holidays: the demo shop is in the UK; China's for shops selling there.
    cal = holidays.country_holidays(country, subdiv="ENG" if country == "GB" else None, years=list(years))
    return frozenset(cal.keys())


def calendar_features(starts: pd.DatetimeIndex, granularity: str) -> np.ndarray:
    """Known-in-advance features per period, usable for future periods too.

    Weekly: sin/cos of week-of-year and of month, and the share of days in the week that are UK or Chinese public
    holidays. Daily: day-of-week one-hot, UK and Chinese holiday flags, sin/cos of day-of-year and of month.

    Args:
        starts: (T,) period starts.
        granularity: "D" or "W".

    Returns:
        (T, F) float32 features.
    """
    starts = pd.DatetimeIndex(starts)
    years = tuple(range(starts.min().year - 1, starts.max().year + 2))
    uk, cn = _holiday_days("GB", years), _holiday_days("CN", years)
    month = starts.month.to_numpy() - 1
    cols = [np.sin(2 * np.pi * month / 12), np.cos(2 * np.pi * month / 12)]
    if granularity == "W":
        woy = starts.isocalendar().week.to_numpy().astype(np.float64) - 1
        cols += [np.sin(2 * np.pi * woy / 52.18), np.cos(2 * np.pi * woy / 52.18)]
        days = [[(s + pd.Timedelta(days=i)).date() for i in range(7)] for s in starts]
        cols.append(np.array([sum(d in uk for d in w) / 7 for w in days]))
        cols.append(np.array([sum(d in cn for d in w) / 7 for w in days]))
    else:
        doy = starts.dayofyear.to_numpy() - 1
        cols += [np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25)]
        dow = starts.dayofweek.to_numpy()
        cols += [(dow == i).astype(np.float64) for i in range(7)]
        cols.append(np.array([d.date() in uk for d in starts], dtype=np.float64))
        cols.append(np.array([d.date() in cn for d in starts], dtype=np.float64))
    return np.stack(cols, axis=1).astype(np.float32)


@dataclass
class Windows:
    """Training or inference windows, one per (series, origin); everything normalised by the series' own scale.

    Attributes:
        hist: (N, L) past values / scale, zero where unobserved.
        hist_mask: (N, L) 1 where the series was on sale (at or after launch), else 0.
        shop: (N, L) the shop's total over the same periods / the shop's own scale: shop-wide momentum.
        static: (N, N_STATIC) share of observed lookback periods without sales, median of the last 4 and 8
            and mean of the last 4 normalised periods, product / aggregate (category or shop) flags.
        cal: (N, H, F) calendar features of the target periods.
        y: (N, H) future values / scale (zeros at inference).
        y_mask: (N, H) 1 where the target is known and inside the allowed range.
        scale: (N,) the normalising scale (mean of the observed lookback, else of all history before the origin).
        series: (N,) row in the panel.
        origin: (N,) index of the first target period.
    """

    hist: np.ndarray
    hist_mask: np.ndarray
    shop: np.ndarray
    static: np.ndarray
    cal: np.ndarray
    y: np.ndarray
    y_mask: np.ndarray
    scale: np.ndarray
    series: np.ndarray
    origin: np.ndarray

    def __len__(self) -> int:
        return len(self.series)


def make_windows(
    panel: Panel,
    series: np.ndarray,
    origins: np.ndarray,
    lookback: int,
    horizon: int,
    target_end: int,
    cal: np.ndarray,
) -> Windows:
    """Cuts (series, origin) pairs into model inputs, vectorised.

    Args:
        panel: The panel to read from. Its `start` must come from data before every origin (use `truncate`).
        series: (N,) panel rows.
        origins: (N,) first target period of each window; history is [origin - lookback, origin).
        lookback: L, periods of history fed to the model.
        horizon: H, periods predicted.
        target_end: Targets at or after this period are masked out (the training cutoff, or T at inference).
        cal: (T + H, F) calendar features covering every target period.

    Returns:
        The windows.
    """
    series = np.asarray(series, dtype=np.int64)
    origins = np.asarray(origins, dtype=np.int64)
    S, T = panel.values.shape
    # Pad so that lookback before period 0 and horizon past T index safely; the masks hide the padding.
    padded = np.concatenate([np.zeros((S, lookback), np.float32), panel.values, np.zeros((S, horizon), np.float32)], 1)
    h_idx = origins[:, None] + np.arange(-lookback, 0)[None, :]  # (N, L) absolute period index
    f_idx = origins[:, None] + np.arange(horizon)[None, :]  # (N, H)
    hist = padded[series[:, None], h_idx + lookback]
    start = panel.start[series][:, None]
    hist_mask = ((h_idx >= 0) & (h_idx >= start)).astype(np.float32)
    hist = hist * hist_mask

    # Scale: mean of the observed lookback; a product silent for the whole lookback falls back to its mean over all
    # history before the origin, so a revival is measured against its usual level rather than divided by zero.
    n_obs = hist_mask.sum(1)
    lb_mean = np.where(n_obs > 0, hist.sum(1) / np.maximum(n_obs, 1), 0.0)
    cum = np.concatenate([np.zeros((S, 1)), np.cumsum(panel.values, axis=1, dtype=np.float64)], axis=1)
    o = np.minimum(origins, T)
    full_n = np.maximum(o - panel.start[series], 0)
    full_mean = np.where(full_n > 0, cum[series, o] / np.maximum(full_n, 1), 0.0)
    scale = np.where(lb_mean > 0, lb_mean, full_mean)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)

    shop_row = panel.index[SHOP_KEY]
    shop_hist = padded[shop_row][h_idx + lookback] * (h_idx >= 0)
    shop_scale = shop_hist.sum(1) / np.maximum((h_idx >= 0).sum(1), 1)
    shop = shop_hist / np.where(shop_scale > 0, shop_scale, 1.0)[:, None]

    y = padded[series[:, None], f_idx + lookback]
    y_mask = ((f_idx < min(target_end, T)) & (f_idx >= start)).astype(np.float32)

    # Robust level summaries the MLP cannot easily compute itself (medians need sorting), plus intermittency and
    # product-or-aggregate (one flag for categories and the shop alike, so the shop shares what the network learns
    # from category and synthetic aggregates). Raw magnitude (log scale) is deliberately absent: the shop is 1000x any product and would
    # sit far outside the range the network learned on.
    kinds = panel.kinds[series]
    normed = hist / scale[:, None]
    static = np.stack(
        [
            1.0 - n_obs_nonzero(hist, hist_mask),
            np.median(normed[:, -4:], axis=1),
            np.median(normed[:, -8:], axis=1),
            normed[:, -4:].mean(1),
            kinds == "product",
            kinds != "product",
        ],
        axis=1,
    ).astype(np.float32)
    return Windows(
        hist=(hist / scale[:, None]).astype(np.float32),
        hist_mask=hist_mask,
        shop=shop.astype(np.float32),
        static=static,
        cal=cal[f_idx],
        y=(y * y_mask / scale[:, None]).astype(np.float32),
        y_mask=y_mask,
        scale=scale,
        series=series,
        origin=origins,
    )


def n_obs_nonzero(hist: np.ndarray, hist_mask: np.ndarray) -> np.ndarray:
    """(N,) share of observed lookback periods with sales (1 for a window with no observed periods)."""
    n = hist_mask.sum(1)
    return np.where(n > 0, ((hist > 0) & (hist_mask > 0)).sum(1) / np.maximum(n, 1), 1.0)


def training_pairs(panel: Panel, rows: np.ndarray, first_origin: int, last_origin: int, stride: int) -> tuple:
    """All (series, origin) pairs with origin in [first_origin, last_origin] on a `stride` grid, after launch.

    The grid is anchored at `last_origin` so the freshest origin is always included.

    Returns:
        (series, origins) arrays.
    """
    origins = np.arange(last_origin, first_origin - 1, -stride)[::-1]
    s = np.repeat(rows, len(origins))
    o = np.tile(origins, len(rows))
    keep = o > panel.start[s]  # at least one observed period of history
    return s[keep], o[keep]
