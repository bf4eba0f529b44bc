"""The first labels of a data set with none: the service's choice against random ones.

For each seed, three sets of `--labels` digits5k training images get their true labels:
`chosen` (adgm_core.first_labels, what GET /datasets/{id}/suggestions answers for a data set
without a label of every class), `uniform` (drawn uniformly at random, so some classes may have
none) and `per_class` (one random image of each class; needs the labels it is meant to find, so
it is the reference, not a strategy). Each set trains a cold model of the `quick` preset through
the worker's own path (`resolve` + `configs_for` + `Trainer`, all 4,000 images unlabelled), scored
on the 1,000 test images with the preset's draws of a; the supervised baseline that every model's
card carries (adgm_core.baseline) is fitted on the same labels. The service itself trains only
once every class has a label; here the model trains on whatever classes the set covers.

    taskset -c 1 .venv/bin/python bench/first_labels.py --seeds 0 1 2 --out out/first_labels.json
    taskset -c 1 .venv/bin/python bench/first_labels.py --tiny --out /tmp/first_labels.json   # seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from adgm_core.baseline import supervised_baseline
from adgm_core.data import ImageSet, SemiSupervisedSplit, load_builtin
from adgm_core.evaluation import error_rate
from adgm_core.first_labels import representatives
from adgm_core.presets import configs_for, resolve
from adgm_core.trainer import Trainer

METHODS = ("chosen", "uniform", "per_class")
TINY = dict(images=300, test_images=100, epochs=1, hidden=[32], eval_samples=1)


def pick(method: str, train: ImageSet, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, METHODS.index(method)])
    if method == "chosen":
        return representatives(train.images, n, seed=seed).indices
    if method == "uniform":
        return rng.choice(len(train), size=n, replace=False)
    return np.array([rng.choice(np.flatnonzero(train.labels == k)) for k in range(train.n_classes)])


def run(method: str, train: ImageSet, test: ImageSet, n: int, seed: int, overrides: dict) -> dict:
    chosen = np.sort(pick(method, train, n, seed))
    split = SemiSupervisedSplit(train.images[chosen], train.labels[chosen], train.images, train.n_classes, train.name)
    params = resolve("quick", seed=seed, **overrides)
    model_config, train_config = configs_for(train, params, device="cpu")
    started = time.process_time()
    result = Trainer(model_config, train_config, split).fit()
    cpu_seconds = time.process_time() - started
    error = error_rate(result.model, test.images, test.labels, train_config.eval_samples)
    baseline = supervised_baseline(split, test)
    return {"method": method, "seed": seed, "indices": chosen.tolist(),
            "classes_covered": len(set(train.labels[chosen].tolist())),
            "test_accuracy": round(1 - error, 4), "baseline_test_accuracy": round(baseline.test_accuracy, 4),
            "train_cpu_seconds": round(cpu_seconds, 1), "epochs": params["epochs"]}


def table(rows: list[dict]) -> str:
    lines = ["| first labels | classes covered (mean) | ADGM `quick` test accuracy, mean (per seed) "
             "| logistic regression on the same labels |", "|---|---:|---|---:|"]
    for method in METHODS:
        mine = [row for row in rows if row["method"] == method]
        if not mine:
            continue
        accuracy = statistics.mean(row["test_accuracy"] for row in mine)
        per_seed = ", ".join(f"{100 * row['test_accuracy']:.1f}" for row in mine)
        lines.append(f"| {method} | {statistics.mean(row['classes_covered'] for row in mine):.1f} "
                     f"| **{100 * accuracy:.1f} %** ({per_seed}) "
                     f"| {100 * statistics.mean(row['baseline_test_accuracy'] for row in mine):.1f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tiny", action="store_true",
                        help=f"a smoke run: {TINY['images']} training images, 1 epoch of a [32] model")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = load_builtin("digits5k")
    overrides = {}
    if args.tiny:
        train = ImageSet(train.images[:TINY["images"]], train.labels[:TINY["images"]], train.n_classes, train.name)
        test = ImageSet(test.images[:TINY["test_images"]], test.labels[:TINY["test_images"]], test.n_classes, test.name)
        overrides = {key: TINY[key] for key in ("epochs", "hidden", "eval_samples")}
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            rows.append(run(method, train, test, args.labels, seed, overrides))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
