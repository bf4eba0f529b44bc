"""The job vocabulary, used by the table's column, the API's schemas and the workers alike.

    queued ──▶ running ──▶ succeeded | failed | cancelled
       ▲          │
       └──────────┘  released by a stopping worker, or re-queued when its worker was lost
       └──────────────────────────────▶ cancelled

Uploads decoded in the background (store.uploads) take the same states: queued ──▶ running ──▶
succeeded | failed.
"""

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class RunOutcome(StrEnum):
    """What happened when a worker ran a job."""

    SKIPPED = "skipped"  # not claimable: taken by another worker, cancelled or finished
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"  # the worker stopped; the job is queued again and resumes elsewhere
    LOST = "lost"  # the job was taken from this worker (re-queued as stale) while it ran

    @property
    def ends_job(self) -> bool:
        return self in (RunOutcome.SUCCEEDED, RunOutcome.FAILED, RunOutcome.CANCELLED)
