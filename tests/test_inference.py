"""Concurrent classifications share forward passes and get exactly the answers they would get alone,
with the predictor the API serves with (NumpyPredictor), whose answers are torch's within 1e-5."""

import threading
import time

import numpy as np
import pytest

from adgm_core.data import load_offline_digits
from adgm_core.numpy_predictor import NumpyPredictor
from adgm_core.predictor import Predictor
from app.inference import INFERENCE_LOCK, BatchingClassifier


class CountingPredictor:
    """A real predictor that records the size of every forward pass, and of every novelty pass."""

    def __init__(self, predictor: NumpyPredictor, fail: bool = False):
        self.predictor = predictor
        self.fail = fail
        self.passes: list[int] = []
        self.novelty_passes: list[int] = []

    def probabilities(self, images):
        self.passes.append(len(images))
        if self.fail:
            raise ValueError("model card damaged")
        return self.predictor.probabilities(images)

    def novelty(self, images):
        self.novelty_passes.append(len(images))
        return self.predictor.novelty(images)


@pytest.fixture(scope="module")
def model_dir(trained_state):
    """Read-only use of the session's trained model, so no copy of its state is needed."""
    return trained_state.directory / "artifacts" / "models" / trained_state.model_id


@pytest.fixture(scope="module")
def predictor(model_dir) -> NumpyPredictor:
    return NumpyPredictor.from_directory(model_dir)


@pytest.fixture(scope="module")
def requests() -> list[np.ndarray]:
    """Twelve requests of one to three test digits each."""
    images = load_offline_digits()[1].images
    sizes = [1, 2, 3] * 4
    starts = np.cumsum([0, *sizes])
    return [images[start:start + size] for start, size in zip(starts, sizes)]


def classify_concurrently(classifier: BatchingClassifier, requests: list[np.ndarray], novelty=lambda i: True) -> list:
    """Queue every request (asking for novelty where `novelty(i)`) while the inference lock is held
    elsewhere, then let them all run."""
    answers: list = [None] * len(requests)

    def call(i):
        try:
            answers[i] = classifier.classify(requests[i], novelty(i))
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
    assert counting.passes == counting.novelty_passes == [sum(len(r) for r in requests)]  # 24 images, one pass
    for images, (probabilities, novelty) in zip(requests, answers):
        alone_probabilities, alone_novelty = predictor.classify(images)
        assert probabilities.shape == (len(images), 10)
        np.testing.assert_allclose(probabilities, alone_probabilities, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(novelty, alone_novelty, rtol=1e-5, atol=1e-6)


def test_batched_answers_are_torchs_within_1e5(predictor, model_dir, requests):
    """What concurrent /classify requests get, against Predictor (torch) on each request alone."""
    torch_predictor = Predictor.from_directory(model_dir)
    answers = classify_concurrently(BatchingClassifier(predictor), requests)
    for images, (probabilities, novelty) in zip(requests, answers):
        expected_probabilities, expected_novelty = torch_predictor.classify(images)
        np.testing.assert_allclose(probabilities, expected_probabilities, rtol=0, atol=1e-5)
        np.testing.assert_allclose(novelty, expected_novelty, rtol=0, atol=1e-5)


def test_novelty_is_computed_only_for_the_requests_that_ask(predictor, requests):
    counting = CountingPredictor(predictor)
    answers = classify_concurrently(BatchingClassifier(counting), requests, novelty=lambda i: i % 3 == 0)
    assert counting.passes == [24] and counting.novelty_passes == [4]  # requests 0, 3, 6 and 9: one image each
    for i, (images, (probabilities, novelty)) in enumerate(zip(requests, answers)):
        alone_probabilities, alone_novelty = predictor.classify(images)
        np.testing.assert_allclose(probabilities, alone_probabilities, rtol=1e-5, atol=1e-6)
        if i % 3 == 0:
            np.testing.assert_allclose(novelty, alone_novelty, rtol=1e-5, atol=1e-6)
        else:
            assert novelty is None
    counting = CountingPredictor(predictor)
    assert BatchingClassifier(counting).classify(requests[1], novelty=False)[1] is None
    assert counting.novelty_passes == []


def test_a_pass_waits_for_a_request_still_decoding_its_images(predictor, requests):
    counting = CountingPredictor(predictor)
    classifier = BatchingClassifier(counting, gather_seconds=30)
    decoding, decoded = threading.Event(), threading.Event()
    answers = {}

    def decode_then_classify():
        with classifier.preparing():
            decoding.set()
            decoded.wait(10)  # still decoding while the other request's pass is about to start
        answers["second"] = classifier.classify(requests[1])

    second = threading.Thread(target=decode_then_classify)
    second.start()
    assert decoding.wait(10)
    threading.Timer(0.2, decoded.set).start()
    started = time.monotonic()
    answers["first"] = classifier.classify(requests[0])
    second.join(10)
    assert 0.15 < time.monotonic() - started < 10
    assert counting.passes == [len(requests[0]) + len(requests[1])]  # one pass for both
    np.testing.assert_allclose(answers["second"][0], predictor.classify(requests[1])[0], rtol=1e-5, atol=1e-6)


def test_a_lone_request_does_not_wait_and_the_wait_is_bounded(predictor, requests):
    counting = CountingPredictor(predictor)
    started = time.monotonic()
    BatchingClassifier(counting, gather_seconds=30).classify(requests[0])
    assert time.monotonic() - started < 5  # nobody was decoding: no wait
    classifier = BatchingClassifier(counting, gather_seconds=0.3)
    with classifier.preparing():  # a request that never comes (its decoding takes longer than the bound)
        started = time.monotonic()
        classifier.classify(requests[0])
        assert 0.25 < time.monotonic() - started < 5


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
