"""Learning on real MNIST with 100 labels: proof that the unlabelled data is used.

One model is trained with the default preset, as for a user's upload of MNIST (conftest.trained_on_mnist), and compared with a plain
classifier of the same depth trained on the same 100 labelled images alone.
"""

import numpy as np
import pytest
import torch
from torch import nn

from adgm_core.evaluation import error_rate
from adgm_core.predictor import Predictor


def supervised_only_accuracy(split, test, seed: int = 0) -> float:
    """An MLP ([256, 128], ReLU, Adam, weight decay) fitted to the labelled images until it has converged."""
    torch.manual_seed(seed)
    x = torch.as_tensor(split.labelled_images.reshape(len(split.labelled_images), -1)).float() / 255
    y = torch.as_tensor(split.labelled_labels)
    net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = net(torch.as_tensor(test.images.reshape(len(test.images), -1)).float() / 255).argmax(-1)
    return float((predicted.numpy() == test.labels).mean())


pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a few CPU minutes, more on a busy machine


def test_unlabelled_data_beats_the_supervised_baseline_by_ten_points(trained_on_mnist, mnist, mnist_split):
    test = mnist[1]
    baseline = supervised_only_accuracy(mnist_split, test)
    accuracy = 1 - error_rate(trained_on_mnist.model, test.images, test.labels, samples=10)
    print(f"supervised-only accuracy {baseline:.4f}, semi-supervised accuracy {accuracy:.4f}")
    assert 0.6 < baseline < 0.85  # a sane baseline: far above chance, far below what 60,000 labels give
    assert accuracy >= baseline + 0.10


def test_samples_follow_their_label(trained_on_mnist):
    """The model's own classifier recognises most generated digits as the label they were drawn for."""
    predictor = Predictor(trained_on_mnist.model, trained_on_mnist.card)
    labels = [d for d in range(10) for _ in range(20)]
    probabilities, _ = predictor.classify(predictor.sample(labels, seed=0))
    assert (probabilities.argmax(1) == np.array(labels)).mean() > 0.8


def test_noise_and_letters_are_novel_digits_are_not(trained_on_mnist, mnist):
    predictor = Predictor(trained_on_mnist.model, trained_on_mnist.card)
    _, digits = predictor.classify(mnist[1].images[:200])
    noise = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    _, novelty_noise = predictor.classify(noise)
    bars = np.zeros((50, 28, 28), np.uint8)
    bars[:, :, ::4] = 255  # vertical stripes across the frame: nothing like a digit
    _, novelty_bars = predictor.classify(bars)
    assert 0.2 < np.median(digits) < 0.8
    assert (novelty_noise > 0.99).all() and (novelty_bars > 0.99).all()
