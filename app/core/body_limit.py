"""JSON answers for over-long request bodies.

The limits themselves are Starlette's (`max_body_size`: Content-Length checked up front, streamed
bytes counted while reading); its 413 is plain text, and this middleware rewrites that one answer
into the API's `{"detail": …}` form.
"""

import json

from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_detail(limit: int | None) -> str:
    if limit is None:
        return "The request body is too large."
    return f"The request body is larger than the limit of {limit} bytes."


class JSONBodyLimitErrors:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: Message | None = None

        async def send_json(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"text/plain"):
                    held = message
                    return
            if held is not None and message["type"] == "http.response.body":
                held = None
                key = "error" if scope["path"] == "/v2" or scope["path"].startswith("/v2/") else "detail"  # the OIP's form
                body = json.dumps({key: too_large_detail(scope.get(MAX_BODY_SIZE_SCOPE_KEY))}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_json)
