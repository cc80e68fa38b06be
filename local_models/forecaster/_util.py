"""Small helpers the forecaster needs until `local_models.common` lands.

These mirror the shared helpers a colleague is writing in `local_models/common.py` (`seed_everything`,
`pick_device`, `save_checkpoint`, `load_checkpoint`). They are kept here, with the same names and semantics, so
the forecaster works on its own branch; once `common.py` is merged these should be deleted and imported from there.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch so that a training run is repeatable on the same machine.

    Args:
        seed: The seed for every random number generator in play.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> str:
    """Chooses the device once, at the entry point: CUDA when present, else CPU.

    Args:
        prefer: An explicit device ("cpu", "cuda", "cuda:1") that overrides the automatic choice.

    Returns:
        The device name to pass to `torch.device`.
    """
    if prefer:
        return prefer
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Writes a checkpoint dict atomically: a temp file in the same folder, then `os.replace`.

    A crash mid-write therefore leaves the previous checkpoint intact instead of a truncated file.

    Args:
        obj: The checkpoint dict (tensors and plain Python containers only, so it loads with weights_only=True).
        path: Where the checkpoint should end up.

    Returns:
        The final path.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Leave no half-written temp file behind, whatever interrupted the write; then re-raise.
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads a checkpoint dict with `weights_only=True`, so a tampered file cannot run code.

    Args:
        path: The checkpoint file.

    Returns:
        The checkpoint dict, tensors on CPU.
    """
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)
