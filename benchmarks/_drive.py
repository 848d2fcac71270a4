"""In-process drivers: hand-built ASGI scopes and WSGI environs, no server, no sockets to the app.

What is timed is the framework plus its session layer and the storage round trips, nothing
else; every contender is driven by the same code, so the differences are theirs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any

ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Response:
    """Status, headers (lower-case names) and body of one in-process request."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def cookie(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == "set-cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value)
                if name in jar and jar[name].value:
                    return jar[name].value
        return None


def asgi_caller(app: ASGIApp) -> Callable[[str, str | None], Awaitable[Response]]:
    """Return ``call(path, cookie_header) -> Response`` driving ``app`` through one ASGI cycle."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call(path: str, cookie: str | None) -> Response:
        headers = [(b"host", b"bench.local")]
        if cookie is not None:
            headers.append((b"cookie", cookie.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1234),
            "server": ("bench.local", 80),
            "state": {},
        }
        status = 0
        out_headers: list[tuple[str, str]] = []
        body = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers.extend((k.decode().lower(), v.decode()) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await app(scope, receive, send)
        return Response(status, out_headers, b"".join(body))

    return call


def wsgi_caller(app: WSGIApp) -> Callable[[str, str | None], Response]:
    """Return ``call(path, cookie_header) -> Response`` driving ``app`` through one WSGI cycle."""
    import io
    import sys

    def call(path: str, cookie: str | None) -> Response:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "bench.local",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "bench.local",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REMOTE_ADDR": "127.0.0.1",
        }
        if cookie is not None:
            environ["HTTP_COOKIE"] = cookie
        captured: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            captured.append((int(status.split(" ", 1)[0]), [(k.lower(), v) for k, v in headers]))
            return lambda data: None

        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return Response(captured[0][0], captured[0][1], body)

    return call


def median_us(samples: list[int]) -> float:
    """Median of nanosecond samples, in microseconds."""
    return statistics.median(samples) / 1000.0


def time_sync(fn: Callable[[], Any], n: int, warmup: int) -> list[int]:
    """Run ``fn`` ``warmup`` times untimed, then ``n`` times, timing each call in ns."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def time_async(
    loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[Any]], n: int, warmup: int
) -> list[int]:
    """Async twin of :func:`time_sync`, all iterations inside one running loop."""

    async def run() -> list[int]:
        for _ in range(warmup):
            await fn()
        clock = time.perf_counter_ns
        out = []
        for _ in range(n):
            t0 = clock()
            await fn()
            out.append(clock() - t0)
        return out

    return loop.run_until_complete(run())
