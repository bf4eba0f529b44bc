"""The label log of uploaded data sets: labels are appended, never overwritten in place.

Each append writes one row per entry (who, when, which training image, the new label or None for
"removed", the label it replaces) and bumps the data set's version, in one transaction: the
version is taken by an UPDATE of the data set's row first, which serialises concurrent appends to
one data set on both SQLite (one writer) and PostgreSQL (the row's lock). The labels in effect at
version v are, for each image, those of its newest row with version ≤ v.

Version 0 is the uploaded file as it is; an upload's own labels are the log's first append.
"""

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.db import utcnow
from store.tables import Dataset, LabelEntry

MAX_AUTHOR = 100
_IN_LIMIT = 500  # beyond this many indices, read the data set's whole log instead of an IN list


class LabelError(ValueError):
    """An append that cannot be recorded: bad index, label or author; nothing was written."""


class DatasetNotFound(LabelError):
    def __init__(self, dataset_id: str):
        super().__init__(f"Data set {dataset_id} does not exist (labels are kept for uploaded data sets only).")
        self.dataset_id = dataset_id


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LabelLog:
    """Appends to and reads the label log. Every method runs its own short transaction."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def append(self, dataset_id: str, entries: list[tuple[int, int | None]], author: str) -> int:
        """Records `entries` (image index, label or None to remove it) by `author`; returns the data
        set's new version. Raises LabelError (DatasetNotFound for an unknown id), writing nothing."""
        if not entries:
            raise LabelError("No labels given: send at least one (index, label) entry.")
        if not isinstance(author, str) or not author.strip() or len(author) > MAX_AUTHOR:
            raise LabelError(f"author must be a non-empty name of at most {MAX_AUTHOR} characters.")
        with self.sessions.begin() as session:
            bumped = session.execute(
                update(Dataset).where(Dataset.id == dataset_id).values(version=Dataset.version + 1)
                .returning(Dataset.version, Dataset.n_images, Dataset.n_classes)
            ).first()
            if bumped is None:
                raise DatasetNotFound(dataset_id)
            version, n_images, n_classes = bumped
            _check(entries, n_images, n_classes)
            current = self._newest(session, dataset_id, {index for index, _ in entries})
            now, rows, gained = utcnow(), [], 0
            for index, label in entries:
                old = current.get(index)
                rows.append(dict(dataset_id=dataset_id, version=version, image_index=index, label=label,
                                 old_label=old, author=author.strip(), created_at=now))
                gained += (label is not None) - (old is not None)
                current[index] = label
            session.execute(insert(LabelEntry), rows)
            if gained:
                session.execute(update(Dataset).where(Dataset.id == dataset_id)
                                .values(n_labelled=Dataset.n_labelled + gained))
        return version

    def labels(self, dataset_id: str, version: int | None = None) -> dict[int, int]:
        """{image index: label} in effect at `version` (the newest when None)."""
        with self.sessions() as session:
            _dataset(session, dataset_id)
            query = select(LabelEntry.image_index, LabelEntry.label).where(LabelEntry.dataset_id == dataset_id)
            if version is not None:
                query = query.where(LabelEntry.version <= version)
            newest = {index: label for index, label in session.execute(query.order_by(LabelEntry.seq))}
        return {index: label for index, label in newest.items() if label is not None}

    def counts(self, dataset_id: str) -> dict[int, int]:
        """{class: number of images labelled with it} now, every class listed."""
        with self.sessions() as session:
            n_classes = _dataset(session, dataset_id).n_classes
        counted = Counter(self.labels(dataset_id).values())
        return {k: counted.get(k, 0) for k in range(n_classes)}

    def history(self, dataset_id: str, limit: int = 100) -> list[LabelEntry]:
        """The newest `limit` rows of the log, newest first."""
        with self.sessions() as session:
            _dataset(session, dataset_id)
            query = select(LabelEntry).where(LabelEntry.dataset_id == dataset_id)
            return list(session.scalars(query.order_by(LabelEntry.seq.desc()).limit(limit)))

    @staticmethod
    def _newest(session: Session, dataset_id: str, indices: set[int]) -> dict[int, int | None]:
        query = select(LabelEntry.image_index, LabelEntry.label).where(LabelEntry.dataset_id == dataset_id)
        if len(indices) <= _IN_LIMIT:
            query = query.where(LabelEntry.image_index.in_(indices))
        return {index: label for index, label in session.execute(query.order_by(LabelEntry.seq))}


def _dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFound(dataset_id)
    return dataset


def _check(entries: Iterable[tuple[int, int | None]], n_images: int, n_classes: int) -> None:
    for index, label in entries:
        if not _is_int(index) or not 0 <= index < n_images:
            raise LabelError(f"index {index!r} is out of range: the data set has {n_images} training images "
                             f"(0..{n_images - 1}).")
        if label is not None and (not _is_int(label) or not 0 <= label < n_classes):
            raise LabelError(f"label {label!r} of image {index} is out of range: the data set has {n_classes} "
                             f"classes (0..{n_classes - 1}).")
