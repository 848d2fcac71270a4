"""Requirement 3 of ``docs/security.md``:

    "A malformed id (too long, too short, outside the alphabet, control characters, several
    values) never reaches the storage, and never causes a 500."

Why it matters: the id is attacker-controlled input read on every request. Passed on to the
storage it becomes a lever: a query operator, a glob, an oversized key, a way to make every
anonymous request cost a round trip (or a crash) on the backend. An id sent twice is the mark
of cookie tossing: a sibling subdomain plants a second ``session_id`` and lenient parsers (the
last one wins, quotes stripped) pick the attacker's. The only safe reading is none at all: a
malformed id is treated as no id, before any storage call, and the request goes on with a fresh
session.

The malformed values go through a raw ASGI scope or WSGI environ (``RawClient``), because no
HTTP client library sends CR, LF or NUL in a header, while a lenient server may pass them on.
Since none of them may reach the storage, the storage is the counting memory one: the backend
plays no part. The last two tests (the store's own API, and malformed variants of a real id
among real traffic) run on every backend.
"""

from __future__ import annotations

import secrets
from typing import Literal
from urllib.parse import quote

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._support_ids import ID_LENGTH, TRANSPORTS, RawClient, Transport
from tests.web._support import Client, CountingStorage, make_store

VALID = "A" * ID_LENGTH

#: One value each, as a transport would carry it. All are malformed for a 43-character id.
MALFORMED = {
    "empty": "",
    "one-char-short": VALID[:-1],
    "one-char-long": VALID + "A",
    "twice-as-long": VALID * 2,
    "8-KiB": "A" * 8192,
    "plus": VALID[:-1] + "+",
    "slash": VALID[:-1] + "/",
    "padding": VALID[:-1] + "=",
    "dot": VALID[:-1] + ".",
    "percent-escape": VALID[:-3] + "%41",
    "quoted": f'"{VALID}"',  # lenient parsers unquote
    "inner-space": VALID[:20] + " " + VALID[21:],
    "tab": VALID[:-1] + "\t",
    "nul": VALID[:-1] + "\x00",
    "soh": "\x01" + VALID[1:],
    "del": VALID[:-1] + "\x7f",
    "cr": VALID[:-1] + "\r",
    "lf": VALID[:-1] + "\n",
    "crlf-header": VALID + "\r\nSet-Cookie: admin=1",
    "latin-1": VALID[:-1] + "\xe9",
    "nbsp": VALID[:-1] + "\xa0",
    "comma-list": VALID[:21] + "," + VALID[22:],
}

#: A well-formed id with control characters around it: still not an id. Only SP and HTAB may
#: surround a cookie value (RFC 6265 section 5.2 removes leading and trailing WSP, nothing else).
WRAPPED = {
    "lf-after": VALID + "\n",
    "cr-after": VALID + "\r",
    "vt-after": VALID + "\x0b",
    "ff-after": VALID + "\x0c",
    "us-before": "\x1f" + VALID,
    "nel-after": VALID + "\x85",
    "nbsp-after": VALID + "\xa0",
}

#: The same id sent more than once (``{sid}`` is a live session's id): even two equal,
#: well-formed copies count as no id.
REPEATED: dict[str, dict[str, list[tuple[str, str]] | str]] = {
    "cookie": {
        "one-header": [("Cookie", "session_id={sid}; session_id={sid}")],
        "two-headers": [("Cookie", "session_id={sid}"), ("Cookie", "session_id={sid}")],
        "other-first": [("Cookie", f"session_id={'B' * ID_LENGTH}; other=1; session_id={{sid}}")],
        "other-last": [("Cookie", f"session_id={{sid}}; other=1; session_id={'B' * ID_LENGTH}")],
    },
    "header": {
        "two-lines": [("X-Session-Id", "{sid}"), ("X-Session-Id", "{sid}")],
        "one-line-list": [("X-Session-Id", "{sid}, {sid}")],
    },
    "query": {"twice": "sid={sid}&sid={sid}", "blank-then-id": "sid=&sid={sid}"},
}

KINDS: tuple[Literal["asgi", "wsgi"], ...] = ("asgi", "wsgi")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> Literal["asgi", "wsgi"]:
    k: Literal["asgi", "wsgi"] = request.param
    return k


@pytest.fixture(params=TRANSPORTS, ids=lambda t: t.source)
def transport(request: pytest.FixtureRequest) -> Transport:
    t: Transport = request.param
    return t


def _memory_store(clock: FakeClock, transport: Transport) -> tuple[Store, CountingStorage]:
    store = make_store(clock, key_lookup=transport.lookup)
    storage = store.storage
    assert isinstance(storage, CountingStorage)
    return store, storage


def _presenting(transport: Transport, value: str) -> tuple[str, list[tuple[str, str]]]:
    """``(query, headers)`` carrying ``value`` as the id, through ``transport``."""
    if transport.source == "cookie":
        return "", [("Cookie", f"{transport.name}={value}")]
    if transport.source == "header":
        return "", [(transport.name, value)]
    # A query string arrives percent-encoded (UTF-8): the store sees the decoded value.
    return f"{transport.name}={quote(value, safe='')}", []


def _leaks(value: str, reply_headers: list[tuple[str, str]]) -> bool:
    return bool(value) and any(value in v for _, v in reply_headers)


async def _well_formed_control(client: RawClient, transport: Transport) -> None:
    """The same request with a well-formed id does read the storage: the tests below are not
    passing because the storage is never read at all."""
    query, headers = _presenting(transport, VALID)
    await client.get("/fresh", query=query, headers=headers)


