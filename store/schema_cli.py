"""The `adgm-db` command: show or upgrade the job store's schema (store.schema), kept apart from it
so that the processes which migrate at start (the API, the workers) do not import typer."""

import typer

from store.config import Settings
from store.db import make_engine
from store.schema import SchemaTooNew, current_revision, head_revision, migrate

app = typer.Typer(help="The job store's schema: show or upgrade its revision.", no_args_is_help=True)


@app.command()
def current() -> None:
    """The database's revision and the newest this code knows."""
    engine = make_engine(Settings().database_url)
    with engine.connect() as connection:
        typer.echo(f"database: {current_revision(connection)}  code: {head_revision()}")
    engine.dispose()


@app.command()
def upgrade() -> None:
    """Upgrade the database to the newest revision (what start-up does)."""
    engine = make_engine(Settings().database_url)
    try:
        typer.echo(f"database at {migrate(engine)}")
    except SchemaTooNew as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
