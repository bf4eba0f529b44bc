"""Acquisition scores and selection (adgm_core.acquisition) and the warm start of the trainer, on a
small model trained for seconds on the offline digits."""

import numpy as np
import pytest
import torch

from adgm_core.acquisition import STRATEGIES, PoolScores, score_pool, select
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import labelled_split, load_builtin, semi_supervised_split
from adgm_core.data.errors import DataError
from adgm_core.data.sets import ImageSet
from adgm_core.evaluation import as_model_input
from adgm_core.numpy_model import NumpyADGM
from adgm_core.trainer import Trainer

MODEL = ModelConfig(hidden=(128,), a_dim=16, z_dim=16)


@pytest.fixture(scope="module")
def digits():
    return load_builtin("digits5k")


@pytest.fixture(scope="module")
def trained(digits):
    """Six epochs on 4,000 digits with 10 labels per class: a model that knows its digits."""
    split = semi_supervised_split(digits[0], 10, seed=0)
    result = Trainer(MODEL, TrainConfig(epochs=6, learning_rate=1e-3, device="cpu"), split).fit()
    return result


def numpy_model(trained):
    return NumpyADGM.of(trained.model)


def slow_scores(model, images, samples, seed):
    """The same scores one image at a time with torch.distributions, from the same draws ε."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn((samples, 1, model.config.a_dim), generator=generator)[:, 0]
    out = {"bald": [], "entropy": [], "margin": []}
    with torch.no_grad():
        for image in images:
            x = as_model_input(image[None])
            mu, log_var = model.infer_a(x)
            draws = [torch.softmax(model.classify(x, mu + torch.exp(0.5 * log_var) * e[None]), -1)[0] for e in eps]
            mixture = torch.stack(draws).mean(0)
            h_mixture = torch.distributions.Categorical(probs=mixture).entropy()
            h_draws = torch.stack([torch.distributions.Categorical(probs=d).entropy() for d in draws]).mean()
            top = torch.sort(mixture, descending=True).values
            out["bald"].append(float(h_mixture - h_draws))
            out["entropy"].append(float(h_mixture))
            out["margin"].append(float(top[1] - top[0]))
    return {key: np.array(values) for key, values in out.items()}


def test_batched_scores_equal_a_slow_per_image_computation(trained, digits):
    images = digits[1].images[:40]
    slow = slow_scores(trained.model, images, samples=6, seed=3)
    for strategy in ("bald", "entropy", "margin"):
        fast = score_pool(numpy_model(trained), images, strategy, samples=6, seed=3, batch_size=7)
        np.testing.assert_allclose(fast.scores, slow[strategy], atol=2e-5)
    assert np.all(slow["bald"] >= -1e-6) and np.all(slow["bald"] <= slow["entropy"] + 1e-6)


def test_scores_are_deterministic_per_seed_and_independent_of_the_batch(trained, digits):
    images = digits[1].images[:300]
    for strategy in STRATEGIES:
        first = score_pool(numpy_model(trained), images, strategy, seed=5, batch_size=64)
        again = score_pool(numpy_model(trained), images, strategy, seed=5, batch_size=300)
        np.testing.assert_allclose(first.scores, again.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(select(first, 20, diverse=True), select(again, 20, diverse=True))
    other = score_pool(numpy_model(trained), images, "bald", seed=6)
    assert not np.allclose(other.scores, first.scores if strategy == "bald" else score_pool(
        numpy_model(trained), images, "bald", seed=5).scores)


def test_bald_ranks_blended_two_digit_images_above_clean_ones(trained, digits):
    """The mean of two digits of different classes is ambiguous by construction: its draws of a
    disagree about the class more than those of the clean digit it was made from."""
    test = digits[1]
    rng = np.random.default_rng(0)
    clean, blends = [], []
    for _ in range(60):
        i, j = rng.choice(len(test.images), 2, replace=False)
        if test.labels[i] != test.labels[j]:
            clean.append(test.images[i])
            blends.append(((test.images[i].astype(np.int64) + test.images[j]) // 2).astype(np.uint8))
    scores = score_pool(numpy_model(trained), np.stack(clean + blends), "bald", samples=16, seed=0).scores
    clean_scores, blend_scores = scores[:len(clean)], scores[len(clean):]
    assert (blend_scores > clean_scores).mean() >= 0.7
    assert np.median(blend_scores) > 2 * np.median(clean_scores)


def test_selection_keeps_to_the_pool_and_diversity_avoids_near_copies(trained, digits):
    image = digits[1].images[0]
    copies = np.repeat(image[None], 30, axis=0)
    others = digits[1].images[1:200]
    pool_images = np.concatenate([copies, others])
    pool = score_pool(numpy_model(trained), pool_images, "bald", seed=0)
    # make the copies the most informative images: plain ranking takes them all
    scores = pool.scores.copy()
    scores[:30] = scores.max() + 1
    boosted = PoolScores(pool.probabilities, scores, pool.embedding)
    plain = select(boosted, 10)
    diverse = select(boosted, 10, diverse=True)
    assert set(plain.tolist()) <= set(range(30))
    assert len(set(diverse.tolist())) == 10 and sum(index < 30 for index in diverse) <= 2
    among = np.arange(30, len(pool_images))
    assert set(select(boosted, 10, among=among, diverse=True).tolist()) <= set(among.tolist())


def blobs(centres: int = 6, per_blob: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points in well separated directions (the cover works on unit vectors), and their blob."""
    rng = np.random.default_rng(seed)
    directions = np.eye(centres) * 5
    points = np.concatenate([rng.normal(direction, 0.3, (per_blob, centres)) for direction in directions])
    return points, np.repeat(np.arange(centres), per_blob)


