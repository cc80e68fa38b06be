"""Tool ``search_reviews``: find reviews by meaning and by keyword (hybrid), with filters, quoted with their ids.

Dense search over the review embeddings and BM25 over the words are fused (a weighted sum of normalised scores,
weighted per query language: local_models/text/index.py), so a query finds reviews that say the same thing in other
words (or another language, with the multilingual embedder) as well as reviews that use its exact words (a model
number, a colour). For Chinese queries the ranking also favours reviews whose sentiment agrees with the query's
(the shop's sentiment head, or the default one; labels and ratings where the shop has them), so "质量差" finds
complaints before praise of the quality. English queries pass through the default query adapter
(local_models/text/adapter.py), which moves a few words towards the reviews that say them. Text is redacted and returned as quoted data.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from local_models.text.adapter import default_adapter, query_vectors
from tools import review_store
from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.workspace import Shop


class ReviewFilters(BaseModel):
    product_id: str | None = Field(None, description="Only reviews of this product id.")
    category: str | None = Field(None, description="Only reviews in this category (e.g. Dresses, 酒店).")
    collection: str | None = Field(None, description="Only this review collection (the import it came from).")
    language: Literal["en", "zh"] | None = Field(None, description="Only reviews in this language.")
    min_rating: float | None = Field(None, ge=1, le=5, description="Lowest star rating (reviews without one "
                                                                  "are excluded).")
    max_rating: float | None = Field(None, ge=1, le=5, description="Highest star rating.")
    since: dt.date | None = Field(None, description="First day, YYYY-MM-DD.")
    until: dt.date | None = Field(None, description="Last day, YYYY-MM-DD.")


class SearchReviewsArgs(BaseModel):
    query: str = Field(min_length=1, max_length=500, description="What to look for, in any language: a complaint, "
                                                                 "a feature, words customers use.")
    filters: ReviewFilters = Field(default_factory=ReviewFilters, description="Narrow the reviews searched.")
    k: int = Field(10, ge=1, le=50, description="Reviews to return.")
    mode: Literal["hybrid", "semantic", "keyword"] = Field("hybrid", description="hybrid (default), semantic "
                                                                                 "(meaning only) or keyword "
                                                                                 "(exact words only).")


def check_known(shop: Shop, column: str, value: str | None, what: str) -> str | None:
    """``value`` as the reviews spell it (``Dresses`` for ``dresses``); ToolInputError naming some valid values when
    no review has it."""
    if value is None:
        return None
    found = review_store.stored_value(shop, column, value)
    if found is not None:
        return found
    examples = review_store.known_values(shop, column, 8)
    hint = (f" Known {review_store.PLURAL[what]} with reviews include: {', '.join(map(str, examples))}." if examples
            else f" No review has a {what}.")
    raise ToolInputError(f"No reviews for {what} {value!r}.{hint}")


def to_filters(f: ReviewFilters):
    from local_models.text import Filters

    if f.min_rating is not None and f.max_rating is not None and f.min_rating > f.max_rating:
        raise ToolInputError("min_rating is above max_rating.")
    if f.since and f.until and f.since > f.until:
        raise ToolInputError("since is after until.")
    return Filters(product_ids=[f.product_id] if f.product_id else None,
                   categories=[f.category] if f.category else None,
                   collections=[f.collection] if f.collection else None,
                   languages=[f.language] if f.language else None, min_rating=f.min_rating,
                   max_rating=f.max_rating, since=f.since, until=f.until)


def describe(f: ReviewFilters) -> str:
    parts = [f"{k}={v}" for k, v in f.model_dump().items() if v is not None]
    return ", ".join(parts) if parts else "no filters"


def search_reviews(shop: Shop, args: SearchReviewsArgs) -> ToolResult:
    """Use to find what customers say about something: reviews matching a topic, complaint or phrase (any
    language), optionally for one product/category/rating range/period; returns quotes with review ids."""
    known = {column: check_known(shop, column, getattr(args.filters, column), what)
             for column, what in (("product_id", "product"), ("category", "category"), ("collection", "collection"))}
    args = args.model_copy(update={"filters": args.filters.model_copy(update=known)})
    filters = to_filters(args.filters)
    index, emb, notes = review_store.index_for_tool(shop)
    mode = {"hybrid": "hybrid", "semantic": "dense", "keyword": "bm25"}[args.mode]
    adapter = default_adapter(emb.model_id) if mode != "bm25" else None
    adapter = adapter if adapter is not None and adapter.applies(args.query, emb.model_id) else None
    qvec = query_vectors(emb, [args.query], adapter)[0] if mode != "bm25" else None
    sentiment = review_store.sentiment_model(shop, index.model_id)[0] if mode == "hybrid" else None
    hits = index.search(args.query, qvec, args.k, filters, mode=mode, sentiment=sentiment)
    meta = index.meta
    rows, spoken = [], []  # spoken: the same quotes as the model reads them (datamarked)
    for h in hits:
        m = meta.iloc[h.position]
        text = _with_title(m)
        how = "+".join(n for n, r in (("semantic", h.dense_rank), ("keyword", h.bm25_rank)) if r is not None)
        rating = m["rating"]
        created = m["created_at"]
        rows.append({"review_id": m["review_id"], "product_id": m["product_id"], "category": m["category"],
                     "rating": None if rating != rating else rating,  # NaN: no rating
                     "date": None if created is None or created != created else str(created)[:10],
                     "language": m["language"], "match": how, "score": round(h.score, 4),
                     "quote": review_store.quote(m["review_id"], text)})
        spoken.append(review_store.quote(m["review_id"], text, for_model=True))
    where = describe(args.filters)
    if rows:
        head = f"{len(rows)} reviews match {args.query!r} ({where}; {args.mode} search over {len(index):,} reviews)."
        body = "\n".join(f"- {q}" + (f" ({r['rating']:.0f}★)" if r["rating"] is not None else "")
                         for r, q in zip(rows, spoken))
        summary = f"{head} {review_store.DATA_NOTE}\n{body}"
    else:
        summary = f"No reviews match {args.query!r} ({where})."
    if notes:
        summary += "\n" + " ".join(notes)
    evidence = (Evidence("reviews", f"{args.mode} search, {where}, top {args.k}"),
                Evidence("index:reviews", f"{index.kind}, {len(index):,} reviews, embedder {index.model_id}"))
    if adapter is not None:
        m = adapter.metrics
        evidence += (Evidence("model:default-query-adapter", f"query embedding corrected towards review texts "
                              f"(trained on public review titles; held-out recall@10 {m['val_recall@10_without']} "
                              f"-> {m['val_recall@10']})"),)
    data = {"query": args.query, "filters": args.filters.model_dump(mode="json"), "mode": args.mode,
            "reviews": rows, "note": review_store.DATA_NOTE, "indexed_reviews": len(index)}
    return ToolResult(summary, data, evidence, kind="table")


def _with_title(m) -> str:
    title = m["title"]
    return f"{title}. {m['text']}" if isinstance(title, str) and title else m["text"]


SPEC = ToolSpec("search_reviews", SearchReviewsArgs, search_reviews)
