"""What the API holds while it runs: job store, token store, dispatcher, reaper, upload processor,
model cache and metrics."""

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from app.core.metrics import Metrics
from app.jobs.dispatch import CeleryDispatcher, EmbeddedDispatcher, make_dispatcher
from app.jobs.reaper import Reaper
from app.model_cache import ModelCache
from app.served_model import ServedModels
from app.uploads import UploadProcessor
from store.config import Settings
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.schema import migrate
from store.tokens import TokenStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    store: JobStore
    tokens: TokenStore
    dispatcher: CeleryDispatcher | EmbeddedDispatcher
    reaper: Reaper
    uploads: UploadProcessor
    models: ModelCache
    served: ServedModels
    metrics: Metrics

    @classmethod
    def start(cls, settings: Settings) -> "Runtime":
        artifacts = settings.artifacts
        artifacts.create()
        for leftover in artifacts.sweep():
            log.info("removed %s, left behind by a crash", leftover.name)
        engine = make_engine(settings.database_url)
        revision = migrate(engine)  # SchemaTooNew stops the start with its message
        sessions = make_sessionmaker(engine)
        store = JobStore.from_settings(sessions, settings)
        dispatcher = make_dispatcher(settings, store)
        dispatcher.start()
        uploads = UploadProcessor(settings, sessions)
        uploads.start()
        reaper = Reaper(settings, store, dispatcher, uploads)
        reaper.start()
        mode = "embedded" if settings.embedded else "celery"
        log.info("adgm-serve started: %s mode, schema %s, artifacts in %s", mode, revision, settings.artifact_dir)
        models = ModelCache(artifacts, settings.model_cache_size, settings.api_torch_threads)
        return cls(
            settings=settings, engine=engine, sessions=sessions, store=store, tokens=TokenStore(sessions),
            dispatcher=dispatcher, reaper=reaper, uploads=uploads, models=models,
            served=ServedModels(artifacts, engine, sessions, models), metrics=Metrics(sessions),
        )

    def stop(self) -> None:
        self.reaper.stop()
        self.uploads.stop()
        self.dispatcher.stop()
        self.engine.dispose()
