"""Tool ``forecast_sales``: P10/P50/P90 unit forecasts for a product, a category or the whole shop, with the
model's backtest against naive baselines as evidence and what the forecast lacked."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.workspace import Shop, fetch_dicts

MODEL_DIRS = {"week": "forecaster", "day": "forecaster_daily"}
_cache: dict[tuple[str, float], Any] = {}
_cache_lock = threading.Lock()


class ForecastSalesArgs(BaseModel):
    target: str = Field("shop", description="'shop', a product id such as '85123A', or 'category:<name>'.")
    horizon: int = Field(4, ge=1, le=28, description="Periods ahead: up to 8 weeks or 28 days.")
    granularity: Literal["week", "day"] = Field("week", description="Forecast per week or per day.")


def load_forecaster(shop: Shop, granularity: str = "week") -> Any:
    """The shop's trained forecaster (cached until its checkpoint changes on disk)."""
    path = shop.models_dir / MODEL_DIRS[granularity]
    ckpt = path / "forecaster.pt"
    if not ckpt.exists():
        raise ToolInputError(f"No {granularity}ly sales forecaster is trained for this shop yet. Run `shopkeeper "
                             "train forecaster` (or /train in the chat), then ask again.")
    key = (str(ckpt), ckpt.stat().st_mtime)
    with _cache_lock:
        if key not in _cache:
            from local_models.forecaster import Forecaster

            _cache.clear()
            _cache[key] = Forecaster.load(path)
        return _cache[key]


def _resolve_target(shop: Shop, target: str) -> tuple[str, str]:
    """(model key, label) for a target; raises ToolInputError with how to find valid ids."""
    t = target.strip()
    if t.lower() in ("shop", "all", "total", "store", "whole shop", "全店", "全部"):
        return "shop", "the whole shop"
    if t.lower().startswith("category:"):
        return f"category:{t.split(':', 1)[1]}", f"category {t.split(':', 1)[1]}"
    pid = t.split(":", 1)[1] if t.lower().startswith("product:") else t
    with shop.connect(read_only=True) as con:
        rows = fetch_dicts(con, "SELECT product_id, title, kind FROM products WHERE product_id = ? OR "
                                "upper(title) = upper(?) LIMIT 1", [pid, pid])
    if not rows:
        raise ToolInputError(f"No product {pid!r} in this shop. Find product ids with sales_overview "
                             "(group_by='product') or query_data on the products table.")
    if rows[0]["kind"] == "fee":
        raise ToolInputError(f"{rows[0]['product_id']} ({rows[0]['title']}) is a charge, not a product; forecast "
                             "the shop or a product instead.")
    return f"product:{rows[0]['product_id']}", f"product {rows[0]['product_id']} ({rows[0]['title']})"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f}%"


def forecast_sales(shop: Shop, args: ForecastSalesArgs) -> ToolResult:
    """Use for questions about future sales or demand: a P10-P90 range of units per week or day for a product, a
    category or the whole shop, with the model's backtest accuracy vs a naive forecast."""
    key, label = _resolve_target(shop, args.target)
    model = load_forecaster(shop, args.granularity)
    limit = model.config.horizon
    if args.horizon > limit:
        raise ToolInputError(f"The {args.granularity}ly model forecasts at most {limit} {args.granularity}s ahead.")
    try:
        result = model.forecast(key, args.horizon).to_dict()
    except ValueError as err:
        raise ToolInputError(str(err)) from err
    q = result["quantiles"]
    unit = args.granularity
    per = ", ".join(f"{p}: {lo:,.0f}-{hi:,.0f} (P50 {mid:,.0f})"
                    for p, lo, mid, hi in zip(result["periods"], q["p10"], q["p50"], q["p90"]))
    lines = [f"Forecast of units sold for {label}, per {unit}, next {args.horizon} {unit}s "
             f"(P10-P90 range, P50 median): {per}.",
             f"Method: {result['method']}."]
    if result.get("last_period"):
        lp = result["last_period"]
        lines.append(f"Last complete {unit} ({lp['period']}) sold {lp['actual']:,.0f}; first forecast {unit} vs it: "
                     f"{_pct(result.get('change_vs_last_period'))}.")
    ly = result.get("change_vs_last_year")
    if ly:
        lines.append(f"Vs the same {unit}s last year ({ly['last_year_actual']:,.0f} sold): "
                     f"{_pct(ly['change'])}.")
    bt = result.get("backtest") or {}
    if bt.get("text"):
        lines.append(f"Backtest: {bt['text']}.")
    if result.get("lacking"):
        lines.append("Lacking: " + "; ".join(result["lacking"]) + ".")
    evidence = (Evidence("model:forecaster", f"{unit}ly, trained {model.trained_at[:10]}, backtest over "
                                             f"{len(bt.get('holdout_periods', []))} held-out {unit}s"),
                Evidence("orders", f"sales lines (status 'ok') up to {model.panel.periods[-1].date()}"))
    data = result | {"label": label, "unit": unit}
    return ToolResult(" ".join(lines), data, evidence, kind="forecast")


SPEC = ToolSpec("forecast_sales", ForecastSalesArgs, forecast_sales)


def trained(shop: Shop) -> list[str]:
    return [g for g, d in MODEL_DIRS.items() if (Path(shop.models_dir) / d / "forecaster.pt").exists()]
