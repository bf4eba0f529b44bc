"""Training throughput: the trainer against the notebook-style reference loop, same process, same sizes.

    .venv/bin/python bench/throughput.py [--sizes notebook paper] [--steps 40] [--device auto]
    .venv/bin/python bench/throughput.py --preset quick     # the trainer with a preset's recipe

Prints examples per second (labelled + unlabelled images per second) of each, one after the other,
the medians over interleaved rounds, and the ratios. The reference runs first without denormal flushing (as the notebook does), then with
it, so the ratio that the trainer's own loop earns is visible apart from that one switch. The
trainer runs in float32 and then with bf16 autocast (float32 bounds), reported separately.
With `--preset`, the trainer runs that preset's recipe (its sizes, batch norm, MC samples, EMA,
clipping, batch sizes) against the reference at the same network sizes: examples per second then
count images before MC repetition, so S samples cost the trainer S times the arithmetic.
Every rate is given twice: per second of wall time (`*_ex_per_s`, `ratio`) and per second of this
process's CPU time (`*_ex_per_cpu_s`, `ratio_cpu`), which other work on a shared core leaves alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch.utils.data import TensorDataset

from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.cpu import cpu_info
from adgm_core.data import load_mnist, semi_supervised_split
from adgm_core.data.sets import SemiSupervisedSplit
from adgm_core.presets import PRESETS, configs_for, resolve
from adgm_core.trainer import Trainer, resolve_device
from notebook_reference import NotebookADGM, train_steps

SIZES = {"notebook": dict(hidden=(256, 128), z_dim=32, a_dim=32), "paper": dict(hidden=(500, 500), z_dim=100, a_dim=100)}


def reference_rate(split: SemiSupervisedSplit, sizes: dict, steps: int, alpha: float,
                   device: torch.device) -> tuple[float, float]:
    """Images per second of wall time and of CPU time."""
    if device.type != "cpu":
        torch.set_default_device(device)
    flat = lambda images: torch.as_tensor(images.reshape(len(images), -1), dtype=torch.float32) / 255  # noqa: E731
    labelled = TensorDataset(flat(split.labelled_images), torch.as_tensor(split.labelled_labels))
    unlabelled = TensorDataset(flat(split.unlabelled_images))
    model = NotebookADGM(784, 10, sizes["z_dim"], sizes["a_dim"], list(sizes["hidden"])).to(device)
    train_steps(model, labelled, unlabelled, 3, alpha)  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    seen = train_steps(model, labelled, unlabelled, steps, alpha)
    if device.type == "cuda":
        torch.cuda.synchronize()
    rates = seen / (time.perf_counter() - started), seen / (time.process_time() - cpu_started)
    torch.set_default_device("cpu")
    return rates


def trainer_rate(split: SemiSupervisedSplit, sizes: dict, steps: int, device: torch.device, compile: bool,
                 bf16: bool = False, recipe: dict | None = None) -> tuple[float, float]:
    """Images per second of wall time and of CPU time in the second epoch (past warm-up and compilation)."""
    batch = recipe["batch_size"] if recipe else 100
    subset = SemiSupervisedSplit(split.labelled_images, split.labelled_labels,
                                 split.unlabelled_images[: steps * batch], split.n_classes, split.name)
    if recipe:
        model_config, config = configs_for(subset, {**recipe, "epochs": 2, "bf16": bf16}, device=str(device),
                                           compile=compile)
    else:
        model_config = ModelConfig(**sizes)
        config = TrainConfig(epochs=2, batch_size=batch, labelled_batch_size=batch, device=str(device),
                             compile=compile, bf16=bf16)
    trainer = Trainer(model_config, config, subset)
    marks: list[tuple[float, float]] = []  # (wall rate, CPU time) at the end of each epoch
    trainer.fit(on_epoch=lambda report: marks.append((report.examples_per_second, time.process_time())))
    images = trainer.steps_per_epoch * (config.batch_size + config.labelled_batch_size)
    return marks[1][0], images / (marks[1][1] - marks[0][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["notebook", "paper"], choices=list(SIZES))
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="train with this preset's recipe and sizes (replaces --sizes)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are printed")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    device = resolve_device(args.device)
    train, _ = load_mnist(args.mnist_dir)
    split = semi_supervised_split(train, 10, seed=0)
    alpha = 0.1 * len(split.unlabelled_images) / len(split.labelled_images)
    results = []
    recipe = resolve(args.preset) if args.preset else None
    names = [f"preset {args.preset}"] if recipe else args.sizes
    for name in names:
        sizes = {key: recipe[key] for key in ("hidden", "z_dim", "a_dim")} if recipe else SIZES[name]
        rates: dict[str, list[tuple[float, float]]] = {"reference": [], "reference_flushed": [], "trainer": [],
                                                       "trainer_bf16": []}
        for _ in range(args.rounds):  # interleaved, so a change in machine load hits every contender
            torch.set_flush_denormal(False)
            rates["reference"].append(reference_rate(split, sizes, args.steps, alpha, device))
            torch.set_flush_denormal(True)
            rates["reference_flushed"].append(reference_rate(split, sizes, args.steps, alpha, device))
            rates["trainer"].append(trainer_rate(split, sizes, args.steps, device, args.compile, recipe=recipe))
            rates["trainer_bf16"].append(trainer_rate(split, sizes, args.steps, device, args.compile, True, recipe))
        median = {key: statistics.median(wall for wall, _ in values) for key, values in rates.items()}
        median_cpu = {key: statistics.median(cpu for _, cpu in values) for key, values in rates.items()}
        row = {"sizes": name, "device": str(device), "threads": torch.get_num_threads(), "rounds": args.rounds,
               **{f"{key}_ex_per_s": round(value, 1) for key, value in median.items()},
               **{f"{key}_ex_per_cpu_s": round(value, 1) for key, value in median_cpu.items()},
               "ratio": round(median["trainer"] / median["reference"], 2),
               "ratio_cpu": round(median_cpu["trainer"] / median_cpu["reference"], 2),
               "ratio_vs_flushed_reference": round(median["trainer"] / median["reference_flushed"], 2),
               "ratio_bf16": round(median["trainer_bf16"] / median["reference"], 2)}
        results.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"torch": torch.__version__, "numpy": np.__version__, "cpu": cpu_info().as_dict(),
                      "results": results}))


if __name__ == "__main__":
    main()