def test_cover_takes_one_typical_uncertain_image_from_each_blob_no_label_covers():
    points, blob = blobs()
    rng = np.random.default_rng(1)
    scores = rng.random(len(points))
    pool = PoolScores(np.full((len(points), 2), 0.5), scores, points, "cover")
    labelled = np.array([0, 1, 60])  # blobs 0 and 1 hold labels
    among = np.setdiff1d(np.arange(len(points)), labelled)
    chosen = select(pool, 4, among=among, labelled=labelled, seed=3)
    assert len(set(chosen.tolist())) == 4 and not set(chosen.tolist()) & set(labelled.tolist())
    assert sorted(blob[chosen].tolist()) == [2, 3, 4, 5]  # the uncovered blobs, one each
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    for index in chosen:  # the most uncertain of the blob's half nearest its centre
        members = np.flatnonzero(blob == blob[index])
        centre = unit[members].mean(0)
        distance = ((unit[members] - centre) ** 2).sum(1)
        typical = members[distance <= np.median(distance)]
        assert index in typical and scores[index] >= np.sort(scores[typical])[-3], (index, blob[index])
    np.testing.assert_array_equal(chosen, select(pool, 4, among=among, labelled=labelled, seed=3))
    more = select(pool, 10, among=among, labelled=labelled, seed=3)  # more picks than free blobs: still distinct
    assert len(set(more.tolist())) == 10 and not set(more.tolist()) & set(labelled.tolist())


def test_random_strategy_and_unknown_strategy(trained, digits):
    images = digits[1].images[:100]
    random = score_pool(numpy_model(trained), images, "random", seed=1).scores
    assert len(set(random.tolist())) == 100
    with pytest.raises(ValueError, match="unknown strategy"):
        score_pool(numpy_model(trained), images, "cleverest")


def test_a_warm_start_begins_where_the_given_model_ended(trained, digits):
    """The first epoch's bound of a warm start is far better than a cold start's, and equal to
    continuing that model; another architecture's weights are refused."""
    split = semi_supervised_split(digits[0], 10, seed=0)
    config = TrainConfig(epochs=1, learning_rate=1e-3, device="cpu", seed=1)
    weights = {k: v.clone() for k, v in trained.model.state_dict().items()}
    cold = Trainer(MODEL, config, split).fit().reports[0].elbo
    warm = Trainer(MODEL, config, split, init_weights=weights).fit().reports[0].elbo
    assert warm > cold + 20, (warm, cold)
    assert warm > trained.reports[0].elbo + 20 and abs(warm - trained.reports[-1].elbo) < 10
    from adgm_core.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="do not fit|shape"):
        Trainer(ModelConfig(hidden=(64,), a_dim=16, z_dim=16), config, split, init_weights=weights)


def test_labelled_split_takes_every_label_and_needs_each_class(digits):
    train = digits[0]
    labels = np.full(len(train), -1, dtype=np.int64)
    picks = [np.flatnonzero(train.labels == k)[: k + 1] for k in range(10)]
    for k, index in enumerate(picks):
        labels[index] = k
    split = labelled_split(ImageSet(train.images, labels, 10, "few"))
    assert np.bincount(split.labelled_labels).tolist() == list(range(1, 11))
    assert len(split.unlabelled_images) == len(train)
    labels[picks[4]] = -1
    with pytest.raises(DataError, match="class 4 has no labelled example"):
        labelled_split(ImageSet(train.images, labels, 10, "few"))
