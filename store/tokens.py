"""Scoped, revocable API tokens beside the single `ADGM_API_KEY` (which stays the admin key).

A token is `adgm_` and 256 random bits (URL-safe base64); the job store keeps only its SHA-256, so
the table gives nothing away, and a lookup is one indexed read by that hash. The API reads the
table on every request that carries a token, never from a cache: a token revoked by any process
(`adgm token revoke`) is refused by every API process from its next request on.
"""

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from store.db import utcnow
from store.scopes import Scope
from store.tables import ApiToken

TOKEN_PREFIX = "adgm_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
DURATION = re.compile(r"(\d{1,6})([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TokenError(ValueError):
    """A token request that cannot be done; the message says why and what to do instead."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` → a timedelta (m is minutes)."""
    match = DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise TokenError(f"--expires must be a positive whole number and a unit, s, m (minutes), h, d or w "
                         f"(e.g. 30d or 12h), got {text!r}.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class TokenStore:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def create(self, scope: Scope, name: str | None = None, expires_in: timedelta | None = None) -> tuple[ApiToken, str]:
        """A new token: its record and the token itself, which is nowhere else and cannot be shown again."""
        name = name if name is not None else f"{scope.value}-{secrets.token_hex(3)}"
        if not NAME_PATTERN.fullmatch(name):
            raise TokenError(f"A token name is 1 to 100 letters, digits or . _ @ - (starting with a letter or digit), "
                             f"got {name!r}.")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        record = ApiToken(name=name, scope=scope, token_sha256=hash_token(token), created_at=now,
                          expires_at=now + expires_in if expires_in is not None else None)
        try:
            with self.sessions.begin() as session:
                session.add(record)
        except IntegrityError:
            raise TokenError(f"A token named {name!r} exists and is not revoked (an expired one keeps its name too): "
                             f"revoke it first (adgm token revoke {name}) or choose another --name.") from None
        return record, token

    def list(self) -> list[ApiToken]:
        """Every token, revoked and expired ones included, oldest first."""
        with self.sessions() as session:
            return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))

    def revoke(self, name: str) -> ApiToken:
        """Revokes the token of that name; the API refuses it from its next request on."""
        with self.sessions.begin() as session:
            record = session.scalar(
                update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow()).returning(ApiToken)
            )
        if record is None:
            raise TokenError(f"No token named {name!r} is active (`adgm token list` shows the tokens).")
        return record

    def find(self, token: str) -> ApiToken | None:
        """The record of `token`, whatever its state, or None when no such token was made."""
        digest = hash_token(token)
        with self.sessions() as session:
            record = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))
        if record is None or not secrets.compare_digest(record.token_sha256, digest):
            return None
        return record
