"""Helpers shared by every local model: seeding, device choice, checkpoints, id errors.

torch is imported inside the functions that need it, so a CLI that imports this module to show a
help text or an error does not pay the seconds torch takes to import.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class UnknownIdError(KeyError):
    """An id (customer, product) that the model never saw in its training data.

    Subclasses KeyError so ``except KeyError`` callers keep working, but prints its message plainly
    (KeyError would otherwise show it with quotes).
    """

    title = "Unknown id"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UnknownCustomerError(UnknownIdError):
    """A customer id with no orders in the model's training data."""

    title = "Unknown customer"


class UnknownProductError(UnknownIdError):
    """A product id that never appeared in the model's training data."""

    title = "Unknown product"


class CheckpointError(ValueError):
    """A checkpoint file that is missing keys or was written by an incompatible version."""

    title = "Unreadable checkpoint"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run can be repeated.

    Args:
        seed: The seed for every generator.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(prefer: str | None = None) -> "torch.device":  # noqa: F821 (torch imported lazily)
    """Choose the device once, at the entry point: the preferred one, else CUDA when present, else CPU.

    Args:
        prefer: "cpu", "cuda", "cuda:1", ... or None for automatic choice.

    Returns:
        The torch device to put the model and batches on.

    Raises:
        ValueError: ``prefer`` asks for CUDA on a machine without it.
    """
    import torch

    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"Device {prefer!r} was asked for, but CUDA is not available here: use 'cpu'.")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def save_checkpoint(
    path: str | os.PathLike,
    config: dict[str, Any],
    state_dict: dict[str, Any],
    id_maps: dict[str, Any],
    metrics: dict[str, Any],
) -> Path:
    """Write one checkpoint dict atomically.

    The dict is written to a temporary file in the same folder and then moved over ``path`` with
    ``os.replace``, so an interrupted save leaves either the old file or the new one, never half of one.

    Args:
        path: Where the checkpoint goes (folders are created).
        config: Plain dict (str/int/float/bool/list/dict) from which the model can be rebuilt.
        state_dict: The model's ``state_dict()``; tensors are moved to CPU so the file loads anywhere.
        id_maps: Plain JSON-able lists/dicts that map model indices back to shop ids.
        metrics: Validation/test figures measured for this model.

    Returns:
        The path written.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "id_maps": id_maps,
        "metrics": metrics,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return atomic_torch_save(payload, path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to a temporary file in the same folder, then ``os.replace`` over ``path``: an
    interrupted save leaves the old file or the new one, never half of one (nor the temporary file)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temporary file behind.
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Uses ``weights_only=True``: the file can hold only tensors and plain containers, so loading a
    checkpoint cannot run code. Rebuild the model from ``config`` and call
    ``load_state_dict(ckpt["state_dict"], strict=True)``.

    Args:
        path: The checkpoint file.
        map_location: Passed to ``torch.load`` (default: CPU).

    Returns:
        The checkpoint dict.

    Raises:
        FileNotFoundError: No file at ``path``.
        CheckpointError: The file lacks the expected keys or has another format version.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}: train the model first.")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    expected = {"format_version", "config", "state_dict", "id_maps", "metrics", "trained_at"}
    if not isinstance(ckpt, dict) or not expected <= ckpt.keys():
        raise CheckpointError(f"{path} is not a Shopkeeper checkpoint (expected keys {sorted(expected)}).")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {ckpt['format_version']}, this version reads {FORMAT_VERSION}: retrain."
        )
    return ckpt


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """A fresh folder beside ``final`` to write a model into: swapped in (:func:`swap_dir`) when the block ends
    without error, removed when it raises (Ctrl-C included), so readers only ever see a complete ``final``.

    A process killed while writing leaves ``.<name>-<pid>-<random>``, which :func:`sweep_staging` removes.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
        swap_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_STAGING = re.compile(r"\.(?P<name>.+)-(?P<pid>\d+)-[a-z0-9_]+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_staging(parent: Path) -> list[str]:
    """Clean up after processes killed while saving into ``parent``: remove their staging folders and put back a
    model that a kill caught between the two renames of :func:`swap_dir`. Returns the names removed."""
    removed: list[str] = []
    if not parent.is_dir():
        return removed
    for path in parent.iterdir():
        m = _STAGING.fullmatch(path.name)
        if m and path.is_dir() and not _alive(int(m.group("pid"))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    for old in parent.glob("*.old"):
        final = old.with_name(old.name[:-len(".old")])
        if old.is_dir() and not final.exists():
            os.replace(old, final)
    return removed


def swap_dir(tmp: Path, final: Path) -> None:
    """Put folder ``tmp`` at ``final`` by renames, removing the previous one only once the new one is in."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
