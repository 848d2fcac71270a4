"""Requirement 13 of ``docs/security.md``:

    "No pickle, no ``eval``, no import by name from stored data. Only built-ins and registered
    types decode."

Why it matters: whoever can write to the session storage -- a shared Redis without a password,
a leaked database credential, a backup restored from an untrusted place, another app on the
same server -- must not thereby run code in every web worker that loads a session. Pickle-based
session stores (Flask-Session before 0.6, Django's ``PickleSerializer``, Beaker) turned such a
write into remote code execution, and serialisers that import a class named in the data
(jsonpickle's ``py/object``, YAML's ``!!python/object``) do the same by another road. Here the
payload is JSON, and a type tag is only looked up in the store's own registry.

Every hostile payload below is planted raw under a session's storage key and sent to the app
through the ASGI and the WSGI middleware, on every backend. Each is proven a lost session (a
fresh session under a new id, status 200), and proven inert: a canary module whose *import*
writes a file, and whose functions write another, stays unimported (``sys.modules``) and
untouched; ``os.system`` and ``eval`` payloads would create a file, and none appears. A control
test unpickles the same pickle payloads directly and sees the canary fire, so the payloads are
live ammunition and the other tests could fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._records import envelope, plant
from tests.web._support import Client


@attrs.frozen
class Canary:
    """A module on ``sys.path`` that must never be imported, and a flag file for shell/eval."""

    module: str
    folder: Path
    flag: Path

    @property
    def imported(self) -> Path:
        return self.folder / "imported"

    @property
    def ran(self) -> Path:
        return self.folder / "ran"

    def fired(self) -> list[str]:
        """What went off: an import, a call, a shell command or an eval (empty: nothing)."""
        signs = {
            "imported into sys.modules": self.module in sys.modules,
            "module body ran": self.imported.exists(),
            "module function ran": self.ran.exists(),
            "os.system/eval ran": self.flag.exists(),
        }
        return [sign for sign, seen in signs.items() if seen]


CANARY_SOURCE = """\
import pathlib
_HERE = pathlib.Path(__file__).parent
(_HERE / "imported").write_text("imported")


def boom(*args, **kwargs):
    (_HERE / "ran").write_text(repr(args))
    return "boom"


class Boom:
    def __init__(self, *args, **kwargs):
        boom(*args)
