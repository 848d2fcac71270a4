"""Requirement 7 of ``docs/security.md``:

    "Cookie attribute values are validated: no ``;``, CR or LF can be injected through config
    or ids."

Why it matters: a ``Set-Cookie`` line is assembled from text. A ``;`` in a path or domain adds
an attribute of the attacker's choosing (``Domain=evil.test``, ``Max-Age=0``); a CR/LF ends the
header and starts another (response splitting: a forged ``Set-Cookie``, a forged ``Location``, a
whole injected body). Config values come from environment variables and settings files, ids
from a pluggable generator and, above all, from the client. So every config field that reaches
a header is checked when the store is built, a server-made id is checked again when it is
rendered, and a client's id is never rendered at all (requirements 2 and 3). Values that are not
visible ASCII have no place in a cookie attribute either (RFC 6265: ``path-value`` and the
domain are US-ASCII): accepted at construction they would only fail later, in a visitor's
response.

Config checks need no request. The id checks read real responses of the ASGI and the WSGI
middleware (memory storage: the backend plays no part in rendering a header).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

import pytest

from sessionkit import Config, ConfigError, SessionKitError
from sessionkit.testing import FakeClock
from tests.security._support_ids import TRANSPORTS, RawClient, Transport
from tests.web._support import MakeClient, make_store

#: What would end an attribute (``;``), split a folded header (``,``) or end the header line.
SEPARATORS = {
    "semicolon": ";",
    "comma": ",",
    "cr": "\r",
    "lf": "\n",
    "crlf": "\r\n",
    "nul": "\x00",
    "space": " ",
    "tab": "\t",
    "del": "\x7f",
}

#: Each config field that is written into a header, and how a value with ``bad`` inside reads.
FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "cookie_domain": lambda bad: {"cookie_domain": f"example.com{bad}Domain=evil.test"},
    "cookie_path": lambda bad: {"cookie_path": f"/app{bad}Max-Age=0"},
    "cookie_same_site": lambda bad: {"cookie_same_site": f"Lax{bad}Domain=evil.test"},
    "key_lookup[cookie]": lambda bad: {"key_lookup": f"cookie:sid{bad}x"},
    "key_lookup[header]": lambda bad: {"key_lookup": f"header:X-Session{bad}Set-Cookie: a=b"},
}


@pytest.mark.parametrize("bad", list(SEPARATORS.values()), ids=list(SEPARATORS))
@pytest.mark.parametrize("field", list(FIELDS))
def test_a_separator_in_a_header_bound_config_field_is_a_config_error(field: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**FIELDS[field](bad))
    assert info.value.field == field.partition("[")[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cookie_domain", "ex\u20acmple.com"),  # not even latin-1: no header can carry it
        ("cookie_path", "/caf\u00e9"),
        ("cookie_path", "/a\x85b"),  # NEL, a C1 control character
    ],
    ids=["euro-domain", "latin-1-path", "nel-path"],
)
def test_a_config_attribute_outside_visible_ascii_is_a_config_error(field: str, value: str) -> None:
    fields: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError) as info:
        Config(**fields)
    assert info.value.field == field


class TurnsBad:
    """A key generator that is sound while Config samples it, then yields ``bad`` once turned."""

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.turned = False

    def __call__(self) -> str:
        return self.bad if self.turned else secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    "bad_id",
    [
        "A" * 40 + ";x=",
        "A" * 40 + "\r\nSet-Cookie: admin=1",
        "A" * 40 + "\nLocation: https://evil.test",
        "A" * 40 + ", b=1",
        "A" * 40 + " Domain=evil.test",
    ],
    ids=["semicolon", "crlf", "lf", "comma", "space"],
)
@pytest.mark.parametrize("lookup", ["cookie:session_id", "header:X-Session-Id"])
async def test_a_server_made_id_with_a_separator_is_never_rendered(
    make_client: MakeClient, clock: FakeClock, lookup: str, bad_id: str
) -> None:
    generator = TurnsBad(bad_id)
    store = make_store(clock, key_lookup=lookup, key_generator=generator)
    client = make_client(store)
    generator.turned = True
    with pytest.raises(SessionKitError, match="key_generator returned"):
        await client.get("/set?a=1")
    assert store.storage.writes == 0  # type: ignore[attr-defined]  # nothing stored under it


#: Client text trying to add a header or an attribute through the id it presents.
INJECTIONS = {
    "attribute": "{sid}; Domain=evil.test; Max-Age=99999999",
    "crlf-set-cookie": "{sid}\r\nSet-Cookie: session_id=attacker",
    "lf-location": "{sid}\nLocation: https://evil.test",
    "cr-only": "{sid}\rX-Injected: 1",
    "folded": "{sid}\r\n X-Injected: 1",
    "comma-second-cookie": "{sid}, session_id=attacker",
    "nul": "{sid}\x00X-Injected: 1",
}


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("payload", list(INJECTIONS.values()), ids=list(INJECTIONS))
@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.source)
async def test_client_text_never_reaches_a_response_header(
    kind: Literal["asgi", "wsgi"], clock: FakeClock, transport: Transport, payload: str
) -> None:
    store = make_store(clock, key_lookup=transport.lookup)
    client = RawClient(kind, store)
    sid = (await client.get("/setid", query="user=ada")).text  # a live id, made injectable
    value = payload.replace("{sid}", sid)
    if transport.source == "query":
        query, headers = f"sid={quote(value, safe='')}&user=eve", []
    elif transport.source == "cookie":
        query, headers = "user=eve", [("Cookie", f"session_id={value}")]
    else:
        query, headers = "user=eve", [(transport.name, value)]

    reply = await client.get("/setid", query=query, headers=headers)  # writes: a header is sent
    assert reply.status == 200
    new = reply.text
    # a server id, made here or (only for the cookie-attribute case, where ';' ends the cookie
    # and the rest are other cookies) the live one: never the client's text
    assert store.is_valid_id(new) and (new != sid or value.startswith(f"{sid};"))
    for name, header_value in reply.headers:
        assert not any(c in header_value for c in "\r\n\x00"), (name, header_value)
        assert "evil.test" not in header_value and "attacker" not in header_value
        assert name.lower() not in ("location", "x-injected")
    if transport.source != "query":
        assert transport.issued(reply) == new
    for cookie in reply.cookies:
        assert set(cookie.attrs) <= {"max-age", "expires", "path", "httponly", "samesite"}
