"""Sales forecaster: one global PyTorch quantile model for products, categories and the whole shop.

Import `Forecaster` and `Config` from here; torch is only imported when a model is fitted or loaded.
"""

from local_models.forecaster.api import Forecaster, ForecastResult
from local_models.forecaster.config import Config

__all__ = ["Config", "ForecastResult", "Forecaster"]
