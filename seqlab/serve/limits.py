"""What the server accepts, and how it refuses the rest.

:class:`ServeLimits` holds the limits (each a ``seqlab serve`` option); :class:`InFlight` counts
the requests being decoded and refuses new ones past its limit with 503 and ``Retry-After``;
:class:`BodyLimit` is an ASGI middleware that answers 413 to a body larger than the limit, whether
it announces its length or not.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ApiError", "BodyLimit", "InFlight", "ServeLimits", "error_body"]


@dataclass(frozen=True, kw_only=True)
class ServeLimits:
    """Limits of one server (defaults suit a laptop serving small models to a few users).

    Attributes:
        max_body_bytes: largest request body.
        max_input_tokens: longest text, in source tokens (also capped by each model's positions).
        max_new_tokens: the most tokens a request may ask to generate.
        max_texts: texts in one ``/v1/translate`` request.
        max_in_flight: requests decoding or waiting at once; past it 503 with ``Retry-After``.
        max_conversations: conversations remembered (the least recently used is forgotten first).
        max_history_turns: turns kept per conversation (the oldest go first).
        conversation_ttl: seconds after its last message a conversation is forgotten.
    """

    max_body_bytes: int = 64 * 1024
    max_input_tokens: int = 256
    max_new_tokens: int = 256
    max_texts: int = 64
    max_in_flight: int = 128
    max_conversations: int = 1000
    max_history_turns: int = 16
    conversation_ttl: float = 1800.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"serve limit {name} must be positive, got {value}")


class ApiError(Exception):
    """A request the server refuses: HTTP ``status``, a message saying what was wrong."""

    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.headers = status, message, param, kind, headers


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """The JSON error every refusal carries (OpenAI's shape, so its clients show the message)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class InFlight:
    """Counts requests in progress; :meth:`slot` refuses one past ``limit`` (503, Retry-After: 1).

    Only the event loop's thread touches the count, so it needs no lock.
    """

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def acquire(self) -> None:
        if self.count >= self.limit:
            raise ApiError(503, f"the server is busy ({self.limit} requests in flight); retry shortly",
                           kind="server_busy", headers={"Retry-After": "1"})
        self.count += 1

    def release(self) -> None:
        self.count -= 1

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


class BodyLimit:
    """ASGI middleware: 413 with a JSON error for a request body over ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading; a body without one is
    counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def _refuse(self, send) -> None:
        body = json.dumps(error_body(f"request body larger than the limit of {self.limit} bytes",
                                     code="body_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        # Read the whole body first (it is small by definition), counting; the app gets it replayed.
        messages, received = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.limit:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
