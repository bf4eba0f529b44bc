"""API tokens on SQLite and PostgreSQL: made, listed, revoked and expired through the token store
and through `adgm token`; only a token's SHA-256 is stored, and a token is shown once."""

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from store.cli import app as cli
from store.db import make_engine, make_sessionmaker, utcnow
from store.schema import migrate
from store.scopes import Scope
from store.tables import ApiToken
from store.tokens import TOKEN_PREFIX, TokenError, TokenStore, parse_duration


@pytest.fixture
def tokens(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    yield TokenStore(make_sessionmaker(engine))
    engine.dispose()


def test_a_token_is_stored_as_its_hash_and_found_by_it(tokens):
    record, token = tokens.create(Scope.LABEL, "annotators", timedelta(days=30))
    assert token.startswith(TOKEN_PREFIX) and len(token) >= len(TOKEN_PREFIX) + 43  # 256 random bits
    assert record.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    with tokens.sessions() as session:
        stored = session.execute(text("SELECT * FROM api_tokens")).mappings().one()
    assert token not in {str(value) for value in stored.values()}  # the token itself is nowhere
    found = tokens.find(token)
    assert (found.name, found.scope, found.state(utcnow())) == ("annotators", Scope.LABEL, "active")
    assert timedelta(days=30) - timedelta(minutes=1) < found.expires_at - utcnow() <= timedelta(days=30)
    assert tokens.find(token + "x") is None and tokens.find(token[:-1]) is None and tokens.find("") is None
    other = tokens.create(Scope.INFER)[1]
    assert other != token and tokens.find(other).name.startswith("infer-")


def test_names_are_unique_among_tokens_not_revoked(tokens):
    tokens.create(Scope.INFER, "ci")
    with pytest.raises(TokenError, match="'ci' exists and is not revoked.*adgm token revoke ci"):
        tokens.create(Scope.ADMIN, "ci")
    revoked = tokens.revoke("ci")
    assert revoked.revoked_at is not None and revoked.state(utcnow()) == "revoked"
    renewed, token = tokens.create(Scope.ADMIN, "ci")  # the name is free again
    assert tokens.find(token).scope == Scope.ADMIN
    assert [(t.name, t.scope, t.state(utcnow())) for t in tokens.list()] == [
        ("ci", Scope.INFER, "revoked"), ("ci", Scope.ADMIN, "active")]
    with pytest.raises(TokenError, match="No token named 'nobody' is active"):
        tokens.revoke("nobody")
    for bad in ("", "has space", "-dash-first", "x" * 101, "a/b"):
        with pytest.raises(TokenError, match="letters, digits"):
            tokens.create(Scope.INFER, bad)


def test_a_revoked_token_stays_revoked_and_cannot_be_revoked_twice(tokens):
    _record, token = tokens.create(Scope.INFER, "once")
    tokens.revoke("once")
    assert tokens.find(token).state(utcnow()) == "revoked"
    with pytest.raises(TokenError, match="No token named 'once' is active"):
        tokens.revoke("once")


def test_expiry(tokens):
    record, token = tokens.create(Scope.INFER, "short", timedelta(hours=1))
    assert record.state(utcnow()) == "active"
    assert tokens.find(token).state(utcnow() + timedelta(hours=1)) == "expired"
    with tokens.sessions.begin() as session:  # as if an hour had passed
        session.get(ApiToken, record.id).expires_at = utcnow() - timedelta(seconds=1)
    assert tokens.find(token).state(utcnow()) == "expired"
    assert tokens.create(Scope.INFER, "forever")[0].expires_at is None


@pytest.mark.parametrize("text_, expected", [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                            ("90m", timedelta(minutes=90)), ("2w", timedelta(weeks=2)),
                                            ("45s", timedelta(seconds=45)), (" 7d ", timedelta(days=7))])
def test_durations(text_, expected):
    assert parse_duration(text_) == expected


@pytest.mark.parametrize("text_", ["", "30", "d", "0d", "-1d", "1.5d", "3y", "30 d", "1000000d"])
def test_bad_durations_are_refused_with_the_form_expected(text_):
    with pytest.raises(TokenError, match="positive whole number and a unit"):
        parse_duration(text_)


def adgm(database_url: str, *args: str):
    """`adgm …` in process, on `database_url`, with no API key in its environment."""
    return CliRunner().invoke(cli, list(args), env={"ADGM_DATABASE_URL": database_url, "ADGM_API_KEY": ""})


def test_the_command_line_creates_lists_revokes_and_expires(database_url, tokens):
    created = adgm(database_url, "token", "create", "--scope", "infer", "--expires", "30d", "--name", "kserve")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert re.fullmatch(r"adgm_[A-Za-z0-9_-]{43}", token)  # stdout is the token alone: TOKEN=$(adgm token create …)
    assert "token 'kserve', scope infer, expires 20" in created.stderr and "shown only now" in created.stderr
    assert "ADGM_API_KEY is not set here" in created.stderr
    assert tokens.find(token).name == "kserve"

    assert adgm(database_url, "token", "create", "--scope", "admin", "--name", "ops").exit_code == 0
    twice = adgm(database_url, "token", "create", "--scope", "label", "--name", "kserve")
    assert twice.exit_code == 1 and "'kserve' exists and is not revoked" in twice.stderr and "adgm_" not in twice.output
    bad = adgm(database_url, "token", "create", "--scope", "infer", "--expires", "soon")
    assert bad.exit_code == 1 and "--expires must be" in bad.stderr
    assert adgm(database_url, "token", "create", "--scope", "root").exit_code == 2  # not a scope

    with tokens.sessions.begin() as session:  # ops expires
        session.scalar(select(ApiToken).where(ApiToken.name == "ops")).expires_at = utcnow() - timedelta(seconds=1)
    revoked = adgm(database_url, "token", "revoke", "kserve")
    assert revoked.exit_code == 0 and "revoked token 'kserve' (scope infer)" in revoked.stdout
    assert tokens.find(token).state(utcnow()) == "revoked"
    again = adgm(database_url, "token", "revoke", "kserve")
    assert again.exit_code == 1 and "No token named 'kserve' is active" in again.stderr

    listed = adgm(database_url, "token", "list")
    assert listed.exit_code == 0
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert lines[0] == ["NAME", "SCOPE", "STATE", "CREATED", "EXPIRES"]
    assert [line[:3] for line in lines[1:]] == [["kserve", "infer", "revoked"], ["ops", "admin", "expired"]]
    assert "adgm_" not in listed.output and tokens.find(token).token_sha256 not in listed.output


def test_the_command_line_keeps_the_core_commands():
    answer = CliRunner().invoke(cli, ["--help"])
    assert answer.exit_code == 0
    for command in ("train", "evaluate", "sample", "classify", "export", "token"):
        assert re.search(rf"│ {command}\s", answer.stdout), command
