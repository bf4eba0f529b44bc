"""Train a preset (with overrides) for several label draws and report what a user sees: test
accuracy, judged fidelity of the samples (bench/judge.py), self-consistency and training time.

    .venv/bin/python bench/recipe.py --preset quick --seeds 0 1 2
    .venv/bin/python bench/recipe.py --preset mnist-cpu --seeds 0 1 2 --out out/mnist-cpu.json
    .venv/bin/python bench/recipe.py --preset quick --set batch_norm=false --set epochs=20 --curve

`--set name=value` overrides one training parameter (value parsed as JSON, else taken as text).
`--time-budget S` sets the epochs so that training takes about S seconds of CPU time (process time,
so other work on the machine does not shrink it), from the step time of a short pilot run. Training
time excludes evaluation: the test set is scored once, after training. `train_seconds` is wall time
and `train_cpu_seconds` CPU time of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from adgm_core.cpu import cpu_info
from adgm_core.data import load_builtin, semi_supervised_split
from adgm_core.data.sets import SemiSupervisedSplit
from adgm_core.evaluation import error_rate
from adgm_core.predictor import Predictor
from adgm_core.presets import DEFAULT_PRESET, PRESETS, configs_for, resolve
from adgm_core.trainer import Trainer
from judge import fidelity, load_judge


def epochs_for_budget(params: dict, split: SemiSupervisedSplit, train_set, budget: float, pilot_steps: int = 8) -> int:
    """Epochs of `params` that fit in `budget` seconds of this process's CPU time, timed on `pilot_steps`
    steps (after 2 warm-up steps). CPU time, not wall time, so that other work on a shared machine
    does not shrink the budget; with one torch thread it is the wall time of an idle core."""
    batch = params["batch_size"]
    pilot = SemiSupervisedSplit(split.labelled_images, split.labelled_labels,
                                split.unlabelled_images[: (pilot_steps + 2) * batch], split.n_classes, split.name)
    model_config, train_config = configs_for(train_set, {**params, "epochs": 1}, device="cpu")
    trainer = Trainer(model_config, train_config, pilot)
    times = []
    trainer.fit(should_stop=lambda: bool(times.append(time.process_time())))  # polled before each step
    seconds_per_step = (times[-1] - times[2]) / (len(times) - 3)
    steps_per_epoch = max(1, len(split.unlabelled_images) // batch)
    return max(1, round(budget / (seconds_per_step * steps_per_epoch)))


def run(params: dict, train_set, test_set, judge, device: str = "cpu", time_budget: float | None = None,
        curve: bool = False) -> dict:
    split = semi_supervised_split(train_set, params["labels_per_class"], params["seed"])
    if time_budget is not None:
        params = {**params, "epochs": epochs_for_budget(params, split, train_set, time_budget)}
    model_config, train_config = configs_for(train_set, params, device=device)
    trainer = Trainer(model_config, train_config, split, test_set if curve else None)
    started, started_cpu = time.perf_counter(), time.process_time()
    result = trainer.fit()  # includes the card: novelty calibration and self-consistency (about a second)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    predictor = Predictor(result.model, result.card)
    error = error_rate(result.model, test_set.images, test_set.labels, train_config.eval_samples)
    judged = fidelity(predictor, judge)
    return {"seed": params["seed"], "epochs": params["epochs"], "train_seconds": round(seconds, 1),
            "train_cpu_seconds": round(cpu_seconds, 1),
            "test_accuracy": round(1 - error, 4), "fidelity": round(judged["mean"], 4),
            "fidelity_min": judged["min"], "fidelity_per_label": judged["per_label"],
            "self_consistency": round(result.card["metrics"]["self_consistency"], 4),
            **({"curve": [round(r.test_accuracy, 4) for r in result.reports]} if curve else {})}


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET)
    parser.add_argument("--data", default=None, help="digits5k or mnist (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-budget", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--curve", action="store_true",
                        help="test accuracy after every epoch (its evaluation then counts in the training time)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = dict(item.split("=", 1) for item in args.set)
    params = resolve(args.preset, **{k: parse_value(v) for k, v in overrides.items()})
    data = args.data or PRESETS[args.preset].dataset
    train_set, test_set = load_builtin(data, mnist_dir=args.mnist_dir)
    judge = load_judge(load_builtin("mnist", mnist_dir=args.mnist_dir)[0])
    runs = []
    for seed in args.seeds:
        runs.append(run({**params, "seed": seed}, train_set, test_set, judge, args.device, args.time_budget,
                        args.curve))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "fidelity_per_label"}), flush=True)
    mean = lambda key: round(statistics.mean(r[key] for r in runs), 4)  # noqa: E731
    summary = {"preset": args.preset, "data": data, "overrides": overrides, "threads": torch.get_num_threads(),
               "cpu": cpu_info().as_dict(),
               "load_average": os.getloadavg(), "test_accuracy": mean("test_accuracy"), "fidelity": mean("fidelity"),
               "fidelity_min": min(r["fidelity_min"] for r in runs), "train_seconds": mean("train_seconds"),
               "self_consistency": mean("self_consistency")}
    print(json.dumps(summary), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**summary, "params": params, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
