"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

Cheap on purpose: one ``GET`` line and a few headers out, a status line, headers and a
``Content-Length`` body in, no redirects, no cookies of its own (the virtual client keeps its
jar). httpx costs about three times as much CPU per request, which on a 2-core machine would be
taken from the servers under test. A connection the server closes (``Connection: close``, as
gunicorn's sync workers answer) is reopened for the next request; one idle longer than
``IDLE_REOPEN`` seconds is reopened before use, so a request never races the server's
keep-alive timeout (uvicorn's is 5 s, gunicorn's 2 s).
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Connection", "HTTPError", "Response"]

IDLE_REOPEN = 1.5


class HTTPError(Exception):
    """A response the client cannot parse."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def set_cookies(self) -> list[str]:
        return self.header("set-cookie")


class Connection:
    """One keep-alive connection to ``127.0.0.1:port``, opened on demand."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def get(self, path: str, cookie: str | None = None) -> Response:
        if self._writer is not None and time.monotonic() - self._used > IDLE_REOPEN:
            self.close()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        lines = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if cookie:
            lines += f"Cookie: {cookie}\r\n"
        writer.write(f"{lines}\r\n".encode("latin-1"))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status, headers, length, close = _parse_head(head)
            body = await reader.readexactly(length) if length else b""
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        self._used = time.monotonic()
        return Response(status, headers, body)

    def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]], int, bool]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HTTPError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers: list[tuple[str, str]] = []
    length = 0
    close = parts[0] == "HTTP/1.0"
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers.append((name, value))
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.lower() == "close"
        elif name == "transfer-encoding":
            raise HTTPError(f"unexpected transfer-encoding {value!r}")
    return status, headers, length, close
