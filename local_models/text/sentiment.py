"""Review sentiment: a small PyTorch classifier head over frozen sentence embeddings plus hashed n-grams.

The embedding says what a review is about; a handful of words ("not", "退货", "runs small") often decide whether
it is praise or a complaint, and a frozen sentence embedding blurs them (alone it trails a TF-IDF baseline,
benchmarks/results/reviews.md). So the head adds a linear bag of hashed word/character n-grams (fastText-style)
to the MLP's logits; with ``n_buckets=0`` it is embeddings only.

The head is trained per shop from its ratings (>= 4 positive, <= 2 negative; 3 is left out as mixed) or its 0/1
labels. Shops without either use the default head shipped in this folder (``default_sentiment.pt``), trained on the
two public review sets (English clothing ratings and Chinese online-shopping labels) with the default embedder.

A checkpoint is one dict ``{format_version, config, state_dict, embedder, metrics, trained_at}``, loaded with
``weights_only=True`` and ``strict=True``; the head is rebuilt from its config.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
DEFAULT_HEAD = Path(__file__).resolve().parent / "default_sentiment.pt"


@dataclass(frozen=True)
class SentimentConfig:
    """Hyper-parameters of the head.

    Attributes:
        dim: embedding size (input).
        n_buckets: hashed n-gram buckets of the linear bag branch (0: no bag; texts are then not needed).
        hidden: hidden units of the one-hidden-layer MLP.
        dropout: dropout on the input and hidden layer (the embeddings are frozen, the head is small: it overfits).
        lr: AdamW learning rate of the MLP.
        bag_lr: Adagrad learning rate of the n-gram bag. Adagrad, not Adam: Adam gives a bucket seen in two
            reviews steps as large as one seen in two thousand, so the bag learned the training rows' rare n-grams
            within an epoch and validation peaked at epoch 1; Adagrad's steps shrink with a bucket's accumulated
            gradient, the classic choice for sparse features (validation macro-F1 0.906 vs 0.880 in English,
            0.931 vs 0.919 in Chinese on the benchmark's training rows).
        weight_decay: AdamW weight decay.
        epochs: maximum epochs; the epoch with the best validation macro-F1 is kept.
        batch_size: rows per step.
        val_fraction: share of the training rows held out to pick the epoch.
        seed: seeds the split, the initial weights and the batches.
    """

    dim: int
    n_buckets: int = 1 << 18
    hidden: int = 256
    dropout: float = 0.2
    lr: float = 2e-3
    bag_lr: float = 1e-1
    weight_decay: float = 1e-3
    epochs: int = 40
    batch_size: int = 128
    val_fraction: float = 0.1
    seed: int = 0


def _module(config: SentimentConfig):
    import torch
    from torch import nn

    class SentimentHead(nn.Module):
        """MLP over the embedding plus a linear bag of n-grams: (B, dim), bag -> (B, 2) negative/positive logits."""

        def __init__(self, cfg: SentimentConfig):
            super().__init__()
            self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.dim, cfg.hidden), nn.GELU(),
                                     nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, 2))
            # Summed with weights 1/sqrt(distinct n-grams): a length-normalised bag, as TF-IDF rows are L2-normalised.
            self.bag = nn.EmbeddingBag(cfg.n_buckets, 2, mode="sum") if cfg.n_buckets else None
            if self.bag is not None:
                nn.init.zeros_(self.bag.weight)  # start from the embedding's opinion; words earn their weight

        def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                    grams: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None):
            logits = self.net(x)  # (B, 2)
            if self.bag is not None and grams is not None:
                logits = logits + self.bag(grams[0], grams[1], per_sample_weights=grams[2])  # ids, offsets, weights
            loss = None if targets is None else nn.functional.cross_entropy(logits, targets, weight=weight)
            return logits, loss

    return SentimentHead(config)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean F1 of the two classes (0 and 1)."""
    f1s = []
    for c in (0, 1):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


class SentimentModel:
    """A trained head plus the embedder it expects. ``predict_proba(X)`` gives P(positive) per row."""

    def __init__(self, config: SentimentConfig, module, embedder: str, metrics: dict | None = None):
        self.config, self.module, self.embedder = config, module, embedder
        self.metrics = metrics or {}
        self.module.eval()

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, embedder: str, config: SentimentConfig | None = None,
            texts: list[str] | None = None, log=None) -> SentimentModel:
        """Train on embeddings ``X`` (N, dim), their ``texts`` and labels ``y`` (N,) in {0, 1}; select the epoch
        on validation. ``texts`` may be None only when ``config.n_buckets`` is 0.

        Classes are weighted by inverse frequency, because shops get far more praise than complaints and an
        unweighted head learns to call everything positive.
        """
        import torch

        config = config or SentimentConfig(dim=X.shape[1])
        if config.n_buckets and texts is None:
            raise ValueError("This head reads n-grams: pass the texts.")
        X, y = np.asarray(X, np.float32), np.asarray(y, np.int64)
        grams = _grams(texts, config.n_buckets) if config.n_buckets else None
        if len(np.unique(y)) < 2:
            raise ValueError("Sentiment needs both positive and negative examples.")
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(X))
        n_val = max(1, int(len(X) * config.val_fraction))
        val, tr = order[:n_val], order[n_val:]
        torch.manual_seed(config.seed)
        module = _module(config)
        counts = np.bincount(y[tr], minlength=2).astype(np.float32)
        weight = torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)))
        opts = [torch.optim.AdamW(module.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)]
        if module.bag is not None:  # see ``SentimentConfig.bag_lr``; no weight decay, which would touch every bucket
            opts.append(torch.optim.Adagrad(module.bag.parameters(), lr=config.bag_lr))
        Xt, yt = torch.from_numpy(X[tr]), torch.from_numpy(y[tr])
        Xv = torch.from_numpy(X[val])
        best = (-1.0, None, 0)
        gen = torch.Generator().manual_seed(config.seed)
        for epoch in range(config.epochs):
            module.train()
            perm = torch.randperm(len(Xt), generator=gen)
            for i in range(0, len(perm), config.batch_size):
                idx = perm[i:i + config.batch_size]
                _, loss = module(Xt[idx], yt[idx], weight, _bag(grams, tr[idx.numpy()]))
                for opt in opts:
                    opt.zero_grad()
                loss.backward()
                for opt in opts:
                    opt.step()
            module.eval()
            with torch.no_grad():
                pred = module(Xv, grams=_bag(grams, val))[0].argmax(1).numpy()
            f1 = macro_f1(y[val], pred)
            if f1 > best[0]:
                best = (f1, {k: v.clone() for k, v in module.state_dict().items()}, epoch + 1)
            if log:
                log(f"epoch {epoch + 1}: validation macro-F1 {f1:.3f}")
        module.load_state_dict(best[1])
        metrics = {"val_macro_f1": round(best[0], 4), "best_epoch": best[2], "train_rows": int(len(tr)),
                   "val_rows": int(len(val)), "positive_share": round(float(y.mean()), 4)}
        return cls(config, module, embedder, metrics)

    def predict_proba(self, X: np.ndarray, texts: list[str] | None = None) -> np.ndarray:
        """P(positive) for each row of ``X`` (N, dim) and its text (needed when the head has an n-gram bag)."""
        import torch

        if len(X) == 0:
            return np.zeros(0, np.float32)
        if self.config.n_buckets and texts is None:
            raise ValueError("This head reads n-grams: pass the texts.")
        grams = _bag(_grams(texts, self.config.n_buckets), np.arange(len(X))) if self.config.n_buckets else None
        with torch.no_grad():
            logits = self.module(torch.from_numpy(np.asarray(X, np.float32)), grams=grams)[0]
            return torch.softmax(logits, dim=1)[:, 1].numpy()

    def save(self, path: Path | str, half: bool = False) -> None:
        """Write the checkpoint; ``half`` stores float16 weights (the shipped default head: half the bytes, the
        same predictions to three decimals); :meth:`load` casts them back to float32."""
        import torch

        state = {k: v.half() if half and v.is_floating_point() else v for k, v in self.module.state_dict().items()}
        torch.save({"format_version": FORMAT_VERSION, "config": asdict(self.config), "state_dict": state, "embedder": self.embedder, "metrics": self.metrics,
                    "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}, str(path))

    @classmethod
    def load(cls, path: Path | str) -> SentimentModel:
        import torch

        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
        if ckpt.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"Sentiment head {path} has format {ckpt.get('format_version')}; retrain it.")
        config = SentimentConfig(**ckpt["config"])
        module = _module(config)
        module.load_state_dict(ckpt["state_dict"], strict=True)
        return cls(config, module, ckpt["embedder"], ckpt.get("metrics"))


def _grams(texts: list[str], n_buckets: int) -> list[np.ndarray]:
    from local_models.text.tokens import hashed_ngrams

    return [np.unique(np.asarray(hashed_ngrams(t, n_buckets), np.int64)) for t in texts]


def _bag(grams: list[np.ndarray] | None, rows: np.ndarray):
    """EmbeddingBag input (flat ids, offsets, weights) for ``rows`` of ``grams``; None without a bag."""
    import torch

    if grams is None:
        return None
    parts = [grams[int(r)] for r in rows]
    offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
    weights = np.concatenate([np.full(len(p), 1 / np.sqrt(len(p)), np.float32) for p in parts])
    return (torch.from_numpy(np.concatenate(parts)), torch.from_numpy(offsets.astype(np.int64)),
            torch.from_numpy(weights))


# Words that make a search query a search for complaints or for praise ("what do people complain about", "找一下说
# 质量差的评价"): such a query reads neutral to a head trained on reviews, which the cue words correct.
_NEGATIVE_CUES = ("complain", "complaint", "problem", "issue", "defect", "broken", "broke", "bad", "poor", "worst",
                  "terrible", "disappoint", "return", "refund", "negative", "hate", "cheap",
                  "差", "不好", "投诉", "问题", "退货", "退款", "坏", "失望", "垃圾", "差评", "抱怨", "不满", "假货")
_POSITIVE_CUES = ("praise", "love", "great", "good", "best", "excellent", "perfect", "happy", "positive", "recommend",
                  "好评", "喜欢", "满意", "不错", "推荐", "表扬", "很好", "好用")


def cue_polarity(text: str) -> float:
    """+1 / -1 when ``text`` has only positive / only negative cue words, else 0 (none, or both)."""
    t = (text or "").lower()
    neg = any(c in t for c in _NEGATIVE_CUES)
    pos = any(c in t for c in _POSITIVE_CUES) and not any(c in t for c in ("不好", "not good", "no good"))
    return float(pos) - float(neg) if pos != neg else 0.0


def query_polarity(model: SentimentModel, query_vec: np.ndarray, query: str, unsure: float = 0.2) -> float:
    """A search query's polarity in [-1, 1]: ``2 * P(positive) - 1`` from the head, or the cue words
    (:func:`cue_polarity`) when the head is unsure (its polarity below ``unsure`` in size) and they say something."""
    q = float(2 * model.predict_proba(np.asarray(query_vec, np.float32).reshape(1, -1), [query])[0] - 1)
    if abs(q) < unsure:
        cue = cue_polarity(query)
        if cue:
            return cue
    return q
