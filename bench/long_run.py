"""The long run: one recipe on MNIST with 100 labels, its test error after every epoch.

    taskset -c 0 .venv/bin/python bench/long_run.py --preset mnist-long --threads 1 \
        --checkpoint-dir runs/long0 --out docs/long_run_mnist_long_seed0.jsonl
    .venv/bin/python bench/plot_long_run.py docs/long_run_mnist_long_seed0.jsonl --png docs/long_run.png

The preset's epochs are trained, or with `--minutes` as many as a short pilot says fit in that much
of this process's CPU time (with one torch thread pinned to one core, that is its wall time). One
JSON line is written per epoch as it ends, so an interrupted run keeps its curve: `train_seconds`
counts training only, not the test evaluation after each epoch (S = `eval_samples` draws of a on all
10,000 test images). With `--checkpoint-dir` the training state is saved after every epoch and a
second call with the same arguments resumes where the first stopped, appending to `--out`.
The last line holds the judged fidelity of the final model's samples (bench/judge.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from adgm_core.data import load_builtin, semi_supervised_split
from adgm_core.evaluation import error_rate
from adgm_core.predictor import Predictor
from adgm_core.presets import PRESETS, configs_for, resolve
from adgm_core.trainer import EpochReport, Trainer
from judge import fidelity, load_judge
from recipe import epochs_for_budget, parse_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="mnist-cpu")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seed", type=int, default=0, help="the label draw")
    parser.add_argument("--minutes", type=float, default=None,
                        help="CPU minutes of training (default: the preset's epochs)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="save every epoch; resume from it")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per epoch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    params = resolve(args.preset, **overrides, seed=args.seed)
    train_set, test_set = load_builtin("mnist", mnist_dir=args.mnist_dir)
    split = semi_supervised_split(train_set, params["labels_per_class"], params["seed"])
    previous = _rows_before_resume(args.out, args.checkpoint_dir)
    if previous:
        params["epochs"] = previous[0]["params"]["epochs"]
    elif args.minutes is not None:
        params["epochs"] = epochs_for_budget(params, split, train_set, args.minutes * 60)
    model_config, train_config = configs_for(train_set, params, device="cpu", checkpoint_every=1)
    trainer = Trainer(model_config, train_config, split)
    if args.checkpoint_dir is not None and trainer.restore(args.checkpoint_dir):
        previous = [row for row in previous if row.get("epoch", 0) <= trainer.epoch]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = args.out.open("w")

    def write(row: dict) -> None:
        out.write(json.dumps(row) + "\n")
        out.flush()

    clock = {"train": 0.0, "cpu": 0.0, "since": time.perf_counter(), "cpu_since": time.process_time()}
    for row in previous:
        write(row)
        clock["train"], clock["cpu"] = row.get("train_seconds", 0.0), row.get("train_cpu_seconds", 0.0)
    if not previous:
        write({"preset": args.preset, "overrides": overrides, "params": params, "threads": args.threads,
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    else:
        write({"resumed": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "after_epoch": trainer.epoch})
    clock["since"], clock["cpu_since"] = time.perf_counter(), time.process_time()

    def on_epoch(report: EpochReport) -> None:
        clock["train"] += time.perf_counter() - clock["since"]
        clock["cpu"] += time.process_time() - clock["cpu_since"]
        trainer.model.eval()
        error = error_rate(trainer.served_model, test_set.images, test_set.labels, train_config.eval_samples,
                           seed=report.epoch)
        trainer.model.train()
        write({"epoch": report.epoch, "epochs": report.epochs, "train_seconds": round(clock["train"], 1),
               "train_cpu_seconds": round(clock["cpu"], 1), "test_error": round(error, 5),
               "elbo": round(report.elbo, 3), "learning_rate": report.learning_rate,
               "load_average": round(os.getloadavg()[0], 2)})
        clock["since"], clock["cpu_since"] = time.perf_counter(), time.process_time()

    result = trainer.fit(on_epoch=on_epoch, checkpoint_dir=args.checkpoint_dir)
    judge = load_judge(train_set)
    judged = fidelity(Predictor(result.model, result.card), judge)
    write({"final": True, "test_error": round(error_rate(result.model, test_set.images, test_set.labels,
                                                         train_config.eval_samples), 5),
           "fidelity": round(judged["mean"], 4), "fidelity_min": judged["min"],
           "fidelity_per_label": judged["per_label"],
           "self_consistency": round(result.card["metrics"]["self_consistency"], 4)})


def _rows_before_resume(out: Path, checkpoint_dir: Path | None) -> list[dict]:
    """The rows an interrupted run wrote, when it is to be resumed (a checkpoint directory is given)."""
    if checkpoint_dir is None or not out.exists() or not (checkpoint_dir).exists():
        return []
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return rows if rows and "params" in rows[0] else []


if __name__ == "__main__":
    main()
