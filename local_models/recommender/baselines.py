"""Non-neural baselines, each scoring every item for a customer history.

Every baseline is fitted on item-index sequences (see ``data.py``) and exposes
``score(histories, customers) -> (B, V+1)`` like the neural model, so one evaluation routine ranks
them all. Histories at scoring time may be longer than at fitting time (leave-one-out test adds the
validation item); item-based models use the history directly and ALS refits the user's factors
from it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp


def interaction_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary ``(len(histories), n_items + 1)`` customer x item matrix (column 0 = padding, empty)."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(histories), n_items + 1))
    m.data[:] = 1.0  # repeated purchases count once
    return m


class Popular:
    """Most bought items (optionally counted over a recent window only: pass those counts).

    Args:
        item_counts: ``(V+1,)`` purchase counts per item index.
    """

    def __init__(self, item_counts: np.ndarray) -> None:
        self.scores = np.asarray(item_counts, dtype=np.float32).copy()
        self.scores[0] = -np.inf

    def score(self, histories: Sequence[np.ndarray], customers: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(histories), len(self.scores)))


class ItemKNN:
    """Item-based nearest neighbours with cosine similarity on the binary customer x item matrix.

    Args:
        n_items: Number of real items.
        neighbours: Similar items kept per item.
        shrink: Added to the cosine denominator so pairs seen by very few customers count less.
    """

    def __init__(self, n_items: int, neighbours: int = 100, shrink: float = 0.0) -> None:
        self.n_items, self.neighbours, self.shrink = n_items, neighbours, shrink
        self.sim: sp.csr_matrix | None = None

    def fit(self, train_seqs: Sequence[np.ndarray]) -> "ItemKNN":
        x = interaction_matrix(train_seqs, self.n_items)
        co = (x.T @ x).tocsr().astype(np.float32)  # (V+1, V+1) co-purchase counts
        norms = np.sqrt(co.diagonal())
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        data = co.data / (norms[co.row] * norms[co.col] + self.shrink + 1e-9)
        sim = sp.csr_matrix((data, (co.row, co.col)), shape=co.shape)
        self.sim = _keep_top_per_row(sim, self.neighbours).T.tocsr()  # column j: neighbours of j
        return self

    def score(self, histories: Sequence[np.ndarray], customers: np.ndarray | None = None) -> np.ndarray:
        # score(i) = sum over history items h of sim(h, i), using each h's kept neighbours
        return np.asarray((interaction_matrix(histories, self.n_items) @ self.sim.T).todense())


def _keep_top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    m = m.tocsr()
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi == lo:
            continue
        data, idx = m.data[lo:hi], m.indices[lo:hi]
        if hi - lo > k:
            top = np.argpartition(-data, k)[:k]
            data, idx = data[top], idx[top]
        rows.append(np.full(len(idx), r))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)


class EASE:
    """EASE^R (Steck, WWW 2019): a closed-form item-item linear model, B = I - P / diag(P).

    Needs a dense item x item inverse, so it is only practical up to roughly 20k items.

    Args:
        n_items: Number of real items.
        l2: Ridge penalty added to the Gram matrix diagonal.
    """

    max_items = 20_000

    def __init__(self, n_items: int, l2: float = 500.0) -> None:
        if n_items > self.max_items:
            raise ValueError(f"EASE needs a dense {n_items}x{n_items} inverse; use it only up to {self.max_items} items.")
        self.n_items, self.l2 = n_items, l2
        self.weights: np.ndarray | None = None

    def fit(self, train_seqs: Sequence[np.ndarray]) -> "EASE":
        import torch

        x = interaction_matrix(train_seqs, self.n_items)
        gram = torch.from_numpy(np.asarray((x.T @ x).todense(), dtype=np.float32))
        gram += self.l2 * torch.eye(gram.shape[0], dtype=torch.float32)
        # Cholesky, since the Gram matrix plus the ridge term is symmetric positive definite; float32
        # halves the time and is accurate enough with a ridge of tens or more.
        p = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        b = -p / torch.diagonal(p)[None, :]
        b.fill_diagonal_(0.0)
        self.weights = b.numpy()
        return self

    def score(self, histories: Sequence[np.ndarray], customers: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(interaction_matrix(histories, self.n_items) @ self.weights)


class ALS:
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via the ``implicit`` package.

    Args:
        n_items: Number of real items.
        factors: Latent dimensions.
        regularization: L2 penalty.
        alpha: Confidence scale for observed purchases.
        iterations: ALS sweeps.
        seed: Random seed.
        threads: Worker threads (0 = all cores).
    """

    def __init__(
        self,
        n_items: int,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
        threads: int = 0,
    ) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        self.n_items = n_items
        # The constructor checks the BLAS thread count and warns; fitting runs under the same limit.
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=alpha,
                iterations=iterations,
                random_state=seed,
                num_threads=threads,
            )

    def fit(self, train_seqs: Sequence[np.ndarray]) -> "ALS":
        from threadpoolctl import threadpool_limits

        # implicit runs its own threads; a multi-threaded BLAS underneath oversubscribes the cores.
        with threadpool_limits(1, "blas"):
            self.model.fit(interaction_matrix(train_seqs, self.n_items), show_progress=False)
        return self

    def score(self, histories: Sequence[np.ndarray], customers: np.ndarray | None = None) -> np.ndarray:
        x = interaction_matrix(histories, self.n_items)
        users = self.model.recalculate_user(np.arange(len(histories)), x)
        return users @ self.model.item_factors.T
