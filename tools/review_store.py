"""The shop's review search index and sentiment head: reading reviews, keeping the index current, quoting safely.

Shared by the ``search_reviews`` and ``review_insights`` tools and the ``reviews`` training job. Review text is
redacted (``local_models.text.pii``) before it is embedded, indexed or returned, and every quote handed to a
language model is wrapped as ``«review <id>: …»`` with a note that it is customer data, never instructions.

The index lives in ``<shop>/index/reviews/`` with an embedding cache (``<shop>/index/embeddings.sqlite``, vectors
of redacted text keyed by hash). Reviews imported after the last build are added on the next search when they are
few (:data:`AUTO_ADD_LIMIT`); a shop small enough (:data:`AUTO_BUILD_LIMIT`) gets its index built on first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tools import untrusted
from tools.base import ToolInputError
from tools.workspace import Shop

if TYPE_CHECKING:
    import pandas as pd

    from local_models.text import CachedEmbedder, Embedder, ReviewIndex
    from local_models.text.sentiment import SentimentModel

AUTO_BUILD_LIMIT = 3_000  # reviews embedded on first use (tens of seconds on a laptop CPU)
AUTO_ADD_LIMIT = 2_000  # new reviews embedded during a search
QUOTE_CHARS = 280
DATA_NOTE = untrusted.NOTE
COLUMNS = "review_id, collection, product_id, category, rating, label, created_at, language, title, text"

Progress = Callable[[float, str], None]


def index_path(shop: Shop) -> Path:
    return shop.index_dir / "reviews"


def head_path(shop: Shop) -> Path:
    return shop.models_dir / "reviews" / "sentiment.pt"


# Loaded models and indexes are kept for the life of the process: loading the encoder takes seconds and a large
# index about a second, which a chat would otherwise pay on every tool call. An index is keyed by its manifest's
# modification time, so one rebuilt by `train reviews` in another process is picked up.
_models: dict[str, Embedder] = {}
_indexes: dict[Path, tuple[int, ReviewIndex]] = {}
_heads: dict[Path, tuple[int, SentimentModel]] = {}
_lock = threading.Lock()


def embedder(model_id: str | None, shop: Shop) -> CachedEmbedder:
    """The embedder named by an index's ``model_id`` (or the configured default), cached in the shop."""
    from local_models.text import CachedEmbedder, EmbeddingCache, get_embedder

    name = model_id.split("@")[0] if model_id else None
    with _lock:
        inner = get_embedder(name)
        inner = _models.setdefault(inner.model_id, inner)
    shop.index_dir.mkdir(parents=True, exist_ok=True)
    return CachedEmbedder(inner, EmbeddingCache(shop.index_dir / "embeddings.sqlite"))


def read_reviews(shop: Shop, only_ids: list[str] | None = None) -> pd.DataFrame:
    """The shop's reviews (all, or ``only_ids``), text and title redacted."""
    from local_models.text.pii import redact

    with shop.connect(read_only=True) as con:
        if only_ids is None:
            df = con.execute(f"SELECT {COLUMNS} FROM reviews ORDER BY review_id").df()
        else:
            import pandas as pd

            con.register("wanted", pd.DataFrame({"review_id": pd.Series(only_ids, dtype="object")}))
            df = con.execute(f"SELECT {COLUMNS} FROM reviews JOIN wanted USING (review_id) ORDER BY review_id").df()
    df["text"] = [redact(t) for t in df["text"].fillna("")]
    df["title"] = [redact(t) if isinstance(t, str) else None for t in df["title"]]
    return df


def _spellings(value: str) -> list[str]:
    """Lower-case forms ``value`` may be stored under: itself, plural and singular (dress ~ Dresses)."""
    v = value.strip().lower()
    forms = {v, v + "s", v + "es"}
    if v.endswith("s"):
        forms.add(v[:-1])
    if v.endswith("es"):
        forms.add(v[:-2])
    return sorted(forms)


def stored_value(shop: Shop, column: str, value: str) -> str | None:
    """How ``value`` is spelled in the reviews' ``column`` (product_id, category or collection): itself when some
    review has it, else the most common stored value equal to it up to case and a plural ending; None if none."""
    with shop.connect(read_only=True) as con:
        if con.execute(f"SELECT 1 FROM reviews WHERE {column} = ? LIMIT 1", [value]).fetchall():
            return value
        forms = _spellings(value)
        found = con.execute(f"""
            SELECT {column} FROM reviews WHERE lower(CAST({column} AS VARCHAR)) IN ({", ".join("?" * len(forms))})
            GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""", forms).fetchall()
    return found[0][0] if found else None


