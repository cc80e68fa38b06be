"""Query adapter: a learned linear correction that moves short search queries towards the reviews that answer them.

A general sentence encoder puts a short query ("runs small, poor quality") and a long review that says so in
different regions of its space: they differ in length and register more than in meaning. The adapter is a residual
linear map on the query side only,

    q' = normalise(q + q @ W)

trained with in-batch negatives (InfoNCE) on pairs of a review's title and its own text, so an operator's few words
land nearer the reviews that say them. Review vectors, and so the index, are untouched: an adapter can be added,
replaced or dropped without re-embedding a single review. W starts at zero (the identity map) and is pulled back
towards it by an L2 penalty; the epoch kept is the one with the best recall@10 on held-out pairs, and epoch 0 (no
correction) competes, so a fitted adapter is never worse than none on that validation.

The default adapter shipped in this folder (``default_query_adapter.npz``, from
``benchmarks/train_default_adapter.py``) was trained on public English clothing-review titles and texts with the
default embedder; it is applied to queries of the languages it was trained on (English: queries without Chinese
characters). Recall@10 on the benchmark's English dev split: dense 0.132 -> 0.210, hybrid 0.274 -> 0.300 (with
the English BM25 weight re-chosen for it, ``IndexConfig``); benchmarks/results/reviews.md has the test split.

A file is an ``.npz`` of ``weight`` (dim x dim, float16) and ``meta`` (a JSON string: format version, embedder,
languages, config, metrics); it loads without pickle.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

FORMAT_VERSION = 1
DEFAULT_ADAPTER = Path(__file__).resolve().parent / "default_query_adapter.npz"
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class AdapterConfig:
    """Training settings, chosen on held-out title/text pairs of the default adapter's training rows (never on the
    benchmark's retrieval splits): validation recall@10 among 1,000 pairs 0.182 without the adapter; 0.247 at
    these settings, 0.219-0.233 with a 3-10x stronger or weaker penalty, 0.22-0.23 at temperature 0.02-0.1.

    Attributes:
        l2: penalty on the squared norm of W, pulling the map towards the identity (the pairs are few for 512^2
            weights: weaker penalties fit the training pairs and lose on held-out ones).
        temperature: softmax temperature of the in-batch contrastive loss.
        lr: Adam learning rate.
        epochs: maximum epochs; the best on validation is kept (0 = no correction).
        batch_size: pairs per step; the other pairs of a batch are each query's negatives.
        val_fraction: share of the pairs held out to pick the epoch.
        seed: seeds the split and the batches.
    """

    l2: float = 0.01
    temperature: float = 0.05
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 256
    val_fraction: float = 0.1
    seed: int = 0


def query_language(text: str) -> str:
    from local_models.text.tokens import has_cjk

    return "zh" if has_cjk(text) else "en"


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def recall_at_10(queries: np.ndarray, passages: np.ndarray) -> float:
    """Share of queries whose own passage (same row) ranks in the top 10 of all ``passages`` by cosine."""
    scores = queries @ passages.T
    rank = (scores > np.diag(scores)[:, None]).sum(axis=1)
    return float((rank < 10).mean())


@dataclass
class QueryAdapter:
    """A trained query correction for one embedder.

    Attributes:
        embedder: ``model_id`` of the embedder whose vectors it reads; another embedder's queries are left alone.
        weight: (dim, dim) float32 residual map W.
        languages: query languages it corrects (``en``: no Chinese characters; ``zh``: some).
        config: the training settings.
        metrics: validation recall@10 with and without the correction, best epoch, pair counts, provenance.
    """

    embedder: str
    weight: np.ndarray
    languages: tuple[str, ...]
    config: AdapterConfig
    metrics: dict

    def __post_init__(self) -> None:
        unknown = set(self.languages) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"Unknown query language(s) {sorted(unknown)}; use {list(LANGUAGES)}.")
        self.weight = np.asarray(self.weight, np.float32)
        if self.weight.ndim != 2 or self.weight.shape[0] != self.weight.shape[1]:
            raise ValueError(f"An adapter weight must be square; got shape {self.weight.shape}.")

    @property
    def dim(self) -> int:
        return self.weight.shape[0]

    def applies(self, query: str, embedder: str) -> bool:
        return embedder == self.embedder and query_language(query) in self.languages

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Corrected unit vectors for query embeddings (N, dim)."""
        vectors = np.asarray(vectors, np.float32)
        return _normalise(vectors + vectors @ self.weight)

    @classmethod
    def fit(cls, queries: np.ndarray, passages: np.ndarray, embedder: str, languages: Sequence[str],
            config: AdapterConfig | None = None, log=None) -> QueryAdapter:
        """Train on matching rows of query embeddings and passage embeddings (N, dim) each, e.g. review titles and
        their texts. Needs a few hundred pairs at least; with fewer there is nothing to validate on."""
        import torch

        config = config or AdapterConfig()
        queries, passages = np.asarray(queries, np.float32), np.asarray(passages, np.float32)
        if queries.shape != passages.shape or queries.ndim != 2:
            raise ValueError(f"Queries {queries.shape} and passages {passages.shape} must be matching (N, dim) rows.")
        n_val = int(len(queries) * config.val_fraction)
        if n_val < 20 or len(queries) - n_val < config.batch_size:
            raise ValueError(f"{len(queries)} pairs are too few to train a query adapter; it needs at least "
                             f"{max(config.batch_size + 20, int(np.ceil(20 / config.val_fraction)))}.")
        order = np.random.default_rng(config.seed).permutation(len(queries))
        val, tr = order[:n_val], order[n_val:]
        gen = torch.Generator().manual_seed(config.seed)
        Q, P = torch.from_numpy(queries[tr]), torch.from_numpy(passages[tr])
        W = torch.nn.Parameter(torch.zeros(queries.shape[1], queries.shape[1]))
        opt = torch.optim.Adam([W], lr=config.lr)
        before = recall_at_10(queries[val], passages[val])
        best = (before, np.zeros_like(W.detach().numpy()), 0)
        for epoch in range(config.epochs):
            perm = torch.randperm(len(Q), generator=gen)
            for i in range(0, len(perm), config.batch_size):
                b = perm[i:i + config.batch_size]
                if len(b) < 2:  # a lone pair has no negatives
                    continue
                q = torch.nn.functional.normalize(Q[b] + Q[b] @ W, dim=1)
                logits = q @ P[b].T / config.temperature
                loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(b))) + config.l2 * (W ** 2).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            w = W.detach().numpy().copy()
            got = recall_at_10(_normalise(queries[val] + queries[val] @ w), passages[val])
            if got > best[0]:
                best = (got, w, epoch + 1)
            if log:
                log(f"epoch {epoch + 1}: validation recall@10 {got:.3f} (none {before:.3f})")
        metrics = {"val_recall@10": round(best[0], 4), "val_recall@10_without": round(before, 4),
                   "best_epoch": best[2], "train_pairs": int(len(tr)), "val_pairs": int(len(val))}
        return cls(embedder, best[1], tuple(languages), config, metrics)

    def save(self, path: Path | str) -> None:
        """Write the adapter (float16 weight: a quarter of the float32 bytes, the same rankings)."""
        meta = {"format_version": FORMAT_VERSION, "embedder": self.embedder, "languages": list(self.languages),
                "config": asdict(self.config), "metrics": self.metrics,
                "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a path without it
            np.savez_compressed(fh, weight=self.weight.astype(np.float16), meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: Path | str) -> QueryAdapter:
        with np.load(str(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weight = data["weight"].astype(np.float32)
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"Query adapter {path} has format {meta.get('format_version')}; retrain it.")
        return cls(meta["embedder"], weight, tuple(meta["languages"]), AdapterConfig(**meta["config"]),
                   meta.get("metrics", {}))


@lru_cache(maxsize=4)
def _load_cached(path: str, stamp: float) -> QueryAdapter:
    return QueryAdapter.load(path)


def default_adapter(embedder: str, path: Path | str = DEFAULT_ADAPTER) -> QueryAdapter | None:
    """The shipped adapter when it was trained for ``embedder`` (a model id), else None."""
    path = Path(path)
    if not path.exists():
        return None
    adapter = _load_cached(str(path), path.stat().st_mtime)
    return adapter if adapter.embedder == embedder else None


def query_vectors(emb, queries: Sequence[str], adapter: QueryAdapter | None | str = "default") -> np.ndarray:
    """Embed search queries with ``emb`` (an :class:`~local_models.text.embed.Embedder`) and correct those the
    adapter covers. ``adapter``: ``"default"`` (the shipped one, if trained for this embedder), an adapter, or None
    (plain embeddings)."""
    vectors = emb.encode(list(queries), "query")
    if isinstance(adapter, str):
        if adapter != "default":
            raise ValueError(f"adapter must be 'default', a QueryAdapter or None; got {adapter!r}.")
        adapter = default_adapter(emb.model_id)
    if adapter is None or not len(queries):
        return vectors
    rows = [i for i, q in enumerate(queries) if adapter.applies(q, emb.model_id)]
    if rows:
        vectors = vectors.copy()
        vectors[rows] = adapter.transform(vectors[rows])
    return vectors
