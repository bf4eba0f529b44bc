"""Small data sets of other image sizes, trained as a user's upload is: the `quick` preset
resolved without the data (the default before issue 17) and adapted to the data (what `POST
/train` and the worker resolve now), the supervised baseline the model card reports (logistic
regression on the same labels) and graph-based label spreading (scikit-learn, the same labels
and every training image, here only as a reference), on held-out test images, for a few label draws.

The sets are built here from the local MNIST files (never copied into the repository) and from
scikit-learn's bundled 8×8 digits, each round-tripped through the .npz upload format:

    mnist14   MNIST downsampled to 14×14 (area average), 1,500 training and 1,000 test images
    mnist8    the same at 8×8
    mnist3c   MNIST 28×28, the classes 3, 5 and 8 only: 500 training and 600 test images
    digits8   scikit-learn's 8×8 digits (0–16 scaled to 0–255): the first 1,500 for training,
              the other 297 to test

    taskset -c 1 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/small_datasets.py \\
        --seeds 0 1 2 --out out/small_datasets.json

Every model is trained on one thread; `cpu_seconds` is the process CPU time of its training and
card (evaluation on the test images included, as in a job). `--tiny` trains a few steps of a tiny
model on a few hundred images: a check that the script works, not a result.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adgm_core.baseline import supervised_baseline
from adgm_core.cpu import cpu_info
from adgm_core.data import ImageSet, load_mnist, load_npz, semi_supervised_split
from adgm_core.presets import DEFAULT_PRESET, DataProfile, configs_for, resolve
from adgm_core.trainer import Trainer

DEFAULT_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
SETS = ("mnist14", "mnist8", "mnist3c", "digits8")
TINY = dict(hidden=[32], z_dim=4, a_dim=4, eval_samples=2, epochs=1)


def _downsampled(images: np.ndarray, side: int) -> np.ndarray:
    pooled = F.adaptive_avg_pool2d(torch.as_tensor(images, dtype=torch.float32)[:, None], side)[:, 0]
    return pooled.round().clamp(0, 255).to(torch.uint8).numpy()


def _as_upload(name: str, train_images, train_labels, test_images, test_labels) -> tuple[ImageSet, ImageSet]:
    """The arrays as a user uploads them (numpy.savez) and as the service reads them back."""
    buffer = io.BytesIO()
    np.savez(buffer, images=train_images, labels=train_labels, test_images=test_images, test_labels=test_labels)
    buffer.seek(0)
    return load_npz(buffer, name=name)


@functools.cache
def _mnist(mnist_dir: Path) -> tuple[ImageSet, ImageSet]:
    return load_mnist(mnist_dir)


def build(name: str, mnist_dir: Path, n_train: int | None = None) -> tuple[ImageSet, ImageSet]:
    """(train, test) of one of SETS; `n_train` fewer training images (smoke runs)."""
    if name == "digits8":
        from sklearn.datasets import load_digits  # bundled with scikit-learn: nothing is downloaded

        digits = load_digits()
        images = np.round(digits.images * 255 / 16).astype(np.uint8)
        labels = digits.target.astype(np.int64)
        n = n_train or 1500
        return _as_upload(name, images[:n], labels[:n], images[1500:], labels[1500:])
    train, test = _mnist(mnist_dir)
    if name == "mnist3c":
        classes = np.array([3, 5, 8])
        pick = lambda s, count: np.flatnonzero(np.isin(s.labels, classes))[:count]  # noqa: E731
        train_index, test_index = pick(train, n_train or 500), pick(test, 600)
        relabel = lambda labels: np.searchsorted(classes, labels)  # noqa: E731
        return _as_upload(name, train.images[train_index], relabel(train.labels[train_index]),
                          test.images[test_index], relabel(test.labels[test_index]))
    side = {"mnist14": 14, "mnist8": 8}[name]
    n = n_train or 1500
    return _as_upload(name, _downsampled(train.images[:n], side), train.labels[:n],
                      _downsampled(test.images[:1000], side), test.labels[:1000])


def train_model(train: ImageSet, test: ImageSet, params: dict) -> dict:
    """What the worker does with a job's params: the split, the configs, the trainer, the card's
    baseline. Returns the test accuracy of the model and of its supervised baseline."""
    split = semi_supervised_split(train, params["labels_per_class"], params["seed"])
    model_config, train_config = configs_for(train, params, device="cpu")
    started = time.process_time()
    result = Trainer(model_config, train_config, split, test=test).fit()
    seconds = time.process_time() - started
    baseline = supervised_baseline(split, test)
    return {"accuracy": 1 - result.card["metrics"]["test_error"], "cpu_seconds": round(seconds, 1),
            "baseline": baseline.test_accuracy, "epochs": params["epochs"]}


def label_spreading(train: ImageSet, test: ImageSet, labels_per_class: int, seed: int) -> float:
    """scikit-learn's LabelSpreading (7 nearest neighbours, pixels in [0, 1]) on the same labels,
    every training image unlabelled otherwise, scored on the test images."""
    from sklearn.semi_supervised import LabelSpreading

    split = semi_supervised_split(train, labels_per_class, seed)
    chosen = {split.labelled_images[i].tobytes(): int(split.labelled_labels[i]) for i in range(len(split.labelled_labels))}
    targets = np.array([chosen.get(image.tobytes(), -1) for image in train.images])
    flat = lambda images: images.reshape(len(images), -1) / 255.0  # noqa: E731
    model = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100).fit(flat(train.images), targets)
    return float((model.predict(flat(test.images)) == test.labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--labels-per-class", type=int, default=5)
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--mnist-dir", type=Path, default=DEFAULT_MNIST_DIR)
    parser.add_argument("--tiny", action="store_true", help="a few steps of a tiny model on 300 images (smoke run)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = cpu_info()
    print(f"CPU: {cpu.name}, torch threads: {torch.get_num_threads()}", flush=True)

    rows = []
    for name in args.sets:
        train, test = build(name, args.mnist_dir, n_train=300 if args.tiny else None)
        if args.tiny:
            test = ImageSet(test.images[:100], test.labels[:100], test.n_classes, test.name)
        profile = DataProfile.of(train)
        overrides = dict(TINY, labels_per_class=args.labels_per_class) if args.tiny else \
            dict(labels_per_class=args.labels_per_class)
        for seed in args.seeds:
            before = resolve(args.preset, seed=seed, **overrides)
            adapted = resolve(args.preset, data=profile, seed=seed, **overrides)
            row = {"set": name, "image_shape": list(train.image_shape), "n_train": len(train.images),
                   "n_test": len(test.images), "n_classes": train.n_classes, "seed": seed,
                   "adapted_params": {k: adapted[k] for k in ("epochs", "classifier_shift", "hidden", "z_dim", "a_dim")},
                   "before": train_model(train, test, before), "adapted": train_model(train, test, adapted),
                   "label_spreading": label_spreading(train, test, args.labels_per_class, seed)}
            rows.append(row)
            print(json.dumps(row), flush=True)

    summary = {}
    for name in args.sets:
        mine = [row for row in rows if row["set"] == name]
        mean = lambda values: round(100 * statistics.mean(values), 1)  # noqa: E731
        summary[name] = {
            "default_before": mean([r["before"]["accuracy"] for r in mine]),
            "adapted": mean([r["adapted"]["accuracy"] for r in mine]),
            "supervised_baseline": mean([r["adapted"]["baseline"] for r in mine]),
            "label_spreading": mean([r["label_spreading"] for r in mine]),
            "cpu_seconds_before": round(statistics.mean(r["before"]["cpu_seconds"] for r in mine), 1),
            "cpu_seconds_adapted": round(statistics.mean(r["adapted"]["cpu_seconds"] for r in mine), 1),
            "seeds": len(mine),
        }
    print(f"\n| set | default before | adapted | supervised baseline | label spreading | CPU s before | CPU s adapted |")
    print("|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['default_before']} % | {s['adapted']} % | {s['supervised_baseline']} % | "
              f"{s['label_spreading']} % | {s['cpu_seconds_before']} | {s['cpu_seconds_adapted']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cpu": cpu.as_dict(), "args": {k: str(v) for k, v in vars(args).items()},
                                        "rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
