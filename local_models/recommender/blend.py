"""The parts of "ours" and how they are mixed: sequence model, sparse EASE item-item model, recent popularity.

The sequence model knows the order of recent purchases; an item-item model knows which products the
same customers buy, over their whole history; recent popularity knows what sells now (seasonal
products in a shop's time split). On leave-one-out Amazon data and on the Online Retail shop the
mix beats each part, so the recommender ranks by

    score = z(sequence model) + item_item * z(item-item(history, decay)) + popularity * z(log(1 + recent purchases))

where ``z`` standardises each customer's row over all items (the score scales are unrelated), and
``decay`` weighs each history item in the item-item part by ``decay ** (purchases since)``, so the
latest purchases count most. The weights and the decay (and the EASE ridge) are chosen on the
validation split (:func:`choose_blend`); all weights 0 is the sequence model alone.

The item-item model is EASE^R (Steck, WWW 2019) fitted in closed form, then sparsified to the
``neighbours`` weights of largest size per history item so it is cheap to store and to score with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from local_models.recommender.data import EvalSplit

if TYPE_CHECKING:
    import torch

#: Item-item weights tried on validation (0 = no item-item part).
WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0)
#: History decays tried for the item-item part (1 = every past purchase counts the same).
DECAYS = (1.0, 0.995, 0.99, 0.98, 0.95)
#: Recent-popularity weights tried (0 = none).
POPULARITY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class Blend:
    """How the parts are mixed (see the module docstring); the default is the sequence model alone."""

    item_item: float = 0.0
    popularity: float = 0.0
    decay: float = 1.0

    @property
    def sequence_only(self) -> bool:
        return self.item_item == 0 and self.popularity == 0

    def to_dict(self) -> dict:
        return asdict(self)


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

    def score(self, histories: Sequence[np.ndarray], decay: float = 1.0) -> torch.Tensor:
        """``(B, V+1)`` scores: the sum of each history item's weights, times ``decay ** (purchases since its
        latest purchase)``; repeats count once."""
        import torch

        x = history_matrix(histories, self.weights.shape[0], decay)
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


def history_matrix(histories: Sequence[np.ndarray], n_columns: int, decay: float = 1.0) -> sp.csr_matrix:
    """``(B, n_columns)`` CSR: 1 (``decay == 1``) or ``decay ** (purchases after its latest purchase)`` for
    each item in a history, so a product bought again recently counts as recent."""
    rows, cols, vals = [], [], []
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)
        # Reversed, np.unique's first index of an item is the number of purchases after its latest one.
        items, age = np.unique(h[::-1], return_index=True)
        rows.append(np.full(len(items), r))
        cols.append(items)
        vals.append(np.ones(len(items), np.float32) if decay == 1.0 else
                    np.power(np.float32(decay), age.astype(np.float32)))
    if not rows:
        return sp.csr_matrix((0, n_columns), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(histories), n_columns), dtype=np.float32)


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


def popularity_scores(counts: np.ndarray) -> "torch.Tensor":
    """``(1, V+1)`` z-scores of ``log(1 + purchases)`` over the real items, for the popularity part."""
    import torch

    logs = torch.from_numpy(np.log1p(np.asarray(counts, dtype=np.float64)).astype(np.float32))[None]
    return standardise(logs)


def blend(seq_scores: "torch.Tensor", item_scores: "torch.Tensor | None", mix: Blend,
          popularity: "torch.Tensor | None" = None) -> "torch.Tensor":
    """The blended ``(B, V+1)`` scores; the sequence scores unchanged when ``mix`` is the sequence model alone.

    Args:
        seq_scores: Sequence-model scores.
        item_scores: ``ItemItem.score(histories, mix.decay)`` (None when ``mix.item_item`` is 0).
        mix: The weights.
        popularity: :func:`popularity_scores` of the recent purchases (None when ``mix.popularity`` is 0).
    """
    if mix.sequence_only:
        return seq_scores
    m_seq, s_seq = _row_stats(seq_scores[:, 1:])
    # The same sum written as scaled copies and fused multiply-adds: serving scores every item.
    out = seq_scores / s_seq  # (B, V+1)
    shift = m_seq / s_seq
    if mix.item_item:
        m_item, s_item = _row_stats(item_scores[:, 1:])
        out.addcmul_(item_scores, mix.item_item / s_item)
        shift = shift + mix.item_item * m_item / s_item
    out.sub_(shift)
    if mix.popularity:
        out.add_(popularity, alpha=mix.popularity)
    out[:, 0] = float("-inf")
    return out


def choose_blend(
    seq_score: Callable[[Sequence[np.ndarray]], torch.Tensor],
    item_item: ItemItem | None,
    split: EvalSplit,
    item_counts: np.ndarray,
    popularity_counts: np.ndarray | None = None,
    weights: Sequence[float] = WEIGHTS,
    decays: Sequence[float] = DECAYS,
    popularity_weights: Sequence[float] = POPULARITY_WEIGHTS,
    k: int = 10,
    batch_size: int = 1024,
) -> tuple[Blend, dict[Blend, dict]]:
    """Choose the blend by NDCG@k on ``split``, one part at a time (a full grid would rank the split ~360 times).

    In turn: the item-item weight, its history decay, the popularity weight, then the item-item weight again
    with the other two fixed. Each round keeps the previous choice unless a candidate is strictly better, so
    the result is never worse on ``split`` than the sequence model alone.

    Args:
        seq_score: ``histories -> (B, V+1)`` sequence-model scores.
        item_item: The fitted item-item model (None: no item-item part).
        split: Validation histories and targets (never the test split).
        item_counts: ``(V+1,)`` training counts, for the popularity percentile.
        popularity_counts: ``(V+1,)`` purchases in the recent window as seen from the split's histories
            (None: no popularity part).
        weights, decays, popularity_weights: The candidates of each round.
        k: Cut-off.
        batch_size: Customers per scoring call.

    Returns:
        ``(chosen blend, {blend: metrics} for every blend ranked)``.
    """
    results: dict[Blend, dict] = {}
    pop = popularity_scores(popularity_counts) if popularity_counts is not None else None
    best = Blend()
    rounds: list[Callable[[Blend], list[Blend]]] = []
    if item_item is not None:
        rounds += [lambda b: [replace(b, item_item=w) for w in weights]]
        rounds += [lambda b: [replace(b, decay=d) for d in decays] if b.item_item else []]
    if pop is not None:
        rounds += [lambda b: [replace(b, popularity=p) for p in popularity_weights]]
        if item_item is not None:
            rounds += [lambda b: [replace(b, item_item=w) for w in weights]]
    for make in [lambda b: [b]] + rounds:
        todo = [b for b in dict.fromkeys(make(best)) if b not in results]
        results.update(_rank_blends(seq_score, item_item, pop, split, item_counts, todo, k, batch_size))
        for b in todo:  # in candidate order, strictly better only: ties keep the earlier, simpler choice
            if results[b][f"ndcg@{k}"] > results[best][f"ndcg@{k}"]:
                best = b
    return best, results


def _rank_blends(seq_score, item_item, pop, split: EvalSplit, item_counts: np.ndarray, blends: list[Blend],
                 k: int, batch_size: int) -> dict[Blend, dict]:
    """Metrics of each blend on ``split``; the models score each batch once (the item-item part once per decay)."""
    from local_models.recommender.evaluate import split_metrics, top_k

    if not blends:
        return {}
    order = np.argsort([len(h) for h in split.histories], kind="stable")
    tops: dict[Blend, list[np.ndarray]] = {b: [] for b in blends}
    for lo in range(0, len(order), batch_size):
        rows = order[lo : lo + batch_size]
        hist = [split.histories[i] for i in rows]
        seq = seq_score(hist).float()  # (B, V+1)
        items = {d: item_item.score(hist, d) for d in {b.decay for b in blends if b.item_item}}
        for b in blends:  # top_k masks in place, and blend() returns the sequence scores themselves when alone
            scores = seq.clone() if b.sequence_only else blend(seq, items.get(b.decay), b, pop)
            tops[b].append(top_k(scores, hist, k))
    results = {}
    for b in blends:
        topk = np.zeros((len(order), tops[b][0].shape[1]), dtype=np.int64)
        topk[order] = np.concatenate(tops[b])
        results[b] = split_metrics(topk, split, item_counts, k)
    return results


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
    popularity_counts: np.ndarray | None = None,
    decays: Sequence[float] = DECAYS,
    popularity_weights: Sequence[float] = POPULARITY_WEIGHTS,
) -> tuple[ItemItem | None, Blend, dict]:
    """Fit the item-item model for each ridge in ``l2s`` and choose ridge and blend on validation.

    Args:
        seq_score: ``histories -> (B, V+1)`` scores of the trained sequence model.
        train_seqs: The sequences the sequence model was trained on.
        n_items: Number of real items.
        valid: Validation split.
        item_counts: ``(V+1,)`` training counts.
        l2s: EASE ridges to try; empty, or a catalogue too large for EASE, means no item-item part.
        neighbours: Weights kept per history item.
        weights, decays, popularity_weights: Candidates (see :func:`choose_blend`).
        fitted: Optional cache ``{l2: ItemItem}`` reused and filled (the item-item fit does not depend
            on the sequence model, so several seeds can share it).
        popularity_counts: ``(V+1,)`` recent purchases before the validation targets (None: no popularity part).

    Returns:
        ``(item_item or None, blend, validation metrics of the choice)``; the item-item model is None when
        the chosen blend does not use it. ``(None, Blend(), {})`` when there is nothing to choose.
    """
    from local_models.recommender.baselines import EASE

    if not len(valid.histories):
        return None, Blend(), {}
    use_item_item = bool(l2s) and n_items <= EASE.max_items
    if not use_item_item and popularity_counts is None:
        return None, Blend(), {}
    fitted = {} if fitted is None else fitted
    best = None
    for l2 in (l2s if use_item_item else [None]):
        if l2 is not None and l2 not in fitted:
            fitted[l2] = ItemItem.fit(train_seqs, n_items, l2=l2, neighbours=neighbours)
        item_item = fitted[l2] if l2 is not None else None
        mix, results = choose_blend(seq_score, item_item, valid, item_counts, popularity_counts, weights, decays,
                                    popularity_weights)
        if best is None or results[mix]["ndcg@10"] > best[2]["ndcg@10"]:
            best = (item_item, mix, results[mix])
    item_item, mix, metrics = best
    return (item_item if mix.item_item else None), mix, metrics
