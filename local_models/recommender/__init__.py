"""Product recommender: a SASRec-style sequence model, baselines, and co-purchase counts.

The public entry points are :class:`Recommender` and :class:`CoPurchase`; importing this package
does not import torch.
"""

from local_models.recommender.api import Recommender, RecommenderConfig
from local_models.recommender.cooccur import CoPurchase, CoPurchaseItem

__all__ = ["CoPurchase", "CoPurchaseItem", "Recommender", "RecommenderConfig"]
