"""Recommender benchmark: our recommender against popularity, ItemKNN, EASE and ALS.

"Ours" is what the shop's ``recommend_products`` tool serves (``local_models/recommender/api.py``): a
SASRec-style sequence model blended with a sparse EASE item-item model and recent popularity
(``blend.py``); the blend (weights, history decay) and the EASE ridge are chosen on validation, the
sequence model alone included. The popularity part counts purchases in the same window as the
popular baseline (time split: the 4 weeks before the cut-off; leave-one-out: all training purchases).
Its training time includes the item-item fits and the blend choice.

One command, one run, one table::

    python benchmarks/recommender.py [--datasets beauty sports online_retail] [--data-file PATH ...]

* Amazon Beauty / Sports (and any ``--data-file`` in the same "user item1 item2 ..." format):
  leave-one-out (last item test, second-to-last validation), FULL ranking over all items, items
  already in the history removed, HR@10 and NDCG@10. Ours is the mean over ``--seeds`` seeds.
* Online Retail demo shop: time split, the last 4 weeks held out for test and the 4 weeks before
  them for validation; every method is fitted on purchases before the validation period. Metrics
  over customers active in the test period who bought before it, against the products they bought
  in the test period that were new to them: Recall@10 and NDCG@10.

Baseline hyper-parameters are chosen on the validation split from small grids; ours selects its
epoch on validation NDCG@10. Test figures are computed once per chosen model.

Writes ``benchmarks/results/recommender.md`` (for people) and ``benchmarks/results/recommender.json``
(dataset -> method -> metric).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local_models.recommender.data import (  # noqa: E402
    EvalSplit,
    Interactions,
    ItemMap,
    build_sequences,
    leave_one_out,
    read_sequence_file,
    time_split,
)

AMAZON_DIR = Path(os.environ.get("SHOPKEEPER_SEQREC_DIR", "/work/shared/data/amazon-seqrec"))
KNOWN = {
    "beauty": AMAZON_DIR / "Beauty.txt",
    "sports": AMAZON_DIR / "Sports_and_Outdoors.txt",
    "online_retail": REPO / "data/demo/online_retail.parquet",
}
DAY_S = 86_400
K = 10


def load_online_retail_interactions(path: str | Path) -> Interactions:
    """Completed purchases from the published Online Retail order lines.

    Keeps lines with a customer id and a positive quantity that are not cancellations (invoice numbers
    starting with 'C'). This is the one place that knows the file's columns; the shop will read the
    same three fields from its ``orders`` table (``status = 'ok'``).

    Args:
        path: The parquet file (all columns strings as published).

    Returns:
        ``customer_id``, ``product_id`` (StockCode) and ``timestamp`` (epoch seconds) arrays.
    """
    import duckdb

    rows = duckdb.sql(
        f"""
        SELECT CustomerID AS customer_id, StockCode AS product_id,
               epoch(strptime(InvoiceDate, '%Y-%m-%d %H:%M:%S'))::BIGINT AS ts
        FROM read_parquet('{Path(path).as_posix()}')
        WHERE CustomerID IS NOT NULL AND NOT starts_with(InvoiceNo, 'C')
              AND TRY_CAST(Quantity AS INTEGER) > 0
        """
    ).fetchnumpy()
    return Interactions(
        np.asarray(rows["customer_id"]).astype(str),
        np.asarray(rows["product_id"]).astype(str),
        np.asarray(rows["ts"], dtype=np.int64),
    )


class Task:
    """A dataset prepared for every method: training sequences, validation and test splits."""

    def __init__(self, name: str, protocol: str, n_items: int, train_seqs, valid: EvalSplit, test: EvalSplit,
                 counts: np.ndarray, pop_valid: np.ndarray, pop_test: np.ndarray, stats: dict) -> None:
        self.name, self.protocol, self.n_items = name, protocol, n_items
        self.train_seqs, self.valid, self.test = train_seqs, valid, test
        self.counts, self.pop_valid, self.pop_test, self.stats = counts, pop_valid, pop_test, stats


def loo_task(name: str, inter: Interactions) -> Task:
    items = ItemMap.fit(inter.product_id)
    _, seqs = build_sequences(inter, items)
    train_seqs, valid, test = leave_one_out(seqs)
    counts = np.bincount(np.concatenate(train_seqs), minlength=len(items) + 1)
    stats = {"users": len(seqs), "items": len(items), "interactions": int(sum(len(s) for s in seqs)),
             "eval_users": len(test.histories)}
    # The validation-period popularity differs from the test one only by the validation items.
    test_counts = counts + np.bincount(np.concatenate(valid.targets), minlength=len(items) + 1)
    return Task(name, "leave-one-out", len(items), train_seqs, valid, test, counts, counts, test_counts, stats)


def time_task(name: str, inter: Interactions, weeks: int = 4) -> Task:
    end = int(inter.timestamp.max()) + 1
    test_cut = end - weeks * 7 * DAY_S
    valid_cut = test_cut - weeks * 7 * DAY_S
    items = ItemMap.fit(inter.product_id[inter.timestamp < test_cut])
    _, train_seqs, valid = time_split(inter, valid_cut, items, end=test_cut)
    _, _, test = time_split(inter, test_cut, items)
    counts = np.bincount(np.concatenate(train_seqs), minlength=len(items) + 1)

    def window_counts(lo: int, hi: int) -> np.ndarray:
        idx = items.encode(inter.product_id[(inter.timestamp >= lo) & (inter.timestamp < hi)])
        return np.bincount(idx[idx > 0], minlength=len(items) + 1)

    stats = {"users": len(train_seqs), "items": len(items), "interactions": int(sum(len(s) for s in train_seqs)),
             "eval_users": len(test.histories), "valid_users": len(valid.histories),
             "valid_from": _date(valid_cut), "test_from": _date(test_cut), "test_to": _date(end)}
    return Task(name, f"time split, last {weeks} weeks test", len(items), train_seqs, valid, test, counts,
                window_counts(valid_cut - weeks * 7 * DAY_S, valid_cut), window_counts(valid_cut, test_cut), stats)


def _date(ts: int) -> str:
    return str(np.datetime64(int(ts), "s").astype("datetime64[D]"))


def run_baseline(task: Task, name: str, grid: list[dict], build: Callable[[dict], Any], log) -> dict:
    """Fit each grid point, pick the best validation NDCG@10, report its test figures."""
    from local_models.recommender.evaluate import evaluate

    best = None
    for params in grid:
        t0 = time.perf_counter()
        model = build(params)
        fit_s = time.perf_counter() - t0
        v = evaluate(model.score, task.valid, task.counts, k=K, batch_size=1024)
        log(f"  {name} {params}: valid ndcg@10 {v['ndcg@10']:.4f} (fit {fit_s:.1f}s)")
        if best is None or v["ndcg@10"] > best[1]["ndcg@10"]:
            best = (params, v, model, fit_s)
    params, v, model, fit_s = best
    t = evaluate(model.score, task.test, task.counts, k=K, batch_size=1024)
    return _row(t, train_s=fit_s, params=params, valid_ndcg=v["ndcg@10"])


def _row(metrics: dict, **extra) -> dict:
    row = {k: metrics[k] for k in ("ndcg@10", "hr@10", "recall@10", "coverage@10", "pop_percentile", "users_per_s")}
    row.update(extra)
    return row


def run_popular(task: Task, window_note: str) -> dict:
    from local_models.recommender.baselines import Popular
    from local_models.recommender.evaluate import evaluate

    t0 = time.perf_counter()
    valid_model, test_model = Popular(task.pop_valid), Popular(task.pop_test)
    fit_s = time.perf_counter() - t0
    v = evaluate(valid_model.score, task.valid, task.counts, k=K)
    t = evaluate(test_model.score, task.test, task.counts, k=K)
    return _row(t, train_s=fit_s, params={"counts": window_note}, valid_ndcg=v["ndcg@10"])


def run_ours(task: Task, args, log) -> dict:
    import torch

    from local_models.recommender.baselines import EASE
    from local_models.recommender.blend import ItemItem, blend, fit_blend, popularity_scores
    from local_models.recommender.evaluate import evaluate
    from local_models.recommender.model import Config
    from local_models.recommender.train import TrainConfig, make_score_fn, train

    runs = []
    # The item-item half does not depend on the seed: fitted once per ridge, its time added to every seed's.
    t0 = time.perf_counter()
    fitted = ({l2: ItemItem.fit(task.train_seqs, task.n_items, l2, args.neighbours) for l2 in args.blend_l2}
              if task.n_items <= EASE.max_items else {})
    item_item_s = time.perf_counter() - t0
    log(f"  ours item-item (EASE l2 {list(fitted)}, {args.neighbours} neighbours): {item_item_s:.0f}s")
    for seed in range(args.seeds):
        model_config = Config(n_items=task.n_items, max_len=args.max_len, hidden=args.hidden, n_layers=args.layers,
                              n_heads=args.heads, dropout=args.dropout, attn_dropout=args.dropout,
                              loss=args.loss, n_negatives=args.n_negatives)
        train_config = TrainConfig(lr=args.lr, batch_size=args.batch_size, max_epochs=args.max_epochs,
                                   patience=args.patience, eval_every=args.eval_every, seed=seed,
                                   max_time_s=args.max_train_minutes * 60 if args.max_train_minutes else None,
                                   novel_targets=task.name in args.novel_targets)

        def progress(r: dict) -> None:
            if "valid_ndcg@10" in r:
                log(f"    seed {seed} epoch {r['epoch']}: loss {r['loss']:.4f} valid ndcg@10 "
                    f"{r['valid_ndcg@10']:.4f} ({r['elapsed_s']:.0f}s)")

        res = train(model_config, task.train_seqs, task.valid, task.counts, train_config, on_epoch=progress)
        seq_score = make_score_fn(res.model, torch.device("cpu"))
        t0 = time.perf_counter()
        # Popularity part: purchases in the window before each split's targets, as the popular baseline counts.
        item_item, mix, blend_valid = fit_blend(lambda h: seq_score(h, None), task.train_seqs, task.n_items,
                                                task.valid, task.counts, list(fitted), args.neighbours,
                                                fitted=fitted, popularity_counts=task.pop_valid)
        blend_s = time.perf_counter() - t0
        valid_ndcg = blend_valid.get("ndcg@10", res.best_valid["ndcg@10"])
        pop_test = popularity_scores(task.pop_test)

        def score(hist, customers, item_item=item_item, mix=mix):
            items = item_item.score(hist, mix.decay) if item_item is not None else None
            return blend(seq_score(hist, customers), items, mix, pop_test)

        t = evaluate(score, task.test, task.counts, k=K, batch_size=1024)
        log(f"  ours seed {seed}: best epoch {res.best_epoch}/{res.epochs_run}, valid ndcg@10 sequence model "
            f"{res.best_valid['ndcg@10']:.4f}, blend {valid_ndcg:.4f} ({mix}, l2 "
            f"{item_item.l2 if item_item else '-'}), test ndcg@10 {t['ndcg@10']:.4f}, train {res.train_s:.0f}s "
            f"+ blend choice {blend_s:.0f}s + item-item {item_item_s:.0f}s")
        res.train_s += blend_s + item_item_s  # every seed's time includes the item-item fits it relies on
        runs.append((t, res, mix, item_item.l2 if item_item else None, valid_ndcg))
    keys = ("ndcg@10", "hr@10", "recall@10", "coverage@10", "pop_percentile", "users_per_s")
    row = {k: float(np.mean([r[0][k] for r in runs])) for k in keys}
    row["ndcg@10_std"] = float(np.std([r[0]["ndcg@10"] for r in runs]))
    row["train_s"] = float(np.mean([r[1].train_s for r in runs]))
    row["seeds"] = args.seeds
    row["best_epochs"] = [r[1].best_epoch for r in runs]
    row["epochs_run"] = [r[1].epochs_run for r in runs]
    row["valid_ndcg"] = float(np.mean([r[4] for r in runs]))
    row["valid_ndcg_sequence_model"] = float(np.mean([r[1].best_valid["ndcg@10"] for r in runs]))
    row["blends"] = [r[2].to_dict() for r in runs]
    row["blend_l2"] = [r[3] for r in runs]
    row["params"] = {**model_config.to_dict(), **{k: v for k, v in train_config.to_dict().items()
                                                  if k in ("lr", "batch_size", "max_epochs", "patience", "max_time_s",
                                                           "novel_targets")},
                     "blend_l2_grid": list(args.blend_l2), "neighbours": args.neighbours}
    return row


def run_task(task: Task, args, log) -> dict:
    from local_models.recommender.baselines import ALS, EASE, ItemKNN

    log(f"{task.name}: {task.protocol}; {task.stats}")
    out: dict[str, dict] = {}
    methods = args.methods
    if "popular" in methods:
        note = "last 4 weeks before the cut-off" if task.protocol.startswith("time") else "all training purchases"
        out["popular"] = run_popular(task, note)
        log(f"  popular: test ndcg@10 {out['popular']['ndcg@10']:.4f}")
    if "itemknn" in methods:
        out["itemknn"] = run_baseline(task, "itemknn", [{"neighbours": n} for n in (50, 200)],
                                      lambda p: ItemKNN(task.n_items, **p).fit(task.train_seqs), log)
    if "ease" in methods:
        if task.n_items <= EASE.max_items:
            out["ease"] = run_baseline(task, "ease", [{"l2": l2} for l2 in args.ease_l2],
                                       lambda p: EASE(task.n_items, **p).fit(task.train_seqs), log)
        else:
            log(f"  ease skipped: {task.n_items} items > {EASE.max_items}")
    if "als" in methods:
        grid = [{"factors": 64, "regularization": 0.01, "alpha": 1.0},
                {"factors": 128, "regularization": 0.1, "alpha": 5.0},
                {"factors": 128, "regularization": 1.0, "alpha": 20.0}]
        out["als"] = run_baseline(task, "als", grid,
                                  lambda p: ALS(task.n_items, threads=args.threads, **p).fit(task.train_seqs), log)
    if "ours" in methods:
        out["ours"] = run_ours(task, args, log)
    return out


def machine_info(threads: int, jobs: int) -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "requested_threads": threads,
        "jobs": jobs,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "device": "cpu",
    }


def write_results(results: dict, meta: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # The JSON holds numbers only (dataset -> method -> metric); settings and run details go beside it.
    numeric = {ds: {m: {k: v for k, v in r.items() if isinstance(v, (int, float))} for m, r in methods.items()}
               for ds, methods in results.items()}
    (out_dir / "recommender.json").write_text(json.dumps(numeric, indent=2) + "\n")
    details = {ds: {m: {k: v for k, v in r.items() if not isinstance(v, (int, float))} for m, r in methods.items()}
               for ds, methods in results.items()}
    (out_dir / "recommender.meta.json").write_text(json.dumps({**meta, "settings": details}, indent=2) + "\n")
    lines = ["# Recommender benchmark", "", f"Command: `{meta['command']}`", "",
             f"Run {meta['started']} → {meta['finished']} ({meta['wall_s'] / 60:.1f} min); git {meta['git']}"
             + (" (PARTIAL: datasets still running when written)." if meta["partial"] else "."),
             f"Machine: {meta['machine']['cores']} CPU cores, torch {meta['machine']['torch']} on CPU, "
             f"torch threads {meta['machine']['torch_threads']} (interop {meta['machine']['torch_interop_threads']}), "
             f"OMP_NUM_THREADS={meta['machine']['omp_num_threads']}, OPENBLAS_NUM_THREADS="
             f"{meta['machine']['openblas_num_threads']}; implicit threads {meta['machine']['requested_threads']}; "
             f"{meta['machine']['jobs']} dataset(s) in parallel processes.",
             f"Load average (1/5/15 min) at start {meta['load_start']}, at end {meta['load_end']} "
             "(the machine is shared, so times are upper bounds).", "",
             "Full ranking over all items; items already bought are removed from every method's top 10. "
             "Ours = mean over seeds (± std of NDCG@10). `train s` = fitting time of the chosen configuration "
             "(ours: until early stop, validation included, plus the item-item fits and the blend choice); `users/s` = customers ranked per second "
             "(batches of 1,024, scoring + masking + top-10).", ""]
    for ds, methods in results.items():
        st = meta["datasets"][ds]
        lines += [f"## {ds}", "", f"{st['protocol']}; {st['stats']}", "",
                  "| method | NDCG@10 | HR@10 | Recall@10 | coverage@10 | pop. percentile | train s | users/s | chosen settings |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for m, r in methods.items():
            ndcg = f"{r['ndcg@10']:.4f}" + (f" ± {r['ndcg@10_std']:.4f}" if "ndcg@10_std" in r else "")
            settings = r.get("params", {})
            if m == "ours":
                settings = (f"{r['seeds']} seeds, best epochs {r['best_epochs']} of {r['epochs_run']}, "
                            f"loss {settings.get('loss')}, negatives {settings.get('n_negatives')}, dropout "
                            f"{settings.get('dropout')}, lr {settings.get('lr')}; blends "
                            f"{_blends_text(r.get('blends', []))}, EASE l2 {r.get('blend_l2')}")
            lines.append(f"| {m} | {ndcg} | {r['hr@10']:.4f} | {r['recall@10']:.4f} | {r['coverage@10']:.3f} | "
                         f"{r['pop_percentile']:.1f} | {r['train_s']:.1f} | {r['users_per_s']:,.0f} | {settings} |")
        base = {m: r["ndcg@10"] for m, r in methods.items() if m != "ours"}
        if "ours" in methods and base:
            best = max(base, key=base.get)
            ratio = methods["ours"]["ndcg@10"] / base[best] if base[best] > 0 else float("inf")
            lines += ["", f"Ours / best baseline ({best}) NDCG@10 = {ratio:.2f}×."]
        lines.append("")
    (out_dir / "recommender.md").write_text("\n".join(lines))


def _blends_text(blends: list[dict]) -> str:
    """Each seed's blend as "item-item w, decay d, popularity p"."""
    return "; ".join(f"item-item {b['item_item']}, decay {b['decay']}, popularity {b['popularity']}"
                     for b in blends) or "-"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="*", default=["beauty", "sports", "online_retail"], choices=sorted(KNOWN))
    p.add_argument("--data-file", nargs="*", default=[], help="more files in the 'user item1 item2 ...' format")
    p.add_argument("--methods", nargs="*", default=["popular", "itemknn", "ease", "als", "ours"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch and implicit threads per process")
    p.add_argument("--jobs", type=int, default=1, help="datasets run in parallel processes")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=5, help="validation evaluations without improvement")
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--max-train-minutes", type=float, default=None, help="per seed; best model so far is kept")
    p.add_argument("--dataset-seeds", nargs="*", default=[], metavar="NAME=N", help="per-dataset --seeds")
    p.add_argument("--dataset-minutes", nargs="*", default=[], metavar="NAME=M",
                   help="per-dataset --max-train-minutes")
    p.add_argument("--ease-l2", type=float, nargs="+", default=[100.0, 500.0], help="EASE ridge grid")
    p.add_argument("--blend-l2", type=float, nargs="*", default=[100.0, 500.0],
                   help="EASE ridges for the item-item half of ours (none: the sequence model alone)")
    p.add_argument("--neighbours", type=int, default=200, help="item-item weights kept per item in ours")
    p.add_argument("--novel-targets", nargs="*", default=["online_retail"], metavar="NAME",
                   help="datasets on which ours learns only from purchases of products new to the customer")
    p.add_argument("--loss", default="mixed", choices=["ce", "sampled", "mixed"])
    p.add_argument("--n-negatives", type=int, default=1024)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks/results")
    return p.parse_args(argv)


def _die_with_parent() -> None:
    """Make a worker exit when the benchmark process is killed.

    Without this, killing the parent leaves spawned workers training on, unseen, on a shared machine.
    Linux only (prctl PR_SET_PDEATHSIG); elsewhere workers still end when their task does.
    """
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _run_source(name: str, path: str, args: argparse.Namespace, t0: float) -> tuple[dict, dict]:
    """Prepare one dataset and run every method on it (also the body of a worker process)."""
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.0f}s load {os.getloadavg()[0]:.2f} {name}] {msg}", flush=True)

    # Per-dataset overrides, so a large dataset can get fewer seeds or more minutes in the same run.
    args = argparse.Namespace(**vars(args))
    args.seeds = int(dict(x.split("=") for x in args.dataset_seeds).get(name, args.seeds))
    minutes = dict(x.split("=") for x in args.dataset_minutes).get(name)
    args.max_train_minutes = float(minutes) if minutes else args.max_train_minutes
    if name == "online_retail":
        task = time_task(name, load_online_retail_interactions(path))
    else:
        task = loo_task(name, read_sequence_file(path))
    result = run_task(task, args, log)
    return result, {"protocol": task.protocol, "stats": task.stats, "source": _repo_relative(path),
                    "wall_s": time.perf_counter() - start}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    git = _git_commit()  # read now: commits made while the run goes on are not what ran

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.0f}s load {os.getloadavg()[0]:.2f}] {msg}", flush=True)

    def finish(partial: bool) -> None:
        """Write the tables for the datasets done so far, so an interrupted run still leaves figures."""
        order = [name for name, _ in sources if name in results]
        meta = {"command": command, "started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                "wall_s": time.perf_counter() - t0, "git": git, "load_start": load_start,
                "load_end": [round(x, 2) for x in os.getloadavg()], "machine": machine_info(args.threads, args.jobs),
                "datasets": {n: datasets[n] for n in order}, "partial": partial,
                "args": {k: _repo_relative(v) if isinstance(v, Path) else str(v) for k, v in vars(args).items()}}
        write_results({n: results[n] for n in order}, meta, args.out_dir)

    command = "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]) if argv is None else repr(argv)
    sources = [(name, KNOWN[name]) for name in args.datasets]
    sources += [(Path(f).stem.lower(), Path(f)) for f in args.data_file]
    results, datasets = {}, {}
    if args.jobs > 1 and len(sources) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # One process per dataset, each with --threads threads: on a shared machine several
        # single-threaded processes use the cores better than one process with many threads.
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn"),
                                 initializer=_die_with_parent) as pool:
            futures = {pool.submit(_run_source, name, str(path), args, t0): name for name, path in sources}
            for fut in as_completed(futures):
                results[futures[fut]], datasets[futures[fut]] = fut.result()
                finish(partial=True)
    else:
        for name, path in sources:
            results[name], datasets[name] = _run_source(name, str(path), args, t0)
            finish(partial=True)
    finish(partial=False)
    log(f"wrote {args.out_dir / 'recommender.md'}")
    return 0


def _repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository (``../shared/...`` for the shared data), so results name no machine."""
    return os.path.relpath(Path(path).resolve(), REPO)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
