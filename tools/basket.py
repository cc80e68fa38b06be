"""Tool ``basket_pairs``: products bought in the same order, with support, confidence and lift.

Transactions are orders with at least one merchandise sale line (status 'ok'; cancellations are separate orders in
this schema, and fees such as postage are not products). For products A and B over N orders:

* support = orders with both / N;
* confidence(A -> B) = orders with both / orders with A ("of the orders with A, the share that also had B");
* lift = support(A, B) / (support(A) x support(B)): how much more often they meet than if they were independent.

All pairs of a big shop are expensive to count (the demo's 20,000 orders hold 28 million product pairs), so the
pair counts above a support floor are cached in ``models/basket/pairs.json``, keyed by a fingerprint of the data;
a request at or above the cached floor is answered from the cache. The pairs of one product are counted directly.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools.analytics import fingerprint, read_cache, sales_span, write_cache
from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.workspace import Shop, fetch_dicts, scalar

FORMAT_VERSION = 1
DEFAULT_SUPPORT_ALL = 0.01  # of all pairs, only those in at least 1% of orders
DEFAULT_SUPPORT_ONE = 0.002  # one product's partners are few, so a lower floor still gives a short list
BASKETS = """SELECT DISTINCT o.order_id, o.product_id FROM orders o JOIN products p USING (product_id)
             WHERE o.status = 'ok' AND p.kind = 'merchandise'"""
FIND_IDS = ("Find product ids with sales_overview (group_by='product') or query_data, e.g. SELECT product_id, title "
            "FROM products WHERE kind = 'merchandise' AND title ILIKE '%mug%'.")


class BasketPairsArgs(BaseModel):
    product_id: str | None = Field(None, description="Only the pairs of this product (its product id / SKU). "
                                                     "Leave out for the strongest pairs of the whole shop.")
    min_support: float | None = Field(None, gt=0, le=1, description=(
        "Least share of orders a pair must appear in, e.g. 0.01 = 1%. Default 0.01 for all pairs, 0.002 for the "
        "pairs of one product."))
    top_k: int = Field(10, ge=1, le=50, description="How many pairs to return.")
    sort_by: Literal["lift", "confidence", "support"] = Field("lift", description="Order of the pairs.")


def _resolve_product(con, product_id: str) -> tuple[str, str | None]:
    """The product's id as stored and its title; raises ToolInputError for unknown ids and fees."""
    rows = fetch_dicts(con, "SELECT product_id, title, kind FROM products WHERE product_id = ?", [product_id])
    if not rows:  # ids are case-sensitive in the data, but a user may type 85123a for 85123A
        rows = fetch_dicts(con, "SELECT product_id, title, kind FROM products WHERE lower(product_id) = lower(?)",
                           [product_id])
        rows = rows if len(rows) == 1 else []
    if not rows:
        like = fetch_dicts(con, """
            SELECT product_id, title FROM products
            WHERE kind = 'merchandise' AND (product_id ILIKE '%' || ? || '%' OR title ILIKE '%' || ? || '%')
            ORDER BY product_id LIMIT 5""", [product_id, product_id])
        hint = (" Similar: " + ", ".join(f"{r['product_id']} ({r['title']})" for r in like) + ".") if like else ""
        raise ToolInputError(f"Unknown product id {product_id!r}.{hint} {FIND_IDS}")
    row = rows[0]
    if row["kind"] != "merchandise":
        raise ToolInputError(f"{row['product_id']} ({row['title']}) is a fee, not a product, so it has no basket "
                             f"pairs. {FIND_IDS}")
    return row["product_id"], row["title"]


