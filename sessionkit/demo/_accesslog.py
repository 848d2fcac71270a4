"""One line per request on stderr while the demo runs: ``GET / 200 3.1 ms``.

Watching the requests go by (the 303 after each form, the page that follows) is half of what
the demo shows. uvicorn's own access log is left off: it is configured through logging, and
prints the client's address, which a demo on a shared machine has no use for.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

__all__ = ["AccessLog", "format_line"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

#: Characters of a path shown as they are; anything else (a space, a control character, a
#: newline that would forge a second log line) is percent-encoded back.
_SAFE = "/:@!$&'()*+,;=-._~"


def format_line(method: str, path: str, status: int, seconds: float) -> str:
    """``GET /cart 303 1.2 ms``. The query string is never shown: a deployment configured
    with ``key_lookup="query:NAME"`` carries the session id there."""
    return f"{method} {quote(path, safe=_SAFE)} {status} {seconds * 1000:.1f} ms"


class AccessLog:
    """ASGI middleware writing :func:`format_line` for each HTTP request once it is answered
    (or failed: status 500 if no response was started)."""

    def __init__(self, app: ASGIApp, write: Callable[[str], None] | None = None) -> None:
        self.app = app
        self._write = write or _to_stderr

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - start
            self._write(format_line(scope["method"], scope["path"], status, elapsed))


def _to_stderr(line: str) -> None:
    # sys.stderr is looked up at each call: a test capturing it, or a redirected one, gets it.
    print(line, file=sys.stderr, flush=True)
