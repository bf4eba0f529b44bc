"""Fixtures for the core library's tests: real MNIST (directory from tests/conftest.py), read once per
session, and one model trained on it for a few CPU minutes."""

import pytest

from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import ImageSet, load_mnist, semi_supervised_split
from adgm_core.trainer import Trainer

LEARNING_EPOCHS = 10  # about 3 minutes on 2 idle cores: 92 % test accuracy with 100 labels


@pytest.fixture(scope="session")
def mnist(mnist_dir) -> tuple[ImageSet, ImageSet]:
    """(train, test) MNIST; read-only by convention, tests must not modify the arrays."""
    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def mnist_split(mnist):
    """The paper's protocol: 10 labels per class drawn by seed 0, all 60,000 images unlabelled."""
    return semi_supervised_split(mnist[0], labels_per_class=10, seed=0)


@pytest.fixture(scope="session")
def trained_on_mnist(mnist, mnist_split):
    """A real model trained for a few CPU minutes on MNIST with 100 labels (the learning test's model)."""
    config = TrainConfig(epochs=LEARNING_EPOCHS, learning_rate=1e-3, eval_samples=10)
    return Trainer(ModelConfig(), config, mnist_split).fit()
