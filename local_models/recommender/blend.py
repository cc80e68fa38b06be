"""Item-item half of "ours": sparse EASE weights, blended with the sequence model's scores.

The sequence model knows the order of recent purchases; an item-item model knows which products the
same customers buy, over their whole history. On leave-one-out Amazon data and on the Online Retail
shop each alone is beaten by the two together, so the recommender ranks by

    score = z(sequence model scores) + weight * z(item-item scores)

where ``z`` standardises each customer's row over all items (the two score scales are unrelated), and
``weight`` (and the EASE ridge) is chosen on the validation split. ``weight = 0`` is the sequence
model alone.

The item-item model is EASE^R (Steck, WWW 2019) fitted in closed form, then sparsified to the
``neighbours`` weights of largest size per history item so it is cheap to store and to score with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from local_models.recommender.data import EvalSplit

if TYPE_CHECKING:
    import torch

#: Blend weights tried on validation (0 = the sequence model alone).
WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0)


class ItemItem:
    """Sparse item-item weights ``W`` (``(V+1, V+1)``, row = history item, column = candidate).

    Args:
        weights: The CSR matrix; row and column 0 (padding) are empty.
        l2: The EASE ridge it was fitted with (for the record).
    """

    def __init__(self, weights: sp.csr_matrix, l2: float) -> None:
        self.weights = weights.tocsr().astype(np.float32)
        self.l2 = float(l2)

    @classmethod
    def fit(cls, train_seqs: Sequence[np.ndarray], n_items: int, l2: float = 500.0,
            neighbours: int = 200) -> "ItemItem":
        """Fit EASE on the binary customer x item matrix and keep each item's ``neighbours`` largest weights.

        Needs a dense ``n_items x n_items`` inverse (about 1 minute for 12k items on one core).
        """
        from local_models.recommender.baselines import EASE

        dense = EASE(n_items, l2=l2).fit(train_seqs).weights  # (V+1, V+1)
        n, k = dense.shape[0], min(neighbours, dense.shape[1] - 1)
        parts = []
        for lo in range(0, n, 1024):  # row blocks: an index array for the whole matrix would be gigabytes
            block = dense[lo : lo + 1024]  # (b, V+1)
            # The k weights of largest size in each row (negative ones too: dropping them cost 3% NDCG on
            # Online Retail); argpartition avoids a full sort of every row.
            cols = np.argpartition(-np.abs(block), k, axis=1)[:, :k]  # (b, k)
            vals = np.take_along_axis(block, cols, axis=1)
            keep = vals != 0
            rows = np.broadcast_to(np.arange(lo, lo + len(block))[:, None], cols.shape)
            parts.append((vals[keep], rows[keep], cols[keep]))
        vals, rows, cols = (np.concatenate(x) for x in zip(*parts))
        return cls(sp.csr_matrix((vals, (rows, cols)), shape=dense.shape), l2)

    def score(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """``(B, V+1)`` scores: the sum of each history item's weights (repeats count once)."""
        import torch

        n = self.weights.shape[0]
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
        x = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(histories), n))
        x.data[:] = 1.0
        return torch.from_numpy(np.asarray((x @ self.weights).todense(), dtype=np.float32))

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The CSR arrays as tensors, for a ``weights_only`` checkpoint."""
        import torch

        w = self.weights
        return {"indptr": torch.from_numpy(w.indptr.astype(np.int64)),
                "indices": torch.from_numpy(w.indices.astype(np.int64)),
                "data": torch.from_numpy(w.data.astype(np.float32)),
                "l2": torch.tensor(self.l2)}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "ItemItem":
        n = len(t["indptr"]) - 1
        w = sp.csr_matrix((t["data"].numpy(), t["indices"].numpy(), t["indptr"].numpy()), shape=(n, n))
        return cls(w, float(t["l2"]))


def _row_stats(real: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Per-row mean and standard deviation, ``(B, 1)`` each, from a sum and a norm.

    ``Tensor.std`` is ~15x slower on one CPU thread and would dominate serving time.
    """
    import torch

    n = real.shape[1]
    mean = real.sum(1, keepdim=True) / n
    mean_sq = torch.linalg.vector_norm(real, dim=1, keepdim=True).square() / n
    return mean, (mean_sq - mean.square()).clamp_min(0).sqrt() + 1e-9


def standardise(scores: "torch.Tensor") -> "torch.Tensor":
    """Per-row z-scores over the real items (column 0, padding, stays ``-inf``). Returns a new tensor."""
    mean, std = _row_stats(scores[:, 1:])
    out = (scores - mean).div_(std)  # (B, V+1)
    out[:, 0] = float("-inf")
    return out


