"""Values and settings that used to be accepted and then failed later, in another step.

Each case was accepted where it was given (a ``Config`` field, ``session.set()``, a stored
record) and broke something further on: a 500 after the record was written, a response whose
framing or redirect the session id took over, a bare ``ValueError`` at save time in a later
request, a stored time that never expires. Each is now refused where it enters, with the
library's own error (api.md "Config"; security.md 10, 14, 15).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import Config, ConfigError, Store
from sessionkit._config import MAX_LIFETIME
from sessionkit.wsgi import SessionMiddleware

DIGITS = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
needs_int_limit = pytest.mark.skipif(not DIGITS, reason="no int-to-text limit on this Python")

# -- lifetimes: at most 400 days ----------------------------------------------------------------


def _wsgi_write(store: Store) -> tuple[str, dict[str, str]]:
    """One request through the WSGI middleware that writes the session; status and headers."""
    got: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessionkit.session"]["k"] = 1
        start_response("200 OK", [])
        return [b""]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": ""}
    b"".join(SessionMiddleware(app, store)(environ, start_response))
    return got["status"], got["headers"]


def test_max_lifetime_is_the_browsers_400_day_cookie_cap() -> None:
    assert timedelta(days=400) == MAX_LIFETIME


@pytest.mark.parametrize("field", ["expiration", "absolute_timeout"])
@pytest.mark.parametrize(
    "lifetime",
    [MAX_LIFETIME + timedelta(microseconds=1), timedelta(days=365 * 8000), timedelta.max],
    ids=["400-days-and-1-us", "8000-years", "timedelta-max"],
)
def test_lifetime_beyond_400_days_is_a_config_error_naming_the_field(
    field: str, lifetime: timedelta
) -> None:
    """Before, an 8000-year expiration was accepted; every write then stored its record and
    failed rendering the cookie's Expires date (year out of range): a 500 after the write."""
    fields: dict[str, Any] = {field: lifetime}
    with pytest.raises(ConfigError, match=r"at most 400 days.*RFC 6265bis") as info:
        Store(**fields)
    assert info.value.field == field


def test_a_400_day_lifetime_saves_and_renders_its_cookie() -> None:
    assert Config(expiration=MAX_LIFETIME, absolute_timeout=MAX_LIFETIME)
    store = Store(expiration=MAX_LIFETIME)
    status, headers = _wsgi_write(store)
    assert status == "200 OK"
    assert f"Max-Age={int(MAX_LIFETIME.total_seconds())}" in headers["set-cookie"]
    assert len(store.storage) == 1  # type: ignore[arg-type]


def test_set_expiry_beyond_400_days_fails_at_the_call_writing_nothing() -> None:
    store = Store()
    session = store.load(None)
    session["k"] = 1
    with pytest.raises(ValueError, match="400 days"):
        session.set_expiry(MAX_LIFETIME + timedelta(seconds=1))
    session.set_expiry(MAX_LIFETIME)  # the bound itself is fine, and survives a reload
    session.save()
    reloaded = store.get_by_id(session.id)
    assert reloaded is not None and reloaded.expiry == MAX_LIFETIME


# -- key_lookup: no header with a meaning of its own ---------------------------------------------

#: The headers whose takeover does the most harm: framing (a second length or transfer coding
#: splits the response), and what the browser acts on (a redirect, a cookie). The full set is
#: ``_config._FORBIDDEN_HEADERS``; these must stay in it.
FORBIDDEN_HEADERS = [
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "host",
    "cookie",
    "set-cookie",
    "location",
    "content-type",
    "vary",
]


@pytest.mark.parametrize("name", FORBIDDEN_HEADERS)
def test_header_with_its_own_meaning_cannot_carry_the_id(name: str) -> None:
    """Written into Content-Length or Transfer-Encoding the id breaks the response's framing;
    into Location or Set-Cookie it takes over a redirect or a cookie. Refused in any case."""
    for spelling in (name, name.upper(), name.title()):
        with pytest.raises(ConfigError, match="cannot carry the session id") as info:
            Config(key_lookup=f"header:{spelling}")
        assert info.value.field == "key_lookup"


