"""Which loaded model answers an inference request (POST /classify, GET /sample, the Open Inference
Protocol): the one named, else the default, the newest.

The job store's answer (which model id a request means) is kept until the artifact store's models
version changes: every change of the set of models writes a new one after its commit (a worker's
publish, any API process's deletion: `Artifacts.models_changed`). So a model that a worker publishes
or any API process deletes is served, or no longer served, by every API process from its next
request on, and a request whose answer is known reads one small local file instead of making a
database round trip from a thread. A change whose writer died between its commit and the new
version is seen within `RECHECK_SECONDS`. The full record is read and the weights loaded only the
first time a process serves a model.
"""

import math
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from app import crud
from app.inference import LoadedModel
from app.model_cache import ModelCache
from store.artifacts import Artifacts
from store.tables import TrainedModel

RECHECK_SECONDS = 1.0  # the longest an answer is kept without asking the job store, whatever the version says
KEPT_ANSWERS = 1024  # answers kept per version: requests naming ids that do not exist must not grow it forever


class ServedModels:
    def __init__(self, artifacts: Artifacts, engine: Engine, sessions: sessionmaker, models: ModelCache):
        self.artifacts = artifacts
        self.engine = engine
        self.sessions = sessions
        self.models = models
        self._lock = threading.Lock()
        self._version: str | None = None
        self._asked_at = -math.inf
        self._answers: dict[str | None, str | None] = {}  # model asked for (None: the default) → its id or None

    def _current_answers(self) -> dict[str | None, str | None]:
        """The answers that still hold: none once the models version changed or they grew old."""
        version = self.artifacts.models_version()
        now = time.monotonic()
        with self._lock:
            if version != self._version or now - self._asked_at > RECHECK_SECONDS:
                self._answers, self._version, self._asked_at = {}, version, now
            return self._answers

    def known(self, model_id: str | None) -> tuple[bool, LoadedModel | None]:
        """Whether the model a request means is known without asking the job store or loading
        anything, and if so that model (None: it does not exist)."""
        answers = self._current_answers()
        if model_id not in answers:
            return False, None
        if (served_id := answers[model_id]) is None:
            return True, None
        loaded = self.models.cached(served_id)
        return loaded is not None, loaded

    def get(self, model_id: str | None) -> LoadedModel | None:
        """The model `model_id` names (None: the default), loaded; None when it does not exist."""
        answers = self._current_answers()
        if model_id in answers:
            served_id = answers[model_id]
        else:
            with self.engine.connect() as connection:
                served_id = crud.served_model_id(connection, model_id)
            with self._lock:
                if len(answers) < KEPT_ANSWERS:
                    answers[model_id] = served_id  # into the answers of the version read before asking
        if served_id is None:
            return None
        if (loaded := self.models.cached(served_id)) is not None:
            return loaded
        with self.sessions() as session:
            record = session.get(TrainedModel, served_id)
        return None if record is None else self.models.get(record)  # None: deleted in the meantime