def blend(seq_scores: "torch.Tensor", item_scores: "torch.Tensor | None", weight: float) -> "torch.Tensor":
    """``z(seq) + weight * z(item)``; the sequence scores unchanged when there is no item-item part."""
    if item_scores is None or weight == 0:
        return seq_scores
    m_seq, s_seq = _row_stats(seq_scores[:, 1:])
    m_item, s_item = _row_stats(item_scores[:, 1:])
    # The same sum written as one scaled copy and one fused multiply-add: serving scores every item.
    out = seq_scores / s_seq  # (B, V+1)
    out.addcmul_(item_scores, weight / s_item).sub_(m_seq / s_seq + weight * m_item / s_item)
    out[:, 0] = float("-inf")
    return out


def choose_weight(
    seq_score: Callable[[Sequence[np.ndarray]], torch.Tensor],
    item_item: ItemItem,
    split: EvalSplit,
    item_counts: np.ndarray,
    weights: Sequence[float] = WEIGHTS,
    k: int = 10,
    batch_size: int = 1024,
) -> tuple[float, dict[float, dict]]:
    """Rank the split once per weight (both models score each batch once) and pick the best NDCG@k.

    Args:
        seq_score: ``histories -> (B, V+1)`` sequence-model scores.
        item_item: The fitted item-item model.
        split: Validation histories and targets (never the test split).
        item_counts: ``(V+1,)`` training counts, for the popularity percentile.
        weights: Candidate blend weights.
        k: Cut-off.
        batch_size: Customers per scoring call.

    Returns:
        ``(best weight, {weight: metrics})``; ties go to the smaller weight.
    """
    from local_models.recommender.evaluate import coverage, popularity_percentile, ranking_metrics, top_k

    order = np.argsort([len(h) for h in split.histories], kind="stable")
    tops: dict[float, list[np.ndarray]] = {w: [] for w in weights}
    for lo in range(0, len(order), batch_size):
        rows = order[lo : lo + batch_size]
        hist = [split.histories[i] for i in rows]
        seq = seq_score(hist).float()  # (B, V+1)
        z_seq, z_items = standardise(seq), standardise(item_item.score(hist))  # once per batch, as blend() does
        for w in weights:
            tops[w].append(top_k(seq.clone() if w == 0 else z_seq + w * z_items, hist, k))
    results = {}
    for w in weights:
        topk = np.zeros((len(order), tops[w][0].shape[1]), dtype=np.int64)
        topk[order] = np.concatenate(tops[w])
        m = ranking_metrics(topk, split.targets, k)
        m[f"coverage@{k}"] = coverage(topk, len(item_counts) - 1, k)
        m["pop_percentile"] = popularity_percentile(topk, item_counts, k)
        results[w] = m
    best = max(weights, key=lambda w: (results[w][f"ndcg@{k}"], -w))
    return best, results


def fit_blend(
    seq_score: Callable[[Sequence[np.ndarray]], torch.Tensor],
    train_seqs: Sequence[np.ndarray],
    n_items: int,
    valid: EvalSplit,
    item_counts: np.ndarray,
    l2s: Sequence[float] = (100.0, 500.0),
    neighbours: int = 200,
    weights: Sequence[float] = WEIGHTS,
    fitted: dict[float, ItemItem] | None = None,
) -> tuple[ItemItem | None, float, dict]:
    """Fit the item-item model for each ridge in ``l2s`` and choose ridge and weight on validation.

    Args:
        seq_score: ``histories -> (B, V+1)`` scores of the trained sequence model.
        train_seqs: The sequences the sequence model was trained on.
        n_items: Number of real items.
        valid: Validation split.
        item_counts: ``(V+1,)`` training counts.
        l2s: EASE ridges to try; empty, or a catalogue too large for EASE, means no blend.
        neighbours: Weights kept per history item.
        weights: Blend weights to try.
        fitted: Optional cache ``{l2: ItemItem}`` reused and filled (the item-item fit does not depend
            on the sequence model, so several seeds can share it).

    Returns:
        ``(item_item or None, weight, validation metrics of the choice)``; ``(None, 0.0, {})`` when no
        item-item model was fitted.
    """
    from local_models.recommender.baselines import EASE

    if not l2s or n_items > EASE.max_items or not len(valid.histories):
        return None, 0.0, {}
    fitted = {} if fitted is None else fitted
    best = None
    for l2 in l2s:
        if l2 not in fitted:
            fitted[l2] = ItemItem.fit(train_seqs, n_items, l2=l2, neighbours=neighbours)
        w, results = choose_weight(seq_score, fitted[l2], valid, item_counts, weights)
        if best is None or results[w]["ndcg@10"] > best[2]["ndcg@10"]:
            best = (fitted[l2], w, results[w])
    item_item, w, metrics = best
    return (item_item if w > 0 else None), w, metrics
