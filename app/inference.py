"""Running inference in the API process: one computation at a time, concurrent classifications batched.

`LoadedModel` is what the routes call: `classify`, `sample` and `analogies`, each taking the
inference lock itself.

Torch lets go of the GIL around every small operator, and dozens of request threads taking turns at it
cost more than the inference itself (bench/serving.py, 32 clients on 2 cores: 68 classifications/s
without a lock, 170 with it). So every inference holds INFERENCE_LOCK; decoding uploads and encoding
PNGs stay outside it, in parallel.

While one classification runs, the requests that arrive queue up; the next thread to hold the lock
answers all of them in one forward pass. A request whose images are still being decoded says so
(`preparing`), and a pass about to start waits for the requests that were preparing when it began,
up to `GATHER_SECONDS`: on a busy core the requests otherwise reach the queue one at a time and
every pass answers one image (bench/serving.py, 32 clients on one core: 1.15 images per pass). A
lone request runs at once, with no added wait. This is exact: the noise draws in
`Predictor.classify` are shared by all images, so an image's answer does not depend on its batch.
Novelty, several times the work of the class probabilities, is computed only for the requests
that ask for it.

The API serves with `NumpyPredictor` (adgm_core.numpy_predictor: Predictor's numbers in numpy, so
the API process starts and serves without torch). torch is imported, and the model loaded into it
once, only by the ONNX export (`onnx`); acquisition scores (`score_pool`) are numpy's too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adgm_core.acquisition import PoolScores, score_pool
from adgm_core.numpy_predictor import NumpyPredictor

if TYPE_CHECKING:
    from adgm_core.predictor import Predictor

INFERENCE_LOCK = threading.Lock()
GATHER_SECONDS = 0.01  # the longest a pass waits for requests still decoding their images


@dataclass
class _Request:
    images: np.ndarray
    novelty: bool
    answer: tuple[np.ndarray, np.ndarray | None] | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.answer is not None or self.error is not None


class BatchingClassifier:
    """`NumpyPredictor.classify` for concurrent callers, who share forward passes of up to `max_images`."""

    def __init__(self, predictor: NumpyPredictor, max_images: int = 256, gather_seconds: float = GATHER_SECONDS):
        self.predictor = predictor
        self.max_images = max_images
        self.gather_seconds = gather_seconds
        self._queue: deque[_Request] = deque()
        self._queue_lock = threading.Lock()
        self._arrivals = threading.Condition(self._queue_lock)
        self._prepared = self._preparing = 0  # requests that announced themselves, and of them those done

    @contextmanager
    def preparing(self) -> Iterator[None]:
        """Wraps the decoding of a request's images, so that a pass about to start waits for them."""
        with self._arrivals:
            self._preparing += 1
        try:
            yield
        finally:
            with self._arrivals:
                self._prepared += 1
                self._arrivals.notify_all()

    def classify(self, images: np.ndarray, novelty: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Class probabilities (N, K) and novelty scores (N,), or None unless `novelty`, for uint8
        images (N, H, W)."""
        request = _Request(images, novelty)
        with self._queue_lock:
            self._queue.append(request)
        with INFERENCE_LOCK:
            while not request.done:  # a request behind more than max_images of others waits a round
                self._gather()
                self._answer(self._take_batch())
        if request.error is not None:
            raise request.error
        return request.answer

    def _gather(self) -> None:
        """Waits, up to `gather_seconds`, for the requests preparing now to join the queue."""
        with self._arrivals:
            announced = self._preparing
            self._arrivals.wait_for(lambda: self._prepared >= announced or self._queued_images() >= self.max_images,
                                    timeout=self.gather_seconds)

    def _queued_images(self) -> int:
        return sum(len(request.images) for request in self._queue)

    def _take_batch(self) -> list[_Request]:
        with self._queue_lock:
            batch, size = [], 0
            while self._queue and (not batch or size + len(self._queue[0].images) <= self.max_images):
                size += len(self._queue[0].images)
                batch.append(self._queue.popleft())
            return batch

    def _answer(self, batch: list[_Request]) -> None:
        curious = [request for request in batch if request.novelty]
        try:
            probabilities = self.predictor.probabilities(np.concatenate([r.images for r in batch]))
            novelty = self.predictor.novelty(np.concatenate([r.images for r in curious])) if curious else None
        except Exception as error:  # every caller in the batch sees the failure of the pass it was in
            for request in batch:
                request.error = error
            return
        start = novelty_start = 0
        for request in batch:
            end = start + len(request.images)
            scores = None
            if request.novelty:
                scores = novelty[novelty_start:novelty_start + len(request.images)]
                novelty_start += len(request.images)
            request.answer = probabilities[start:end], scores
            start = end


@dataclass(frozen=True)
class TorchModel:
    """Where the model's files are, to load it into torch the first time a route needs torch."""

    directory: Path
    sha256: str | None
    threads: int = 1  # torch threads of the API process (ADGM_API_TORCH_THREADS)


@dataclass(frozen=True)
class LoadedModel:
    """A trained model ready to answer requests; every method may be called from any thread."""

    id: str
    predictor: NumpyPredictor
    classifier: BatchingClassifier
    files: TorchModel
    _torch: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    _torch_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def of(cls, model_id: str, predictor: NumpyPredictor, files: TorchModel) -> LoadedModel:
        return cls(model_id, predictor, BatchingClassifier(predictor), files)

    @property
    def n_classes(self) -> int:
        return self.predictor.config.n_classes

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.predictor.config.x_shape)

    @property
    def class_names(self) -> list[str]:
        """The names of the classes it was trained on ("0".."K-1" for models trained before names)."""
        return list(self.predictor.card.get("class_names") or [str(k) for k in range(self.n_classes)])

    def score_pool(self, images: np.ndarray, strategy: str, seed: int) -> PoolScores:
        """Acquisition scores of uint8 images (N, H, W): which to label next."""
        with INFERENCE_LOCK:
            return score_pool(self.predictor.model, images, strategy, seed=seed)

    def preparing(self):
        """Wraps the decoding of images about to be classified, so that concurrent requests share passes."""
        return self.classifier.preparing()

    def classify(self, images: np.ndarray, novelty: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Class probabilities (N, K) and novelty (N,), or None unless `novelty`, of uint8 images
        (N, H, W), batched with concurrent callers."""
        return self.classifier.classify(images, novelty)

    def sample(self, labels: list[int], seed: int) -> np.ndarray:
        with INFERENCE_LOCK:
            return self.predictor.sample(labels, seed=seed)

    def analogies(self, image: np.ndarray) -> np.ndarray:
        with INFERENCE_LOCK:
            return self.predictor.analogies(image)

    def onnx(self) -> bytes:
        """The classifier as an ONNX file (adgm_core.export), made once per loaded model. Tracing
        runs under the inference lock (seconds, once)."""
        from adgm_core.export import export_onnx  # the exporter's imports cost seconds: only when asked

        predictor = self._torch_predictor()
        with self._torch_lock:
            if "onnx" not in self._torch:
                with INFERENCE_LOCK:
                    self._torch["onnx"] = export_onnx(predictor)
            return self._torch["onnx"]

    def _torch_predictor(self) -> Predictor:
        """The model in torch, loaded from its files (checked against their sha256) on first use."""
        with self._torch_lock:
            if "predictor" not in self._torch:
                import torch

                from adgm_core.predictor import Predictor

                torch.set_num_threads(self.files.threads)
                self._torch["predictor"] = Predictor.from_directory(self.files.directory, self.files.sha256)
            return self._torch["predictor"]
