"""Ranking metrics with full ranking over all items (no sampled negatives).

Every method (ours and the baselines) is evaluated the same way: it scores every item for each
evaluated customer, items already in the customer's history are removed (the shop recommends new
products by default), and the top k are compared with the held-out items.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch

from local_models.recommender.data import EvalSplit

ScoreFn = Callable[[Sequence[np.ndarray], np.ndarray], "torch.Tensor | np.ndarray"]


def mask_seen(scores: torch.Tensor, histories: Sequence[np.ndarray]) -> torch.Tensor:
    """Set the scores of items in each history (and of padding, column 0) to ``-inf``, in place.

    Args:
        scores: ``(B, V+1)`` scores.
        histories: ``B`` item-index arrays.

    Returns:
        ``scores``.
    """
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    scores[torch.as_tensor(rows), torch.as_tensor(cols, dtype=torch.long)] = float("-inf")
    scores[:, 0] = float("-inf")
    return scores


def top_k(scores: torch.Tensor, histories: Sequence[np.ndarray], k: int, exclude_seen: bool = True) -> np.ndarray:
    """Indices of the k best items per row, optionally without items the customer already has.

    Returns:
        ``(B, k)`` int64 item indices, best first.
    """
    if exclude_seen:
        mask_seen(scores, histories)
    else:
        scores[:, 0] = float("-inf")
    # A catalogue smaller than k gives fewer columns rather than an error.
    return torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.cpu().numpy()


def ranking_metrics(topk: np.ndarray, targets: Sequence[np.ndarray], k: int = 10) -> dict[str, float]:
    """HR@k, NDCG@k and Recall@k averaged over customers.

    With one target per customer (leave-one-out) HR and Recall coincide. With several targets, NDCG is
    normalised by the best possible DCG for ``min(len(targets), k)`` hits and Recall is hits / targets.

    Args:
        topk: ``(U, >=k)`` recommended item indices, best first.
        targets: ``U`` arrays of held-out item indices.
        k: Cut-off.

    Returns:
        ``{"hr@k", "ndcg@k", "recall@k"}``.
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    hr = ndcg = recall = 0.0
    for rec, tgt in zip(topk[:, :k], targets):
        hit = np.isin(rec, tgt)
        n_hit = int(hit.sum())
        hr += n_hit > 0
        recall += n_hit / len(tgt)
        ndcg += float(discounts[: len(hit)][hit].sum() / discounts[: min(len(tgt), k)].sum())
    n = max(len(targets), 1)
    return {f"hr@{k}": hr / n, f"ndcg@{k}": ndcg / n, f"recall@{k}": recall / n}


def coverage(topk: np.ndarray, n_items: int, k: int = 10) -> float:
    """Share of the catalogue that appears in at least one customer's top k."""
    return len(np.unique(topk[:, :k])) / n_items


def popularity_percentile(topk: np.ndarray, item_counts: np.ndarray, k: int = 10) -> float:
    """Mean popularity percentile (0 = least bought, 100 = most bought) of recommended items.

    Args:
        topk: ``(U, >=k)`` recommended item indices.
        item_counts: ``(V+1,)`` training purchase counts per item index (index 0 ignored).
        k: Cut-off.
    """
    counts = item_counts[1:]
    # Average rank for ties, so a catalogue of equally popular items sits at 50 rather than 0 or 100.
    sorted_counts = np.sort(counts)
    lo = np.searchsorted(sorted_counts, counts, side="left")
    hi = np.searchsorted(sorted_counts, counts, side="right") - 1
    pct = np.zeros(len(item_counts))
    pct[1:] = 100.0 * ((lo + hi) / 2.0) / max(len(counts) - 1, 1)
    return float(pct[topk[:, :k]].mean())


def split_metrics(topk: np.ndarray, split: EvalSplit, item_counts: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR/NDCG/Recall@k against the split's targets, coverage@k and pop_percentile of ``topk`` (rows in the
    split's order)."""
    out = ranking_metrics(topk, split.targets, k)
    out[f"coverage@{k}"] = coverage(topk, len(item_counts) - 1, k)
    out["pop_percentile"] = popularity_percentile(topk, item_counts, k)
    return out


def evaluate(
    score_fn: ScoreFn,
    split: EvalSplit,
    item_counts: np.ndarray,
    k: int = 10,
    batch_size: int = 1024,
    exclude_seen: bool = True,
) -> dict[str, float]:
    """Score every item for every evaluated customer, rank, and measure.

    Args:
        score_fn: ``score_fn(histories, customer_positions) -> (B, V+1)`` scores: a fresh torch tensor
            (it is modified in place) or a numpy array (copied).
        split: Histories and targets.
        item_counts: ``(V+1,)`` training purchase counts, for the popularity percentile.
        k: Cut-off.
        batch_size: Customers per scoring call.
        exclude_seen: Remove history items before ranking.

    Returns:
        HR/NDCG/Recall@k, coverage@k, pop_percentile, and ``users_per_s``: customers ranked per
        second including scoring, masking and top-k (the serving path, batched).
    """
    tops = []
    start = time.perf_counter()
    # Score customers in order of history length so a sequence model's batches carry little padding.
    order = np.argsort([len(h) for h in split.histories], kind="stable")
    for lo in range(0, len(order), batch_size):
        rows = order[lo : lo + batch_size]
        hist = [split.histories[i] for i in rows]
        scores = score_fn(hist, split.customers[rows])
        # Masking writes into the scores: tensors must be fresh (the model's are); arrays are copied,
        # since baselines may return read-only views.
        scores = scores.float() if torch.is_tensor(scores) else torch.tensor(np.asarray(scores), dtype=torch.float32)
        tops.append(top_k(scores, hist, k, exclude_seen))
    elapsed = time.perf_counter() - start
    topk = np.zeros((len(order), min(k, len(item_counts))), dtype=np.int64)
    if tops:
        topk[order] = np.concatenate(tops)
    out = split_metrics(topk, split, item_counts, k)
    out["users_per_s"] = len(split.histories) / max(elapsed, 1e-9)
    out["n_users"] = len(split.histories)
    return out
