"""Review sentiment: a small PyTorch classifier head over frozen sentence embeddings.

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
        hidden: hidden units of the one-hidden-layer MLP.
        dropout: dropout on the input and hidden layer (the embeddings are frozen, the head is small: it overfits).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        epochs: maximum epochs; the epoch with the best validation macro-F1 is kept.
        batch_size: rows per step.
        val_fraction: share of the training rows held out to pick the epoch.
        seed: seeds the split, the initial weights and the batches.
    """

    dim: int
    hidden: int = 256
    dropout: float = 0.2
    lr: float = 2e-3
    weight_decay: float = 1e-3
    epochs: int = 40
    batch_size: int = 128
    val_fraction: float = 0.1
    seed: int = 0


def _module(config: SentimentConfig):
    import torch
    from torch import nn

    class SentimentHead(nn.Module):
        """MLP: (B, dim) -> (B, 2) logits for negative / positive."""

        def __init__(self, cfg: SentimentConfig):
            super().__init__()
            self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.dim, cfg.hidden), nn.GELU(),
                                     nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, 2))

        def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, weight: torch.Tensor | None = None):
            logits = self.net(x)  # (B, 2)
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
            log=None) -> SentimentModel:
        """Train on embeddings ``X`` (N, dim) and labels ``y`` (N,) in {0, 1}; select the epoch on validation.

        Classes are weighted by inverse frequency, because shops get far more praise than complaints and an
        unweighted head learns to call everything positive.
        """
        import torch

        config = config or SentimentConfig(dim=X.shape[1])
        X, y = np.asarray(X, np.float32), np.asarray(y, np.int64)
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
        opt = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        Xt, yt = torch.from_numpy(X[tr]), torch.from_numpy(y[tr])
        Xv = torch.from_numpy(X[val])
        best = (-1.0, None, 0)
        gen = torch.Generator().manual_seed(config.seed)
        for epoch in range(config.epochs):
            module.train()
            perm = torch.randperm(len(Xt), generator=gen)
            for i in range(0, len(perm), config.batch_size):
                idx = perm[i:i + config.batch_size]
                _, loss = module(Xt[idx], yt[idx], weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
            module.eval()
            with torch.no_grad():
                pred = module(Xv)[0].argmax(1).numpy()
            f1 = macro_f1(y[val], pred)
            if f1 > best[0]:
                best = (f1, {k: v.clone() for k, v in module.state_dict().items()}, epoch + 1)
            if log:
                log(f"epoch {epoch + 1}: validation macro-F1 {f1:.3f}")
        module.load_state_dict(best[1])
        metrics = {"val_macro_f1": round(best[0], 4), "best_epoch": best[2], "train_rows": int(len(tr)),
                   "val_rows": int(len(val)), "positive_share": round(float(y.mean()), 4)}
        return cls(config, module, embedder, metrics)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(positive) for each row of ``X`` (N, dim)."""
        import torch

        if len(X) == 0:
            return np.zeros(0, np.float32)
        with torch.no_grad():
            logits = self.module(torch.from_numpy(np.asarray(X, np.float32)))[0]
            return torch.softmax(logits, dim=1)[:, 1].numpy()

    def save(self, path: Path | str) -> None:
        import torch

        torch.save({"format_version": FORMAT_VERSION, "config": asdict(self.config),
                    "state_dict": self.module.state_dict(), "embedder": self.embedder, "metrics": self.metrics,
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


def default_head(model_id: str) -> SentimentModel | None:
    """The shipped head when it was trained with embedder ``model_id``; None otherwise (or when absent)."""
    if not DEFAULT_HEAD.exists():
        return None
    model = SentimentModel.load(DEFAULT_HEAD)
    return model if model.embedder == model_id else None
