"""The agent's tools, in the order the model sees them. A new tool module adds its ``SPEC`` here."""

from __future__ import annotations

from tools import (
    basket,
    churn,
    cohorts,
    customer_segments,
    forecast_sales,
    plan_promotions,
    query_data,
    recommend_products,
    review_insights,
    sales_overview,
    search_reviews,
)
from tools.base import ToolSpec

ALL_TOOLS: tuple[ToolSpec, ...] = (
    sales_overview.SPEC,
    forecast_sales.SPEC,
    customer_segments.SPEC,
    churn.SPEC,
    cohorts.SPEC,
    basket.SPEC,
    plan_promotions.SPEC,
    recommend_products.SPEC,
    search_reviews.SPEC,
    review_insights.SPEC,
    query_data.SPEC,
)


def by_name(name: str) -> ToolSpec:
    for spec in ALL_TOOLS:
        if spec.name == name:
            return spec
    raise KeyError(f"No tool named {name!r}; tools: {', '.join(s.name for s in ALL_TOOLS)}.")
