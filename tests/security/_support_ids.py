"""Helpers for the id and transport security tests (``test_01`` .. ``test_09``, the advisory
regressions and the fuzz test).

* :class:`Transport`: send an id the way one ``key_lookup`` reads it (cookie, header or query)
  and read back the id a response hands the client, so one test body covers all three.
* :class:`RawClient`: the web suite's test app under either middleware, driven with a raw ASGI
  scope or WSGI environ, for header bytes no HTTP client library will send (control
  characters, CR/LF, latin-1, a header line repeated) -- what a lenient server may pass on.
* :class:`KeyRecorder`: a ``CountingStorage`` that also records every key it is handed.
* :class:`RecordingGenerator`: a ``key_generator`` that remembers every id it made, so a test
  can tell a server-made id from anything else.
"""

from __future__ import annotations

import inspect
import re
import secrets
import string
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal
from wsgiref.util import setup_testing_defaults

import attrs

from sessionkit import Store
from sessionkit.asgi import SessionMiddleware as ASGISessionMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.web._support import Client, CountingStorage, Reply, asgi_app, wsgi_app

__all__ = [
    "ALPHABET",
    "ID_LENGTH",
    "LOOKUPS",
    "TRANSPORTS",
    "WELL_FORMED",
    "KeyRecorder",
    "RawClient",
    "RecordingGenerator",
    "Transport",
    "raw_client",
]

#: The characters of a server-made id (URL-safe base64) and the default id length (32 bytes).
ALPHABET = string.ascii_letters + string.digits + "-_"
ID_LENGTH = 43
#: A whole value that is a default-shaped id, judged independently of the library's own check.
WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}\Z")

LOOKUPS = ("cookie:session_id", "header:X-Session-Id", "query:sid")


@attrs.frozen
class Transport:
    """One ``key_lookup``: how a client presents an id, and where a response hands one back."""

    lookup: str

    @property
    def source(self) -> Literal["cookie", "header", "query"]:
        source = self.lookup.partition(":")[0]
        assert source in ("cookie", "header", "query")
        return source  # type: ignore[return-value]

    @property
    def name(self) -> str:
        return self.lookup.partition(":")[2]

    def request(self, path: str, sid: str | None) -> tuple[str, str | None, dict[str, str] | None]:
        """``(path, cookie, headers)`` for a ``Client.get`` presenting ``sid`` (``None``: none)."""
        if sid is None:
            return path, None, None
        if self.source == "cookie":
            return path, f"{self.name}={sid}", None
        if self.source == "header":
            return path, None, {self.name: sid}
        return f"{path}{'&' if '?' in path else '?'}{self.name}={sid}", None, None

    async def get(self, client: Client, path: str, sid: str | None = None) -> Reply:
        """``GET path`` presenting ``sid`` through this transport."""
        path, cookie, headers = self.request(path, sid)
        return await client.get(path, cookie=cookie, headers=headers)

    def issued(self, reply: Reply) -> str | None:
        """The id ``reply`` hands the client: the cookie's (``""`` when it expires it), the
        header's, or ``None`` when it hands none (always so for the query transport, where the
        application passes ``session.id`` on itself)."""
        if self.source == "cookie":
            cookies = [c for c in reply.cookies if c.name == self.name]
            assert len(cookies) <= 1, f"{len(cookies)} session cookies in one response"
            if not cookies:
                return None
            return "" if cookies[0].expired else cookies[0].value
        if self.source == "header":
            values = reply.header(self.name)
            assert len(values) <= 1, values
            return values[0] if values else None
        return None


TRANSPORTS = tuple(Transport(lookup) for lookup in LOOKUPS)


# -- raw requests -------------------------------------------------------------------------------


class RawClient:
    """The test app of ``tests.web._support`` under one middleware, called with raw headers.

    ``headers`` are latin-1 text, sent as given: repeated names stay separate lines under ASGI,
    and are joined under WSGI as a server would (``Cookie`` with ``"; "``, others with ``","``).
    ``query`` is the raw query string (its characters are sent as latin-1 bytes under ASGI).
    """

    def __init__(self, kind: Literal["asgi", "wsgi"], store: Store) -> None:
        self.kind = kind
        self.store = store
        self._asgi = ASGISessionMiddleware(asgi_app(store), store)
        self._wsgi = WSGISessionMiddleware(wsgi_app(store), store)

    async def get(
        self, path: str, *, query: str = "", headers: Iterable[tuple[str, str]] = ()
    ) -> Reply:
        if self.kind == "asgi":
            return await self._call_asgi(path, query, list(headers))
        return self._call_wsgi(path, query, list(headers))

    async def _call_asgi(self, path: str, query: str, headers: list[tuple[str, str]]) -> Reply:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await self._asgi(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Reply(
            start["status"],
            body.decode(),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())],
        )

    def _call_wsgi(self, path: str, query: str, headers: list[tuple[str, str]]) -> Reply:
        environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
        environ["QUERY_STRING"] = query
        for name, value in headers:
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in environ:
                joiner = "; " if key == "HTTP_COOKIE" else ","
                environ[key] = environ[key] + joiner + value
            else:
                environ[key] = value
        setup_testing_defaults(environ)
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> Any:
            started.append((status, list(response_headers)))
            return lambda data: None

        result = self._wsgi(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, response_headers = started[-1]
        return Reply(int(status.split()[0]), body.decode(), response_headers)


def raw_client(kind: Literal["asgi", "wsgi"], store: Store) -> RawClient:
    return RawClient(kind, store)


# -- recorders ------------------------------------------------------------------------------------


class KeyRecorder(CountingStorage):
    """A ``CountingStorage`` that also records ``(operation, key)`` for every keyed call."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.keys: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        counted = super().__getattr__(name)
        op = name[1:] if name[:1] == "a" and name[1:] in self.OPS else name
        keys = self.keys
        if inspect.iscoroutinefunction(counted):

            async def acall(*args: Any) -> Any:
                if args:
                    keys.append((op, args[0]))
                return await counted(*args)

            wrapper: Any = acall
        else:

            def call(*args: Any) -> Any:
                if args:
                    keys.append((op, args[0]))
                return counted(*args)

            wrapper = call
        setattr(self, name, wrapper)
        return wrapper


class RecordingGenerator:
    """A ``key_generator`` drawing 32 bytes from :mod:`secrets`, remembering every id it made."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self) -> str:
        sid = secrets.token_urlsafe(32)
        self.made.append(sid)
        return sid
