"""A review search index: FAISS vectors + BM25 keywords + the metadata to filter by, saved as one folder.

Exact search (``IndexFlatIP``) while the index is small; above ``hnsw_threshold`` vectors it becomes an HNSW graph
(chosen automatically, and converted once when an incremental add crosses the threshold). Reviews are added
incrementally by id: an id already in the index is skipped, so re-running an import adds nothing twice. The folder
is written next to its final place and renamed in, so a crash leaves the previous index. The manifest records the
embedding model; an index built with another model must be rebuilt (:meth:`ReviewIndex.matches`).

Retrieval is hybrid: the dense (cosine) and BM25 candidates fused by a weighted sum of their normalised scores, the
weight set per query language (:class:`IndexConfig`); reciprocal rank fusion is kept as an option. Filters (product,
category, rating, date, language, collection) are applied inside both searches, so a filtered query still returns k
results when k exist.

Layout::

    <dir>/manifest.json   model_id, dim, kind, count, parameters
    <dir>/vectors.faiss   the FAISS index; row i is reviews.parquet row i
    <dir>/reviews.parquet id map and metadata (review_id, collection, product_id, …, redacted text, tokens)
    <dir>/bm25/           the bm25s index over the tokens
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from local_models.common import staged_dir
from local_models.text.tokens import has_cjk, search_terms, tokenize

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1
META_COLUMNS = ("review_id", "collection", "product_id", "category", "rating", "label", "created_at", "language",
                "title", "text")
Mode = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class IndexConfig:
    """Index parameters.

    Attributes:
        hnsw_threshold: above this many vectors the index is an HNSW graph instead of exact search.
        hnsw_m: HNSW neighbours per node (memory ~ 2*m*4 bytes per vector on top of the vectors).
        ef_construction: HNSW build beam; higher builds slower and finds better neighbours.
        ef_search: HNSW search beam; raised to the number of candidates asked for when that is larger. None (the
            default) picks it by the index's size with :func:`auto_ef_search`.
        exact_filter_limit: a filter leaving at most this many reviews is searched exactly over those reviews
            (a graph search restricted to a small subset would miss results).
        fusion: ``convex`` (weighted sum of the min-max scaled cosine and the BM25 score over the query's best)
            or ``rrf`` (reciprocal rank fusion).
        bm25_weight: weight of the BM25 score in convex fusion for queries without Chinese characters.
        bm25_weight_zh: the same for queries with Chinese characters.
        fusion_depth: candidates taken from each ranking before fusion (at least 5 * k).
        rrf_k: the constant of reciprocal rank fusion.
        bm25_k1: BM25 term-frequency saturation (bm25s default 1.5).
        bm25_b: BM25 length normalisation, 0 (none) to 1 (full; bm25s default 0.75).
        sentiment_weight: weight of the sentiment agreement term in convex fusion (queries without Chinese
            characters): ``weight * query polarity * review polarity``, polarities in [-1, 1].
        sentiment_weight_zh: the same for queries with Chinese characters.
        query_sentiment_min: a query whose polarity is weaker than this (in [0, 1]) is treated as neutral.

    ``ef_search``, ``fusion`` and the fields after it are search settings: an index loaded from disk uses the
    current code's values, not the ones it was saved with (they were tuned after some indexes were built).
    """

    hnsw_threshold: int = 50_000
    hnsw_m: int = 32
    # 128 rather than faiss' usual 40-64: at 1M vectors recall@10 at efSearch 2048 went 0.947 -> 0.966 (queries
    # through the English query adapter sit off the reviews' own distribution, which a sparser graph serves worse);
    # building costs about twice as long, still minutes next to the hour the encoder takes for 1M reviews.
    ef_construction: int = 128
    ef_search: int | None = None
    exact_filter_limit: int = 20_000
    # Chosen on the dev splits of benchmarks/reviews.py (``--split dev``), with the default embedder (use-m3):
    # English title queries lean on their words, Chinese category + sentiment queries on their meaning.
    fusion: str = "convex"
    # English 0.5 since English queries pass through the default query adapter (local_models/text/adapter.py):
    # the dense side got stronger (dev recall@10 alone 0.132 -> 0.210), and hybrid recall@10 by weight is 0.298,
    # 0.300, 0.296, 0.292, 0.282 at 0.4-0.8 (0.7 was best without the adapter).
    bm25_weight: float = 0.5
    bm25_weight_zh: float = 0.2
    fusion_depth: int = 200
    rrf_k: int = 60
    # BM25 over English stems with k1 0.9, b 0.4 (bm25s defaults 1.5 / 0.75), chosen with bm25_weight on the English
    # dev split by hybrid recall@10: 0.256 before (words, defaults, weight 0.6) -> 0.274. The region is flat (k1
    # 0.6-1.2, b 0.3-0.5, weight 0.6-0.8 all 0.268-0.275); this is its middle. BM25 alone: 0.236 -> 0.241.
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    # Sentiment agreement (``ReviewIndex._convex``), also chosen on the dev splits with a head that never saw them:
    # Chinese dev precision@10 0.485 -> 0.557 (flat from 0.2 to 0.4; more costs category precision). English: no
    # weight found anything (recall@10 0.256 at 0, 0.257 at 0.02-0.05, lower above): a review's title and its text
    # agree in sentiment only ~80% of the time by the head, and the fused top 10 already agree with the title ~76%
    # of the time, so the term cannot tell the answer from its neighbours. Off for English.
    sentiment_weight: float = 0.0
    sentiment_weight_zh: float = 0.2
    query_sentiment_min: float = 0.2


BUILD_FIELDS = ("hnsw_threshold", "hnsw_m", "ef_construction", "exact_filter_limit")


def auto_ef_search(n_vectors: int) -> int:
    """The HNSW search beam for an index of ``n_vectors``: one that kept recall@10 above 0.95, with a margin, against
    exact search in ``benchmarks/reviews.py`` (vectors shaped like real review embeddings, ``use-m3`` queries with the
    English query adapter), one thread, query encoding included:

    * 100k vectors: efSearch 512, recall@10 0.98, p95 4 ms (256: 0.96);
    * 1M vectors: efSearch 2048, recall@10 0.97, p95 12 ms (1024: 0.94).

    A graph needs a wider beam as it grows; between the measured sizes the larger setting is used. Beyond 1M it is
    unmeasured: set ``IndexConfig.ef_search`` (4096 gave 0.99 at p95 23 ms on 1M).
    """
    return 512 if n_vectors <= 200_000 else 2048


@dataclass
class Filters:
    """Which reviews a search may return; None means any. Dates are inclusive days."""

    product_ids: Sequence[str] | None = None
    categories: Sequence[str] | None = None
    collections: Sequence[str] | None = None
    languages: Sequence[str] | None = None
    min_rating: float | None = None
    max_rating: float | None = None
    label: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def mask(self, meta: pd.DataFrame) -> np.ndarray | None:
        """A boolean row mask over ``meta``, or None when nothing is filtered."""
        import pandas as pd

        m = np.ones(len(meta), dtype=bool)
        used = False
        for col, values in (("product_id", self.product_ids), ("category", self.categories),
                            ("collection", self.collections), ("language", self.languages)):
            if values:
                m &= meta[col].isin(list(values)).to_numpy()
                used = True
        if self.min_rating is not None:
            m &= (meta["rating"] >= self.min_rating).fillna(False).to_numpy(dtype=bool)
            used = True
        if self.max_rating is not None:
            m &= (meta["rating"] <= self.max_rating).fillna(False).to_numpy(dtype=bool)
            used = True
        if self.label is not None:
            m &= (meta["label"] == self.label).fillna(False).to_numpy(dtype=bool)
            used = True
        created = pd.to_datetime(meta["created_at"])
        if self.since is not None:
            m &= (created >= pd.Timestamp(self.since)).fillna(False).to_numpy(dtype=bool)
            used = True
        if self.until is not None:
            m &= (created < pd.Timestamp(self.until) + pd.Timedelta(days=1)).fillna(False).to_numpy(dtype=bool)
            used = True
        return m if used else None


@dataclass
class Hit:
    position: int
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None


def _empty_meta() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="object") for c in (*META_COLUMNS, "tokens")})


@dataclass
class ReviewIndex:
    """Vectors, keywords and metadata of a shop's reviews. Build with :meth:`create` + :meth:`add`."""

    model_id: str
    dim: int
    config: IndexConfig = field(default_factory=IndexConfig)

    def __post_init__(self) -> None:
        import faiss

        self.meta = _empty_meta()
        self.faiss = faiss.IndexFlatIP(self.dim)
        self._bm25 = None
        self._positions: dict[str, int] = {}
        self._polarity: np.ndarray = np.zeros(0, np.float32)  # per row: review polarity by the head, NaN: not yet
        self._polarity_head: int | None = None  # id() of the head that computed self._polarity

    # ---- building ---------------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "hnsw" if hasattr(self.faiss, "hnsw") else "flat"

    def __len__(self) -> int:
        return int(self.faiss.ntotal)

    def matches(self, model_id: str) -> bool:
        """True when this index was built with the embedding model ``model_id``."""
        return self.model_id == model_id

    def missing(self, review_ids: Sequence[str]) -> list[str]:
        """The ids in ``review_ids`` that are not in the index yet."""
        return [r for r in review_ids if r not in self._positions]

    def _new_hnsw(self):
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.config.ef_construction
        return index

    def ef_search(self) -> int:
        """The HNSW search beam used for this index now (``IndexConfig.ef_search``, else by size)."""
        return self.config.ef_search or auto_ef_search(len(self))

    def add(self, rows: pd.DataFrame, vectors: np.ndarray) -> int:
        """Add reviews (``rows`` with :data:`META_COLUMNS`, text already redacted) and their unit vectors.

        Rows whose ``review_id`` is already indexed are skipped. Returns how many were added.
        """
        import pandas as pd

        if len(rows) != len(vectors):
            raise ValueError(f"{len(rows)} rows but {len(vectors)} vectors")
        if len(rows) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dimensions, the index {self.dim}")
        rows = rows.reset_index(drop=True)
        keep = ~rows["review_id"].astype(str).isin(self._positions.keys()).to_numpy() & \
            ~rows["review_id"].astype(str).duplicated().to_numpy()
        rows, vectors = rows[keep].reset_index(drop=True), np.ascontiguousarray(vectors[keep], dtype=np.float32)
        if rows.empty:
            return 0
        new = pd.DataFrame({c: rows[c] if c in rows else None for c in META_COLUMNS})
        new["review_id"] = new["review_id"].astype(str)
        # The same dtypes as after save/load, so a fresh index and a loaded one behave alike (no pandas NA).
        for col in ("rating", "label"):
            new[col] = pd.to_numeric(new[col], errors="coerce").astype("float64")
        new["created_at"] = _to_datetime(new["created_at"])
        new["tokens"] = [" ".join(tokenize(f"{t or ''} {x or ''}")) for t, x in zip(new["title"], new["text"])]
        total = len(self) + len(new)
        if self.kind == "flat" and total > self.config.hnsw_threshold:
            # Crossing the threshold: move the vectors already held into a graph, once.
            old = self.faiss.reconstruct_n(0, len(self)) if len(self) else np.zeros((0, self.dim), np.float32)
            self.faiss = self._new_hnsw()
            if len(old):
                self.faiss.add(old)
        self.faiss.add(vectors)
        start = len(self.meta)
        if self.meta.empty:
            self.meta = new
        else:
            with warnings.catch_warnings():
                # Columns that are all missing (no ratings in a collection) only decide the dtype; either is fine.
                warnings.simplefilter("ignore", FutureWarning)
                self.meta = pd.concat([self.meta, new], ignore_index=True)
        self._positions.update({rid: start + i for i, rid in enumerate(new["review_id"])})
        self._bm25 = None  # bm25s cannot add documents; it is rebuilt from the stored tokens when next needed
        return len(new)

    def _bm25_index(self):
        if self._bm25 is None and len(self):
            import bm25s

            # The stored tokens are words; BM25 matches their stems (built here, so older indexes get them too).
            bm25 = bm25s.BM25(k1=self.config.bm25_k1, b=self.config.bm25_b)
            bm25.index([search_terms(t.split()) if t else [] for t in self.meta["tokens"]], show_progress=False)
            self._bm25 = bm25
        return self._bm25

    def _bm25_settings(self) -> dict:
        """What the BM25 index depends on besides the tokens (recorded in the manifest)."""
        return {"terms": "snowball-english-stems", "k1": self.config.bm25_k1, "b": self.config.bm25_b}

    # ---- searching --------------------------------------------------------------------------------------------
    def dense_search(self, query_vec: np.ndarray, k: int, allowed: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` positions by cosine similarity among ``allowed`` rows (a bool mask; None: all)."""
        import faiss

        q = np.ascontiguousarray(query_vec.reshape(1, -1), dtype=np.float32)
        if not len(self):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed is not None:
            subset = np.flatnonzero(allowed)
            if len(subset) == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            if len(subset) <= self.config.exact_filter_limit:
                vecs = self.faiss.reconstruct_batch(subset.astype(np.int64))
                scores = vecs @ q[0]
                top = np.argsort(-scores)[:k]
                return subset[top], scores[top]
            sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(np.packbits(allowed, bitorder="little")))
            params = (faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.ef_search(), k))
                      if self.kind == "hnsw" else faiss.SearchParameters(sel=sel))
            scores, ids = self.faiss.search(q, k, params=params)
        else:
            if self.kind == "hnsw":
                self.faiss.hnsw.efSearch = max(self.ef_search(), k)
            scores, ids = self.faiss.search(q, k)
        ok = ids[0] >= 0
        return ids[0][ok], scores[0][ok]

    def bm25_search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` positions by BM25 over title + text among ``allowed`` rows; only rows sharing a word."""
        bm25 = self._bm25_index()
        words = [w for w in search_terms(tokenize(query)) if bm25 is not None and w in bm25.vocab_dict]
        if not words:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = bm25.get_scores(words).astype(np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        n = min(k, int((scores > 0).sum()))
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return top, scores[top]

    def review_polarity(self, positions: np.ndarray, head=None) -> np.ndarray:
        """Polarity in [-1, 1] of rows ``positions``: their label (1 / 0 -> +1 / -1), else their rating (4-5: +1,
        1-2: -1, 3: 0), else ``2 * P(positive) - 1`` from sentiment ``head`` (computed once per row and head and kept
        in memory), else 0. The same order of evidence as the review_insights tool."""
        positions = np.asarray(positions, np.int64)
        # only the candidates' rows are converted: a search must not touch every row of a large index
        label = self.meta["label"].iloc[positions].to_numpy(dtype="float64", na_value=np.nan)
        rating = self.meta["rating"].iloc[positions].to_numpy(dtype="float64", na_value=np.nan)
        out = np.where(~np.isnan(label), np.where(label == 1, 1.0, -1.0),
                       np.where(~np.isnan(rating), np.sign(np.round(rating) - 3), np.nan))
        todo = np.isnan(out)
        if todo.any() and head is not None:
            if self._polarity_head != id(head):  # another head: its predictions start afresh
                self._polarity, self._polarity_head = np.full(len(self), np.nan, np.float32), id(head)
            elif len(self._polarity) != len(self):  # rows were added since
                self._polarity = np.concatenate([self._polarity, np.full(len(self) - len(self._polarity),
                                                                         np.nan, np.float32)])
            need = positions[todo & np.isnan(self._polarity[positions])]
            need = np.unique(need)
            if len(need):
                titles, texts = self.meta["title"].to_numpy()[need], self.meta["text"].to_numpy()[need]
                inputs = [f"{t}. {x}" if isinstance(t, str) and t else (x or "") for t, x in zip(titles, texts)]
                self._polarity[need] = 2 * head.predict_proba(self.vectors(need), inputs) - 1
            out[todo] = self._polarity[positions[todo]]
        return np.nan_to_num(out, nan=0.0).astype(np.float32)

    def search(self, query: str, query_vec: np.ndarray | None, k: int = 10, filters: Filters | None = None,
               mode: Mode = "hybrid", sentiment=None) -> list[Hit]:
        """The ``k`` best reviews for ``query``.

        Args:
            query: the query text (for BM25).
            query_vec: its embedding (for dense search); required unless ``mode="bm25"``.
            k: results wanted.
            filters: which reviews may be returned.
            mode: ``hybrid`` (both rankings fused, see :meth:`_convex`), ``dense`` or ``bm25``.
            sentiment: a sentiment head (``local_models.text.sentiment.SentimentModel``) for the hybrid ranking's
                sentiment agreement term; None leaves that term out.
        """
        allowed = filters.mask(self.meta) if filters else None
        depth = max(self.config.fusion_depth, 5 * k)  # candidates from each ranking before fusion
        dense = self.dense_search(query_vec, depth if mode == "hybrid" else k, allowed) if mode != "bm25" else None
        sparse = self.bm25_search(query, depth if mode == "hybrid" else k, allowed) if mode != "dense" else None
        if mode == "dense":
            return [Hit(int(p), float(s), dense_rank=i + 1) for i, (p, s) in enumerate(zip(*dense))]
        if mode == "bm25":
            return [Hit(int(p), float(s), bm25_rank=i + 1) for i, (p, s) in enumerate(zip(*sparse))]
        if self.config.fusion == "rrf":
            return rrf_fuse(dense[0], sparse[0], k, self.config.rrf_k)
        zh = has_cjk(query)
        w = self.config.bm25_weight_zh if zh else self.config.bm25_weight
        ws = self.config.sentiment_weight_zh if zh else self.config.sentiment_weight
        return self._convex(query, query_vec, dense, sparse, k, w, sentiment if ws else None, ws)

    def _convex(self, query: str, query_vec: np.ndarray, dense, sparse, k: int, w: float, head=None,
                ws: float = 0.0) -> list[Hit]:
        """Fuse by ``w * bm25 / max bm25 + (1 - w) * min-max(cosine)`` over the union of both candidate lists.

        Rank fusion (RRF) treats both rankings as equally good; when one is clearly weaker (short English titles
        as queries: BM25 finds the review, the sentence encoder finds many similar ones) it drags the better one
        down. Normalised scores keep how sure each side is. Raw cosines did as well with use-m3 but not with
        e5-small, whose cosines all lie within about 0.7-0.9 (BM25 then decides alone); min-max scaling makes one
        weight fit both. The weights, per query language, were chosen on the dev splits of benchmarks/reviews.py
        (``--split dev``), which the reported test numbers do not use.

        A review that contains the whole query (8+ letters, ignoring case, spaces and punctuation) comes first:
        someone who types a sentence wants the reviews that say it, which a low keyword weight (Chinese) would
        otherwise let near-paraphrases outrank; on the English dev split it also found 1% more reviews.

        With a sentiment ``head``, ``ws * q * r`` is added: ``q`` the query's polarity (:func:`query_polarity`,
        in [-1, 1]; ignored below ``query_sentiment_min``), ``r`` each candidate's (:meth:`review_polarity`). A
        complaint then ranks complaints above praise that uses the same words ("the fit is not great" vs "the fit
        is great"), which neither the encoder nor BM25 separates well.
        """
        cand = np.unique(np.concatenate([dense[0], sparse[0]])).astype(np.int64)
        if not len(cand):
            return []
        cos = self.vectors(cand) @ np.asarray(query_vec, np.float32)
        span = cos.max() - cos.min()
        d = (cos - cos.min()) / span if span > 0 else np.ones_like(cos)
        bm = np.zeros(len(cand), np.float32)
        if len(sparse[0]):
            score_of = dict(zip(sparse[0].tolist(), sparse[1].tolist()))
            top = max(sparse[1].max(), 1e-9)
            bm = np.array([score_of.get(int(c), 0.0) / top for c in cand], np.float32)
        fused = w * bm + (1 - w) * d
        if head is not None:
            from local_models.text.sentiment import query_polarity

            q = query_polarity(head, query_vec, query)
            if abs(q) >= self.config.query_sentiment_min:
                fused += ws * q * self.review_polarity(cand, head)
        phrase = _phrase(query)
        if len(phrase) >= 8:
            titles, texts = self.meta["title"].to_numpy()[cand], self.meta["text"].to_numpy()[cand]
            fused += np.array([phrase in _phrase(f"{t if isinstance(t, str) else ''} {x}") for t, x in
                               zip(titles, texts)], np.float32)
        dense_rank = {int(p): i + 1 for i, p in enumerate(dense[0])}
        bm25_rank = {int(p): i + 1 for i, p in enumerate(sparse[0])}
        order = np.argsort(-fused, kind="stable")[:k]
        return [Hit(int(cand[i]), float(fused[i]), dense_rank.get(int(cand[i])), bm25_rank.get(int(cand[i])))
                for i in order]

    def vectors(self, positions: Sequence[int]) -> np.ndarray:
        """The stored vectors of rows ``positions`` (for clustering without re-encoding)."""
        if not len(positions):
            return np.zeros((0, self.dim), np.float32)
        return self.faiss.reconstruct_batch(np.asarray(positions, dtype=np.int64))

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Write the index to folder ``path`` atomically (a sibling temp folder renamed into place)."""
        import faiss

        with staged_dir(Path(path)) as tmp:
            faiss.write_index(self.faiss, str(tmp / "vectors.faiss"))
            meta = self.meta.copy()
            meta["rating"] = meta["rating"].astype("float64")
            meta["label"] = meta["label"].astype("float64")  # NaN where unknown; an Int64 NA breaks comparisons
            meta["created_at"] = _to_datetime(meta["created_at"])
            for col in ("review_id", "collection", "product_id", "category", "language", "title", "text", "tokens"):
                meta[col] = meta[col].astype("string")
            meta.to_parquet(tmp / "reviews.parquet", index=False)
            bm25 = self._bm25_index()
            if bm25 is not None:
                bm25.save(str(tmp / "bm25"), show_progress=False)
            manifest = {"format_version": FORMAT_VERSION, "model_id": self.model_id, "dim": self.dim,
                        "kind": self.kind, "count": len(self), "config": asdict(self.config),
                        "bm25": self._bm25_settings(),
                        "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> ReviewIndex:
        """Read an index saved by :meth:`save`. Raises FileNotFoundError when there is none."""
        import bm25s
        import faiss
        import pandas as pd

        path = Path(path)
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"Index format {manifest.get('format_version')} at {path}; rebuild it.")
        built = {k: v for k, v in manifest["config"].items() if k in BUILD_FIELDS}
        index = cls(manifest["model_id"], manifest["dim"], IndexConfig(**built))
        index.faiss = faiss.read_index(str(path / "vectors.faiss"))
        meta = pd.read_parquet(path / "reviews.parquet")
        index.meta = meta.astype({c: "object" for c in meta.columns if c not in ("rating", "label", "created_at")})
        index.meta["tokens"] = index.meta["tokens"].fillna("")
        index._positions = {rid: i for i, rid in enumerate(index.meta["review_id"])}
        # A BM25 saved with other terms or parameters (indexes from before stemming) is rebuilt from the tokens.
        if (path / "bm25").exists() and manifest.get("bm25") == index._bm25_settings():
            index._bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False)
        if len(index.meta) != len(index):
            raise ValueError(f"Index at {path} is inconsistent ({len(index)} vectors, {len(index.meta)} rows); "
                             "rebuild it.")
        return index


def _phrase(text: str) -> str:
    """``text`` lower-cased without spaces and punctuation, for whole-query matching."""
    return _NON_WORD.sub("", (text or "").lower())


_NON_WORD = re.compile(r"[\W_]+")


def _to_datetime(col):
    import pandas as pd

    return pd.to_datetime(col, errors="coerce")


def rrf_fuse(dense_positions: np.ndarray, bm25_positions: np.ndarray, k: int, rrf_k: int = 60) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over rankings of 1 / (rrf_k + rank)."""
    hits: dict[int, Hit] = {}
    for rank, p in enumerate(dense_positions, 1):
        hits.setdefault(int(p), Hit(int(p), 0.0)).dense_rank = rank
    for rank, p in enumerate(bm25_positions, 1):
        hits.setdefault(int(p), Hit(int(p), 0.0)).bm25_rank = rank
    for h in hits.values():
        h.score = sum(1.0 / (rrf_k + r) for r in (h.dense_rank, h.bm25_rank) if r is not None)
    return sorted(hits.values(), key=lambda h: (-h.score, h.position))[:k]