def test_headers_of_ones_own_and_other_transports_are_still_accepted() -> None:
    assert Config(key_lookup="header:X-Session").lookup.name == "X-Session"
    assert Config(key_lookup="header:X-Content-Length").lookup.source == "header"
    # Only a header is written into a response: a cookie or a query parameter may be so named.
    assert Config(key_lookup="cookie:location").lookup.source == "cookie"
    assert Config(key_lookup="query:host").lookup.source == "query"


# -- ints too long to become text: refused at set() ----------------------------------------------


@dataclasses.dataclass
class Counter:
    n: int


@pytest.fixture
def int_limit() -> Iterator[None]:
    """Restore the interpreter-wide int-to-text limit a test changes."""
    yield
    if DIGITS:
        sys.set_int_max_str_digits(DIGITS)


@needs_int_limit
@pytest.mark.parametrize(
    "value",
    [
        10**DIGITS,
        -(10**DIGITS),
        10**5000,
        [1, 10**DIGITS],
        (10**DIGITS,),
        {10**DIGITS},
        {"n": 10**DIGITS},
        {"a": [{"b": (1, 10**DIGITS)}]},
        Counter(10**DIGITS),
    ],
    ids=[
        "limit+1",
        "negative",
        "5001-digits",
        "in-list",
        "in-tuple",
        "in-set",
        "in-dict",
        "deep",
        "registered-type",
    ],
)
def test_int_too_long_for_text_fails_at_set_naming_the_limit(value: Any) -> None:
    """Before, ``set()`` accepted it and the save failed later with Python's bare ValueError
    ("Exceeds the limit (4300 digits) for integer string conversion"): a 500 in another step."""
    store = Store()
    store.register_type(Counter)
    session = store.load(None)
    with pytest.raises(TypeError, match=rf"more than {DIGITS} decimal digits"):
        session.set("n", value)
    assert "n" not in session and not session.modified


@needs_int_limit
def test_int_at_the_limit_round_trips() -> None:
    store = Store()
    session = store.load(None)
    biggest = 10**DIGITS - 1
    session["n"] = [biggest, -biggest, {"m": biggest}]
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded["n"] == [biggest, -biggest, {"m": biggest}]


@needs_int_limit
def test_int_grown_after_set_fails_the_save_with_the_same_error_writing_nothing() -> None:
    store = Store()
    session = store.load(None)
    numbers = [1]
    session["numbers"] = numbers
    numbers.append(10**DIGITS)  # mutated after set(): found when the save encodes it
    with pytest.raises(TypeError, match="decimal digits"):
        session.save()
    assert len(store.storage) == 0  # type: ignore[arg-type]


@needs_int_limit
@pytest.mark.usefixtures("int_limit")
def test_no_int_limit_means_no_refusal() -> None:
    sys.set_int_max_str_digits(0)
    store = Store()  # reads the limit when it is built
    session = store.load(None)
    session["n"] = [10**5000]
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded["n"] == [10**5000]


def test_bool_and_small_ints_are_untouched() -> None:
    store = Store()
    session = store.load(None)
    session["v"] = {"t": True, "f": False, "n": [0, -1, 2**62, 2**200], "z": 0}
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None
    assert loaded["v"] == {"t": True, "f": False, "n": [0, -1, 2**62, 2**200], "z": 0}
    assert type(loaded["v"]["t"]) is bool


# -- stored envelopes: finite times, a lifetime in (0, 400 days] --------------------------------

NOW = 1_700_000_000.0


def _plant(store: Store, header: str) -> str:
    sid = store.new_id()
    store.storage.set(
        store.storage_key(sid), f'{{"v":1,{header},"d":{{"user":"admin"}}}}'.encode(), None
    )
    return sid


