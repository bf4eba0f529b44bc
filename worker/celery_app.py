"""Celery application for the distributed mode.

Run a GPU worker with

    celery -A worker.celery_app worker -Q gpu -c 1 --pool=prefork

one process per GPU (`-c 1`; start one worker per GPU with CUDA_VISIBLE_DEVICES). The parent
process never imports torch: the task imports the training code inside the pool process, so CUDA
is first initialised after the fork, and every job gets a fresh pool process
(`worker_max_tasks_per_child=1`) that gives its GPU memory back when it ends. The queue's
settings are in `store.queue`, shared with the API that sends the tasks.
"""

from celery import Celery

from store.config import Settings, get_settings
from store.queue import TRAIN_TASK, make_celery


def train(job_id: str) -> str:
    """The training task: claims the job in the job store and runs it (see worker/training.py)."""
    from worker.training import run_job

    return run_job(job_id, get_settings()).value  # a plain string, should a result backend store it


def make_worker_app(settings: Settings) -> Celery:
    celery = make_celery(settings)
    celery.task(name=TRAIN_TASK)(train)
    return celery


celery_app = make_worker_app(get_settings())
