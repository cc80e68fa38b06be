"""Train the default query adapter shipped as ``local_models/text/default_query_adapter.npz``.

    nice -n 10 python benchmarks/train_default_adapter.py

Pairs: each English clothing review's title (the query) and its text (the passage), for every titled review outside
the retrieval corpora of ``benchmarks/reviews.py`` (test and dev), so the benchmark scores it on reviews and titles
it has never seen; the adapter records a fingerprint of its training rows, which the benchmark checks. Default
embedder, default settings (``AdapterConfig``); one minute on one core once the embeddings are cached.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from local_models.text.adapter import DEFAULT_ADAPTER, AdapterConfig, QueryAdapter  # noqa: E402
from local_models.text.embed import DEFAULT_BACKEND  # noqa: E402
from reviews import SEED, adapter_pairs, cache, embedder, log, pairs_digest  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    pairs = adapter_pairs()
    emb = embedder(DEFAULT_BACKEND, cache())
    log(f"embedding {len(pairs)} titles and texts with {emb.model_id}")
    titles = emb.encode(pairs["title"].tolist(), "query")
    texts = emb.encode(pairs["text"].tolist(), "passage")
    adapter = QueryAdapter.fit(titles, texts, emb.model_id, ["en"], AdapterConfig(seed=SEED), log=log)
    adapter.metrics["trained_on"] = ("womens-clothing-reviews: title -> own text, every titled review outside "
                                     "the benchmarks/reviews.py retrieval corpora")
    adapter.metrics["pairs_digest"] = pairs_digest(pairs["review_id"])
    adapter.save(DEFAULT_ADAPTER)
    log(f"saved {DEFAULT_ADAPTER} ({DEFAULT_ADAPTER.stat().st_size // 1024} KB): {adapter.metrics}")


if __name__ == "__main__":
    main()
