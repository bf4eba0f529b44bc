"""Trained models loaded for inference, least recently used evicted first."""

import threading
from collections import OrderedDict

import numpy as np

from adgm_core.model_files import CheckpointError
from adgm_core.numpy_model import NumpyADGM, load_numpy_model
from adgm_core.numpy_predictor import NumpyPredictor
from app.inference import LoadedModel, TorchModel
from store.artifacts import Artifacts
from store.tables import TrainedModel


class ModelUnavailable(Exception):
    """A model's files are missing or corrupt: a fault of that model, not of the request."""

    def __init__(self, model_id: str, reason: str):
        super().__init__(
            f"Model {model_id} cannot be loaded from the artifact store: {reason} "
            "Delete it (DELETE /models/{id}) or train a new one; other models are unaffected."
        )
        self.model_id = model_id


class ModelCache:
    def __init__(self, artifacts: Artifacts, capacity: int, torch_threads: int = 1):
        self.artifacts = artifacts
        self.capacity = capacity
        self.torch_threads = torch_threads
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()

    def get(self, record: TrainedModel) -> LoadedModel:
        """The predictor of `record`, loaded (and checked against its sha256) on first use, in numpy."""
        if loaded := self.cached(record.id):
            return loaded
        with self._load_lock:  # one load at a time, so a burst of requests loads a model once
            if loaded := self.cached(record.id):
                return loaded
            try:
                model, card = load_numpy_model(self.artifacts.model_dir(record.id), expected_sha256=record.sha256)
            except (CheckpointError, OSError) as error:  # the reason names files, not the server's paths
                reason = str(error).replace(str(self.artifacts.model_dir(record.id)), f"models/{record.id}")
                raise ModelUnavailable(record.id, reason) from error
            loaded = self._checked(record, model, card)
            with self._lock:
                self._models[record.id] = loaded
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            return loaded

    def _checked(self, record: TrainedModel, model: NumpyADGM, card: dict) -> LoadedModel:
        """The sha256 covers the weights only; an altered model.json that still parses must not
        serve a wrong shape or fail later as a server error, so it has to agree with the record
        and its novelty calibration has to work on one blank image."""
        card_file = self.artifacts.model_dir(record.id) / "model.json"
        if card.get("config") != record.config:
            raise ModelUnavailable(record.id, f"{card_file} does not match the model's record (config differs).")
        try:
            files = TorchModel(self.artifacts.model_dir(record.id), record.sha256, self.torch_threads)
            loaded = LoadedModel.of(record.id, NumpyPredictor(model, card), files)
            loaded.classify(np.zeros((1, *loaded.image_shape), np.uint8))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelUnavailable(record.id, f"{card_file} is damaged ({type(error).__name__}: {error}).") from error
        return loaded

    def cached(self, model_id: str) -> LoadedModel | None:
        """The model if it is loaded, else None."""
        with self._lock:
            loaded = self._models.get(model_id)
            if loaded is not None:
                self._models.move_to_end(model_id)
            return loaded

    def evict(self, model_id: str) -> None:
        with self._lock:
            self._models.pop(model_id, None)
