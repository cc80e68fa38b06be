"""Tool ``recommend_products``: what to offer a customer next, what goes with given products, or what sells in a
category — each item with a reason in plain words and the model's validation figures as evidence."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.workspace import Shop, fetch_dicts

_cache: dict[tuple[str, float], tuple[Any, Any]] = {}
_cache_lock = threading.Lock()
HOW_TO_FIND_IDS = ("Find customer ids with customer_segments or churn_risk, product ids with sales_overview "
                   "(group_by='product'), or use query_data.")


class RecommendArgs(BaseModel):
    customer_id: str | None = Field(None, description="Recommend for this customer (products they have not "
                                                      "bought yet).")
    product_ids: list[str] | None = Field(None, description="Recommend what is bought together with these "
                                                            "products.")
    category: str | None = Field(None, description="Best sellers of this category over the last 30 days.")
    k: int = Field(10, ge=1, le=50, description="How many products.")
    include_bought: bool = Field(False, description="For a customer: also allow products they bought before "
                                                    "(re-purchase).")


def load_models(shop: Shop) -> tuple[Any, Any]:
    """The shop's recommender and co-purchase counts (cached until the model folder changes)."""
    folder = shop.models_dir / "recommender"
    ckpt = folder / "recommender.pt"
    if not ckpt.exists():
        raise ToolInputError("No recommender is trained for this shop yet. Run `shopkeeper train recommender` (or "
                             "/train recommender in the chat), then ask again.")
    key = (str(ckpt), ckpt.stat().st_mtime)
    with _cache_lock:
        if key not in _cache:
            from local_models.recommender import CoPurchase, Recommender

            _cache.clear()
            _cache[key] = (Recommender.load(folder), CoPurchase.load(folder / "copurchase.npz"))
        return _cache[key]


