"""Checks every request against `app.api.access` before its route runs, so before a body is read.

Credentials are `Authorization: Bearer <token>`, the token being ADGM_API_KEY (admin),
ADGM_METRICS_TOKEN (GET /metrics only) or one made by `adgm token create`. Label Studio cannot send
a bearer token, so its routes also take HTTP basic auth with such a token as the password (or
ADGM_LABEL_STUDIO_PASSWORD, which opens those routes only).

A refusal names its reason and never repeats what was sent: 401 for credentials that are missing,
invalid, expired or revoked; 403 for a token whose scope does not cover the route. Secrets are
compared as SHA-256 digests with `secrets.compare_digest`. A token is looked up by its digest in
the job store on every request, never from a cache, so a revocation holds in every API process
from its next request on.
"""

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass

from anyio import to_thread
from pydantic import SecretStr
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.access import Access, enforced, request_method, required
from app.api.errors import error_response
from store.config import Settings
from store.db import utcnow
from store.scopes import Scope as TokenScope
from store.tokens import TokenStore

HOW = "send 'Authorization: Bearer <key>' with ADGM_API_KEY or a token made by `adgm token create`"
HOW_LABEL_STUDIO = ("give Label Studio HTTP basic auth with a token (`adgm token create`) or ADGM_API_KEY as the "
                    "password, or send 'Authorization: Bearer <token>'")
HOW_LABEL_STUDIO_PASSWORD = "give Label Studio HTTP basic auth with ADGM_LABEL_STUDIO_PASSWORD as the password"


@dataclass(frozen=True)
class Principal:
    scope: TokenScope | None  # None: the metrics token
    name: str  # which credential, for messages


class Refusal(Exception):
    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _matches(given: bytes, secret: SecretStr | None) -> bool:
    return secret is not None and secrets.compare_digest(given, _digest(secret.get_secret_value()))


class Authentication:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        template, access = required(scope["method"], get_route_path(scope))
        if enforced(access, self.settings):
            try:
                principal = await self._principal(scope, access)
                self._authorize(principal, access, request_method(scope["method"]), template or get_route_path(scope))
            except Refusal as refusal:
                headers = {"WWW-Authenticate": 'Basic realm="label-studio", Bearer' if access.basic else "Bearer"} \
                    if refusal.status_code == 401 else None
                response = error_response(Request(scope), refusal.status_code, refusal.detail, headers)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)

    def _how(self, access: Access) -> str:
        if not access.basic:
            return HOW
        return HOW_LABEL_STUDIO if self.settings.api_key is not None else HOW_LABEL_STUDIO_PASSWORD

    async def _principal(self, scope: Scope, access: Access) -> Principal:
        header = Headers(scope=scope).get("authorization")
        how = self._how(access)
        if header is None:
            raise Refusal(401, f"Missing API key: this route needs one; {how}.")
        kind, _, value = header.partition(" ")
        if kind.lower() == "bearer":
            return await self._token(scope, value, how)
        if kind.lower() == "basic" and access.basic:
            return await self._basic(scope, value, how)
        raise Refusal(401, f"Invalid Authorization header: {how}.")

    async def _basic(self, scope: Scope, value: str, how: str) -> Principal:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Refusal(401, f"Invalid basic auth: not base64 of 'user:password'; {how}.") from None
        expected_user = self.settings.label_studio_username
        if expected_user is not None and not secrets.compare_digest(_digest(user), _digest(expected_user)):
            raise Refusal(401, f"Invalid basic auth: wrong user or password; {how}.")
        if _matches(_digest(password), self.settings.label_studio_password):
            return Principal(TokenScope.LABEL, "ADGM_LABEL_STUDIO_PASSWORD")
        return await self._token(scope, password, how)

    async def _token(self, scope: Scope, token: str, how: str) -> Principal:
        given = _digest(token)
        if _matches(given, self.settings.api_key):
            return Principal(TokenScope.ADMIN, "ADGM_API_KEY")
        if self.settings.api_key is None:  # only Label Studio's password is checked
            raise Refusal(401, f"Invalid credentials: {how}.")
        if _matches(given, self.settings.metrics_token):
            return Principal(None, "ADGM_METRICS_TOKEN")
        tokens: TokenStore = scope["app"].state.runtime.tokens
        record = await to_thread.run_sync(tokens.find, token)
        if record is None:
            raise Refusal(401, f"Invalid API key: it is neither ADGM_API_KEY nor a token of this server; {how}.")
        state = record.state(utcnow())
        if state == "revoked":
            raise Refusal(401, f"Revoked API key: token {record.name!r} was revoked at {record.revoked_at:%Y-%m-%d %H:%M:%S} "
                               "UTC; ask for a new one (`adgm token create`).")
        if state == "expired":
            raise Refusal(401, f"Expired API key: token {record.name!r} expired at {record.expires_at:%Y-%m-%d %H:%M:%S} "
                               "UTC; ask for a new one (`adgm token create`).")
        return Principal(record.scope, f"token {record.name!r}")

    @staticmethod
    def _authorize(principal: Principal, access: Access, method: str, route: str) -> None:
        if principal.scope is None:
            if not access.metrics_token:
                raise Refusal(403, f"ADGM_METRICS_TOKEN cannot {method} {route}: it opens GET /metrics only.")
            return
        if not principal.scope.covers(access.scope):
            raise Refusal(403, f"Scope {principal.scope.value} cannot {method} {route}: that needs scope "
                               f"{access.scope.value} or more ({principal.name} has {principal.scope.value}).")
