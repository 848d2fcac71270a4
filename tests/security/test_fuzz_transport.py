"""Hypothesis fuzzing of how the middlewares read a session id (security requirements 2-4, 7).

Whatever a client puts in its ``Cookie`` header, its id header or its query string -- latin-1
text with control characters, ``;``, ``=`` and quotes, the same cookie many times, values of
8-64 KiB, ids one character too long or too short or with one character outside the alphabet,
repeated query parameters, percent-encoded unicode -- these properties hold, through the ASGI
and the WSGI middleware:

* the response is never a 5xx (the test app itself never fails);
* the storage is called only when the request carries exactly one well-formed id (judged here,
  independently of the library), and then only to read it: a request whose id is malformed and
  whose route does not write makes no storage call at all (``storage.calls == {}``);
* no id the client sent is ever handed back: a route that writes gets a new server-made id in
  ``Set-Cookie`` (or the id header), and the query transport never sets a cookie.

Requests are raw ASGI scopes and WSGI environs (``RawClient``): no HTTP client library sends
these bytes, but a lenient server may pass them on. Malformed ids never reach a storage, so
most tests run on the counting memory storage, built inside the test; the last one sends
well-formed unknown ids to every backend.

A well-formed id wrapped in control characters is left out of the generators here: it is pinned
by ``test_03_malformed_ids.py::test_a_well_formed_id_wrapped_in_control_characters_is_never_looked_up``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._support_ids import ALPHABET, ID_LENGTH, WELL_FORMED, RawClient
from tests.web._support import CountingStorage, Reply, make_store

Kind = Literal["asgi", "wsgi"]
KINDS: tuple[Kind, ...] = ("asgi", "wsgi")

FUZZ = settings(
    deadline=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies -----------------------------------------------------------------------------------

latin1 = st.characters(codec="latin-1")
#: Latin-1 characters that are not in the id alphabet: controls, separators, quotes, accents.
outside = latin1.filter(lambda c: c not in ALPHABET)
valid_ids = st.text(alphabet=ALPHABET, min_size=ID_LENGTH, max_size=ID_LENGTH)


def _not_an_id(text: str) -> bool:
    """Whether ``text`` is no well-formed id, even once a lenient reader strips it."""
    return not WELL_FORMED.match(text.strip())


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """An id that is almost right: the kinds of malformed value requirement 3 names."""
    sid = draw(valid_ids)
    i = draw(st.integers(0, ID_LENGTH - 1))
    value = draw(
        st.sampled_from(
            [
                sid[:-1],  # one too short
                sid + sid[0],  # one too long
                sid[: draw(st.integers(0, ID_LENGTH - 2))],  # much too short
                sid + draw(st.text(ALPHABET, min_size=1, max_size=40)),  # too long
                sid[:i] + draw(outside) + sid[i + 1 :],  # one character outside the alphabet
                f'"{sid}"',  # quoted, as lenient parsers unquote
                sid[:i] + draw(st.sampled_from(';=",\\')) + sid[i:],  # a separator inside
                "",
            ]
        )
    )
    assert _not_an_id(value), value
    return value


junk = st.text(latin1, max_size=60).filter(_not_an_id)
#: Junk that cannot smuggle in a cookie of the watched name (``x;session_id=...``).
nameless_junk = junk.filter(lambda j: "session_id" not in j)
cookie_names = st.sampled_from(
    ["other", "Session_Id", "session_idx", "xsession_id", "s", "__Host-x"]
)


@st.composite
def cookie_lines(draw: st.DrawFn) -> tuple[list[str], bool, list[str]]:
    """Cookie header lines; whether they carry exactly one ``session_id``, well formed; and
    every value sent under that name."""
    parts: list[str] = []
    sent: list[str] = []
    good = 0
    for kind in draw(st.lists(st.sampled_from(["near", "valid", "other", "junk"]), max_size=8)):
        if kind == "near":
            value = draw(near_misses())
        elif kind == "valid":
            value = draw(valid_ids)
            good += 1
        if kind in ("near", "valid"):
            sent.append(value)
            parts.append(f"{draw(st.sampled_from(['', ' ']))}session_id={value}")
        elif kind == "other":
            parts.append(f"{draw(cookie_names)}={draw(st.one_of(valid_ids, nameless_junk))}")
        else:
            parts.append(draw(nameless_junk))
    separators = [draw(st.sampled_from(["; ", ";", ";;", " ; "])) for _ in parts]
    joined = "".join(p + s for p, s in zip(parts, separators, strict=True))
    lines = [joined] if joined else []
    if len(parts) > 1 and draw(st.booleans()):
        cut = draw(st.integers(1, len(parts) - 1))  # the same cookies over two header lines
        lines = ["; ".join(parts[:cut]), "; ".join(parts[cut:])]
    return lines, good == 1 and len(sent) == 1, sent


def _store(key_lookup: str = "cookie:session_id") -> tuple[Store, CountingStorage]:
    """A store on a counting memory storage, finding the id by ``key_lookup``."""
    store = make_store(FakeClock(1_800_000_000.0), key_lookup=key_lookup)
    storage = store.storage
    assert isinstance(storage, CountingStorage)
    return store, storage


async def _visit(
    kind: Kind, store: Store, writes: bool, query: str = "", headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    """One request, answered 200: ``/setid`` (which writes ``a=1``) if ``writes``, else the
    read-only ``/fresh``."""
    if writes:
        query = f"{query}&a=1" if query else "a=1"
    reply = await RawClient(kind, store).get(
        "/setid" if writes else "/fresh", query=query, headers=headers
    )
    assert reply.status == 200
    return reply


def _assert_storage(storage: CountingStorage, one_good_id: bool, writes: bool) -> None:
    expected = {"get": 1} if one_good_id else {}
    if writes:
        expected["create"] = 1
    assert storage.calls == expected


# -- cookie ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(cookies=cookie_lines(), writes=st.booleans())
async def test_fuzzed_cookie_headers(
    kind: Kind, cookies: tuple[list[str], bool, list[str]], writes: bool
) -> None:
    lines, one_good, sent = cookies
    store, storage = _store()
    reply = await _visit(kind, store, writes, headers=[("Cookie", line) for line in lines])
    _assert_storage(storage, one_good, writes)
    if writes:
        (line,) = reply.header("set-cookie")
        assert line.startswith(f"session_id={reply.text};") and store.is_valid_id(reply.text)
        assert reply.text not in sent  # a new server id, never one the client sent
    else:
        assert reply.text == "true" and reply.header("set-cookie") == []


#: Raw header text: latin-1 runs mixed with the pieces a cookie header is made of.
header_text = st.lists(
    st.one_of(
        st.text(latin1, max_size=60),
        st.sampled_from(["session_id", "session_id=", "=", ";", " ", "\t", '"', ",", "\r\n"]),
        valid_ids,
    ),
    max_size=12,
).map("".join)


@pytest.mark.parametrize("kind", KINDS)
@settings(FUZZ, max_examples=300)
@given(header=header_text)
async def test_arbitrary_cookie_header_text(kind: Kind, header: str) -> None:
    """Little structure: the storage may only ever be asked about a literal 43-character run of
    the alphabet, and only in a header naming ``session_id``; and only read, never written."""
    store, storage = _store()
    reply = await _visit(kind, store, False, headers=[("Cookie", header)])
    assert reply.text == "true"
    assert reply.header("set-cookie") == []
    if "session_id" in header and ID_LENGTH in map(len, _alphabet_runs(header)):
        assert storage.calls in ({}, {"get": 1})
    else:
        assert storage.calls == {}


def _alphabet_runs(text: str) -> list[str]:
    """The maximal runs of id-alphabet characters in ``text``."""
    runs, current = [], ""
    for c in text:
        if c in ALPHABET:
            current += c
        else:
            runs.append(current)
            current = ""
    return [*runs, current]


# -- header ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(
    values=st.lists(st.one_of(near_misses(), valid_ids, junk), max_size=4),
    writes=st.booleans(),
)
async def test_fuzzed_id_headers(kind: Kind, values: list[str], writes: bool) -> None:
    store, storage = _store("header:X-Session-Id")
    reply = await _visit(kind, store, writes, headers=[("X-Session-Id", v) for v in values])
    one_good = len(values) == 1 and bool(WELL_FORMED.match(values[0]))
    _assert_storage(storage, one_good, writes)
    if writes:
        assert reply.header("x-session-id") == [reply.text] and store.is_valid_id(reply.text)
        assert reply.text not in values
    else:
        assert reply.text == "true" and reply.header("x-session-id") == []
    assert reply.header("set-cookie") == []


# -- query ----------------------------------------------------------------------------------------

query_names = st.sampled_from(["sid", "sid", "sid", "SID", "sid[]", "sid[$ne]", "s", "sid "])
query_values = st.one_of(
    near_misses(),
    valid_ids,
    st.text(st.characters(exclude_categories=["Cs"]), max_size=50).filter(_not_an_id),
).filter(lambda v: v.isascii() or not v.isdigit())  # the test app stores digits as int()


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(
    params=st.lists(st.tuples(query_names, query_values), max_size=6),
    raw=st.booleans(),
    writes=st.booleans(),
)
async def test_fuzzed_query_strings(
    kind: Kind, params: list[tuple[str, str]], raw: bool, writes: bool
) -> None:
    # Percent-encoded UTF-8, as browsers send; or with the characters a query may carry raw.
    safe = "=;/?:@$,[]*'\"!~()" if raw else ""
    query = "&".join(f"{quote(k, safe=safe)}={quote(v, safe=safe)}" for k, v in params)
    store, storage = _store("query:sid")
    reply = await _visit(kind, store, writes, query)
    sent = [v for k, v in params if k == "sid"]
    one_good = len(sent) == 1 and bool(WELL_FORMED.match(sent[0]))
    _assert_storage(storage, one_good, writes)
    assert reply.header("set-cookie") == []  # requirement 4: never a cookie
    if writes:
        assert store.is_valid_id(reply.text) and reply.text not in sent
    else:
        assert reply.text == "true"


# -- huge values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@settings(FUZZ, max_examples=25)
@given(
    size=st.integers(8 * 1024, 64 * 1024),
    fill=st.sampled_from(["A", "-", "%", ";", "\x00", "\xff", "session_id="]),
    source=st.sampled_from(["cookie", "header", "query", "cookie-beside-a-valid-id"]),
    valid=valid_ids,
)
async def test_huge_values_cost_nothing(
    kind: Kind, size: int, fill: str, source: str, valid: str
) -> None:
    value = (fill * (size // len(fill) + 1))[:size]
    lookup = {"header": "header:X-Session-Id", "query": "query:sid"}.get(
        source, "cookie:session_id"
    )
    store, storage = _store(lookup)
    headers: list[tuple[str, str]] = []
    query = ""
    if source == "cookie":
        headers = [("Cookie", f"session_id={value}")]
    elif source == "cookie-beside-a-valid-id":  # two values: no id, however valid one of them
        headers = [("Cookie", f"session_id={valid}; session_id={value}")]
    elif source == "header":
        headers = [("X-Session-Id", value)]
    else:
        query = f"sid={quote(value, safe='')}"
    reply = await _visit(kind, store, False, query, headers)
    assert reply.text == "true"
    assert storage.calls == {}
    assert reply.header("set-cookie") == [] and reply.header("x-session-id") == []


# -- well-formed unknown ids, on every backend ----------------------------------------------------


@pytest.mark.parametrize("lookup", ["cookie:session_id", "header:X-Session-Id", "query:sid"])
@pytest.mark.parametrize("kind", KINDS)
@settings(
    FUZZ,
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sid=valid_ids)
async def test_well_formed_unknown_ids_are_read_once_and_never_adopted(
    storage: CountingStorage, clock: FakeClock, kind: Kind, lookup: str, sid: str
) -> None:
    store = make_store(clock, storage, key_lookup=lookup)
    client = RawClient(kind, store)
    source, _, name = lookup.partition(":")
    headers: list[tuple[str, str]] = []
    query = "a=1"
    if source == "cookie":
        headers = [("Cookie", f"{name}={sid}")]
    elif source == "header":
        headers = [(name, sid)]
    else:
        query = f"{name}={sid}&a=1"
    storage.clear()
    reply = await client.get("/setid", query=query, headers=headers)
    assert reply.status == 200
    assert reply.text != sid and store.is_valid_id(reply.text)
    assert storage.calls == {"get": 1, "create": 1}
    assert store.get_by_id(sid) is None
