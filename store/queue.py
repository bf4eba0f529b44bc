"""The task queue's contract in the distributed mode, shared by the API (which sends) and the
Celery workers (which run): the task's name, its queue, and the broker settings of both ends.

Long jobs: messages are acknowledged after the task (`task_acks_late`), re-queued when the pool
process dies (`task_reject_on_worker_lost`), one message is prefetched at a time, and Redis
re-delivers an unacknowledged message only after a day (`visibility_timeout`). A worker that
dies with its message unacknowledged is covered by the job heartbeat: the API's reaper re-queues
the job and sends it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.config import Settings

if TYPE_CHECKING:
    from celery import Celery

TRAIN_TASK = "adgm.train"
GPU_QUEUE = "gpu"
VISIBILITY_TIMEOUT_SECONDS = 24 * 3600


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for the training queue, with no task registered: the API sends
    `TRAIN_TASK` by name, and `worker.celery_app` registers the task on its own app. Celery is
    imported here: an API without a broker never loads it (a quarter of a second at start)."""
    from celery import Celery
    from kombu import Queue

    celery = Celery("adgm", broker=settings.broker_url, set_as_current=False)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(GPU_QUEUE)],
        task_default_queue=GPU_QUEUE,
        task_routes={TRAIN_TASK: {"queue": GPU_QUEUE}},
        task_ignore_result=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    )
    return celery


def queue_depth(celery: Celery, queue: str = GPU_QUEUE) -> int:
    """Messages waiting in the broker's queue (not counting those a worker holds)."""
    with celery.connection_for_read() as connection:
        return connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False).message_count