BAD_ENVELOPES = {
    "all-nan": '"c":NaN,"t":NaN,"l":null',
    "saved-nan": f'"c":{NOW},"t":NaN,"l":null',
    "created-nan": f'"c":NaN,"t":{NOW},"l":null',
    "saved-infinity": f'"c":{NOW},"t":Infinity,"l":null',
    "created-minus-infinity": f'"c":-Infinity,"t":{NOW},"l":null',
    "lifetime-nan": f'"c":{NOW},"t":{NOW},"l":NaN',
    "lifetime-infinity": f'"c":{NOW},"t":{NOW},"l":Infinity',
    "lifetime-int-zero": f'"c":{NOW},"t":{NOW},"l":0',
    "lifetime-zero": f'"c":{NOW},"t":{NOW},"l":0.0',
    "lifetime-negative": f'"c":{NOW},"t":{NOW},"l":-60',
    "created-int-beyond-float": f'"c":1{"0" * 400},"t":{NOW},"l":null',
    "lifetime-true": f'"c":{NOW},"t":{NOW},"l":true',  # refused before too: bool is no number
}


@pytest.mark.parametrize("header", BAD_ENVELOPES.values(), ids=BAD_ENVELOPES.keys())
def test_stored_envelope_with_a_time_no_clock_holds_is_a_lost_session(
    header: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A NaN time never compares as expired (the repro's record was adopted in 2096); a
    lifetime of 1e300 made every later save raise OverflowError. Both are malformed records:
    absent to the store, logged at WARNING."""
    store = Store(clock=lambda: NOW)
    sid = _plant(store, header)
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert store.get_by_id(sid) is None
    assert "unreadable session" in caplog.text


@pytest.mark.parametrize(
    "header",
    [
        f'"c":{NOW},"t":{NOW},"l":{MAX_LIFETIME.total_seconds()}',
        f'"c":{NOW},"t":{NOW},"l":0.5',
        f'"c":{int(NOW)},"t":{int(NOW)},"l":60',  # ints, as another tool might write them
    ],
    ids=["lifetime-400-days", "lifetime-half-second", "int-times"],
)
def test_control_envelopes_at_the_bounds_are_adopted_and_saved(header: str) -> None:
    _adopted_and_saved(header)


@pytest.mark.parametrize(
    "lifetime", [MAX_LIFETIME.total_seconds() * 2, 1e300], ids=["two-years", "1e300"]
)
def test_a_stored_lifetime_above_400_days_is_kept_at_the_bound(lifetime: float) -> None:
    """An earlier release let set_expiry() store two years ("remember me"): such a session
    still loads, with the 400-day lifetime, and saves again (1e300 once overflowed the save)."""
    session = _adopted_and_saved(f'"c":{NOW},"t":{NOW},"l":{lifetime}')
    assert session.expiry == MAX_LIFETIME


def _adopted_and_saved(header: str) -> Any:
    store = Store(clock=lambda: NOW)
    sid = _plant(store, header)
    session = store.get_by_id(sid)
    assert session is not None and session["user"] == "admin"
    session["user"] = "ada"
    session.save()
    again = store.get_by_id(sid)
    assert again is not None and again["user"] == "ada"
    return again


def test_a_stored_value_deeper_than_the_limit_is_read_and_not_renewed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An earlier release stored values of any depth; this one refuses to write one deeper
    than 64. Reading such a session must still answer (the renewal is skipped and logged),
    not fail every page view once it is past half its lifetime."""
    clock = [NOW]
    store = Store(clock=lambda: clock[0])
    sid = store.new_id()
    deep = "[" * 70 + "]" * 70
    record = f'{{"v":1,"c":{NOW},"t":{NOW},"l":null,"d":{{"user":"ada","deep":{deep}}}}}'
    store.storage.set(store.storage_key(sid), record.encode(), None)
    clock[0] += store.config.expiration.total_seconds() * 0.6  # due for renewal

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = str(environ["sessionkit.session"].get("user")).encode()
        start_response("200 OK", [])
        return [body]

    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, dict(headers)
        return lambda data: None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": f"session_id={sid}"}
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        body = b"".join(SessionMiddleware(app, store)(environ, start_response))
    assert (got["status"], body) == ("200 OK", b"ada")
    assert "set-cookie" not in got["headers"]
    assert "cannot be renewed" in caplog.text
