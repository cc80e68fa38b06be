"""The forecaster's checkpoint and device helpers, on top of `local_models.common`.

The forecaster predates the shared checkpoint dict of `local_models/common.py`: its own dict (with its own
format version) and a device given as a string are kept so existing shop models still load. Seeding and the atomic
write are the shared ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from local_models.common import atomic_torch_save, seed_everything

__all__ = ["load_checkpoint", "pick_device", "save_checkpoint", "seed_everything"]


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
    return atomic_torch_save(obj, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads a checkpoint dict with `weights_only=True`, so a tampered file cannot run code.

    Args:
        path: The checkpoint file.

    Returns:
        The checkpoint dict, tensors on CPU.
    """
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)