PLURAL = {"product": "products", "category": "categories", "collection": "collections"}  # for messages


def known_values(shop: Shop, column: str, limit: int) -> list:
    """Up to ``limit`` values of the reviews' ``column`` for an error to suggest: the most reviewed ones, taken in
    turn from each language, so a shop with reviews in both shows examples of both."""
    with shop.connect(read_only=True) as con:
        rows = con.execute(f"""
            SELECT {column} FROM (SELECT {column}, language, count(*) AS n,
                                         row_number() OVER (PARTITION BY language ORDER BY count(*) DESC, {column}) AS r
                                  FROM reviews WHERE {column} IS NOT NULL GROUP BY 1, 2)
            ORDER BY r, n DESC, 1 LIMIT ?""", [limit]).fetchall()
    return list(dict.fromkeys(r[0] for r in rows))  # a value reviewed in both languages once


def review_ids(shop: Shop) -> list[str]:
    with shop.connect(read_only=True) as con:
        return [r[0] for r in con.execute("SELECT review_id FROM reviews").fetchall()]


def embed_text(title, text: str) -> str:
    """What is embedded and classified for a review: the title is part of what it says ("Runs small")."""
    return f"{title}. {text}" if isinstance(title, str) and title else text


def _embed_input(rows: pd.DataFrame) -> list[str]:
    return [embed_text(t, x) for t, x in zip(rows["title"], rows["text"])]


def add_reviews(index: ReviewIndex, emb: CachedEmbedder, rows: pd.DataFrame, progress: Progress | None = None,
                span: tuple[float, float] = (0.0, 1.0)) -> int:
    """Embed and add ``rows`` (redacted) to ``index``; returns how many were new."""
    rows = rows[rows["review_id"].isin(index.missing(rows["review_id"].tolist()))]
    if rows.empty:
        return 0
    lo, hi = span
    report = (lambda done, total: progress(lo + (hi - lo) * done / total,
                                           f"embedding reviews {done:,}/{total:,}")) if progress else None
    vectors = emb.encode(_embed_input(rows), "passage", progress=report)
    return index.add(rows, vectors)


def build_or_update(shop: Shop, progress: Progress | None = None, rebuild: bool = False) -> tuple[ReviewIndex, int]:
    """Bring the shop's index up to date with its reviews; a new embedding model means a full rebuild.

    Returns the index and the number of reviews added.
    """
    from local_models.text import ReviewIndex

    step = progress or (lambda frac, text: None)
    emb = embedder(None, shop)
    index = None if rebuild else open_index(shop)
    if index is not None and not index.matches(emb.model_id):
        step(0.01, f"embedding model changed ({index.model_id} -> {emb.model_id}); rebuilding the index")
        index = None
    if index is None:
        emb.encode(["warm up"])  # loads the model, so that its dimension is known
        index = ReviewIndex(emb.model_id, emb.dim)
    step(0.02, "reading reviews")
    missing = index.missing(review_ids(shop))
    added = add_reviews(index, emb, read_reviews(shop, missing), step, (0.05, 0.9)) if missing else 0
    if added or not index_path(shop).exists():
        step(0.92, "saving the index")
        save_index(shop, index)
    return index, added


def open_index(shop: Shop) -> ReviewIndex | None:
    """The shop's saved index (shared within the process until it changes on disk), or None."""
    from local_models.text import ReviewIndex

    path = index_path(shop)
    try:
        stamp = (path / "manifest.json").stat().st_mtime_ns
    except FileNotFoundError:
        return None
    with _lock:
        cached = _indexes.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            index = ReviewIndex.load(path)
        except (ValueError, OSError, KeyError):  # an old or damaged index is rebuilt rather than trusted
            return None
        _indexes[path] = (stamp, index)
        return index


def save_index(shop: Shop, index: ReviewIndex) -> None:
    """Save ``index`` atomically and remember it as the current one."""
    path = index_path(shop)
    with _lock:
        index.save(path)
        _indexes[path] = ((path / "manifest.json").stat().st_mtime_ns, index)


