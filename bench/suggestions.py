"""How long `GET /datasets/{id}/suggestions` spends scoring a 60,000-image pool: the core's
`score_pool` + `select` on all MNIST training images with the default model size, per strategy,
with and without the diversity cover; median of 3 interleaved runs.

    .venv/bin/python bench/suggestions.py --mnist-dir ../shared/data/mnist --threads 1
"""

import argparse
import statistics
import time

import torch

from adgm_core.acquisition import STRATEGIES, score_pool, select
from adgm_core.config import ModelConfig
from adgm_core.data import load_mnist
from adgm_core.model import ADGM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pool", type=int, default=None, help="score the first N training images (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = load_mnist(args.mnist_dir)[0].images[:args.pool]
    model = ADGM(ModelConfig()).eval()  # timing only: the weights do not change the work
    times = {(s, d): [] for s in STRATEGIES for d in (False, True)}
    for _ in range(args.repeats):
        for strategy, diverse in times:
            started = time.perf_counter()
            select(score_pool(model, images, strategy), 20, diverse=diverse)
            times[(strategy, diverse)].append(time.perf_counter() - started)
    print(f"{len(images):,} images, hidden {ModelConfig().hidden}, 8 draws of a, {args.threads} thread(s)")
    print("| strategy | diverse | seconds (median) |\n|---|---|---:|")
    for (strategy, diverse), seconds in times.items():
        print(f"| {strategy} | {diverse} | {statistics.median(seconds):.2f} |")


if __name__ == "__main__":
    main()