@pytest.mark.parametrize("value", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_id_is_never_looked_up_and_the_session_is_fresh(
    kind: Literal["asgi", "wsgi"], clock: FakeClock, transport: Transport, value: str
) -> None:
    store, storage = _memory_store(clock, transport)
    client = RawClient(kind, store)
    query, headers = _presenting(transport, value)

    reply = await client.get("/fresh", query=query, headers=headers)
    assert reply.status == 200 and reply.text == "true"
    assert storage.calls == {}
    assert transport.issued(reply) is None  # read only: nothing handed out, nothing echoed

    await _well_formed_control(client, transport)
    assert storage.calls == {"get": 1}


@pytest.mark.parametrize("value", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_id_on_a_writing_route_gets_a_new_id_and_one_write(
    kind: Literal["asgi", "wsgi"], clock: FakeClock, transport: Transport, value: str
) -> None:
    store, storage = _memory_store(clock, transport)
    client = RawClient(kind, store)
    query, headers = _presenting(transport, value)
    path_query = f"{query}&k=1" if query else "k=1"

    reply = await client.get("/setid", query=path_query, headers=headers)
    assert reply.status == 200
    new = reply.text
    assert store.is_valid_id(new) and new != value
    assert storage.calls == {"create": 1}  # the new record only: no read, no write under the value
    if transport.source != "query":
        assert transport.issued(reply) == new
    assert not _leaks(value, reply.headers)


@pytest.mark.parametrize("value", list(WRAPPED.values()), ids=list(WRAPPED))
async def test_a_well_formed_id_wrapped_in_control_characters_is_never_looked_up(
    kind: Literal["asgi", "wsgi"], clock: FakeClock, transport: Transport, value: str
) -> None:
    store, storage = _memory_store(clock, transport)
    client = RawClient(kind, store)
    query, headers = _presenting(transport, value)
    reply = await client.get("/fresh", query=query, headers=headers)
    assert reply.status == 200 and reply.text == "true"
    assert storage.calls == {}


@pytest.mark.parametrize(
    ("source", "template"),
    [(source, sent) for source, cases in REPEATED.items() for sent in cases.values()],
    ids=[f"{source}-{case}" for source, cases in REPEATED.items() for case in cases],
)
async def test_an_id_sent_more_than_once_counts_as_no_id_even_when_it_is_live(
    kind: Literal["asgi", "wsgi"],
    clock: FakeClock,
    source: str,
    template: list[tuple[str, str]] | str,
) -> None:
    transport = next(t for t in TRANSPORTS if t.source == source)
    store, storage = _memory_store(clock, transport)
    client = RawClient(kind, store)
    sid = (await client.get("/setid", query="user=ada")).text  # a live session
    once_query, once_headers = _presenting(transport, sid)
    storage.clear()
    if isinstance(template, str):
        query, headers = template.format(sid=sid), []
    else:
        query, headers = "", [(k, v.format(sid=sid)) for k, v in template]

    reply = await client.get("/get", query=f"{query}&k=user", headers=headers)
    assert reply.status == 200 and reply.text == "null"
    assert storage.calls == {}
    # control: presented once, the same id loads the session
    reply = await client.get("/get", query=f"{once_query}&k=user", headers=once_headers)
    assert reply.text == '"ada"'


async def test_an_id_of_another_length_is_malformed_for_a_custom_generator(
    kind: Literal["asgi", "wsgi"], clock: FakeClock
) -> None:
    store = make_store(clock, key_generator=lambda: secrets.token_urlsafe(16))  # 22 characters
    storage = store.storage
    assert isinstance(storage, CountingStorage)
    client = RawClient(kind, store)
    for value in ("A" * 21, "A" * 23, VALID):  # the default length is wrong here too
        reply = await client.get("/fresh", headers=[("Cookie", f"session_id={value}")])
        assert reply.status == 200 and reply.text == "true"
    assert storage.calls == {}
    await client.get("/fresh", headers=[("Cookie", f"session_id={'A' * 22}")])
    assert storage.calls == {"get": 1}


@pytest.mark.parametrize("value", ["", "A" * 42, "A" * 44, VALID + "\n", '{"$gt": ""}', None, 42])
async def test_the_store_api_refuses_a_malformed_id_without_a_storage_call(
    store: Store, storage: CountingStorage, value: object
) -> None:
    assert store.get_by_id(value) is None  # type: ignore[arg-type]
    assert await store.aget_by_id(value) is None  # type: ignore[arg-type]
    store.delete(value)  # type: ignore[arg-type]
    await store.adelete(value)  # type: ignore[arg-type]
    assert storage.calls == {}


async def test_malformed_ids_among_real_traffic_write_only_server_ids(
    client: Client, store: Store, storage: CountingStorage
) -> None:
    """On every backend: a session made, then malformed variants of its own id presented."""
    sid = (await client.get("/setid?user=ada")).text
    storage.clear()
    for bad in (sid[:-1], sid + "A", sid[:-1] + "+", f'"{sid}"', f"{sid}; session_id={sid}"):
        reply = await client.get("/setid?user=eve", cookie=f"session_id={bad}")
        assert reply.status == 200 and reply.text != sid
        assert reply.cookie.value == reply.text
    assert storage.calls == {"create": 5}
    assert (await client.get("/get?k=user", cookie=f"session_id={sid}")).text == '"ada"'
