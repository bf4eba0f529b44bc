"""The artifact store's sweep when several processes share it: it removes the staging file of an
upload only when its owner is a process of this host that no longer runs, or when nobody touched
it for longer than a live owner ever leaves it; never the file of a live process, here or on
another host."""

import io
import os
import subprocess
import sys
import time

import pytest

from store.artifacts import STAGED_UPLOAD_MAX_AGE_SECONDS, VERSION_STAGING_MAX_AGE_SECONDS, Artifacts, Owner
from store.ids import new_id


@pytest.fixture
def artifacts(tmp_path) -> Artifacts:
    artifacts = Artifacts(tmp_path / "artifacts")
    artifacts.create()
    return artifacts


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def staged(artifacts: Artifacts, owner: Owner | None, age_seconds: float = 0.0):
    """A staging file of a new upload held by `owner` (None: a name from before owners), last
    modified `age_seconds` ago."""
    dataset_id = new_id()
    name = f".{dataset_id}.npz.tmp" if owner is None else artifacts.staged_path(dataset_id, owner).name
    path = artifacts.datasets_dir / name
    path.write_bytes(b"half an upload")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


OLD = STAGED_UPLOAD_MAX_AGE_SECONDS + 60


def test_a_staged_upload_is_named_after_the_process_that_holds_it(artifacts):
    upload = artifacts.stage_dataset(new_id(), io.BytesIO(b"bytes"))
    assert upload.path.name.endswith(f".{os.getpid()}@{Owner.this_process().host}.npz.tmp")
    assert artifacts.sweep() == [] and upload.path.exists()


def test_the_sweep_removes_what_a_stopped_process_of_this_host_left_and_nothing_live(artifacts, dead_pid):
    host = Owner.this_process().host
    mine = staged(artifacts, Owner.this_process(), age_seconds=OLD / 2)
    dead = staged(artifacts, Owner(dead_pid, host))
    elsewhere_live = staged(artifacts, Owner(dead_pid, "another-machine-4026531836"))
    elsewhere_old = staged(artifacts, Owner(dead_pid, "another-machine-4026531836"), age_seconds=OLD)
    unnamed_fresh = staged(artifacts, None)
    unnamed_old = staged(artifacts, None, age_seconds=OLD)
    removed = artifacts.sweep()
    assert sorted(removed) == sorted([dead, elsewhere_old, unnamed_old])
    assert all(path.exists() for path in (mine, elsewhere_live, unnamed_fresh))
    assert not any(path.exists() for path in removed)


def test_a_live_owner_touches_its_staging_files_so_that_age_never_takes_them(artifacts):
    """A big upload can wait in its owner's queue for long; the owner touches its files at every
    heartbeat, so that processes on other hosts, which cannot ask whether it runs, see them in use.
    Only a file nobody touched for an hour goes, even of a pid that runs (it may be a new process's)."""
    mine = staged(artifacts, Owner.this_process(), age_seconds=OLD)
    other = staged(artifacts, Owner(1, "another-machine-1"), age_seconds=OLD)
    artifacts.touch_staged(Owner.this_process())
    assert time.time() - mine.stat().st_mtime < 60
    assert artifacts.sweep() == [other] and mine.exists()
    untouched = staged(artifacts, Owner.this_process(), age_seconds=OLD)
    assert artifacts.sweep() == [untouched]


def test_deleting_an_upload_removes_its_staging_file_whoever_held_it(artifacts, dead_pid):
    dataset_id = new_id()
    held = artifacts.staged_path(dataset_id, Owner(dead_pid, "another-machine-7"))
    held.write_bytes(b"x")
    artifacts.dataset_path(dataset_id).write_bytes(b"y")
    other = staged(artifacts, Owner(dead_pid, "another-machine-7"))
    artifacts.delete_dataset(dataset_id)
    assert not held.exists() and not artifacts.dataset_path(dataset_id).exists() and other.exists()


def test_a_model_write_that_finishes_during_the_sweep_is_skipped(artifacts, monkeypatch):
    """A worker renames its `.partial` directory into place at any moment: a sweep that listed it
    must not fail (nor fail the API's start) when it has gone by the time it is looked at."""
    partial = artifacts.models_dir / f".{new_id()}.deadbeef.partial"
    partial.mkdir()
    listed = list(artifacts.models_dir.glob(".*.partial"))
    partial.rename(artifacts.models_dir / "published")
    original_glob = type(artifacts.models_dir).glob
    monkeypatch.setattr(type(artifacts.models_dir), "glob",
                        lambda self, pattern: iter(listed) if pattern == ".*.partial" else original_glob(self, pattern))
    assert artifacts.sweep() == []


def test_every_models_change_writes_a_new_version_and_the_sweep_takes_only_an_abandoned_one(artifacts):
    assert artifacts.models_version() == ""
    versions = set()
    for _ in range(3):
        artifacts.models_changed()
        versions.add(artifacts.models_version())
    assert len(versions) == 3 and "" not in versions
    assert [path.name for path in artifacts.root.iterdir() if path.name.startswith(".models.version")] == []
    abandoned, being_written = (artifacts.root / f".models.version.{pid}.{new_id()}.tmp" for pid in (1, 2))
    for path in (abandoned, being_written):
        path.write_text(new_id())
    then = time.time() - VERSION_STAGING_MAX_AGE_SECONDS - 1
    os.utime(abandoned, (then, then))
    assert artifacts.sweep() == [abandoned]
    assert being_written.exists() and artifacts.models_version() in versions
