"""Sales tables to dense series and training windows for the forecaster.

Everything here is NumPy/pandas (no torch), so a CLI can import it cheaply. The forecaster never reads files
itself: `load_daily_sales` is only an adapter for the demo data (UCI Online Retail) and for shops benchmarked the
same way; the shop tool will pass the DuckDB `orders` table aggregated to the same long frame
(product_id, date, units, revenue, and optionally price).

Prices. A product's price in a period is the median over its selling days of the day's median order-line unit
price. The median line price is used rather than revenue / units because in wholesale data the average price per
unit falls whenever one big order at a bulk price lands, so it moves with the quantity it is meant to explain; the
median line price changed in 21% of the demo's product-weeks (500 best sellers), the average in 88%. Periods without
a sale have no price and carry the last one forward (`price_level`).

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
        A frame with columns product_id (str), date (datetime64, midnight), units (float), revenue (float) and
        price (float: the day's median order-line unit price; revenue / units for an aggregated frame without a
        price column; NaN when unknown).
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
                       sum(cast(Quantity as double) * cast(UnitPrice as double)) as revenue,
                       median(cast(UnitPrice as double)) filter (where cast(UnitPrice as double) > 0) as price
                from {src}
                where not InvoiceNo::varchar like 'C%' and cast(Quantity as double) > 0
                group by 1, 2
            """
        elif {"product_id", "date", "units"} <= cols:
            revenue = "sum(cast(revenue as double))" if "revenue" in cols else "cast(null as double)"
            if "price" in cols:
                price = "median(cast(price as double)) filter (where cast(price as double) > 0)"
            else:
                price = f"{revenue} / nullif(sum(cast(units as double)), 0)"
            sql = f"""
                select product_id::varchar as product_id, cast(date as date) as date,
                       sum(cast(units as double)) as units, {revenue} as revenue, {price} as price
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
        price: (S, T) each product's price per period (see the module docstring), NaN where it did not sell and for
            categories and the shop; None when the sales carried no prices.
    """

    keys: list[str]
    values: np.ndarray
    start: np.ndarray
    periods: pd.DatetimeIndex
    granularity: str
    value: str = "units"
    price: np.ndarray | None = None
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {k: i for i, k in enumerate(self.keys)}
        self._level: np.ndarray | None = None

    def log_price_level(self) -> np.ndarray:
        """(S, T) `price_level` of `price` (computed once per panel); requires prices."""
        if self._level is None:
            self._level = price_level(self.price)
        return self._level

    @property
    def kinds(self) -> np.ndarray:
        """(S,) "product", "category" or "shop" per series."""
        return np.array([k.split(":", 1)[0] for k in self.keys])

    def truncate(self, end: int) -> Panel:
        """The panel as it looked before period `end` (launches recomputed, so nothing leaks from later)."""
        values = self.values[:, :end]
        price = None if self.price is None else self.price[:, :end]
        out = Panel(list(self.keys), values, first_nonzero(values), self.periods[:end], self.granularity, self.value,
                    price)
        if self._level is not None:  # causal, so its first `end` columns are exactly the truncated panel's
            out._level = self._level[:, :end]
        return out

    def select(self, keys: list[str]) -> Panel:
        """A panel with only `keys`, in that order."""
        idx = [self.index[k] for k in keys]
        price = None if self.price is None else self.price[idx]
        return Panel(list(keys), self.values[idx], self.start[idx], self.periods, self.granularity, self.value, price)


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
    full_price = _period_prices(sales, ok, pi, t_idx, full.shape)

    keep = sorted(all_products) if products is None else [str(x) for x in products]
    rows, keys = [], []
    for k in keep:
        rows.append(full[prod_index[k]] if k in prod_index else np.zeros(T))
        keys.append(f"product:{k}")
    n_products = len(keys)
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
    price = None
    if full_price is not None:
        price = np.full(values.shape, np.nan, dtype=np.float32)
        for i, k in enumerate(keep[:n_products]):
            if k in prod_index:
                price[i] = full_price[prod_index[k]]
    return Panel(keys, values, first_nonzero(values), periods, granularity, value, price)


