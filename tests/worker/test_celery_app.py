"""The Celery application: settings for long jobs, routing to the gpu queue, and re-sending the
jobs a broker lost (against a real redis-server)."""

from app.jobs import dispatch
from app.jobs.dispatch import CeleryDispatcher
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.queue import GPU_QUEUE, TRAIN_TASK, VISIBILITY_TIMEOUT_SECONDS, queue_depth
from store.schema import migrate
from worker.celery_app import make_worker_app


def test_settings_for_long_training_jobs(make_settings, redis_url):
    celery = make_worker_app(make_settings(broker_url=redis_url))
    conf = celery.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_max_tasks_per_child == 1
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_SECONDS >= 24 * 3600
    assert conf.broker_url == redis_url
    assert TRAIN_TASK in celery.tasks
    assert celery.amqp.router.route({}, TRAIN_TASK)["queue"].name == GPU_QUEUE


def test_the_worker_parent_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, worker.celery_app; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_jobs_the_broker_lost_are_sent_again(make_settings, redis_url, monkeypatch):
    monkeypatch.setattr(dispatch, "SEND_GRACE_SECONDS", 0)  # the grace is checked at the end
    settings = make_settings(broker_url=redis_url)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = JobStore(make_sessionmaker(engine))
    dispatcher = CeleryDispatcher(settings, store)
    try:
        jobs = [store.create({"epochs": 1}, "digits5k", None) for _ in range(3)]
        for job in jobs:
            assert dispatcher.submit(job.id)
        assert queue_depth(dispatcher.celery) == 3
        assert dispatcher.resend_lost(older_than_seconds=0) == []  # the broker holds them all

        with dispatcher.celery.connection_for_write() as connection:
            connection.default_channel.client.flushall()  # the broker restarts without persistence
        assert queue_depth(dispatcher.celery) == 0
        assert dispatcher.resend_lost(older_than_seconds=3600) == []  # sent too recently to judge
        assert sorted(dispatcher.resend_lost(older_than_seconds=0)) == sorted(job.id for job in jobs)
        assert queue_depth(dispatcher.celery) == 3
        assert dispatcher.check() == "ok"

        late = store.create({"epochs": 1}, "digits5k", None)  # queued while the broker was down
        assert dispatcher.resend_lost(older_than_seconds=3600) == [late.id]  # sent although the queue is full
        assert queue_depth(dispatcher.celery) == 4

        monkeypatch.setattr(dispatch, "SEND_GRACE_SECONDS", 60)
        store.create({"epochs": 1}, "digits5k", None)  # its own request is sending it: not the reaper
        assert dispatcher.resend_lost(older_than_seconds=0) == []
        assert queue_depth(dispatcher.celery) == 4
    finally:
        dispatcher.stop()
        engine.dispose()
