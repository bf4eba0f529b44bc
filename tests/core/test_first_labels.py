"""The first labels chosen without a model: one image per group of similar images, the biggest
group first, away from the images already labelled, always distinct."""

import numpy as np

from adgm_core.data import load_builtin
from adgm_core.first_labels import representatives

SIZES = [300, 200, 120, 60, 40]


def groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8×8 images in 5 groups of SIZES: each a random pattern with 3 of its 64 pixels flipped."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 2, (len(SIZES), 64))
    group = np.repeat(np.arange(len(SIZES)), SIZES)
    images = patterns[group].copy()
    for image in images:
        flip = rng.choice(64, 3, replace=False)
        image[flip] = 1 - image[flip]
    order = rng.permutation(len(group))
    return (images[order] * 255).astype(np.uint8).reshape(-1, 8, 8), group[order]


def test_one_image_per_group_the_biggest_first():
    images, group = groups()
    chosen = representatives(images, 5, seed=0)
    assert group[chosen.indices].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(chosen.shares, np.array(SIZES) / sum(SIZES))
    assert representatives(images, 5, seed=0).indices.tolist() == chosen.indices.tolist()


def test_the_labelled_classes_draw_the_picks_elsewhere():
    images, group = groups(1)
    labels = np.full(len(group), -1)
    for g in range(3):  # groups 0, 1 and 2 have a label each
        labels[np.flatnonzero(group == g)[0]] = g
    chosen = representatives(images, 2, labels, seed=0)
    assert sorted(group[chosen.indices].tolist()) == [3, 4]
    assert (labels[chosen.indices] == -1).all()


def test_labelled_images_of_one_class_in_several_groups_all_draw_the_picks_elsewhere():
    """A later round of the loop: what the labels cover is counted in images, not classes (three
    groups hold class 0's labels, so one more cluster per label, not per class, is needed)."""
    images, group = groups(2)
    labels = np.full(len(group), -1)
    for g in range(3):  # groups 0, 1 and 2 are labelled, all as class 0
        labels[np.flatnonzero(group == g)[0]] = 0
    chosen = representatives(images, 2, labels, seed=0)
    assert sorted(group[chosen.indices].tolist()) == [3, 4]


def test_picks_are_distinct_even_among_duplicates_and_never_labelled():
    images, _group = groups()
    duplicates = np.repeat(images[:3], 5, axis=0)
    chosen = representatives(duplicates, 6, seed=0)
    assert len(set(chosen.indices.tolist())) == 6
    labels = np.full(4, -1)
    labels[1] = 0
    assert sorted(representatives(images[:4], 10, labels).indices.tolist()) == [0, 2, 3]


def test_ten_digits_cover_more_classes_than_ten_drawn_at_random():
    train, _test = load_builtin("digits5k")
    covered = [len(set(train.labels[representatives(train.images, 10, seed=seed).indices].tolist()))
               for seed in range(3)]
    rng = np.random.default_rng(0)
    drawn = [len(set(train.labels[rng.choice(len(train), 10, replace=False)].tolist())) for _ in range(200)]
    assert np.mean(covered) >= 8 > np.mean(drawn) + 1, (covered, np.mean(drawn))
