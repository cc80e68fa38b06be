"""Tables to tensors for the recommender: id maps, per-customer sequences, splits and padded batches.

Conventions used everywhere in this package:

* Item index 0 is padding; real items are 1..n_items (``ItemMap``). Customer indices are 0..n-1.
* A sequence is a 1-D int64 array of item indices in purchase order (oldest first).
* Batches are left-padded, so the most recent item is always in the last column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np


@dataclass
class Interactions:
    """One row per purchase event (an order line), as plain arrays of equal length.

    Attributes:
        customer_id: Customer ids as strings.
        product_id: Product ids as strings.
        timestamp: int64 sort keys (e.g. epoch seconds); equal values keep their input order.
    """

    customer_id: np.ndarray
    product_id: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_id)

    def take(self, mask_or_index: np.ndarray) -> "Interactions":
        """Rows selected by a boolean mask or index array."""
        return Interactions(
            self.customer_id[mask_or_index], self.product_id[mask_or_index], self.timestamp[mask_or_index]
        )


def _to_timestamp(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[s]").astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.int64)
    # Strings such as '2011-12-09 12:50:00': numpy parses ISO dates when the space is a 'T'.
    return np.array([str(v).replace(" ", "T") for v in arr], dtype="datetime64[s]").astype(np.int64)


def column_dict(data: Any, tuple_names: Sequence[str]) -> dict[str, Any]:
    """Columns of a pyarrow Table, pandas/polars DataFrame, dict, or tuple of arrays (named ``tuple_names``).

    Raises:
        ValueError: ``data`` is none of those.
    """
    if isinstance(data, tuple):
        return dict(zip(tuple_names, data))
    if hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow.Table
        return {name: data.column(name).to_numpy(zero_copy_only=False) for name in data.column_names}
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas / polars DataFrame
        return {name: np.asarray(data[name]) for name in data.columns}
    if isinstance(data, dict):
        return dict(data)
    raise ValueError(f"Cannot read {type(data).__name__}: pass a table, DataFrame, dict or tuple of arrays.")


def as_interactions(data: Any) -> Interactions:
    """Accept the shapes callers have at hand and return :class:`Interactions`.

    Args:
        data: An ``Interactions``; a mapping or pyarrow Table / pandas DataFrame with columns
            ``customer_id``, ``product_id`` and optionally ``timestamp`` (else ``ordered_at``; without
            either, the row order is the time order); or a tuple ``(customer_ids, product_ids[, timestamps])``.

    Returns:
        The interactions with ids as strings and int64 timestamps.

    Raises:
        ValueError: Missing columns or arrays of different lengths.
    """
    if isinstance(data, Interactions):
        return data
    cols = column_dict(data, ("customer_id", "product_id", "timestamp"))
    missing = {"customer_id", "product_id"} - cols.keys()
    if missing:
        raise ValueError(f"Interactions need columns customer_id and product_id; missing {sorted(missing)}.")
    customer = np.asarray(cols["customer_id"]).astype(str)
    product = np.asarray(cols["product_id"]).astype(str)
    ts_values = cols.get("timestamp", cols.get("ordered_at"))
    ts = np.arange(len(customer), dtype=np.int64) if ts_values is None else _to_timestamp(ts_values)
    if not (len(customer) == len(product) == len(ts)):
        raise ValueError("customer_id, product_id and timestamp must have the same length.")
    return Interactions(customer, product, ts)


class ItemMap:
    """Product id <-> item index, with index 0 reserved for padding.

    Args:
        product_ids: The distinct product ids in index order (index 1 is ``product_ids[0]``).
    """

    def __init__(self, product_ids: Sequence[str]) -> None:
        self.ids: list[str] = [str(p) for p in product_ids]
        self.index: dict[str, int] = {p: i + 1 for i, p in enumerate(self.ids)}

    @classmethod
    def fit(cls, product_ids: Iterable[str]) -> "ItemMap":
        """Build a map from every product id seen (sorted, so the map does not depend on row order)."""
        return cls(sorted(set(map(str, product_ids))))

    def __len__(self) -> int:
        return len(self.ids)

    def encode(self, product_ids: np.ndarray) -> np.ndarray:
        """Indices for known ids, 0 for unknown ones."""
        return np.fromiter((self.index.get(p, 0) for p in product_ids), dtype=np.int64, count=len(product_ids))

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.ids[i - 1] for i in indices]


def build_sequences(inter: Interactions, items: ItemMap) -> tuple[list[str], list[np.ndarray]]:
    """Group interactions into chronological item sequences, one per customer.

    Rows whose product is not in ``items`` are dropped.

    Args:
        inter: The interactions.
        items: The item map.

    Returns:
        ``(customer_ids, sequences)``: customers sorted by id, each with its item-index array.
    """
    item_idx = items.encode(inter.product_id)
    keep = item_idx > 0
    cust = inter.customer_id[keep]
    ts = inter.timestamp[keep]
    item_idx = item_idx[keep]
    # lexsort is stable: same-time rows (lines of one order) keep their input order.
    order = np.lexsort((ts, cust))
    cust, item_idx = cust[order], item_idx[order]
    if len(cust) == 0:
        return [], []
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    bounds = np.r_[starts, len(cust)]
    customers = [str(c) for c in cust[starts]]
    seqs = [item_idx[bounds[i] : bounds[i + 1]] for i in range(len(starts))]
    return customers, seqs


@dataclass
class EvalSplit:
    """Inputs and held-out targets for evaluation.

    Attributes:
        histories: Per evaluated customer, the item sequence the model sees.
        targets: Per evaluated customer, the held-out item indices (one for leave-one-out).
        customers: Positions of these customers in the full customer list.
    """

    histories: list[np.ndarray]
    targets: list[np.ndarray]
    customers: np.ndarray


def leave_one_out(seqs: list[np.ndarray]) -> tuple[list[np.ndarray], EvalSplit, EvalSplit]:
    """The standard sequential-recommendation split: last item test, second-to-last validation.

    Customers with fewer than 3 items keep everything in training and are not evaluated.

    Args:
        seqs: Chronological item sequences.

    Returns:
        ``(train_seqs, valid, test)``: training sequences (each without its last two items),
        validation (history = train sequence, target = second-to-last item) and test
        (history = all but the last item, target = last item).
    """
    train, v_hist, v_tgt, t_hist, t_tgt, who = [], [], [], [], [], []
    for i, s in enumerate(seqs):
        if len(s) < 3:
            train.append(s)
            continue
        train.append(s[:-2])
        v_hist.append(s[:-2])
        v_tgt.append(s[-2:-1])
        t_hist.append(s[:-1])
        t_tgt.append(s[-1:])
        who.append(i)
    who_arr = np.asarray(who, dtype=np.int64)
    return train, EvalSplit(v_hist, v_tgt, who_arr), EvalSplit(t_hist, t_tgt, who_arr)


def time_split(
    inter: Interactions, cutoff: int, items: ItemMap, end: int | None = None
) -> tuple[list[str], list[np.ndarray], EvalSplit]:
    """Split at a point in time: history before ``cutoff``, targets in ``[cutoff, end)``.

    Evaluated customers are those active in the target period who also bought before it. Targets
    are the distinct items they bought in the period that are not already in their history (the
    recommender excludes seen items by default, so repeats could never be hit).

    Args:
        inter: All interactions.
        cutoff: First timestamp of the target period.
        items: Item map (items unknown to it are ignored).
        end: Timestamp after the target period (default: no end).

    Returns:
        ``(customers, history_seqs, split)``: every customer with history before the cutoff, their
        sequences, and the evaluation split (``split.customers`` indexes into ``customers``).
    """
    before = inter.take(inter.timestamp < cutoff)
    in_period = (inter.timestamp >= cutoff) & (inter.timestamp < (end if end is not None else np.iinfo(np.int64).max))
    after = inter.take(in_period)
    customers, seqs = build_sequences(before, items)
    pos = {c: i for i, c in enumerate(customers)}
    after_items = items.encode(after.product_id)
    bought: dict[int, set[int]] = {}
    for c, it in zip(after.customer_id, after_items):
        i = pos.get(c)
        if i is not None and it > 0:
            bought.setdefault(i, set()).add(int(it))
    hist, tgt, who = [], [], []
    for i in sorted(bought):
        novel = bought[i] - set(seqs[i].tolist())
        if novel:
            hist.append(seqs[i])
            tgt.append(np.array(sorted(novel), dtype=np.int64))
            who.append(i)
    return customers, seqs, EvalSplit(hist, tgt, np.asarray(who, dtype=np.int64))


def pad_left(histories: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """Keep each history's last ``max_len`` items and left-pad with 0 to a ``(B, max_len)`` array."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, h in enumerate(histories):
        h = h[-max_len:]
        if len(h):
            out[row, max_len - len(h) :] = h
    return out


