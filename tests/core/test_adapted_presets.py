"""A preset adapted to the data it trains on (issue 17, item 5): training length in optimizer steps,
`classifier_shift` relative to the image's side; unchanged where the preset was tuned."""

import pytest

from adgm_core.data import load_offline_digits
from adgm_core.presets import PRESETS, DataProfile, resolve


def steps(params: dict, n_images: int) -> int:
    return params["epochs"] * max(1, n_images // params["batch_size"])  # as the trainer counts them


@pytest.mark.parametrize("n_images", [4000, 4500, 5000])
def test_quick_is_unchanged_on_the_28x28_sets_it_was_tuned_on(n_images):
    assert resolve("quick", DataProfile((28, 28), n_images)) == resolve("quick")
    train, _ = load_offline_digits()  # digits5k: 4,000 training images
    assert resolve("quick", DataProfile.of(train)) == resolve("quick")


@pytest.mark.parametrize("shape, shift", [((8, 8), 1), ((14, 14), 1), ((20, 20), 1), ((28, 28), 2), ((42, 42), 3)])
def test_the_shift_keeps_its_share_of_the_image(shape, shift):
    assert resolve("quick", DataProfile(shape, 4000))["classifier_shift"] == shift
    assert resolve("quick", DataProfile(shape, 4000), classifier_shift=0)["classifier_shift"] == 0  # given: kept


@pytest.mark.parametrize("n_images", [150, 500, 1500, 1797, 60000])
def test_training_length_is_counted_in_steps(n_images):
    """A small set trains at least as many steps as digits5k's 20 epochs (800), a large one no more
    than about the 5,000-image pool's (1,000): a 60,000-image set takes 2 epochs, not 20."""
    tuned = resolve("quick")
    params = resolve("quick", DataProfile((8, 8), n_images))
    assert 800 <= steps(params, n_images) <= 1000 + n_images // tuned["batch_size"] // 2
    assert (params["epochs"] > tuned["epochs"]) == (n_images < 4000)
    assert resolve("quick", DataProfile((8, 8), n_images), epochs=3)["epochs"] == 3  # given: kept


def test_steps_follow_the_batch_size_given():
    params = resolve("quick", DataProfile((14, 14), 1500), batch_size=50)
    assert params["epochs"] == 27 and steps(params, 1500) == 810  # 30 steps an epoch


def test_the_mnist_presets_keep_their_epochs_on_mnist_and_their_steps_elsewhere():
    for name in ("mnist-cpu", "mnist-long", "paper"):
        assert resolve(name, DataProfile((28, 28), 60000)) == resolve(name)
        small = resolve(name, DataProfile((28, 28), 6000))
        assert steps(small, 6000) == steps(resolve(name), 60000)
    assert resolve("paper", DataProfile((8, 8), 1500))["classifier_shift"] == 0  # the authors shift nothing
    assert set(PRESETS) == {"quick", "mnist-cpu", "mnist-long", "paper"}
