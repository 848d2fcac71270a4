"""Requirement 15 of ``docs/security.md``:

    "Unregistered types fail at ``set()``, not later at save time in another request."

Why it matters: a value that cannot be stored must be refused where the code that wrote it can
see the error -- at ``session.set()``, in the handler that made the mistake, with a message
that names the type and the fix (``register_type``). Checked only at save time, the failure
would surface after the handler returned, as a 500 on a response the handler thought was
fine; and a lenient encoder that "did its best" (``str()``, ``repr()``, pickle) would write a
record that later requests cannot read back, logging the user out or -- with pickle -- opening
the door requirement 13 closes. A refused ``set()`` leaves the session as it was, so the rest
of the request (and the next one) works.

The HTTP tests mount a small handler under the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import json
import pathlib
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import attrs
import pytest

from sessionkit import Session, Store
from sessionkit.testing import FakeClock
from tests.security._records import handler_client, stored_keys
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

# -- values no store accepts unless registered ---------------------------------------------------


@dataclasses.dataclass
class UnregisteredDataclass:
    name: str


@attrs.define
class UnregisteredAttrs:
    name: str


class Role(enum.Enum):
    ADMIN = "admin"


class Plain:
    pass


class Pair(NamedTuple):
    a: int
    b: int


class Text(str):
    pass


def _generator() -> Iterable[int]:
    yield 1


UNSTORABLE: dict[str, Callable[[], object]] = {
    "object": object,
    "plain-class-instance": Plain,
    "a-class-itself": lambda: Plain,
    "unregistered-dataclass": lambda: UnregisteredDataclass("ada"),
    "unregistered-attrs": lambda: UnregisteredAttrs("ada"),
    "unregistered-enum": lambda: Role.ADMIN,
    "function": lambda: print,
    "lambda": lambda: lambda: 1,
    "generator": _generator,
    "complex": lambda: complex(1, 2),
    "bytearray": lambda: bytearray(b"x"),
    "path": lambda: pathlib.Path("/etc/passwd"),
    "range": lambda: range(3),
    "str-subclass": lambda: Text("ada"),
    "namedtuple": lambda: Pair(1, 2),
    "ordered-dict": lambda: collections.OrderedDict(a=1),
    "defaultdict": lambda: collections.defaultdict(int),
    "nested-in-a-list": lambda: [1, [2, {"x": Plain()}]],
    "nested-in-a-dict": lambda: {"a": {"b": UnregisteredDataclass("ada")}},
    "inside-a-tuple": lambda: (1, Role.ADMIN),
    "inside-a-set": lambda: {1, Plain()},
    "dict-value-deep": lambda: {"cart": [{"item": Decimal("1.5"), "who": Plain()}]},
}


@pytest.mark.parametrize("make", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_set_of_an_unregistered_type_raises_type_error_naming_the_type_and_register_type(
    make: Callable[[], object],
) -> None:
    store = Store()
    session = store.load(None)
    session["kept"] = "yes"
    session.save()
    session = store.load(session.id)
    assert not session.fresh
    value = make()
    with pytest.raises(TypeError, match="register_type") as info:
        session.set("bad", value)
    assert "cannot store a value of type" in str(info.value)
    # the session is untouched: nothing added, nothing to save
    assert "bad" not in session and session.keys() == ["kept"]
    assert not session.modified
    with pytest.raises(TypeError, match="register_type"):
        session["bad"] = value  # the mapping spelling is checked the same way


@pytest.mark.parametrize("make", [UnregisteredDataclass, Plain], ids=["dataclass", "plain-class"])
def test_type_error_names_the_offending_type(make: Callable[..., object]) -> None:
    store = Store()
    value = make("ada") if make is UnregisteredDataclass else make()
    with pytest.raises(TypeError) as info:
        store.load(None).set("v", {"deep": [value]})
    assert type(value).__qualname__ in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [{1: "a"}, {("a",): 1}, {None: 1}, {"ok": {2: "b"}}],
    ids=["int", "tuple", "none", "deep"],
)
def test_dict_with_non_str_keys_fails_at_set(bad: dict[Any, Any]) -> None:
    session = Store().load(None)
    with pytest.raises(TypeError, match="keys must be str"):
        session.set("d", bad)
    assert "d" not in session


@pytest.mark.parametrize("key", [1, None, b"user", ("a",)], ids=["int", "none", "bytes", "tuple"])
def test_non_str_session_key_fails_at_set(key: Any) -> None:
    session = Store().load(None)
    with pytest.raises(TypeError, match="keys must be str"):
        session.set(key, "ada")
    assert len(session) == 0


def _try_unstorable(session: Session, q: dict[str, str]) -> str:
    """The handler: try to store an unregistered value, report where it failed, go on."""
    try:
        session.set("bad", UnregisteredDataclass("ada"))
    except TypeError as exc:
        outcome = f"refused at set: {exc}"
    else:
        outcome = "accepted at set"
    if "then" in q:
        session["user"] = q["then"]
    return outcome


async def test_handler_sees_the_type_error_and_its_request_still_saves_the_rest(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage)
    browser = Browser(handler_client(make_client, store, _try_unstorable))
    reply = await browser.get("/?then=ada")
    assert reply.status == 200
    assert reply.text.startswith("refused at set:") and "UnregisteredDataclass" in reply.text
    assert browser.value is not None  # the request's valid change was saved
    loaded = store.get_by_id(browser.value)
    assert loaded is not None and dict(loaded) == {"user": "ada"}


async def test_refused_set_alone_writes_nothing_and_sets_no_cookie(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    request: pytest.FixtureRequest,
) -> None:
    store = make_store(clock, storage)
    client = handler_client(make_client, store, _try_unstorable)
    reply = await client.get("/")
    assert reply.status == 200 and reply.text.startswith("refused at set:")
    assert reply.header("set-cookie") == []
    assert storage.writes == 0 and stored_keys(storage, request) == []


async def test_next_request_of_the_same_visitor_reads_its_session_normally(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """The failure stayed in the request that made it: no unreadable record was left behind."""
    store = make_store(clock, storage)

    def handler(session: Session, q: dict[str, str]) -> str:
        if q.get("op") == "read":
            return json.dumps({k: session[k] for k in session})
        return _try_unstorable(session, {"then": "ada"})

    browser = Browser(handler_client(make_client, store, handler))
    await browser.get("/?op=write")
    sid = browser.value
    reply = await browser.get("/?op=read")
    assert reply.status == 200 and json.loads(reply.text) == {"user": "ada"}
    assert browser.value == sid


async def test_control_a_registered_type_is_accepted_at_set_and_round_trips(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage)
    store.register_type(UnregisteredDataclass, name="people.Person")

    def handler(session: Session, q: dict[str, str]) -> str:
        if q.get("op") == "read":
            return repr(session.get("bad"))
        return _try_unstorable(session, {})

    browser = Browser(handler_client(make_client, store, handler))
    assert (await browser.get("/?op=write")).text == "accepted at set"
    assert (await browser.get("/?op=read")).text == repr(UnregisteredDataclass("ada"))


def test_value_mutated_in_place_after_set_is_refused_at_save_and_nothing_is_written(
    clock: FakeClock,
) -> None:
    """The documented limit of a check at ``set()``: a container stored and *then* given an
    unstorable item is only seen at save. It still never reaches the storage half-encoded: the
    save raises ``TypeError`` and writes nothing."""
    storage = CountingStorage()
    store = make_store(clock, storage)
    session = store.load(None)
    cart: list[object] = ["book"]
    session["cart"] = cart
    cart.append(Plain())
    with pytest.raises(TypeError, match="register_type"):
        session.save()
    assert storage.writes == 0


def test_every_builtin_the_api_lists_is_accepted_at_set(clock: FakeClock) -> None:
    """Control for the refusals: the listed built-ins (and nesting) are accepted and round-trip."""
    import uuid
    from datetime import date, datetime, time

    store = make_store(clock)
    value = {
        "none": None,
        "bool": True,
        "int": 1,
        "float": 1.5,
        "str": "s",
        "bytes": b"\x00",
        "list": [1],
        "tuple": (1, "a"),
        "dict": {"a": {"b": 1}},
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "datetime": datetime(2024, 1, 1, 12, 0),
        "date": date(2024, 1, 1),
        "time": time(12, 0),
        "timedelta": timedelta(seconds=5),
        "decimal": Decimal("1.10"),
        "uuid": uuid.UUID(int=1),
    }
    session = store.load(None)
    session.set("all", value)
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded["all"] == value