def _count_all_pairs(con, min_count: int) -> dict[str, Any]:
    """Pair counts of every pair in at least ``min_count`` orders (products as small integers for a fast join)."""
    pairs = con.execute(f"""
        WITH b0 AS ({BASKETS}),
             -- a pair is at most as frequent as its rarer product (apriori), so rarer products are dropped first
             f AS (SELECT product_id, count(*) AS n, (row_number() OVER (ORDER BY product_id))::INTEGER AS item
                   FROM b0 GROUP BY product_id HAVING count(*) >= $min),
             oc AS (SELECT order_id, (row_number() OVER (ORDER BY order_id))::INTEGER AS oi
                    FROM (SELECT DISTINCT order_id FROM b0 SEMI JOIN f USING (product_id))),
             b AS (SELECT oi, item FROM b0 JOIN f USING (product_id) JOIN oc USING (order_id)),
             pc AS (SELECT x.item AS ia, y.item AS ib, count(*) AS n_ab FROM b x JOIN b y
                    ON x.oi = y.oi AND x.item < y.item GROUP BY ALL HAVING count(*) >= $min)
        SELECT fa.product_id, fb.product_id, pc.n_ab FROM pc JOIN f fa ON fa.item = pc.ia JOIN f fb ON fb.item = pc.ib
        """, {"min": min_count}).fetchall()
    items = sorted({p for a, b, _ in pairs for p in (a, b)})
    counts = dict(con.execute(f"SELECT product_id, count(*) FROM ({BASKETS}) WHERE product_id IN "
                              "(SELECT unnest($ids)) GROUP BY 1", {"ids": items}).fetchall()) if items else {}
    return {"min_count": min_count, "pairs": [list(p) for p in pairs], "counts": counts}


def _all_pairs(shop: Shop, con, min_count: int) -> tuple[dict[str, Any], bool]:
    """Pair counts at ``min_count`` or a lower floor, from the cache when it allows. Returns (doc, from_cache)."""
    path = shop.models_dir / "basket" / "pairs.json"
    key = f"v{FORMAT_VERSION};{fingerprint(con)}"
    doc = read_cache(path, key)
    if doc is not None and doc["min_count"] <= min_count:
        return doc, True
    doc = _count_all_pairs(con, min_count) | {"key": key}
    write_cache(path, doc)
    return doc, False


def warm_cache(shop: Shop, con) -> int:
    """Count and cache the shop's pairs at the default floor (a training step); returns how many were cached."""
    n = scalar(con, f"SELECT count(DISTINCT order_id) FROM ({BASKETS})")
    doc, _ = _all_pairs(shop, con, max(1, math.ceil(DEFAULT_SUPPORT_ALL * n - 1e-9)))
    return len(doc["pairs"])


def _pairs_of(con, product_id: str, min_count: int) -> tuple[list[tuple[str, int]], int, dict[str, int]]:
    """(partner, orders together) of one product, its order count and the partners' order counts."""
    rows = con.execute(f"""
        WITH b AS ({BASKETS}),
             t AS (SELECT b.product_id, count(*) AS n_ab FROM b JOIN (SELECT order_id FROM b WHERE product_id = $p)
                   USING (order_id) WHERE b.product_id <> $p GROUP BY 1 HAVING count(*) >= $min)
        SELECT t.product_id, t.n_ab, (SELECT count(*) FROM b c WHERE c.product_id = t.product_id) AS n_b FROM t
        """, {"p": product_id, "min": min_count}).fetchall()
    n_a = scalar(con, f"SELECT count(*) FROM ({BASKETS}) WHERE product_id = ?", [product_id])
    return [(r[0], r[1]) for r in rows], n_a, {r[0]: r[2] for r in rows}


def _row(a: str, b: str, n_ab: int, n_a: int, n_b: int, n: int, titles: dict[str, str | None]) -> dict[str, Any]:
    return {"product_a": a, "title_a": titles.get(a), "product_b": b, "title_b": titles.get(b),
            "orders_together": n_ab, "orders_a": n_a, "orders_b": n_b,
            "support_pct": round(100 * n_ab / n, 2), "confidence_pct": round(100 * n_ab / n_a, 1),
            "reverse_confidence_pct": round(100 * n_ab / n_b, 1), "lift": round(n_ab * n / (n_a * n_b), 2)}


