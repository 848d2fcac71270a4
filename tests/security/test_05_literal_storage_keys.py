"""Requirement 5 of ``docs/security.md``:

    "Storage keys are built as prefix + id; no client text becomes an operator, a path or a
    pattern (Mongo ``{"$gt": ""}``, Redis glob characters, SQL quoting)."

Why it matters: the id comes from the client, and storages are query languages. Text spliced
into a Mongo filter can become ``{"$gt": ""}`` and match the first session of the collection; in
a Redis ``KEYS``/``SCAN`` pattern, ``*`` matches every session; in SQL, a quote ends the string
and ``%``/``_`` turn ``LIKE`` into a wildcard; a ``/`` or ``..`` walks out of a file store's
directory; a NUL truncates a key in C. Each of these turns "guess an id" into "name any
session". So the store hands the storage exactly one thing, the id it validated (or a keyed hash
of it, with ``storage_key_secret``), and each backend stores it under its namespace, literally.

The first two tests run through the ASGI and the WSGI middleware on every backend, and read the
backend raw (``tests.security._records``) to see the keys an operator would see. The injection
payloads never reach any storage at all (requirement 3), so they run on the counting memory one.
The storage conformance suite (``sessionkit.testing.ODD_KEYS``, requirement 22) proves each
backend stores hostile key text literally, should any ever reach it.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._records import stored_keys
from tests.security._support_ids import TRANSPORTS, WELL_FORMED, KeyRecorder, RawClient, Transport
from tests.web._support import Client, CountingStorage, MakeClient, make_store


@pytest.fixture(params=TRANSPORTS, ids=lambda t: t.source)
def transport(request: pytest.FixtureRequest) -> Transport:
    t: Transport = request.param
    return t


async def test_the_storage_is_handed_the_id_itself_and_holds_it_under_its_namespace(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    transport: Transport,
    request: pytest.FixtureRequest,
) -> None:
    recorder = KeyRecorder(storage)
    store = make_store(clock, recorder, key_lookup=transport.lookup)
    client = make_client(store)

    sid = (await transport.get(client, "/setid?user=ada")).text
    assert recorder.keys == [("create", sid)]
    assert stored_keys(storage, request) == [sid]  # raw: Redis prefix + id, Mongo _id, a row

    recorder.keys.clear()
    await transport.get(client, "/count", sid)
    assert recorder.keys == [("get", sid), ("replace_if", sid)]  # over the bytes it loaded

    recorder.keys.clear()
    reply = await transport.get(client, "/regenerate?then_k=v", sid)
    # at the save: the new record first (create-only, with the app's change), then the old taken
    (get, (op, new), take) = recorder.keys
    assert (get, op, take) == (("get", sid), "create", ("take", sid))
    assert WELL_FORMED.match(new) and new != sid
    if transport.source != "query":
        assert transport.issued(reply) == new
    assert stored_keys(storage, request) == [new]

    recorder.keys.clear()
    await transport.get(client, "/destroy", new)
    assert recorder.keys == [("get", new), ("delete", new)]
    assert stored_keys(storage, request) == []


async def test_ids_that_differ_by_case_or_by_a_wildcard_character_name_other_sessions(
    client: Client, store: Store, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Well-formed ids do reach the storage; each must match its own key and nothing else:
    no case-insensitive collation, no ``LIKE`` (``_`` is in the id alphabet), no regex."""
    victim = (await client.get("/setid?user=ada")).text
    swapped = victim.swapcase()
    if swapped == victim:  # an id of digits, '-' and '_' only: make one letter differ
        swapped = "a" + victim[1:]
    near = {
        "swapped-case": swapped,
        "last-as-underscore": victim[:-1] + ("_" if victim[-1] != "_" else "-"),
        "middle-as-underscore": victim[:21] + ("_" if victim[21] != "_" else "-") + victim[22:],
        "all-underscores": "_" * 43,
        "all-hyphens": "-" * 43,
    }
    for name, variant in near.items():
        assert store.is_valid_id(variant) and variant != victim, name
        storage.clear()
        reply = await client.get("/get?k=user", cookie=f"session_id={variant}")
        assert reply.text == "null", name
        assert storage.calls == {"get": 1}, name  # looked up, literally, and not found
    assert stored_keys(storage, request) == [victim]
    assert (await client.get("/get?k=user", cookie=f"session_id={victim}")).text == '"ada"'


#: Text that a backend would read as an operator, a pattern, a path or SQL; ``{victim}`` is a
#: live session's id, so a match would hand that session over.
PAYLOADS = {
    "mongo-gt": '{"$gt": ""}',
    "mongo-ne": '{"$ne": null}',
    "mongo-regex": '{"$regex": "^"}',
    "mongo-where": "$where",
    "redis-star": "*",
    "redis-victim-prefix-star": "{victim_head}*",
    "redis-question": "?" * 43,
    "redis-class": "[A-Za-z0-9_-]*",
    "redis-namespace": "sessionkit:*",
    "sql-quote": "' OR '1'='1",
    "sql-statement": "x'; DELETE FROM sessions; --",
    "sql-like-percent": "%" * 43,
    "sql-like-victim-percent": "{victim_head}%",
    "regex-dot": "{victim_head}.",
    "nul-truncation": "{victim}\x00anything",
    "path-traversal": "../../../../etc/passwd",
    "path-absolute": "/etc/passwd",
    "path-windows": "..\\..\\windows\\win.ini",
}


def _fill(template: str, victim: str) -> str:
    return template.replace("{victim_head}", victim[:-1]).replace("{victim}", victim)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
async def test_operator_pattern_path_and_sql_text_never_reaches_the_storage(
    kind: Literal["asgi", "wsgi"], clock: FakeClock, transport: Transport, payload: str
) -> None:
    store = make_store(clock, key_lookup=transport.lookup)
    storage = store.storage
    assert isinstance(storage, CountingStorage)
    client = RawClient(kind, store)
    victim = (await client.get("/setid", query="user=ada")).text
    value = _fill(payload, victim)
    storage.clear()

    if transport.source == "cookie":
        query, headers = "k=user", [("Cookie", f"session_id={value}")]
    elif transport.source == "header":
        query, headers = "k=user", [(transport.name, value)]
    else:
        query, headers = f"sid={quote(value, safe='')}&k=user", []
    reply = await client.get("/get", query=query, headers=headers)
    assert reply.status == 200 and reply.text == "null"
    assert storage.calls == {}


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize(
    "param",
    ["sid[$ne]=x", "sid[$gt]=", "sid[]={victim}", "sid[0]={victim}", "sid.$gt=", "SID={victim}"],
)
async def test_query_parameters_shaped_as_nested_operators_are_not_the_id(
    kind: Literal["asgi", "wsgi"], clock: FakeClock, param: str
) -> None:
    """``qs``-style parsers (Express, PHP) turn ``sid[$ne]=x`` into ``{"$ne": "x"}``; here the
    parameter named exactly ``sid`` is the only one read, as text."""
    store = make_store(clock, key_lookup="query:sid")
    storage = store.storage
    assert isinstance(storage, CountingStorage)
    client = RawClient(kind, store)
    victim = (await client.get("/setid", query="user=ada")).text
    storage.clear()
    reply = await client.get("/get", query=f"{_fill(param, victim)}&k=user")
    assert reply.status == 200 and reply.text == "null"
    assert storage.calls == {}
