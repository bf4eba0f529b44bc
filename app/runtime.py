"""What the API holds while it runs: job store, dispatcher, reaper, model cache and metrics."""

import logging
from dataclasses import dataclass

import torch
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from app.core.config import Settings
from app.core.db import create_tables, make_engine, make_sessionmaker
from app.core.metrics import Metrics
from app.jobs.dispatch import CeleryDispatcher, EmbeddedDispatcher, make_dispatcher
from app.jobs.reaper import Reaper
from app.jobs.state import JobStore
from app.model_cache import ModelCache

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    store: JobStore
    dispatcher: CeleryDispatcher | EmbeddedDispatcher
    reaper: Reaper
    models: ModelCache
    metrics: Metrics

    @classmethod
    def start(cls, settings: Settings) -> "Runtime":
        torch.set_num_threads(settings.api_torch_threads)
        for directory in (settings.models_dir, settings.checkpoints_dir, settings.datasets_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in settings.datasets_dir.glob(".*.tmp"):  # uploads cut off by a crash
            leftover.unlink(missing_ok=True)
        engine = make_engine(settings.database_url)
        create_tables(engine)
        sessions = make_sessionmaker(engine)
        store = JobStore.from_settings(sessions, settings)
        dispatcher = make_dispatcher(settings, store)
        dispatcher.start()
        reaper = Reaper(settings, store, dispatcher)
        reaper.start()
        mode = "embedded" if settings.embedded else "celery"
        log.info("adgm-serve started: %s mode, artifacts in %s", mode, settings.artifact_dir)
        return cls(
            settings=settings, engine=engine, sessions=sessions, store=store, dispatcher=dispatcher,
            reaper=reaper, models=ModelCache(settings.models_dir, settings.model_cache_size), metrics=Metrics(sessions),
        )

    def stop(self) -> None:
        self.reaper.stop()
        self.dispatcher.stop()
        self.engine.dispose()