def _period_prices(sales: pd.DataFrame, ok: np.ndarray, pi: np.ndarray, t_idx: np.ndarray,
                   shape: tuple[int, int]) -> np.ndarray | None:
    """(P, T) median of the daily prices in each product's period (NaN where it did not sell), or None when the
    sales carry no usable prices."""
    if "price" not in sales.columns:
        return None
    p = pd.to_numeric(sales["price"], errors="coerce").to_numpy(dtype=np.float64)[ok]
    good = np.isfinite(p) & (p > 0)
    if not good.any():
        return None
    med = pd.Series(p[good]).groupby([pi[good], t_idx[good]]).median()
    out = np.full(shape, np.nan, dtype=np.float64)
    out[med.index.get_level_values(0), med.index.get_level_values(1)] = med.to_numpy()
    return out


PRICE_SMOOTHING = 3  # observed periods in the rolling median that turns period prices into a price level


def price_level(price: np.ndarray, k: int = PRICE_SMOOTHING) -> np.ndarray:
    """(S, T) log price level: the median of the last `k` observed period prices, carried forward over periods
    without sales; NaN before a series' first price.

    Causal (period t uses prices up to t only), so truncating the result equals computing it on a truncated panel.
    The rolling median keeps a real price change (it shows within two selling periods) but not a one-period blip,
    such as a day whose few order lines all happened to be at a bulk price: forecasts assume the current level
    holds, and a level that jumps with every blip would make that assumption wrong half of the time.
    """
    logp = np.log(np.where(price > 0, price, np.nan))
    S, T = logp.shape
    r, t = np.nonzero(np.isfinite(logp))  # observations, row by row in time order
    level = np.full((S, T), np.nan)
    if r.size:
        obs = logp[r, t]
        lags = np.full((r.size, k), np.nan)  # (n, k): each observation and the k - 1 before it in the same row
        for j in range(k):
            same = np.zeros(r.size, dtype=bool)
            same[j:] = r[j:] == r[: r.size - j]
            lags[j:, j] = np.where(same[j:], obs[: obs.size - j], np.nan)
        level[r, t] = np.nanmedian(lags, axis=1)
    idx = np.where(np.isfinite(level), np.arange(T)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return np.take_along_axis(level, idx, axis=1)


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
        price: (N, L) log of each history period's price relative to the current price (the last one known before
            the origin); 0 where unknown, before launch and for series without prices.
        fprice: (N, H) the same for the target periods: in training the prices that were charged (carried forward
            over periods without sales), at inference 0 (the current price holds) unless a price change is planned.
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
    price: np.ndarray
    fprice: np.ndarray
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
    price, fprice = _relative_prices(panel, series, origins, h_idx, f_idx, hist_mask, min(target_end, T))

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
        price=price,
        fprice=fprice,
        y=(y * y_mask / scale[:, None]).astype(np.float32),
        y_mask=y_mask,
        scale=scale,
        series=series,
        origin=origins,
    )


PRICE_CLIP = 1.5  # relative log prices are clipped to about 0.22x..4.5x the current price (data errors, not prices)


def _relative_prices(panel: Panel, series: np.ndarray, origins: np.ndarray, h_idx: np.ndarray, f_idx: np.ndarray,
                     hist_mask: np.ndarray, known_end: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, L) and (N, H) log price relative to the last price known before each origin; see `Windows`."""
    N, L = h_idx.shape
    if panel.price is None:
        return np.zeros((N, L), np.float32), np.zeros(f_idx.shape, np.float32)
    S, T = panel.price.shape
    logp = panel.log_price_level()
    # A leading NaN column stands for "before period 0", so column j + 1 holds period j.
    logp = np.concatenate([np.full((S, 1), np.nan), logp], axis=1)
    cur = logp[series, np.clip(origins, 0, T)]  # last price before the origin (index shifted by the pad column)
    hist = logp[series[:, None], np.clip(h_idx, -1, T - 1) + 1] - cur[:, None]
    hist = np.where(np.isfinite(hist) & (hist_mask > 0), hist, 0.0)
    fut = logp[series[:, None], np.clip(f_idx, -1, T - 1) + 1] - cur[:, None]
    fut = np.where(np.isfinite(fut) & (f_idx < known_end), fut, 0.0)
    return (np.clip(hist, -PRICE_CLIP, PRICE_CLIP).astype(np.float32),
            np.clip(fut, -PRICE_CLIP, PRICE_CLIP).astype(np.float32))


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
