"""Ids of jobs, models and uploaded data sets: 32 lowercase hex characters."""

import uuid

ID_PATTERN = r"^[0-9a-f]{32}$"


def new_id() -> str:
    return uuid.uuid4().hex