def index_for_tool(shop: Shop) -> tuple[ReviewIndex, CachedEmbedder, list[str]]:
    """The index a tool searches, brought up to date when that is quick. Returns (index, embedder, notes)."""
    notes: list[str] = []
    index = open_index(shop)
    ids = review_ids(shop)
    if not ids:
        raise ToolInputError("This shop has no reviews. Import some with `shopkeeper import FILE --kind reviews`.")
    if index is None:
        if len(ids) > AUTO_BUILD_LIMIT:
            raise ToolInputError(f"The review index is not built yet ({len(ids):,} reviews). Ask the operator to run "
                                 "`shopkeeper train reviews` (or /train reviews in the chat) first.")
        index, _ = build_or_update(shop)
        return index, embedder(index.model_id, shop), notes
    emb = embedder(index.model_id, shop)
    missing = index.missing(ids)
    if missing and len(missing) <= AUTO_ADD_LIMIT:
        add_reviews(index, emb, read_reviews(shop, missing))
        save_index(shop, index)
    elif missing:
        notes.append(f"{len(missing):,} reviews imported since the index was built are not searched yet; run "
                     "`shopkeeper train reviews`.")
    return index, emb, notes


def _load_head(path: Path) -> SentimentModel:
    """A sentiment head, loaded once per process until the file changes (the search ranking keeps per-review
    predictions in memory per head object, so reusing it keeps a search from re-running the head)."""
    from local_models.text.sentiment import SentimentModel

    stamp = path.stat().st_mtime_ns
    with _lock:
        cached = _heads.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        model = SentimentModel.load(path)
        _heads[path] = (stamp, model)
        return model


def sentiment_model(shop: Shop, model_id: str) -> tuple[SentimentModel | None, str]:
    """The shop's own sentiment head when trained with this embedder, else the shipped default. (model, source)."""
    from local_models.text.sentiment import DEFAULT_HEAD

    path = head_path(shop)
    if path.exists():
        model = _load_head(path)
        if model.embedder == model_id:
            return model, f"model:reviews-sentiment (trained on this shop, val macro-F1 " \
                          f"{model.metrics.get('val_macro_f1')})"
    model = _load_head(DEFAULT_HEAD) if DEFAULT_HEAD.exists() else None
    if model is not None and model.embedder == model_id:
        return model, "model:default-sentiment (trained on public zh+en review sets)"
    return None, "none"


def polarity(rows: pd.DataFrame, vectors: np.ndarray | None, model: SentimentModel | None) -> list[str]:
    """positive / negative / neutral per review: its label, else its rating (>= 4, <= 2, 3), else the model."""
    out = []
    proba = None
    if model is not None and vectors is not None:
        unknown = rows["label"].astype("float64").isna().to_numpy() & rows["rating"].astype("float64").isna().to_numpy()
        proba = np.full(len(rows), np.nan)
        if unknown.any():  # the model only runs where the shop's own data says nothing
            proba[unknown] = model.predict_proba(vectors[unknown], [embed_text(t, x) for t, x in zip(
                rows["title"][unknown], rows["text"][unknown])])
    labels = rows["label"].astype("float64").tolist()
    ratings = rows["rating"].astype("float64").tolist()
    for i, (label, rating) in enumerate(zip(labels, ratings)):
        if label == label:  # NaN (no label) is the only value unequal to itself
            out.append("positive" if int(label) == 1 else "negative")
        elif rating == rating:
            out.append("positive" if rating >= 4 else "negative" if rating <= 2 else "neutral")
        elif proba is not None:
            p = float(proba[i])
            out.append("positive" if p >= 0.6 else "negative" if p <= 0.4 else "neutral")
        else:
            out.append("unknown")
    return out


def quote(review_id: str, text: str, limit: int = QUOTE_CHARS, *, for_model: bool = False) -> str:
    """A review's text as quoted data: ``«review <id>: …»``, one line, delimiters inside the text neutralised;
    ``for_model`` also datamarks it (:mod:`tools.untrusted`), which is how every model-facing quote is written."""
    if for_model:
        return untrusted.spotlight(f"review {review_id}", text, limit)
    return f"{untrusted.OPEN}review {review_id}: {untrusted.plain(text, limit)}{untrusted.CLOSE}"


def save_head(shop: Shop, model: SentimentModel) -> Path:
    """Save the shop's sentiment head atomically under ``models/reviews/``."""
    from local_models.common import staged_dir

    final = shop.models_dir / "reviews"
    with staged_dir(final) as tmp:
        model.save(tmp / "sentiment.pt")
    return final / "sentiment.pt"
