"""Themes: group reviews by meaning (spherical k-means on their embeddings) and name each group by its words.

A theme's label is its top terms by class-based TF-IDF (terms frequent in the theme and rare in the others), in
whatever language the reviews are written (Chinese words from jieba, English words). Each theme carries its count,
its share, a trend when the reviews have dates (share among the more recent half of the reviews against the
earlier half) and the reviews closest to its centre as representative quotes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from local_models.text.tokens import tokenize

TREND_PP = 5.0  # a theme's share must move by this many percentage points to be called rising or falling


@dataclass
class Theme:
    label: str
    terms: list[str]
    count: int
    share: float  # of the reviews clustered, 0..1
    member_ids: list[str]
    quote_ids: list[str]
    trend: str | None = None  # rising / falling / steady; None without dates
    share_earlier: float | None = None
    share_recent: float | None = None
    extra: dict = field(default_factory=dict)


def kmeans(X: np.ndarray, k: int, seed: int = 0, iters: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) with k-means++ seeding; returns (assignments (N,), centres (k, dim))."""
    rng = np.random.default_rng(seed)
    n = len(X)
    centres = [X[rng.integers(n)]]
    for _ in range(1, k):
        d = 1.0 - np.max(X @ np.stack(centres).T, axis=1)
        d = np.maximum(d, 0) ** 2
        p = d / d.sum() if d.sum() > 0 else np.full(n, 1.0 / n)
        centres.append(X[rng.choice(n, p=p)])
    C = np.stack(centres)
    assign = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        new = np.argmax(X @ C.T, axis=1)
        if it and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = X[assign == j]
            if len(members):
                c = members.sum(0)
                C[j] = c / max(np.linalg.norm(c), 1e-12)
    return assign, C


def _choose_k(n: int) -> int:
    # About one theme per 20 reviews, between 2 and 6: more themes than that is more than a person reads.
    return max(1, min(6, n // 20 if n >= 40 else (2 if n >= 8 else 1)))


def find_themes(texts: Sequence[str], vectors: np.ndarray, review_ids: Sequence[str],
                dates: Sequence | None = None, n_themes: int | None = None, quotes: int = 3, n_terms: int = 4,
                seed: int = 0) -> list[Theme]:
    """Cluster reviews into themes, largest first.

    Args:
        texts: review texts (already redacted), aligned with ``vectors`` and ``review_ids``.
        vectors: (N, dim) unit embeddings.
        review_ids: ids quoted back.
        dates: optional dates (None entries allowed) for the trend.
        n_themes: number of themes; chosen from N when None.
        quotes: representative reviews per theme.
        n_terms: terms in a label.
        seed: seeds the clustering.
    """
    n = len(texts)
    if n == 0:
        return []
    k = min(n_themes or _choose_k(n), n)
    X = np.asarray(vectors, np.float32)
    assign, C = kmeans(X, k, seed) if k > 1 else (np.zeros(n, np.int64), X.mean(0, keepdims=True))
    docs = [set(tokenize(t)) for t in texts]
    df_all = Counter(w for d in docs for w in d)
    recent, dated = _recent_mask(dates)
    themes = []
    for j in range(k):
        idx = np.flatnonzero(assign == j)
        if not len(idx):
            continue
        df_c = Counter(w for i in idx for w in docs[i])
        # class TF-IDF: share of the theme's reviews using the word, times how specific the word is to the theme.
        # Words in most of the reviews ("dress", "酒店") name the product, not the theme: left out of labels.
        scored = sorted(((df_c[w] / len(idx)) * math.log(1 + (df_c[w] / len(idx)) / (df_all[w] / n)), w)
                        for w in df_c if df_c[w] >= min(2, len(idx)) and (n < 6 or df_all[w] / n <= 0.5))
        terms = [w for _, w in sorted(scored, reverse=True)[:n_terms]]
        order = idx[np.argsort(-(X[idx] @ C[j]))]
        theme = Theme(label=" / ".join(terms) if terms else "(mixed)", terms=terms, count=int(len(idx)),
                      share=round(len(idx) / n, 4), member_ids=[str(review_ids[i]) for i in idx],
                      quote_ids=[str(review_ids[i]) for i in order[:quotes]])
        if recent is not None:
            earlier = dated & ~recent
            early, late = earlier.sum(), recent.sum()
            if early and late:
                se = float(np.sum(earlier[idx]) / early)
                sl = float(np.sum(recent[idx]) / late)
                theme.share_earlier, theme.share_recent = round(se, 4), round(sl, 4)
                delta = (sl - se) * 100
                theme.trend = "rising" if delta >= TREND_PP else "falling" if delta <= -TREND_PP else "steady"
        themes.append(theme)
    if n >= 10:  # a theme of one review is an anecdote, not a theme
        themes = [t for t in themes if t.count > 1] or themes
    return sorted(themes, key=lambda t: -t.count)


def _recent_mask(dates: Sequence | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dated after the median date, has a date); (None, None) when fewer than half the reviews have dates."""
    if dates is None:
        return None, None
    import pandas as pd

    d = pd.to_datetime(pd.Series(list(dates)), errors="coerce")
    if d.notna().mean() < 0.5 or d.nunique() < 2:
        return None, None
    return (d > d.median()).to_numpy(), d.notna().to_numpy()
