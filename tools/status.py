"""What is in a shop: row counts, date range, review collections, imports and quarantine, as one dict."""

from __future__ import annotations

from typing import Any

from tools.workspace import Shop, fetch_dicts, scalar


def shop_status(shop: Shop) -> dict[str, Any]:
    """Summarise the shop. Every figure is read from the shop's tables; nothing is estimated."""
    with shop.connect(read_only=True) as con:
        counts = shop.table_counts(con)
        first, last = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchall()[0]
        statuses = dict(con.execute("SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC").fetchall())
        imports = fetch_dicts(con, """
            SELECT kind, count(*) AS files, sum(records) AS records, sum(inserted) AS inserted,
                   sum(already_present) AS already_present, sum(quarantined) AS quarantined
            FROM import_log GROUP BY kind ORDER BY kind""")
        collections = fetch_dicts(con, """
            SELECT collection, count(*) AS reviews, count(DISTINCT product_id) AS products,
                   count(DISTINCT category) AS categories, mode(language) AS language,
                   count(rating) AS with_rating, count(label) AS with_label
            FROM reviews GROUP BY collection ORDER BY collection""")
        quarantine = fetch_dicts(con, """
            SELECT l.kind, q.reason, count(*) AS records FROM quarantine q JOIN import_log l USING (import_id)
            GROUP BY ALL ORDER BY l.kind, records DESC""")
        recent = fetch_dicts(con, """
            SELECT import_id, kind, source_file, records, inserted, already_present, quarantined, finished_at
            FROM import_log ORDER BY import_id DESC LIMIT 5""")
        sales_products = scalar(con, "SELECT count(DISTINCT product_id) FROM orders WHERE status = 'ok'")
    return {
        "shop": str(shop.path),
        "counts": counts,
        "orders": {
            "first": first.isoformat(sep=" ") if first else None,
            "last": last.isoformat(sep=" ") if last else None,
            "by_status": statuses,
            "products_sold": sales_products,
        },
        "imports": imports,
        "review_collections": collections,
        "quarantine": quarantine,
        "recent_imports": [r | {"finished_at": r["finished_at"].isoformat(sep=" ", timespec="seconds")}
                           for r in recent],
    }
