"""The `adgm` command: the core's commands (`adgm_core.cli`: train, evaluate, sample, classify,
export, which need no database) and `adgm token`, which manages the API's tokens in the job store
named by ADGM_DATABASE_URL. `adgm_core` knows no database, so the two meet here, on the ground the
API and the workers share; `pyproject.toml` points the `adgm` script at this module's `app`.
"""

from datetime import datetime
from typing import Annotated, Optional

import typer

from adgm_core.cli import app as core_app
from store.config import Settings
from store.db import make_engine, make_sessionmaker, utcnow
from store.schema import SchemaTooNew, migrate
from store.scopes import Scope
from store.tokens import TokenError, TokenStore, parse_duration

token_app = typer.Typer(
    help="Scoped, revocable API tokens (infer ⊂ label ⊂ admin), checked by a server started with ADGM_API_KEY.",
    no_args_is_help=True,
)
app = typer.Typer(help=core_app.info.help, no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(core_app)
app.add_typer(token_app, name="token")


def _tokens(settings: Settings) -> TokenStore:
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
    except SchemaTooNew as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None
    return TokenStore(make_sessionmaker(engine))


def _when(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "never"


def _refuse(error: TokenError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=1)


@token_app.command()
def create(
    scope: Annotated[Scope, typer.Option(help="infer: classify, sample, analogies, /v2, Label Studio predictions; "
                                              "label: also data sets, labels, training, Label Studio's webhook; "
                                              "admin: everything")],
    expires: Annotated[Optional[str], typer.Option(help="lifetime, e.g. 30d, 12h, 90m (minutes), 2w; none: never")] = None,
    name: Annotated[Optional[str], typer.Option(help="unique among tokens not revoked; default <scope>-<6 hex>")] = None,
) -> None:
    """Make a token and print it, once: only its hash is kept."""
    settings = Settings()
    if settings.api_key is None:
        typer.echo("note: ADGM_API_KEY is not set here; a server checks tokens only when it is started with it.",
                   err=True)
    try:
        lifetime = parse_duration(expires) if expires is not None else None
        record, token = _tokens(settings).create(scope, name, lifetime)
    except TokenError as error:
        raise _refuse(error) from None
    typer.echo(f"token {record.name!r}, scope {record.scope.value}, expires {_when(record.expires_at)}; it is shown "
               "only now (send it as 'Authorization: Bearer <token>'):", err=True)
    typer.echo(token)


@token_app.command("list")
def list_tokens() -> None:
    """Every token with its scope and state (active, expired, revoked); never the tokens themselves."""
    records = _tokens(Settings()).list()
    now = utcnow()
    rows = [("NAME", "SCOPE", "STATE", "CREATED", "EXPIRES")] + [
        (r.name, r.scope.value, r.state(now), _when(r.created_at), _when(r.expires_at)) for r in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


@token_app.command()
def revoke(name: Annotated[str, typer.Argument(help="the token's name (adgm token list)")]) -> None:
    """Revoke a token: every API process refuses it from its next request on."""
    try:
        record = _tokens(Settings()).revoke(name)
    except TokenError as error:
        raise _refuse(error) from None
    typer.echo(f"revoked token {record.name!r} (scope {record.scope.value}) at {_when(record.revoked_at)}")
