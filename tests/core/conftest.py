"""Fixtures for the core library's tests: real MNIST (directory from tests/conftest.py), read once per
session, and one model trained on it as a user's upload of it would be by default."""

import pytest

from adgm_core.data import ImageSet, load_mnist, semi_supervised_split
from adgm_core.presets import DataProfile, configs_for, resolve
from adgm_core.trainer import Trainer


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
    """The model a user gets for MNIST with 100 labels: the default preset adapted to 60,000 images (the
    learning test's model; `quick` holds it to the steps it was tuned for, a couple of CPU minutes)."""
    params = resolve(data=DataProfile.of(mnist[0]), eval_samples=10)
    return Trainer(*configs_for(mnist[0], params, device="cpu"), mnist_split).fit()
