"""Interrupted training never leaves a half-written model in use: Ctrl-C, an error or kill -9 while saving."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from local_models.common import staged_dir, sweep_staging

ROOT = Path(__file__).resolve().parents[1]


def _model(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_text(version)
    (folder / "config.json").write_text(version)


def test_a_completed_save_replaces_the_model(tmp_path):
    final = tmp_path / "models" / "forecaster"
    _model(final, "v1")
    with staged_dir(final) as tmp:
        _model(tmp, "v2")
        assert (final / "weights.bin").read_text() == "v1"  # readers see the old model until the swap
    assert (final / "weights.bin").read_text() == "v2"
    assert sorted(p.name for p in final.parent.iterdir()) == ["forecaster"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_ctrl_c_or_an_error_while_saving_keeps_the_previous_model(tmp_path, exc):
    final = tmp_path / "models" / "forecaster"
    _model(final, "v1")
    with pytest.raises(exc), staged_dir(final) as tmp:
        (tmp / "weights.bin").write_text("half")
        raise exc()
    assert (final / "weights.bin").read_text() == "v1"
    assert sorted(p.name for p in final.parent.iterdir()) == ["forecaster"]  # no staging folder left


def test_kill_9_while_saving_leaves_only_what_the_sweep_removes(tmp_path):
    final = tmp_path / "models" / "recommender"
    _model(final, "v1")
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from local_models.common import staged_dir
        with staged_dir(Path({str(final)!r})) as tmp:
            (tmp / "weights.bin").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, check=False)
    assert run.returncode == -signal.SIGKILL
    left = [p.name for p in final.parent.iterdir() if p.name != "recommender"]
    assert len(left) == 1 and left[0].startswith(".recommender-")
    assert (final / "weights.bin").read_text() == "v1"  # the model in use was never touched
    assert sweep_staging(final.parent) == left
    assert sorted(p.name for p in final.parent.iterdir()) == ["recommender"]


def test_a_kill_between_the_two_renames_is_undone_by_the_sweep(tmp_path):
    models = tmp_path / "models"
    _model(models / "forecaster.old", "v1")  # the old model moved aside, the new one not yet in place
    sweep_staging(models)
    assert (models / "forecaster" / "weights.bin").read_text() == "v1"


def test_the_sweep_leaves_a_live_process_alone(tmp_path):
    import os

    live = tmp_path / f".reviews-{os.getpid()}-abc123"
    live.mkdir()
    assert sweep_staging(tmp_path) == [] and live.exists()


def test_training_sweeps_before_it_starts(small_shop):
    from tools.training import train

    dead = small_shop.models_dir / ".forecaster-999999999-zz9"
    dead.mkdir(parents=True)
    train(small_shop, "analytics")
    assert not dead.exists()
