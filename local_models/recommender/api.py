"""The recommender as the shop's tools use it: fit on purchases, save, load, recommend.

Example::

    rec = Recommender.fit({"customer_id": c, "product_id": p, "timestamp": t})
    rec.save("shop/models/recommender")
    rec = Recommender.load("shop/models/recommender")
    rec.recommend("17850", k=10)  # [(product_id, score), ...]

torch is imported only when a model is trained, loaded or run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from local_models.common import UnknownCustomerError, load_checkpoint, save_checkpoint
from local_models.recommender.blend import DECAYS, POPULARITY_WEIGHTS, WEIGHTS, Blend
from local_models.recommender.data import EvalSplit, ItemMap, as_interactions, build_sequences, pad_batch

CHECKPOINT_NAME = "recommender.pt"
ITEM_ITEM_PREFIX = "item_item."
DAY_S = 86_400


@dataclass
class RecommenderConfig:
    """Everything :meth:`Recommender.fit` needs besides the data.

    Attributes:
        model: Overrides for :class:`~local_models.recommender.model.Config` (``n_items`` is set from the data).
        train: Optimisation settings (:class:`~local_models.recommender.train.TrainConfig` fields).
        popular_window_days: Popularity for cold customers counts purchases in this many days before the
            newest purchase (None: all time). Only meaningful when timestamps are epoch seconds.
        min_history: Customers with fewer purchases than this get the popular items instead of the model.
        item_item_l2: EASE ridges tried for the item-item part of the blend (see ``blend.py``); the
            ridge and the blend are chosen on validation. Empty: no item-item part.
        item_item_neighbours: Item-item weights kept per product.
        blend_weights: Item-item weights tried on validation (0 = none).
        blend_decays: History decays tried for the item-item part (1 = all purchases count the same).
        popularity_weights: Weights tried for the recent-popularity part (purchases in the last
            ``popular_window_days``); empty: no popularity part.
        novel_targets: Train the sequence model only on purchases of products new to the customer
            (``train`` may override it). Recommendations leave out bought products by default, and on the
            repeat-heavy Online Retail shop this reached a better validation NDCG in the same time.
    """

    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    popular_window_days: int | None = 30
    min_history: int = 1
    item_item_l2: list = field(default_factory=lambda: [100.0, 500.0])
    item_item_neighbours: int = 200
    blend_weights: list = field(default_factory=lambda: list(WEIGHTS))
    blend_decays: list = field(default_factory=lambda: list(DECAYS))
    popularity_weights: list = field(default_factory=lambda: list(POPULARITY_WEIGHTS))
    novel_targets: bool = True


class Recommender:
    """A trained next-purchase model plus what it needs to serve: id maps, histories, popular items.

    Customers are ranked by the sequence model blended with an item-item model and recent popularity
    (``blend.py``) as validation chose; checkpoints saved before the blend existed load as the sequence
    model alone, and those saved before the popularity part as sequence + item-item.

    Build with :meth:`fit` or :meth:`load`, not the constructor.
    """

    def __init__(
        self,
        model: Any,
        items: ItemMap,
        customers: list[str],
        histories: list[np.ndarray],
        popular: np.ndarray,
        popular_counts: np.ndarray,
        config: RecommenderConfig,
        metrics: dict,
        item_item: Any = None,
        mix: Blend | None = None,
    ) -> None:
        self.model = model
        self.item_item = item_item  # blend.ItemItem or None
        mix = mix or Blend()
        self.blend = mix if item_item is not None or not mix.item_item else Blend(0.0, mix.popularity, mix.decay)
        self.items = items
        self.customers = customers
        self.customer_index = {c: i for i, c in enumerate(customers)}
        self.histories = histories
        self.popular_items = popular  # item indices, most bought first
        self.popular_counts = popular_counts
        self._popularity = None  # blend.popularity_scores of the recent purchases, made when first needed
        self.config = config
        self.metrics = metrics

    @classmethod
    def fit(cls, interactions: Any, config: RecommenderConfig | None = None) -> "Recommender":
        """Train on completed purchases.

        Each customer's last purchase is held out for validation (early stopping and model selection);
        the model then serves from the full histories.

        Args:
            interactions: Rows of ``customer_id``, ``product_id``, ``timestamp`` (see
                :func:`~local_models.recommender.data.as_interactions`). Pass only completed purchases.
            config: Settings; defaults when None.

        Returns:
            The fitted recommender.

        Raises:
            ValueError: No interactions, or no customer with two purchases.
        """
        import torch

        from local_models.recommender.model import Config
        from local_models.recommender.train import TrainConfig, train

        config = config or RecommenderConfig()
        inter = as_interactions(interactions)
        if len(inter) == 0:
            raise ValueError("No purchases to learn from.")
        items = ItemMap.fit(inter.product_id)
        customers, seqs = build_sequences(inter, items)
        train_seqs, hist, tgt, who = [], [], [], []
        for i, s in enumerate(seqs):
            if len(s) >= 3:
                train_seqs.append(s[:-1])
                hist.append(s[:-1])
                tgt.append(s[-1:])
                who.append(i)
            else:
                train_seqs.append(s)
        valid = EvalSplit(hist, tgt, np.asarray(who, dtype=np.int64)) if who else None
        counts = np.bincount(np.concatenate(train_seqs), minlength=len(items) + 1)
        recent = _window_counts(inter, items, config.popular_window_days)
        model_config = Config(n_items=len(items), **config.model)
        train_config = TrainConfig(**{"novel_targets": config.novel_targets, **config.train})
        result = train(model_config, train_seqs, valid, counts, train_config)
        model = result.model.cpu()
        item_item, mix, blend_valid = None, Blend(), {}
        if valid is not None:
            from local_models.recommender.blend import fit_blend
            from local_models.recommender.train import make_score_fn

            seq_score = make_score_fn(model, torch.device("cpu"))
            # As seen from validation, the recent window lacks the held-out purchases (most fall in it).
            valid_recent = np.clip(recent - np.bincount(np.concatenate(tgt), minlength=len(recent)), 0, None)
            item_item, mix, blend_valid = fit_blend(
                lambda hist: seq_score(hist, None), train_seqs, len(items), valid, counts, config.item_item_l2,
                config.item_item_neighbours, config.blend_weights,
                popularity_counts=valid_recent if config.popularity_weights else None,
                decays=config.blend_decays, popularity_weights=config.popularity_weights)
        order = np.argsort(-recent[1:], kind="stable") + 1
        order = order[recent[order] > 0].astype(np.int64)
        metrics = {"valid": result.best_valid, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                   "train_s": result.train_s}
        if valid is not None:
            # Fairness and explainability: catalogue coverage and the popularity percentile of what is
            # recommended, beside the most-popular list's on the same split.
            from local_models.recommender.baselines import Popular
            from local_models.recommender.evaluate import evaluate

            popular_valid = evaluate(Popular(valid_recent).score, valid, counts, k=10)
            metrics["valid_popular"] = {k: v for k, v in popular_valid.items() if k != "users_per_s"}
        if not mix.sequence_only:
            metrics = {**metrics, "valid": blend_valid, "valid_sequence_model": result.best_valid,
                       "blend": {**mix.to_dict(), "weight": mix.item_item,
                                 "l2": item_item.l2 if item_item is not None else None,
                                 "neighbours": config.item_item_neighbours}}
        return cls(model, items, customers, seqs, order, recent[order].astype(np.int64), config, metrics,
                   item_item, mix)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write one checkpoint file (``recommender.pt``) into ``directory`` atomically.

        Returns:
            The checkpoint path.
        """
        offsets = np.cumsum([0] + [len(h) for h in self.histories]).tolist()
        flat = np.concatenate(self.histories).tolist() if self.histories else []
        id_maps = {
            "items": self.items.ids,
            "customers": self.customers,
            "histories": {"offsets": offsets, "items": flat},
            "popular": {"items": self.popular_items.tolist(), "counts": self.popular_counts.tolist()},
        }
        config = {"model": self.model.config.to_dict(), "recommender": asdict(self.config),
                  "blend_weight": self.blend.item_item, "blend": self.blend.to_dict()}
        state = dict(self.model.state_dict())
        if self.item_item is not None:
            # The item-item half travels in the same tensor dict under its own prefix.
            state.update({f"{ITEM_ITEM_PREFIX}{k}": v for k, v in self.item_item.to_tensors().items()})
        return save_checkpoint(Path(directory) / CHECKPOINT_NAME, config, state, id_maps, self.metrics)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Recommender":
        """Rebuild a recommender saved by :meth:`save` (``weights_only`` load, strict state dict)."""
        from local_models.recommender.model import Config, SASRec

        ckpt = load_checkpoint(Path(directory) / CHECKPOINT_NAME)
        state = ckpt["state_dict"]
        blended = {k[len(ITEM_ITEM_PREFIX):]: state.pop(k) for k in list(state) if k.startswith(ITEM_ITEM_PREFIX)}
        model = SASRec(Config(**ckpt["config"]["model"]))
        model.load_state_dict(state, strict=True)
        model.eval()
        item_item = None
        if blended:
            from local_models.recommender.blend import ItemItem

            item_item = ItemItem.from_tensors(blended)
        maps = ckpt["id_maps"]
        offsets, flat = maps["histories"]["offsets"], np.asarray(maps["histories"]["items"], dtype=np.int64)
        histories = [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        return cls(
            model,
            ItemMap(maps["items"]),
            list(maps["customers"]),
            histories,
            np.asarray(maps["popular"]["items"], dtype=np.int64),
            np.asarray(maps["popular"]["counts"], dtype=np.int64),
            RecommenderConfig(**ckpt["config"]["recommender"]),
            ckpt["metrics"],
            item_item,
            # "blend" is absent before the popularity part, "blend_weight" too before the item-item part
            Blend(**ckpt["config"]["blend"]) if "blend" in ckpt["config"]
            else Blend(item_item=float(ckpt["config"].get("blend_weight", 0.0))),
        )

    def describe_model(self) -> str:
        """What ranks the products, in words, e.g. "sequence model blended with item-item model"."""
        parts = [name for name, on in (("item-item model", self.blend.item_item),
                                       ("recent best-sellers", self.blend.popularity)) if on]
        return "sequence model" + (" blended with " + " and ".join(parts) if parts else "")

    def _popularity_scores(self):
        if self._popularity is None:
            from local_models.recommender.blend import popularity_scores

            counts = np.zeros(len(self.items) + 1, dtype=np.int64)
            counts[self.popular_items] = self.popular_counts
            self._popularity = popularity_scores(counts)
        return self._popularity

    def history(self, customer_id: str) -> list[str]:
        """Product ids the customer bought, oldest first.

        Raises:
            UnknownCustomerError: The customer has no purchases in the training data.
        """
        return self.items.decode(self.histories[self._customer(customer_id)].tolist())

    def _customer(self, customer_id: str) -> int:
        try:
            return self.customer_index[str(customer_id)]
        except KeyError:
            raise UnknownCustomerError(
                f"Customer {customer_id!r} has no purchases in the data the recommender was trained on: "
                "use popular() or recommend_for_history(), or retrain after new orders."
            ) from None

    def popular(self, k: int = 10, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """Most bought products in the recent window, as ``(product_id, purchases)``."""
        skip = set(map(str, exclude))
        out = []
        for item, count in zip(self.popular_items.tolist(), self.popular_counts.tolist()):
            pid = self.items.ids[item - 1]
            if pid not in skip:
                out.append((pid, float(count)))
                if len(out) == k:
                    break
        return out

    def recommend(self, customer_id: str, k: int = 10, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top-k products for one known customer.

        Customers with fewer than ``min_history`` purchases get :meth:`popular` (score = purchases).

        Args:
            customer_id: A customer in the training data.
            k: How many products.
            exclude_seen: Leave out products the customer already bought (False allows re-purchase).

        Returns:
            ``[(product_id, score), ...]``, best first.

        Raises:
            UnknownCustomerError: Unknown customer id.
        """
        return self.recommend_batch([customer_id], k, exclude_seen)[0]

    def recommend_batch(
        self, customer_ids: Sequence[str], k: int = 10, exclude_seen: bool = True, batch_size: int = 1024
    ) -> list[list[tuple[str, float]]]:
        """:meth:`recommend` for many customers at once (much faster than one by one).

        Raises:
            UnknownCustomerError: Any of the ids is unknown.
        """
        histories = [self.histories[self._customer(c)] for c in customer_ids]
        return self._recommend_histories(histories, k, exclude_seen, batch_size)

    def recommend_for_history(
        self, product_ids: Sequence[str], k: int = 10, exclude_seen: bool = True
    ) -> list[tuple[str, float]]:
        """Top-k for a history given directly (a new customer, or a basket in progress).

        Products the model never saw are skipped; with nothing left, popular products are returned.
        """
        idx = self.items.encode(np.asarray([str(p) for p in product_ids]))
        return self._recommend_histories([idx[idx > 0]], k, exclude_seen, 1)[0]

    def _recommend_histories(
        self, histories: list[np.ndarray], k: int, exclude_seen: bool, batch_size: int
    ) -> list[list[tuple[str, float]]]:
        import torch

        from local_models.recommender.evaluate import top_k

        out: list[list[tuple[str, float]]] = [[] for _ in histories]
        warm = [i for i, h in enumerate(histories) if len(h) >= max(self.config.min_history, 1)]
        for i in set(range(len(histories))) - set(warm):
            seen = self.items.decode(histories[i].tolist()) if exclude_seen else []
            out[i] = self.popular(k, exclude=seen)
        device = next(self.model.parameters()).device
        k_model = min(k, len(self.items))
        # Similar lengths in one batch: each batch is only as wide as its longest history.
        warm.sort(key=lambda i: len(histories[i]))
        for lo in range(0, len(warm), batch_size):
            rows = warm[lo : lo + batch_size]
            hist = [histories[i] for i in rows]
            seq = torch.from_numpy(pad_batch(hist, self.model.config.max_len)).to(device)
            scores = self.model.full_sort_predict(seq).float().cpu()
            if not self.blend.sequence_only:
                from local_models.recommender.blend import blend

                items = self.item_item.score(hist, self.blend.decay) if self.blend.item_item else None
                scores = blend(scores, items, self.blend, self._popularity_scores() if self.blend.popularity else None)
            idx = top_k(scores, hist, k_model, exclude_seen)
            vals = torch.gather(scores, 1, torch.from_numpy(idx)).numpy()
            for r, i in enumerate(rows):
                out[i] = [(self.items.ids[j - 1], float(v)) for j, v in zip(idx[r], vals[r]) if np.isfinite(v)]
        return out


def _window_counts(inter: Any, items: ItemMap, window_days: int | None) -> np.ndarray:
    """``(V+1,)`` purchases of each item in the last ``window_days`` before the newest purchase (all time when None)."""
    ts = inter.timestamp
    keep = np.ones(len(ts), dtype=bool) if window_days is None or len(ts) == 0 else ts >= ts.max() - window_days * DAY_S
    idx = items.encode(inter.product_id[keep])
    counts = np.bincount(idx[idx > 0], minlength=len(items) + 1)
    counts[0] = 0
    return counts
