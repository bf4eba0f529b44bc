"""Celery application for the distributed mode.

Run a GPU worker with

    celery -A worker.celery_app worker -Q gpu -c 1 --pool=prefork

one process per GPU (`-c 1`; start one worker per GPU with CUDA_VISIBLE_DEVICES). The parent
process never imports torch: the task imports the training code inside the pool process, so CUDA
is first initialised after the fork, and every job gets a fresh pool process
(`worker_max_tasks_per_child=1`) that gives its GPU memory back when it ends.

Long jobs: messages are acknowledged after the task (`task_acks_late`), re-queued when the pool
process dies (`task_reject_on_worker_lost`), one message is prefetched at a time, and Redis
re-delivers an unacknowledged message only after a day (`visibility_timeout`). A worker that
dies with its message unacknowledged is covered by the job heartbeat: the API's reaper re-queues
the job and sends it again (see app/jobs/reaper.py).
"""

from celery import Celery
from kombu import Queue

from app.core.config import Settings, get_settings

TRAIN_TASK = "adgm.train"
GPU_QUEUE = "gpu"
VISIBILITY_TIMEOUT_SECONDS = 24 * 3600


def train(job_id: str) -> str:
    """The training task: claims the job in the job store and runs it (see worker/training.py)."""
    from worker.training import run_job

    return run_job(job_id, get_settings())


def make_celery(settings: Settings) -> Celery:
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
    celery.task(name=TRAIN_TASK)(train)
    return celery


def queue_depth(celery: Celery, queue: str = GPU_QUEUE) -> int:
    """Messages waiting in the broker's queue (not counting those a worker holds)."""
    with celery.connection_for_read() as connection:
        return connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False).message_count


celery_app = make_celery(get_settings())
