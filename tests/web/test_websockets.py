"""WebSockets under the ASGI middleware (issue 21): the session is loaded for ``websocket``
scopes with the same id rules as HTTP, is never saved on its own (no response carries a
cookie), and is written by an explicit ``await session.asave()``; on every backend. (WSGI and
Flask have no WebSockets.)
"""

from __future__ import annotations

from typing import Any

from sessionkit import Session, Store
from sessionkit.asgi import SessionMiddleware
from sessionkit.testing import FakeClock
from tests.web._support import CountingStorage, make_store


class Socket:
    """One WebSocket connection through the middleware, the app running ``handler``."""

    def __init__(self, store: Store) -> None:
        self.sessions: list[Session] = []
        self.closed: list[int] = []
        self.save = False

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            session = scope["session"]
            self.sessions.append(session)
            session["seen"] = session.get("seen", 0) + 1
            if self.save:
                await session.asave()
            await send({"type": "websocket.close", "code": 1000})

        self.app = SessionMiddleware(app, store)

    async def connect(
        self, headers: list[tuple[bytes, bytes]], query: bytes = b""
    ) -> Session | None:
        before = len(self.sessions)

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.close":
                self.closed.append(message["code"])

        scope = {"type": "websocket", "path": "/ws", "query_string": query, "headers": headers}
        await self.app(scope, receive, send)
        return self.sessions[-1] if len(self.sessions) > before else None


def _stored(store: Store, seen: int) -> str:
    session = store.load(None)
    session["seen"] = seen
    session.save()
    return session.id


async def test_a_websocket_reads_its_session_and_writes_only_through_asave(
    store: Store, storage: CountingStorage
) -> None:
    sid = _stored(store, 1)
    socket = Socket(store)
    cookie = [(b"cookie", f"session_id={sid}".encode())]
    storage.clear()
    session = await socket.connect(cookie)
    assert session is not None and session.id == sid and not session.fresh
    assert storage.writes == 0  # changed, but never saved on its own
    assert store.get_by_id(sid)["seen"] == 1  # type: ignore[index]
    socket.save = True
    await socket.connect(cookie)
    assert store.get_by_id(sid)["seen"] == 2  # type: ignore[index]


async def test_websocket_ids_follow_the_http_rules(store: Store, storage: CountingStorage) -> None:
    sid = _stored(store, 1)
    socket = Socket(store)
    socket.save = True
    storage.clear()
    for bad in (sid[:-1], sid + "x", f"{sid}; session_id={sid}"):
        session = await socket.connect([(b"cookie", f"session_id={bad}".encode())])
        assert session is not None and session.fresh and session.id != sid
    assert storage.reads == 0  # malformed or repeated: never looked up
    planted = "P" * 43
    session = await socket.connect([(b"cookie", f"session_id={planted}".encode())])
    assert session is not None and session.fresh and session.id != planted  # never adopted
    assert store.get_by_id(planted) is None


async def test_a_websocket_finds_its_id_through_a_chain(
    clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, key_lookup="cookie:session_id,header:X-Session-Id,query:sid")
    sid = _stored(store, 5)
    socket = Socket(store)
    by_header = await socket.connect([(b"x-session-id", sid.encode())])
    by_query = await socket.connect([], query=f"sid={sid}".encode())
    assert by_header is not None and by_header.id == sid
    assert by_query is not None and by_query.id == sid


async def test_a_websocket_whose_load_fails_is_closed_with_1011(
    store: Store, storage: CountingStorage
) -> None:
    sid = _stored(store, 1)
    socket = Socket(store)
    storage.down = True
    assert await socket.connect([(b"cookie", f"session_id={sid}".encode())]) is None
    assert socket.closed == [1011]  # the handshake is refused, the app never ran