def _titles(shop: Shop, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    with shop.connect(read_only=True) as con:
        rows = con.execute("SELECT product_id, title FROM products WHERE product_id IN (SELECT unnest(?))",
                           [ids]).fetchall()
    return {pid: title or "" for pid, title in rows}


def _metrics_evidence(rec: Any) -> tuple[str, dict[str, Any]]:
    valid = (rec.metrics or {}).get("valid") or {}
    shown = {k: round(v, 4) for k, v in valid.items() if isinstance(v, (int, float))}
    text = ", ".join(f"{k} {v}" for k, v in shown.items()) or "no validation split"
    popular = (rec.metrics or {}).get("valid_popular") or {}  # absent in models trained before it was added
    if popular:
        text += "; the most-popular list on the same split: " + ", ".join(
            f"{k} {round(popular[k], 4)}" for k in ("ndcg@10", "coverage@10", "pop_percentile") if k in popular)
    return f"validation on each customer's last purchase: {text}", shown


def _for_customer(shop: Shop, args: RecommendArgs, rec: Any, co: Any) -> tuple[list[dict], str]:
    from local_models.common import UnknownCustomerError

    cid = args.customer_id.strip()
    try:
        history = rec.history(cid)
        picks = rec.recommend(cid, k=args.k, exclude_seen=not args.include_bought)
        cold = False
    except UnknownCustomerError:
        with shop.connect(read_only=True) as con:
            known = con.execute("SELECT count(*) FROM customers WHERE customer_id = ?", [cid]).fetchall()[0][0]
        if not known:
            raise ToolInputError(f"No customer {cid!r} in this shop. {HOW_TO_FIND_IDS}") from None
        history, picks, cold = [], rec.popular(k=args.k), True
    titles = _titles(shop, [p for p, _ in picks] + history[-20:])
    rows = []
    recent = list(dict.fromkeys(reversed(history)))[:20]  # most recent distinct purchases first
    why = ["fits the order of this customer's recent purchases"]
    why += ["what buyers of the same products buy"] if rec.blend.item_item else []
    why += ["what sells well lately"] if rec.blend.popularity else []
    model_reason = ", ".join(why[:-1]) + " and " + why[-1] if len(why) > 1 else why[0]
    for rank, (pid, score) in enumerate(picks, start=1):
        reason = "popular with recent buyers (the customer has too little history for the model)" if cold else ""
        if not cold:
            best = None
            for bought in recent:
                try:
                    pair = co.customers[co.index[bought], co.index[pid]] if pid in co.index and bought in co.index \
                        else 0
                except KeyError:
                    pair = 0
                if pair and (best is None or pair > best[1]):
                    best = (bought, int(pair))
            reason = (f"bought with {best[0]} {titles.get(best[0], '')} by {best[1]:,} customers; this customer "
                      f"bought {best[0]}" if best else
                      f"{model_reason} ({rec.describe_model()})")
        rows.append({"rank": rank, "product_id": pid, "title": titles.get(pid, ""), "score": round(float(score), 4),
                     "reason": reason.replace("  ", " ")})
    head = (f"Recommendations for customer {cid} ({len(history):,} past purchases"
            f"{'; cold start: popular items' if cold else ''})")
    return rows, head


def _bought_together(shop: Shop, args: RecommendArgs, co: Any) -> tuple[list[dict], str]:
    from local_models.common import UnknownProductError

    try:
        items = co.bought_together(args.product_ids, k=args.k)
    except UnknownProductError as err:
        raise ToolInputError(f"{err} {HOW_TO_FIND_IDS}") from None
    titles = _titles(shop, [i.product_id for i in items] + list(args.product_ids))
    rows = [{"rank": r, "product_id": i.product_id, "title": titles.get(i.product_id, ""),
             "customers_together": i.n_customers, "orders_together": i.n_orders,
             "confidence": round(i.confidence, 3),
             "reason": f"bought with {i.with_product} {titles.get(i.with_product, '')} by {i.n_customers:,} "
                       f"customers ({i.confidence:.0%} of its buyers)".replace("  ", " ")}
            for r, i in enumerate(items, start=1)]
    return rows, f"Bought together with {', '.join(args.product_ids)}"


def _category(shop: Shop, args: RecommendArgs) -> tuple[list[dict], str]:
    with shop.connect(read_only=True) as con:
        last = con.execute("SELECT max(ordered_at) FROM orders").fetchall()[0][0]
        rows = fetch_dicts(con, """
            SELECT p.product_id, p.title, count(DISTINCT o.customer_id) AS customers, sum(o.quantity) AS units
            FROM orders o JOIN products p USING (product_id)
            WHERE o.status = 'ok' AND p.kind = 'merchandise' AND lower(p.category) = lower(?)
              AND o.ordered_at >= ? - INTERVAL 30 DAY
            GROUP BY ALL ORDER BY customers DESC, units DESC LIMIT ?""", [args.category, last, args.k])
        if not rows:
            cats = [r[0] for r in con.execute("SELECT DISTINCT category FROM products WHERE category IS NOT NULL "
                                              "ORDER BY 1 LIMIT 20").fetchall()]
            raise ToolInputError(f"No recent sales in category {args.category!r}. Categories: "
                                 f"{', '.join(cats) if cats else 'none (this shop has no product categories)'}.")
    for r, row in enumerate(rows, start=1):
        row["rank"] = r
        row["reason"] = f"bought by {row['customers']:,} customers in the last 30 days"
    return rows, f"Best sellers in category {args.category} (last 30 days to {last:%Y-%m-%d})"


def recommend_products(shop: Shop, args: RecommendArgs) -> ToolResult:
    """Use for product recommendations: what to offer a customer next, what is bought together with given
    products (cross-sell, bundles), or best sellers of a category; each with a reason."""
    given = [x for x in (args.customer_id, args.product_ids, args.category) if x]
    if len(given) != 1:
        raise ToolInputError("Give exactly one of customer_id, product_ids or category.")
    evidence: list[Evidence] = []
    metrics: dict[str, Any] = {}
    if args.category:
        rows, head = _category(shop, args)
        evidence.append(Evidence("orders", "status 'ok', last 30 days, distinct customers per product"))
    else:
        rec, co = load_models(shop)
        text, metrics = _metrics_evidence(rec)
        if args.customer_id:
            rows, head = _for_customer(shop, args, rec, co)
            evidence.append(Evidence("model:recommender", text))
        else:
            rows, head = _bought_together(shop, args, co)
        evidence.append(Evidence("model:copurchase", "distinct customers who bought both products (completed "
                                                      "purchases)"))
    listed = "; ".join(f"{r['rank']}. {r['product_id']} {r.get('title') or ''} — {r['reason']}".replace("  ", " ")
                       for r in rows)
    summary = f"{head}: {listed}." if rows else f"{head}: nothing to recommend."
    return ToolResult(summary, {"recommendations": rows, "model_metrics": metrics}, tuple(evidence),
                      kind="table")


SPEC = ToolSpec("recommend_products", RecommendArgs, recommend_products)
