"""Tool ``review_insights``: sentiment and the main complaint and praise themes for a product, category or
collection, each theme with its size, trend and quoted reviews.

Sentiment per review comes from the shop's own data first (a 0/1 label, else the rating: 4-5 positive, 1-2
negative, 3 neutral) and from the sentiment head only where neither exists, so the counts say which is which.
Themes are clusters of the reviews' embeddings named by their most specific words (``local_models.text.themes``).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from tools import review_store, untrusted
from tools.base import Evidence, ToolInputError, ToolResult, ToolSpec
from tools.workspace import Shop

MAX_CLUSTERED = 1_500  # reviews clustered per polarity; a seeded sample above that keeps the call to seconds


class ReviewInsightsArgs(BaseModel):
    target: str = Field(min_length=1, description="A product id, a category (e.g. Dresses, 酒店) or a review "
                                                  "collection; 'all' for every review.")
    target_kind: Literal["auto", "product", "category", "collection", "all"] = Field(
        "auto", description="What target is; auto tries product, then category, then collection.")
    polarity: Literal["both", "negative", "positive"] = Field("both", description="Themes of complaints, praise "
                                                                                 "or both.")
    themes: int = Field(0, ge=0, le=8, description="Themes per polarity; 0 chooses from the number of reviews.")


def _resolve(shop: Shop, target: str, kind: str) -> tuple[str, str | None]:
    if target.lower() == "all" and kind in ("auto", "all"):
        return "all", None
    columns = {"product": "product_id", "category": "category", "collection": "collection"}
    for k in ([kind] if kind != "auto" else ["product", "category", "collection"]):
        found = review_store.stored_value(shop, columns[k], target)  # "dresses" finds the category "Dresses"
        if found is not None:
            return k, found
    examples = {k: review_store.known_values(shop, c, 6) for k, c in columns.items()}
    what = "product, category or collection" if kind == "auto" else kind
    hints = "; ".join(f"{review_store.PLURAL[k]}: {', '.join(map(str, v))}" for k, v in examples.items() if v)
    raise ToolInputError(f"No reviews for {what} {target!r}. Try one with reviews ({hints}), or 'all'.")


def review_insights(shop: Shop, args: ReviewInsightsArgs) -> ToolResult:
    """Use for what customers like or complain about in a product, category or collection: sentiment shares and
    the top complaint and praise themes with counts, trend and quoted reviews (ids)."""
    from local_models.text import Filters
    from local_models.text.themes import find_themes

    kind, value = _resolve(shop, args.target, args.target_kind)
    index, _, notes = review_store.index_for_tool(shop)
    filters = Filters(**{"product": {"product_ids": [value]}, "category": {"categories": [value]},
                         "collection": {"collections": [value]}, "all": {}}[kind])
    mask = filters.mask(index.meta)
    positions = np.flatnonzero(mask) if mask is not None else np.arange(len(index))
    if len(positions) == 0:  # in the shop but not in the index yet
        raise ToolInputError(f"The reviews of {kind} {value!r} are not indexed yet; run `shopkeeper train reviews`.")
    rows = index.meta.iloc[positions].reset_index(drop=True)
    vectors = index.vectors(positions)
    head, head_source = review_store.sentiment_model(shop, index.model_id)
    pol = np.array(review_store.polarity(rows, vectors, head))
    source = np.where(rows["label"].astype("float64").notna(), "label",
                      np.where(rows["rating"].astype("float64").notna(), "rating", "model"))
    counts = Counter(pol.tolist())
    n = len(rows)
    ratings = rows["rating"].astype("float64")
    sentiment = {"reviews": n, **{p: counts.get(p, 0) for p in ("positive", "negative", "neutral")},
                 "positive_share": round(counts.get("positive", 0) / n, 4),
                 "negative_share": round(counts.get("negative", 0) / n, 4),
                 "average_rating": round(float(ratings.mean()), 2) if ratings.notna().any() else None,
                 "from_labels": int((source == "label").sum()), "from_ratings": int((source == "rating").sum()),
                 "from_model": int((source == "model").sum())}
    theme_rows, quote_rows = [], []
    spoken: list[list[str]] = []  # per theme row: its quotes as the model reads them (datamarked)
    rng = np.random.default_rng(0)
    sampled = {}
    for polarity in (("negative", "positive") if args.polarity == "both" else (args.polarity,)):
        idx = np.flatnonzero(pol == polarity)
        if len(idx) > MAX_CLUSTERED:
            idx = np.sort(rng.choice(idx, MAX_CLUSTERED, replace=False))
            sampled[polarity] = MAX_CLUSTERED
        if len(idx) < 3:
            continue
        texts = [(f"{t}. {x}" if isinstance(t, str) and t else x) for t, x in zip(rows["title"].iloc[idx],
                                                                                 rows["text"].iloc[idx])]
        ids = rows["review_id"].iloc[idx].tolist()
        themes = find_themes(texts, vectors[idx], ids, rows["created_at"].iloc[idx].tolist(),
                             n_themes=args.themes or None)
        by_id = dict(zip(ids, texts))
        for t in themes:
            quotes = [review_store.quote(q, by_id[q], 200) for q in t.quote_ids]
            theme_rows.append({"polarity": polarity, "theme": t.label, "reviews": t.count,
                               "share": round(t.count / counts[polarity], 4), "trend": t.trend or "n/a",
                               "example_ids": ", ".join(t.quote_ids), "terms": t.terms, "quotes": quotes})
            spoken.append([review_store.quote(q, by_id[q], 200, for_model=True) for q in t.quote_ids])
            quote_rows += [{"polarity": polarity, "theme": t.label, "review_id": q, "quote": s}
                           for q, s in zip(t.quote_ids, quotes)]
    label = "all reviews" if kind == "all" else f"{kind} {value}"
    lines = [f"Reviews of {label}: {n:,}; positive {sentiment['positive']:,} ({sentiment['positive_share']:.0%}), "
             f"negative {sentiment['negative']:,} ({sentiment['negative_share']:.0%}), neutral "
             f"{sentiment['neutral']:,}" + (f"; average rating {sentiment['average_rating']}"
                                            if sentiment["average_rating"] is not None else "") + "."]
    for polarity in ("negative", "positive"):
        mine = [t for t in theme_rows if t["polarity"] == polarity]
        mine_spoken = [q for t, q in zip(theme_rows, spoken) if t["polarity"] == polarity]
        if mine:
            word = "Complaint" if polarity == "negative" else "Praise"
            lines.append(f"{word} themes (of {counts[polarity]:,} {polarity} reviews"
                         f"{f', a sample of {sampled[polarity]:,} clustered' if polarity in sampled else ''}): " +
                         "; ".join(f"{_label(t)} — {t['reviews']} review{'s' if t['reviews'] != 1 else ''} ({t['share']:.0%}"
                                   f"{', ' + t['trend'] if t['trend'] != 'n/a' else ''})" for t in mine) + ".")
            lines += [f"  {_label(t)}: " + " ".join(q[:2]) for t, q in zip(mine[:3], mine_spoken)]
    if theme_rows:
        lines.append(review_store.DATA_NOTE)
    lines += notes
    evidence = [Evidence("reviews", f"{label}, {n:,} reviews; polarity from labels {sentiment['from_labels']:,}, "
                                    f"ratings {sentiment['from_ratings']:,} (4-5 positive, 1-2 negative), "
                                    f"model {sentiment['from_model']:,}"),
                Evidence("index:reviews", f"themes = k-means over {index.model_id} embeddings, labelled by "
                                          "class TF-IDF terms; trend = share among the later half of the "
                                          "dated reviews vs the earlier half")]
    if sentiment["from_model"]:
        evidence.append(Evidence(head_source.split(" ")[0], head_source))
    data = {"target": {"kind": kind, "value": value}, "sentiment": sentiment, "themes": theme_rows,
            "quotes": quote_rows, "note": review_store.DATA_NOTE}
    return ToolResult("\n".join(lines), data, tuple(evidence), kind="table")


def _label(theme: dict) -> str:
    """A theme's label is made of words customers wrote, so the model reads it as quoted data too."""
    return untrusted.spotlight("theme", theme["theme"])


SPEC = ToolSpec("review_insights", ReviewInsightsArgs, review_insights)
