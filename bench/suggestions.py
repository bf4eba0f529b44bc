"""How long `GET /datasets/{id}/suggestions` spends scoring a 60,000-image pool: the core's
`score_pool` + `select` on all MNIST training images with the default model size, per strategy,
with and without the diversity cover; median of 3 interleaved runs.

    OMP_NUM_THREADS=1 .venv/bin/python bench/suggestions.py --mnist-dir ../shared/data/mnist

The scores are numpy's (the API's path), so numpy's BLAS threads are what OMP_NUM_THREADS says.
"""

import argparse
import os
import statistics
import time

from adgm_core.acquisition import STRATEGIES, score_pool, select
from adgm_core.config import ModelConfig
from adgm_core.cpu import cpu_info
from adgm_core.data import load_mnist
from adgm_core.model import ADGM
from adgm_core.numpy_model import NumpyADGM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pool", type=int, default=None, help="score the first N training images (default: all)")
    args = parser.parse_args()
    images = load_mnist(args.mnist_dir)[0].images[:args.pool]
    model = NumpyADGM.of(ADGM(ModelConfig()).eval())  # timing only: the weights do not change the work
    times = {(s, d): [] for s in STRATEGIES for d in (False, True)}
    for _ in range(args.repeats):
        for strategy, diverse in times:
            started = time.perf_counter()
            select(score_pool(model, images, strategy), 20, diverse=diverse)
            times[(strategy, diverse)].append(time.perf_counter() - started)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"{len(images):,} images, hidden {ModelConfig().hidden}, 8 draws of a, OMP_NUM_THREADS={threads}, "
          f"{cpu_info().name}")
    print("| strategy | diverse | seconds (median) |\n|---|---|---:|")
    for (strategy, diverse), seconds in times.items():
        print(f"| {strategy} | {diverse} | {statistics.median(seconds):.2f} |")


if __name__ == "__main__":
    main()
