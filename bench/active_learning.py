"""The label-efficient loop simulated on MNIST: the hidden labels play the user.

Each seed starts from 1 label per class (drawn by the seed) and a cold-trained model. Then, for
each strategy, 9 rounds: score the unlabelled part of the pool with the current model, label the
10 images the strategy picks (their true labels), and retrain warm from the current model for a
fixed small budget. Test error on MNIST's 10,000 test images after every round; one random-order
baseline per seed uses the same budgets. Everything runs in one process on one thread, so the
strategies are compared on equal terms; figures go to stdout (a markdown table), a JSON file and a
PNG plot.

    .venv/bin/python bench/active_learning.py --mnist-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from adgm_core.acquisition import score_pool, select
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import ImageSet, labelled_split, load_mnist
from adgm_core.evaluation import error_rate
from adgm_core.trainer import Trainer


def train(pool: ImageSet, labelled: np.ndarray, epochs: int, seed: int, init: dict | None):
    labels = np.full(len(pool), -1, dtype=np.int64)
    labels[labelled] = pool.labels[labelled]
    split = labelled_split(ImageSet(pool.images, labels, pool.n_classes, pool.name))
    config = TrainConfig(epochs=epochs, learning_rate=1e-3, seed=seed, device="cpu", eval_samples=1)  # card only
    return Trainer(ModelConfig(), config, split, init_weights=init).fit().model


def run(args) -> dict:
    train_set, test = load_mnist(args.mnist_dir)
    pick = np.random.default_rng(12345).permutation(len(train_set))[:args.pool]
    pool = ImageSet(train_set.images[pick], train_set.labels[pick], 10, "mnist-pool")
    results: dict = {"labels": [], "error": {s: [] for s in args.strategies}, "seconds": {}}
    results["labels"] = [10 + args.per_round * r for r in range(args.rounds + 1)]
    started = time.perf_counter()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        start = np.array([rng.choice(np.flatnonzero(pool.labels == k)) for k in range(10)])
        cold = train(pool, start, args.cold_epochs, seed, None)
        cold_error = error_rate(cold, test.images, test.labels, args.eval_samples)
        print(f"seed {seed}: cold start, 10 labels: test error {cold_error:.4f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
        for strategy in args.strategies:
            model, labelled, errors = cold, start.copy(), [cold_error]
            strategy_started = time.perf_counter()
            for round_ in range(args.rounds):
                unlabelled = np.setdiff1d(np.arange(len(pool)), labelled)
                name, diverse = strategy.removesuffix("+diverse"), strategy.endswith("+diverse")
                scores = score_pool(model, pool.images, name, samples=args.samples, seed=seed * 100 + round_)
                chosen = select(scores, args.per_round, among=unlabelled, diverse=diverse)
                labelled = np.concatenate([labelled, chosen])
                model = train(pool, labelled, args.warm_epochs, seed * 100 + round_ + 1,
                              {k: v.detach().clone() for k, v in model.state_dict().items()})
                errors.append(error_rate(model, test.images, test.labels, args.eval_samples))
            results["error"][strategy].append(errors)
            results["seconds"].setdefault(strategy, []).append(time.perf_counter() - strategy_started)
            print(f"seed {seed} {strategy:>16}: " + " ".join(f"{e:.3f}" for e in errors)
                  + f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    results["total_seconds"] = time.perf_counter() - started
    return results


def table(results: dict) -> str:
    labels = results["labels"]
    lines = ["| strategy | " + " | ".join(str(n) for n in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    for strategy, runs in results["error"].items():
        errors = np.array(runs) * 100
        cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(errors.mean(0), errors.std(0))]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for strategy, runs in results["error"].items():
        errors = np.array(runs) * 100
        axes.errorbar(results["labels"], errors.mean(0), yerr=errors.std(0), label=strategy, capsize=3,
                      linestyle="--" if strategy == "random" else "-", marker="o", markersize=3)
    axes.set_xlabel("labels (10 to start, +10 per round)")
    axes.set_ylabel("MNIST test error (%)")
    axes.set_title(f"Label-efficient loop, mean ± sd over {len(next(iter(results['error'].values())))} seeds")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--pool", type=int, default=4000, help="training images in the pool (a fixed random subset)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--cold-epochs", type=int, default=10)
    parser.add_argument("--warm-epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8, help="draws of a per image when scoring")
    parser.add_argument("--eval-samples", type=int, default=10)
    parser.add_argument("--strategies", default="bald,bald+diverse,entropy,margin,random")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/active_learning.png")
    parser.add_argument("--json", default="docs/active_learning.json")
    args = parser.parse_args()
    args.strategies = args.strategies.split(",")
    torch.set_num_threads(args.threads)
    results = run(args)
    results["args"] = {k: v for k, v in vars(args).items()}
    Path(args.json).write_text(json.dumps(results, indent=1))
    plot(results, Path(args.out))
    print(table(results))
    print(f"total {results['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