def basket_pairs(shop: Shop, args: BasketPairsArgs) -> ToolResult:
    """Use for "what is bought together", cross-sell and bundle questions: product pairs that appear in the same
    order, with support, confidence and lift; or the products most often bought with one product."""
    min_support = args.min_support or (DEFAULT_SUPPORT_ONE if args.product_id else DEFAULT_SUPPORT_ALL)
    with shop.connect(read_only=True) as con:
        first, last = sales_span(con)
        n = scalar(con, f"SELECT count(DISTINCT order_id) FROM ({BASKETS})")
        # the count a pair needs; a tiny epsilon keeps 0.2 x 5 orders = 1 order from rounding up to 2
        min_count = max(1, math.ceil(min_support * n - 1e-9))
        cached = None
        if args.product_id:
            pid, title = _resolve_product(con, args.product_id.strip())
            partners, n_a, n_b = _pairs_of(con, pid, min_count)
            raw = [(pid, b, n_ab, n_a, n_b[b]) for b, n_ab in partners]
        else:
            pid, title, n_a = None, None, None
            doc, cached = _all_pairs(shop, con, min_count)
            counts = doc["counts"]
            raw = []
            for a, b, n_ab in doc["pairs"]:
                if n_ab < min_count:
                    continue
                # orient each pair from its rarer product: the direction with the higher confidence
                if (counts[b], b) < (counts[a], a):
                    a, b = b, a
                raw.append((a, b, n_ab, counts[a], counts[b]))
        keys = {"lift": lambda r: r["lift"], "confidence": lambda r: r["confidence_pct"],
                "support": lambda r: r["support_pct"]}
        ids = sorted({p for r in raw for p in (r[0], r[1])})
        titles = dict(con.execute("SELECT product_id, title FROM products WHERE product_id IN (SELECT unnest($ids))",
                                  {"ids": ids}).fetchall()) if ids else {}
    rows = [_row(*r, n, titles) for r in raw]
    rows.sort(key=lambda r: (-keys[args.sort_by](r), -r["orders_together"], r["product_a"], r["product_b"]))
    found = len(rows)
    rows = rows[:args.top_k]

    scope = (f"pairs of {pid} {title or ''} (in {n_a:,} orders)".replace("  ", " ") if pid
             else "pairs of products")
    head = (f"Bought together, {first}..{last} (sales, merchandise only, {n:,} orders): {found:,} {scope} in at "
            f"least {min_support * 100:g}% of orders ({min_count:,} orders); top {len(rows)} by {args.sort_by}")
    parts = [f"{r['product_a']} {r['title_a'] or ''} + {r['product_b']} {r['title_b'] or ''}: "
             f"{r['orders_together']:,} orders ({r['support_pct']}%), confidence {r['confidence_pct']}%, "
             f"lift {r['lift']}".replace("  ", " ") for r in rows[:10]]
    summary = head + (": " + "; ".join(parts) + "." if parts else ". None found; try a lower min_support.")
    evidence = (Evidence("orders", f"orders with a merchandise sale line (status ok), {first}..{last}; fees left "
                                   "out; support = orders with both / all orders, confidence(A->B) = orders with "
                                   "both / orders with A, lift = support(A,B) / (support(A) x support(B))"
                                   + ("; pair counts from cache" if cached else "")),)
    data = {"period": {"start": first, "end": last}, "orders": n, "product_id": pid, "product_title": title,
            "product_orders": n_a, "min_support_pct": round(min_support * 100, 4), "min_orders": min_count,
            "pairs_found": found, "listed": len(rows), "sort_by": args.sort_by, "pairs": rows}
    return ToolResult(summary, data, evidence, kind="pairs")


SPEC = ToolSpec("basket_pairs", BasketPairsArgs, basket_pairs)
