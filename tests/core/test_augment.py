"""random_shift against a slow per-image reference, and its effect on training's random stream."""

import numpy as np
import pytest
import torch

from adgm_core.augment import random_shift
from adgm_core.config import TrainConfig


def shifted_by_hand(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` moved dy rows down and dx columns right, zeros coming in."""
    height, width = image.shape
    out = np.zeros_like(image)
    for row in range(height):
        for col in range(width):
            if 0 <= row - dy < height and 0 <= col - dx < width:
                out[row, col] = image[row - dy, col - dx]
    return out


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_each_image_is_one_of_the_allowed_translations_and_all_occur(max_shift):
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(400, 7 * 9), dtype=np.uint8)  # no zero pixel: every shift is visible
    moved = random_shift(torch.as_tensor(images), (7, 9), max_shift, torch.Generator().manual_seed(1)).numpy()
    seen = set()
    offsets = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]
    for image, result in zip(images.reshape(-1, 7, 9), moved.reshape(-1, 7, 9)):
        matches = [offset for offset in offsets if np.array_equal(shifted_by_hand(image, *offset), result)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(offsets)  # 400 draws over at most 49 offsets


def test_no_shift_is_the_identity_and_draws_nothing():
    images = torch.arange(2 * 16, dtype=torch.uint8).reshape(2, 16)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    assert random_shift(images, (4, 4), 0, generator) is images
    assert torch.equal(generator.get_state(), state)


def test_negative_shifts_are_refused():
    with pytest.raises(ValueError, match="classifier_shift"):
        TrainConfig(classifier_shift=-1)
