"""The state machine of background uploads on SQLite and on PostgreSQL: compare-and-set on the
status and the owner, so an upload taken from a silent owner never succeeds afterwards, and a
data set row exists only for an upload that succeeded."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from store.db import make_engine, make_sessionmaker, utcnow
from store.ids import new_id
from store.schema import migrate
from store.status import JobStatus
from store.tables import Dataset, LabelEntry, Upload
from store.uploads import OWNER_LOST, UploadStore


@pytest.fixture
def uploads(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield UploadStore(make_sessionmaker(engine), stale_after_seconds=60)
    engine.dispose()


def dataset(upload_id: str) -> Dataset:
    return Dataset(id=upload_id, name="u", n_images=3, n_labelled=1, n_classes=2, image_shape=[28, 28],
                   n_test_images=0, sha256="0" * 64, created_at=utcnow(), version=1, class_names=["a", "b"])


def labels(upload_id: str) -> list[dict]:
    return [dict(dataset_id=upload_id, version=1, image_index=0, label=1, old_label=None, author="upload",
                 created_at=utcnow())]


def rows(store: UploadStore, table) -> int:
    with store.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def age(store: UploadStore, upload_id: str) -> None:
    with store.sessions.begin() as session:
        session.execute(update(Upload).where(Upload.id == upload_id)
                        .values(heartbeat_at=utcnow() - timedelta(minutes=5)))


def test_an_upload_runs_reports_progress_and_succeeds_with_its_data_set(uploads):
    upload_id = new_id()
    uploads.create(upload_id, "digits", 3, ["README.md (not an image, outside the class folders)"], "me")
    assert uploads.get(upload_id).status == JobStatus.QUEUED
    assert not uploads.start(upload_id, "someone else")
    assert uploads.start(upload_id, "me") and not uploads.start(upload_id, "me")
    assert uploads.progress(upload_id, "me", 2) and uploads.get(upload_id).n_done == 2
    assert not uploads.progress(upload_id, "someone else", 3)
    assert uploads.succeed(upload_id, "me", dataset(upload_id), labels(upload_id), ["x.png (unreadable)"])
    upload = uploads.get(upload_id)
    assert (upload.status, upload.n_done, upload.skipped) == (JobStatus.SUCCEEDED, 3, ["x.png (unreadable)"])
    assert rows(uploads, Dataset) == 1 and rows(uploads, LabelEntry) == 1
    assert not uploads.fail(upload_id, "me", "too late")


def test_an_upload_taken_from_a_silent_owner_never_succeeds(uploads):
    upload_id, fresh = new_id(), new_id()
    uploads.create(upload_id, "digits", 3, [], "dead")
    uploads.create(fresh, "digits", 3, [], "alive")
    assert uploads.start(upload_id, "dead")
    age(uploads, upload_id)
    assert uploads.fail_stale() == [upload_id] and uploads.fail_stale() == []
    upload = uploads.get(upload_id)
    assert (upload.status, upload.error) == (JobStatus.FAILED, OWNER_LOST)
    assert not uploads.progress(upload_id, "dead", 3)
    assert not uploads.succeed(upload_id, "dead", dataset(upload_id), labels(upload_id), [])
    assert rows(uploads, Dataset) == 0 and rows(uploads, LabelEntry) == 0
    assert uploads.get(fresh).status == JobStatus.QUEUED


def test_the_owner_beats_all_its_unfinished_uploads(uploads):
    mine, finished = new_id(), new_id()
    uploads.create(mine, "a", 3, [], "me")
    uploads.create(finished, "b", 3, [], "me")
    assert uploads.fail(finished, "me", "the zip lacks images")
    for upload_id in (mine, finished):
        age(uploads, upload_id)
    uploads.beat("me")
    assert uploads.fail_stale() == []
    assert uploads.get(mine).status == JobStatus.QUEUED
    assert uploads.get(finished).error == "the zip lacks images"
