"""Train the default sentiment head shipped as ``local_models/text/default_sentiment.pt``.

    nice -n 10 python benchmarks/train_default_sentiment.py

One head for both languages over the default (multilingual) embedder, trained on the training side of the split
that ``benchmarks/reviews.py`` uses (its test rows are never seen), English clothing reviews (rating >= 4 vs <= 2)
and Chinese online-shopping reviews (label). Kept small (64 hidden units, 2^16 n-gram buckets, float16: ~330 KB)
because it is committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from local_models.text.embed import DEFAULT_BACKEND  # noqa: E402
from local_models.text.sentiment import DEFAULT_HEAD, SentimentConfig, SentimentModel, macro_f1  # noqa: E402
from reviews import SEED, cache, embedder, log, sentiment_sets  # noqa: E402

N_TRAIN = 12000  # per language, as in the benchmark
N_TEST = 1500  # the benchmark's held-out rows


def main() -> None:
    import torch

    torch.set_num_threads(1)
    sets = sentiment_sets(N_TRAIN, N_TEST)
    emb = embedder(DEFAULT_BACKEND, cache())
    X, y, tests = [], [], {}
    for lang, (train, test) in sets.items():
        log(f"{lang}: embedding {len(train)} training and {len(test)} test reviews")
        X.append(emb.encode(train["input"].tolist()))
        y.append(train["y"].to_numpy())
        tests[lang] = (emb.encode(test["input"].tolist()), test["y"].to_numpy())
    model = SentimentModel.fit(np.concatenate(X), np.concatenate(y), emb.model_id,
                               SentimentConfig(dim=emb.dim, hidden=64, n_buckets=1 << 16, seed=SEED),
                               texts=[t for _, (train, _) in sets.items() for t in train["input"]])
    for lang, (Xt, yt) in tests.items():
        pred = (model.predict_proba(Xt, sets[lang][1]["input"].tolist()) >= 0.5).astype(int)
        model.metrics[f"test_{lang}"] = {"accuracy": round(float((pred == yt).mean()), 4),
                                         "macro_f1": round(macro_f1(yt, pred), 4), "rows": int(len(yt))}
    model.metrics["trained_on"] = (f"womens-clothing-reviews + online_shopping_10_cats, {N_TRAIN} rows each, "
                                   f"seed {SEED}")
    model.save(DEFAULT_HEAD, half=True)
    log(f"saved {DEFAULT_HEAD} ({DEFAULT_HEAD.stat().st_size // 1024} KB): {model.metrics}")


if __name__ == "__main__":
    main()
