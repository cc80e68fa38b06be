"""Training loop for :class:`~local_models.recommender.model.SASRec`.

Model selection uses the validation split only: after every ``eval_every`` epochs the model is
ranked on validation (NDCG@k, full ranking), the best weights are kept, and training stops after
``patience`` evaluations without improvement. The test split is never seen here.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from local_models.common import pick_device, seed_everything
from local_models.recommender.data import EvalSplit, pad_batch, training_windows
from local_models.recommender.evaluate import evaluate
from local_models.recommender.model import SASRec, Config

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes:
        lr: Adam learning rate.
        weight_decay: AdamW weight decay (0 = plain Adam behaviour).
        batch_size: Training windows per step.
        max_epochs: Upper bound on passes over the training windows.
        patience: Evaluations without a better validation NDCG before stopping.
        eval_every: Epochs between validation evaluations.
        eval_k: Cut-off of the validation NDCG used for selection.
        seed: Seed for initialisation, shuffling and dropout.
        max_time_s: Optional wall-clock budget for training; the best model so far is kept.
        device: "cpu", "cuda", ... or None for CUDA when present, else CPU.
        eval_batch_size: Customers per scoring call during validation.
        novel_targets: Learn only from purchases of products new to the customer (see
            :func:`~local_models.recommender.data.training_windows`).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    eval_k: int = 10
    seed: int = 0
    max_time_s: float | None = None
    device: str | None = None
    eval_batch_size: int = 1024
    novel_targets: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The model with the best validation weights, in eval mode, on the training device.
        best_epoch: Epoch (1-based) of those weights; 0 if there was no validation split.
        best_valid: Validation metrics of those weights.
        epochs_run: Epochs actually trained.
        train_s: Wall-clock training seconds, validation included.
        history: One dict per evaluation (epoch, loss, validation metrics).
    """

    model: SASRec
    best_epoch: int
    best_valid: dict
    epochs_run: int
    train_s: float
    history: list = field(default_factory=list)


def make_score_fn(model: SASRec, device: torch.device) -> Callable:
    """A ``score_fn`` for :func:`~local_models.recommender.evaluate.evaluate` backed by the model."""

    def score(histories: Sequence[np.ndarray], _customers: np.ndarray) -> torch.Tensor:
        seq = torch.from_numpy(pad_batch(histories, model.config.max_len)).to(device)
        return model.full_sort_predict(seq).float().cpu()

    return score


def _length_bucketed_batches(widths: torch.Tensor, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of windows with similar lengths.

    Most customers have short histories, so random batches would be padded to the longest window
    and the transformer would mostly process padding. Windows are shuffled, sorted by length within
    pools of 50 batches, cut into batches, and the batch order is shuffled again.
    """
    perm = torch.randperm(len(widths), generator=gen)
    pool = 50 * batch_size
    batches = []
    for lo in range(0, len(perm), pool):
        chunk = perm[lo : lo + pool]
        chunk = chunk[torch.argsort(widths[chunk], stable=True)]
        batches.extend(chunk.split(batch_size))
    order = torch.randperm(len(batches), generator=gen)
    return [batches[i] for i in order]


def train(
    model_config: Config,
    train_seqs: Sequence[np.ndarray],
    valid: EvalSplit | None,
    item_counts: np.ndarray,
    config: TrainConfig,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a fresh model on next-item prediction.

    Args:
        model_config: Architecture.
        train_seqs: Chronological item sequences to learn from.
        valid: Validation split for selection and early stopping; None trains ``max_epochs``.
        item_counts: ``(V+1,)`` training purchase counts (for the validation report).
        config: Optimisation settings.
        on_epoch: Called with each evaluation's record (for progress display).

    Returns:
        The trained model and its training record.
    """
    seed_everything(config.seed)
    device = pick_device(config.device)
    model = SASRec(model_config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    inputs_np, targets_np = training_windows(train_seqs, model_config.max_len, config.novel_targets)
    useful = targets_np.any(axis=1)  # with novel_targets, windows of re-purchases only teach nothing
    inputs_np, targets_np = inputs_np[useful], targets_np[useful]
    if len(inputs_np) == 0:
        raise ValueError("No customer has two or more purchases: nothing to learn a sequence model from.")
    inputs = torch.from_numpy(inputs_np)
    targets = torch.from_numpy(targets_np)
    # Width actually used per window, so each batch can drop columns that are padding in every row.
    widths = torch.from_numpy((inputs_np > 0).sum(1))
    gen = torch.Generator().manual_seed(config.seed)
    target_counts = torch.bincount(targets.flatten(), minlength=model_config.n_items + 1).double()
    target_counts[0] = 0
    item_freq = (target_counts / target_counts.sum()).float().to(device)

    best_metric, best_epoch, best_state, best_valid = -1.0, 0, None, {}
    bad_evals, history = 0, []
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        total, n_batches = 0.0, 0
        for idx in _length_bucketed_batches(widths, config.batch_size, gen):
            width = int(widths[idx].max())
            x = inputs[idx, -width:].to(device)  # (B, T)
            y = targets[idx, -width:].to(device)  # (B, T)
            loss = model.calculate_loss(x, y, item_freq)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            n_batches += 1
        record = {"epoch": epoch, "loss": total / max(n_batches, 1), "elapsed_s": time.perf_counter() - start}
        out_of_time = config.max_time_s is not None and record["elapsed_s"] > config.max_time_s
        if valid is not None and len(valid.histories) and (epoch % config.eval_every == 0 or out_of_time):
            model.eval()
            metrics = evaluate(
                make_score_fn(model, device), valid, item_counts, k=config.eval_k, batch_size=config.eval_batch_size
            )
            record.update({f"valid_{k}": v for k, v in metrics.items() if k != "users_per_s"})
            score = metrics[f"ndcg@{config.eval_k}"]
            if score > best_metric:
                best_metric, best_epoch, best_valid, bad_evals = score, epoch, metrics, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_evals += 1
        history.append(record)
        log.info("epoch %s", record)
        if on_epoch is not None:
            on_epoch(record)
        if bad_evals >= config.patience or out_of_time:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_epoch, best_valid, epoch, time.perf_counter() - start, history)