"""


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    name = f"sk_canary_{uuid.uuid4().hex[:12]}"
    folder = tmp_path / "importable"
    folder.mkdir()
    (folder / f"{name}.py").write_text(CANARY_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    yield Canary(name, folder, tmp_path / "pwned")
    sys.modules.pop(name, None)


# -- the payloads ----------------------------------------------------------------------------


def _short(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 256
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def pickle_v4_call(module: str, name: str, arg: str) -> bytes:
    """Protocol 4: STACK_GLOBAL module.name, called with one str (REDUCE)."""
    return b"\x80\x04" + _short(module) + _short(name) + b"\x93" + _short(arg) + b"\x85R."


def pickle_v0_call(module: str, name: str, arg: str) -> bytes:
    """Protocol 0 (text): GLOBAL module.name, called with one str."""
    return f"c{module}\n{name}\n(V{arg}\ntR.".encode()


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (self.command,))


def _touch(flag: Path) -> str:
    return f"touch {flag}"


def _eval_code(flag: Path) -> str:
    return f"__import__('pathlib').Path({str(flag)!r}).touch()"


def _in_envelope(value: object) -> Callable[[FakeClock], bytes]:
    return lambda clock: envelope({"n": 41, "x": value}, created=clock.now, saved=clock.now)


Payload = Callable[[Canary, FakeClock], bytes]

PICKLES: dict[str, Payload] = {
    "pickle-v4-canary-function": lambda c, _: pickle_v4_call(c.module, "boom", "x"),
    "pickle-v0-canary-class": lambda c, _: pickle_v0_call(c.module, "Boom", "x"),
    "pickle-os-system": lambda c, _: pickle.dumps(_RunsShell(_touch(c.flag)), protocol=4),
    "pickle-builtins-eval": lambda c, _: pickle_v4_call("builtins", "eval", _eval_code(c.flag)),
}

JSON_TAGS: dict[str, Payload] = {
    "obj-os.system": lambda c, clk: _in_envelope(
        {"$t": "obj", "n": "os.system", "v": {"command": _touch(c.flag)}}
    )(clk),
    "obj-builtins.eval": lambda c, clk: _in_envelope(
        {"$t": "obj", "n": "builtins.eval", "v": {"source": _eval_code(c.flag)}}
    )(clk),
    "obj-canary-class": lambda c, clk: _in_envelope(
        {"$t": "obj", "n": f"{c.module}.Boom", "v": {}}
    )(clk),
    "enum-canary-class": lambda c, clk: _in_envelope(
        {"$t": "enum", "n": f"{c.module}.Boom", "v": 1}
    )(clk),
    "tag-os.system": lambda c, clk: _in_envelope({"$t": "os.system", "v": _touch(c.flag)})(clk),
    "tag-builtins.eval": lambda c, clk: _in_envelope(
        {"$t": "builtins.eval", "v": _eval_code(c.flag)}
    )(clk),
    "tag-canary-function": lambda c, clk: _in_envelope({"$t": f"{c.module}.boom", "v": ["x"]})(clk),
    "obj-unregistered-app-class": lambda c, clk: _in_envelope(
        {"$t": "obj", "n": "myapp.models.User", "v": {"name": "ada"}}
    )(clk),
    "obj-nested-in-a-list": lambda c, clk: _in_envelope(
        [1, {"k": {"$t": "obj", "n": f"{c.module}.Boom", "v": {}}}]
    )(clk),
    "jsonpickle-reduce-envelope": lambda c, _: json.dumps(
        {"py/reduce": [{"py/function": f"{c.module}.boom"}, {"py/tuple": ["x"]}]}
    ).encode(),
    "yaml-python-apply": lambda c, _: (
        f"!!python/object/apply:os.system [{_touch(c.flag)!r}]\n".encode()
    ),
}


async def _assert_lost_and_inert(
    client: Client, store: Store, payload: bytes, canary: Canary
) -> None:
    sid = store.new_id()
    plant(store, sid, payload)
    before = set(sys.modules)
    reply = await client.get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200
    assert reply.text == "1", "the planted record was adopted"
    assert reply.cookie.value != sid
    assert store.get_by_id(sid) is None
    assert canary.fired() == []
    # Any module the payload names that got imported meanwhile (the canary is the one that
    # cannot already be there; the filter keeps driver threads' lazy imports out of it).
    text = payload.decode("latin-1")
    named = {m for m in set(sys.modules) - before if m.split(".")[0] in text}
    assert named == set(), "decoding a session imported a module it named"


@pytest.fixture
async def warm(client: Client, store: Store, clock: FakeClock) -> Client:
    """The client after one lost-session request, so the modules the request path and its
    warning log need are imported before ``sys.modules`` is compared."""
    sid = store.new_id()
    plant(store, sid, b"not json")
    await client.get("/count", cookie=f"session_id={sid}")
    return client


@pytest.mark.parametrize("make", PICKLES.values(), ids=PICKLES.keys())
async def test_pickled_payload_is_a_lost_session_and_runs_nothing(
    warm: Client, store: Store, clock: FakeClock, canary: Canary, make: Payload
) -> None:
    await _assert_lost_and_inert(warm, store, make(canary, clock), canary)


@pytest.mark.parametrize("make", JSON_TAGS.values(), ids=JSON_TAGS.keys())
async def test_json_naming_a_class_path_or_unknown_tag_is_a_lost_session_and_imports_nothing(
    warm: Client, store: Store, clock: FakeClock, canary: Canary, make: Payload
) -> None:
    await _assert_lost_and_inert(warm, store, make(canary, clock), canary)


@pytest.mark.parametrize("make", PICKLES.values(), ids=PICKLES.keys())
def test_control_the_pickle_payloads_do_run_code_when_unpickled(
    canary: Canary, clock: FakeClock, make: Payload
) -> None:
    """Control, outside sessionkit: ``pickle.loads`` of each payload fires the canary, so the
    tests above would see it if the library unpickled anything."""
    assert canary.fired() == []
    pickle.loads(make(canary, clock))
    assert canary.fired() != []


@pytest.mark.parametrize(
    "lookalike",
    [
        {"py/object": "{module}.Boom"},
        {"__reduce__": ["{module}.boom", ["x"]], "__class__": "os.system"},
        "!!python/object/apply:{module}.boom ['x']",
        {"$t": "obj", "n": "{module}.Boom", "v": {}},  # set by the app: escaped, stays a dict
        [{"$t": "{module}.boom", "v": ["x"]}],
    ],
    ids=["jsonpickle-object", "reduce-keys", "yaml-tag-text", "tag-shaped-dict", "tag-in-list"],
)
def test_values_shaped_like_serialiser_tags_stay_inert_data(
    store: Store, canary: Canary, lookalike: object
) -> None:
    """An app may store any built-in value, including dicts and strings that look like other
    serialisers' type tags or like sessionkit's own: they come back equal, as data, and import
    nothing."""
    value = json.loads(json.dumps(lookalike).replace("{module}", canary.module))
    session = store.load(None)
    session["v"] = value
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded["v"] == value
    assert canary.fired() == []


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_registered_type_planted_the_same_way_decodes(
    client: Client, store: Store, clock: FakeClock
) -> None:
    """Control: a tag naming a type the store registered is decoded, by its registered name, so
    the refusals above come from the registry check and not from a malformed plant."""
    store.register_type(Point, name="tests.Point")
    sid = store.new_id()
    value = {"$t": "obj", "n": "tests.Point", "v": {"x": 1, "y": 2}}
    plant(store, sid, _in_envelope(value)(clock))
    reply = await client.get("/get?k=x", cookie=f"session_id={sid}")
    assert reply.text == json.dumps("Point(x=1, y=2)")
    loaded = store.get_by_id(sid)
    assert loaded is not None and loaded["x"] == Point(1, 2)


def test_registered_name_is_the_only_thing_looked_up(store: Store, clock: FakeClock) -> None:
    """A class registered under an explicit name is not found by its import path, and a class
    that merely exists in the process (this module's ``Point``) is not found by its path
    either."""
    store.register_type(Point, name="points.v1")
    for name in (f"{Point.__module__}.{Point.__qualname__}", "Point"):
        sid = store.new_id()
        plant(store, sid, _in_envelope({"$t": "obj", "n": name, "v": {"x": 1, "y": 2}})(clock))
        assert store.get_by_id(sid) is None, name
