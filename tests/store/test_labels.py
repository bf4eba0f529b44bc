"""The label log on SQLite and PostgreSQL: appends, corrections, removals, versions, the labels in
effect at each version, refused entries that write nothing, and concurrent appends that lose nothing."""

import threading

import pytest
from sqlalchemy import func, select

from store.db import make_engine, make_sessionmaker, utcnow
from store.labels import DatasetNotFound, LabelError, LabelLog
from store.schema import migrate
from store.tables import Dataset, LabelEntry

DATASET = "d" * 32


@pytest.fixture
def log(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.add(Dataset(id=DATASET, name="upload", n_images=1000, n_labelled=0, n_classes=3,
                            image_shape=[28, 28], n_test_images=0, sha256="e" * 64, created_at=utcnow(),
                            class_names=["cat", "dog", "fox"]))
    yield LabelLog(sessions)
    engine.dispose()


def version_of(log: LabelLog) -> int:
    with log.sessions() as session:
        return session.get(Dataset, DATASET).version


def test_adding_correcting_and_removing_labels_keeps_every_version(log):
    assert version_of(log) == 0 and log.labels(DATASET) == {}
    assert log.append(DATASET, [(0, 0), (1, 1), (2, 1)], "ann") == 1
    assert log.append(DATASET, [(1, 2), (2, None), (3, 0)], "bob") == 2
    assert log.labels(DATASET, 0) == {}
    assert log.labels(DATASET, 1) == {0: 0, 1: 1, 2: 1}
    assert log.labels(DATASET) == log.labels(DATASET, 2) == {0: 0, 1: 2, 3: 0}
    assert log.counts(DATASET) == {0: 2, 1: 0, 2: 1}
    rows = [(e.version, e.image_index, e.label, e.old_label, e.author) for e in reversed(log.history(DATASET))]
    assert rows == [(1, 0, 0, None, "ann"), (1, 1, 1, None, "ann"), (1, 2, 1, None, "ann"),
                    (2, 1, 2, 1, "bob"), (2, 2, None, 1, "bob"), (2, 3, 0, None, "bob")]
    assert version_of(log) == 2


def test_the_same_image_twice_in_one_append_takes_the_last_and_logs_both(log):
    log.append(DATASET, [(5, 0), (5, 2)], "ann")
    assert log.labels(DATASET) == {5: 2}
    assert [(e.label, e.old_label) for e in reversed(log.history(DATASET))] == [(0, None), (2, 0)]


@pytest.mark.parametrize("entries, message", [
    ([], "No labels given"),
    ([(0, 1), (1000, 0)], "index 1000 is out of range"),
    ([(-1, 0)], "index -1 is out of range"),
    ([(0, 3)], "label 3 of image 0 is out of range"),
    ([(0, True)], "label True"),
    ([("7", 0)], "index '7'"),
])
def test_a_bad_entry_is_refused_and_nothing_is_written(log, entries, message):
    log.append(DATASET, [(9, 1)], "ann")
    with pytest.raises(LabelError, match=message):
        log.append(DATASET, entries, "ann")
    assert version_of(log) == 1 and log.labels(DATASET) == {9: 1} and len(log.history(DATASET)) == 1


def test_an_unknown_data_set_or_a_bad_author_is_refused(log):
    with pytest.raises(DatasetNotFound):
        log.append("f" * 32, [(0, 0)], "ann")
    with pytest.raises(DatasetNotFound):
        log.labels("f" * 32)
    for author in ("", "  ", "x" * 101):
        with pytest.raises(LabelError, match="author"):
            log.append(DATASET, [(0, 0)], author)
    assert version_of(log) == 0


def test_concurrent_appends_lose_nothing(log):
    """8 threads × 50 single-label appends: 400 rows, 400 distinct versions, every label in effect."""
    threads, barrier, versions, errors = 8, threading.Barrier(8), [], []

    def label(worker: int) -> None:
        barrier.wait()
        try:
            for i in range(50):
                index = worker * 50 + i
                versions.append(log.append(DATASET, [(index, index % 3)], f"worker-{worker}"))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=label, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(versions) == list(range(1, 401))
    assert version_of(log) == 400
    assert log.labels(DATASET) == {index: index % 3 for index in range(400)}
    with log.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LabelEntry)) == 400
        per_version = session.execute(select(LabelEntry.version, LabelEntry.author)).all()
    # each version was written by one append alone
    assert len({version for version, _ in per_version}) == 400
