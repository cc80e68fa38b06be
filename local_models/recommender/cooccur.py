"""Item-to-item co-purchase counts for "bought together" suggestions with countable reasons.

For every pair of products it keeps how many distinct customers bought both (at any time) and how
many orders contained both, so a tool can say "bought with X by 212 customers" and the number can
be checked against the orders table.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from local_models.common import UnknownProductError
from local_models.recommender.data import column_dict

FORMAT_VERSION = 1


class CoPurchaseItem(NamedTuple):
    """One "bought together" suggestion.

    Attributes:
        product_id: The suggested product.
        n_customers: Distinct customers who bought both it and ``with_product``.
        n_orders: Orders containing both (0 when fitted without order ids).
        with_product: The input product it was most often bought with.
        confidence: ``n_customers`` / customers who bought ``with_product``.
    """

    product_id: str
    n_customers: int
    n_orders: int
    with_product: str
    confidence: float


def _pair_counts(group: np.ndarray, item: np.ndarray, n_items: int) -> sp.csr_matrix:
    """``(n_items, n_items)`` counts of groups (customers or orders) containing both items."""
    _, g = np.unique(group, return_inverse=True)
    x = sp.csr_matrix((np.ones(len(item), dtype=np.int32), (g, item)), shape=(g.max() + 1 if len(g) else 0, n_items))
    x.data[:] = 1  # a customer buying an item twice still counts once
    x.sum_duplicates()
    x.data[:] = 1
    return (x.T @ x).tocsr()


class CoPurchase:
    """Co-purchase counts between products.

    Build with :meth:`fit`; ask with :meth:`bought_together`.
    """

    def __init__(self, product_ids: list[str], customers: sp.csr_matrix, orders: sp.csr_matrix | None) -> None:
        self.product_ids = product_ids
        self.index = {p: i for i, p in enumerate(product_ids)}
        self.customers = customers
        self.orders = orders

    @classmethod
    def fit(cls, data: Any) -> "CoPurchase":
        """Count co-purchases.

        Args:
            data: A table, dict or DataFrame with columns ``customer_id``, ``product_id`` and optionally
                ``order_id``, or a tuple ``(customer_ids, product_ids[, order_ids])``. Pass only
                completed purchases (no cancellations or returns).

        Returns:
            The fitted counts.
        """
        cols = column_dict(data, ("customer_id", "product_id", "order_id"))
        customer = np.asarray(cols["customer_id"]).astype(str)
        product = np.asarray(cols["product_id"]).astype(str)
        products, item = np.unique(product, return_inverse=True)
        customers = _pair_counts(customer, item, len(products))
        orders = None
        if cols.get("order_id") is not None:
            orders = _pair_counts(np.asarray(cols["order_id"]).astype(str), item, len(products))
        return cls([str(p) for p in products], customers, orders)

    def n_customers(self, product_id: str) -> int:
        """Distinct customers who bought ``product_id``."""
        i = self._index(product_id)
        return int(self.customers[i, i])

    def _index(self, product_id: str) -> int:
        try:
            return self.index[str(product_id)]
        except KeyError:
            raise UnknownProductError(
                f"Product {product_id!r} has no purchases in the co-purchase data: check the id or refit after new orders."
            ) from None

    def bought_together(
        self, product_ids: str | Sequence[str], k: int = 10, min_customers: int = 1
    ) -> list[CoPurchaseItem]:
        """Products most often bought by the same customers as the given ones.

        Args:
            product_ids: One product id or several (e.g. a basket); the inputs are never suggested.
            k: How many suggestions.
            min_customers: Drop pairs bought together by fewer customers than this.

        Returns:
            Up to ``k`` suggestions, most shared customers first (ties: more shared orders, then id).

        Raises:
            UnknownProductError: An input id never appears in the fitted purchases.
        """
        if isinstance(product_ids, str):
            product_ids = [product_ids]
        idx = [self._index(p) for p in product_ids]
        rows = self.customers[idx].toarray()  # (m, V) shared-customer counts
        best = rows.argmax(axis=0)  # which input each candidate was bought with most
        counts = rows[best, np.arange(rows.shape[1])]
        counts[idx] = 0
        cand = np.flatnonzero(counts >= max(min_customers, 1))
        order_counts = np.zeros(len(cand), dtype=np.int64)
        if self.orders is not None and len(cand):
            o = self.orders[idx].toarray()
            order_counts = o[best[cand], cand]
        ranked = sorted(
            range(len(cand)), key=lambda j: (-counts[cand[j]], -order_counts[j], self.product_ids[cand[j]])
        )[:k]
        out = []
        for j in ranked:
            c = cand[j]
            src = idx[best[c]]
            support = int(self.customers[src, src])
            out.append(
                CoPurchaseItem(
                    product_id=self.product_ids[c],
                    n_customers=int(counts[c]),
                    n_orders=int(order_counts[j]),
                    with_product=self.product_ids[src],
                    confidence=int(counts[c]) / support if support else 0.0,
                )
            )
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the counts to one ``.npz`` file atomically (temp file, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"format_version": np.array(FORMAT_VERSION), "product_ids": np.array(self.product_ids, dtype=str)}
        for name, m in (("customers", self.customers), ("orders", self.orders)):
            if m is not None:
                arrays[f"{name}_indptr"], arrays[f"{name}_indices"], arrays[f"{name}_data"] = m.indptr, m.indices, m.data
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CoPurchase":
        """Read counts written by :meth:`save` (no pickled objects are loaded)."""
        with np.load(path, allow_pickle=False) as z:
            if int(z["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"{path} has co-purchase format {int(z['format_version'])}; refit.")
            products = [str(p) for p in z["product_ids"]]
            n = len(products)
            mats = {}
            for name in ("customers", "orders"):
                if f"{name}_indptr" in z:
                    mats[name] = sp.csr_matrix(
                        (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=(n, n)
                    )
        return cls(products, mats["customers"], mats.get("orders"))
