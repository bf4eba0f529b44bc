"""The judge: an independent supervised CNN trained on all labelled MNIST training images, and the
conditional-sample fidelity it measures.

Fidelity of a model: for each label k, draw n samples x ~ p(x | y=k, z) as the service serves them
(`Predictor.sample`), and count the share the judge classifies as k. digits5k is an MNIST subset, so
the same judge serves both. The judge's weights are cached as safetensors under bench/.cache/
(git-ignored), keyed by the training set's fingerprint.

    .venv/bin/python bench/judge.py            # train (or load) the judge and print its test accuracy
"""

from __future__ import annotations

import argparse
import fcntl
import json
import time
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from torch import nn

from adgm_core.data import ImageSet, load_mnist

CACHE_DIR = Path(__file__).resolve().parent / ".cache"


class Judge(nn.Module):
    """Two 3×3 convolutions with max-pooling and a 128-unit layer: about 99 % on MNIST's test set."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Labels of uint8 images (N, 28, 28)."""
        self.eval()
        x = torch.as_tensor(images).float().div(255).unsqueeze(1)
        return torch.cat([self(chunk).argmax(-1) for chunk in x.split(batch_size)]).numpy()


def train_judge(train: ImageSet, epochs: int = 2, seed: int = 0) -> Judge:
    """Adam 1e-3, batch 128, a random shift of up to 2 pixels per image (samples are not centred like MNIST)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    judge = Judge(train.n_classes)
    optimizer = torch.optim.Adam(judge.parameters(), lr=1e-3)
    x = torch.as_tensor(train.images).float().div(255).unsqueeze(1)
    y = torch.as_tensor(train.labels, dtype=torch.long)
    steps = epochs * (len(x) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    judge.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(len(x) // 128):
            idx = order[i * 128:(i + 1) * 128]
            dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
            batch = torch.roll(x[idx], shifts=(dy, dx), dims=(2, 3))
            optimizer.zero_grad()
            nn.functional.cross_entropy(judge(batch), y[idx]).backward()
            optimizer.step()
            schedule.step()
    return judge.eval()


def load_judge(train: ImageSet, cache_dir: Path = CACHE_DIR) -> Judge:
    """The judge for `train` (MNIST's training set), from the cache or trained now and cached."""
    path = Path(cache_dir) / f"judge-{train.fingerprint()[:16]}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    # processes that start at once (test workers, benchmarks) train it once: the rest wait here
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        judge = Judge(train.n_classes)
        if path.is_file():
            judge.load_state_dict(safetensors.torch.load_file(path))
            return judge.eval()
        judge = train_judge(train)
        tmp = path.with_suffix(".partial")
        safetensors.torch.save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, tmp)
        tmp.replace(path)
        return judge


def fidelity(predictor, judge: Judge, per_label: int = 100, seed: int = 0) -> dict:
    """For each label, the share of `per_label` samples from `predictor.sample` that the judge calls
    that label: {"per_label": [K shares], "mean": their mean, "min": the worst label's}."""
    K = predictor.config.n_classes
    labels = np.repeat(np.arange(K), per_label)
    judged = judge.predict(predictor.sample(labels.tolist(), seed))
    shares = [float((judged[labels == k] == k).mean()) for k in range(K)]
    return {"per_label": shares, "mean": float(np.mean(shares)), "min": float(min(shares))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    train, test = load_mnist(args.mnist_dir)
    started = time.perf_counter()
    judge = load_judge(train)
    seconds = time.perf_counter() - started
    accuracy = float((judge.predict(test.images) == test.labels).mean())
    print(json.dumps({"judge_test_accuracy": accuracy, "seconds": round(seconds, 1), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
