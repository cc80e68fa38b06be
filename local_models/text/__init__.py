"""Review text models: embeddings (several offline backends), a FAISS + BM25 hybrid index, sentiment, themes, PII.

Importing this package is cheap: numpy at most. The backends (sentence-transformers, torch, faiss, jieba, bm25s)
are imported by the functions that use them.
"""

from local_models.text.embed import (BACKENDS, DEFAULT_BACKEND, CachedEmbedder, Embedder, EmbeddingBackendError,
                                     EmbeddingCache, get_embedder)
from local_models.text.index import Filters, Hit, IndexConfig, ReviewIndex
from local_models.text.pii import redact, redact_with_counts

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "CachedEmbedder", "Embedder", "EmbeddingBackendError", "EmbeddingCache",
           "Filters", "Hit", "IndexConfig", "ReviewIndex", "get_embedder", "redact", "redact_with_counts"]