def pad_batch(histories: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """Like :func:`pad_left` but only as wide as the longest history (at most ``max_len``).

    The model gives the same result either way (positions count back from the newest item); a
    narrower batch just skips work on columns that are padding in every row.
    """
    width = min(max_len, max((len(h) for h in histories), default=1))
    return pad_left(histories, max(width, 1))


def training_windows(
    seqs: Sequence[np.ndarray], max_len: int, novel_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Next-item training pairs: inputs ``s[:-1]`` and targets ``s[1:]``, left-padded to ``max_len``.

    Sequences longer than ``max_len + 1`` are cut into several windows from the end back, so long
    histories (frequent shop customers) are used in full instead of only their last ``max_len`` items.
    Each window starts at the last item of the previous one, so every transition is trained on once.

    Args:
        seqs: Chronological item sequences; those with fewer than 2 items give no pairs.
        max_len: Window length.
        novel_only: Train only on targets the customer had not bought before (a re-purchase target
            becomes 0, ignored by the loss). For shops whose customers re-buy the same products, when
            recommendations leave out what was bought: the model's capacity goes to new products.

    Returns:
        ``(inputs, targets)``, both ``(N, max_len)`` int64, 0 where padded (or not trained on).
    """
    in_chunks, tgt_chunks = [], []
    for s in seqs:
        tgt = s
        if novel_only:
            _, first = np.unique(s, return_index=True)
            tgt = np.zeros_like(s)
            tgt[first] = s[first]  # only first purchases of an item are targets
        end = len(s)
        while end >= 2:
            start = max(0, end - max_len - 1)
            in_chunks.append(s[start : end - 1])
            tgt_chunks.append(tgt[start + 1 : end])
            end = start + 1 if start > 0 else 0
    return pad_left(in_chunks, max_len), pad_left(tgt_chunks, max_len)


def read_sequence_file(path: str | Path) -> Interactions:
    """Read the public "user item1 item2 ..." format (one chronological line per user).

    Args:
        path: The text file.

    Returns:
        Interactions whose timestamps are the positions in each line.
    """
    cust, prod, ts = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            user, seq = parts[0], parts[1:]
            cust.extend([user] * len(seq))
            prod.extend(seq)
            ts.extend(range(len(seq)))
    return Interactions(np.array(cust), np.array(prod), np.array(ts, dtype=np.int64))
