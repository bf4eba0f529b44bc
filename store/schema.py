"""The database's schema history (Alembic revisions in `store/migrations/versions/`).

`migrate` brings a database to the newest revision this code knows. The API, the embedded
workers and each Celery task call it before they use the database; it takes a lock, so that
processes starting together migrate once. A database made by release 0.1.0 (tables but no
revision) is recognised as revision 0001. A database at a revision this code does not know was
migrated by newer code, and is refused: `SchemaTooNew`.

By hand: `adgm-db current` and `adgm-db upgrade` (read `ADGM_DATABASE_URL`).
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, func, inspect, select

MIGRATIONS = Path(__file__).with_name("migrations")
RELEASE_0_1_0 = "0001"  # the tables that release 0.1.0 created without Alembic
MIGRATION_LOCK_KEY = 0x6164676E  # PostgreSQL advisory lock held while migrating


class SchemaTooNew(RuntimeError):
    def __init__(self, current: str, head: str):
        super().__init__(
            f"The database is at schema revision {current!r}, which this version of adgm-serve does not "
            f"know (its newest is {head!r}): it was upgraded by a newer version. Run that version, or "
            "restore the backup taken before the upgrade."
        )


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> str:
    """Upgrades the database to the newest revision; returns it. Raises SchemaTooNew."""
    with _migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        config = _config(connection)
        current = current_revision(connection)
        script = ScriptDirectory.from_config(config)
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError:
                raise SchemaTooNew(current, script.get_current_head()) from None
        elif inspect(connection).has_table("jobs"):
            command.stamp(config, RELEASE_0_1_0)
        command.upgrade(config, "head")
        return current_revision(connection)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """SQLite has no lock to wait on across a migration's statements: a lock file beside the
    database serves. PostgreSQL takes an advisory lock inside the migration's transaction."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
