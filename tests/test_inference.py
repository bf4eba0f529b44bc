"""Concurrent classifications share forward passes and get exactly the answers they would get alone."""

import threading
import time

import numpy as np
import pytest

from adgm_core.data import load_offline_digits
from adgm_core.predictor import Predictor
from app.inference import INFERENCE_LOCK, BatchingClassifier


class CountingPredictor:
    """A real predictor that records the size of every forward pass."""

    def __init__(self, predictor: Predictor, fail: bool = False):
        self.predictor = predictor
        self.fail = fail
        self.passes: list[int] = []

    def classify(self, images):
        self.passes.append(len(images))
        if self.fail:
            raise ValueError("model card damaged")
        return self.predictor.classify(images)


@pytest.fixture(scope="module")
def predictor(trained_state) -> Predictor:
    """Read-only use of the session's trained model, so no copy of its state is needed."""
    return Predictor.from_directory(trained_state.directory / "artifacts" / "models" / trained_state.model_id)


@pytest.fixture(scope="module")
def requests() -> list[np.ndarray]:
    """Twelve requests of one to three test digits each."""
    images = load_offline_digits()[1].images
    sizes = [1, 2, 3] * 4
    starts = np.cumsum([0, *sizes])
    return [images[start:start + size] for start, size in zip(starts, sizes)]


def classify_concurrently(classifier: BatchingClassifier, requests: list[np.ndarray]) -> list:
    """Queue every request while the inference lock is held elsewhere, then let them all run."""
    answers: list = [None] * len(requests)

    def call(i):
        try:
            answers[i] = classifier.classify(requests[i])
        except Exception as error:
            answers[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    with INFERENCE_LOCK:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(classifier._queue) < len(requests) and time.monotonic() < deadline:
            time.sleep(0.005)
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_waiting_requests_share_one_pass_and_get_their_own_answers(predictor, requests):
    counting = CountingPredictor(predictor)
    answers = classify_concurrently(BatchingClassifier(counting), requests)
    assert counting.passes == [sum(len(r) for r in requests)]  # 24 images, one forward pass
    for images, (probabilities, novelty) in zip(requests, answers):
        alone_probabilities, alone_novelty = predictor.classify(images)
        assert probabilities.shape == (len(images), 10)
        np.testing.assert_allclose(probabilities, alone_probabilities, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(novelty, alone_novelty, rtol=1e-5, atol=1e-6)


def test_a_pass_never_exceeds_max_images(predictor, requests):
    counting = CountingPredictor(predictor)
    answers = classify_concurrently(BatchingClassifier(counting, max_images=5), requests)
    assert max(counting.passes) <= 5 and sum(counting.passes) == 24 and len(counting.passes) >= 5
    assert [len(p) for p, _ in answers] == [len(r) for r in requests]


def test_a_lone_request_runs_at_once(predictor, requests):
    counting = CountingPredictor(predictor)
    probabilities, _ = BatchingClassifier(counting).classify(requests[2])
    assert counting.passes == [3]
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)


def test_a_failed_pass_fails_every_request_in_it_and_frees_the_lock(predictor, requests):
    counting = CountingPredictor(predictor, fail=True)
    answers = classify_concurrently(BatchingClassifier(counting), requests)
    assert all(isinstance(answer, ValueError) for answer in answers)
    assert len(counting.passes) == 1
    assert not INFERENCE_LOCK.locked()
