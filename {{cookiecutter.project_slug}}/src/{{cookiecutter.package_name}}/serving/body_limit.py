"""Request bodies over a size limit get a 413 before they are read whole: a declared
Content-Length is checked before the app runs, and a body without one (chunked) is
counted as it streams in and refused as soon as the count passes the limit."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_detail(max_bytes: int) -> str:
    return (
        f"request body over {max_bytes} bytes (serve.max_body_bytes): send fewer rows per "
        "request, or raise serve.max_body_bytes in service.yaml"
    )


class BodyLimit:
    """ASGI middleware: at most `max_bytes` of request body, else 413 {"detail": ...}."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            answer = JSONResponse({"detail": too_large_detail(self.max_bytes)}, status_code=413)
            await answer(scope, receive, send)
            return
        if declared is not None:
            # The server reads no more than Content-Length says.
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI re-raises an HTTPException from reading the body, so the app's
                # handler answers it like any other (a 413 with its detail).
                raise HTTPException(413, too_large_detail(self.max_bytes))
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
