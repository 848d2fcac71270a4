"""What set() accepts can be saved and loaded back (security.md 14-15, api.md "Values").

Each case here was accepted by ``register_type``/``set()`` and then failed later: at save (a
500) or at the next load (the visitor's session dropped as unreadable).
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any, Literal

import attrs
import pytest

from sessionkit import Store
from tests.core._values_support import round_trip

DEPTH_LIMIT = 64  # docs/values.md


@attrs.define
class Inner:
    a: int


@attrs.define
class Loose:
    x: int | str


@dataclasses.dataclass
class LooseDC:
    tags: list[int | str]


@attrs.define
class HoldsLoose:
    items: list[Loose]


class NotAttrs:
    pass


@attrs.define
class HoldsPlain:
    thing: NotAttrs


@attrs.define
class Anything:
    x: object
    y: Any = None


class Mood(enum.Enum):
    OK = "ok"


@attrs.define
class Supported:
    n: int | None
    inner: Inner | None
    many: list[Inner]
    pair: tuple[int, str]
    index: dict[str, set[int]]
    kind: Literal["a", "b"]
    when: datetime | None
    mood: Mood
    extra: dict[str, Any]


@attrs.define
class Node:
    label: int
    next: Node | None = None


@attrs.define
class Bag:
    items: list[Any]


def store_with(*classes: type) -> Store:
    store = Store()
    for cls in classes:
        store.register_type(cls)
    return store


def nested(depth: int, wrap: Any = list) -> Any:
    """``depth`` containers, one inside the other (``nested(1)`` is ``[0]``)."""
    value: Any = 0
    for _ in range(depth):
        value = wrap([value]) if wrap is not dict else {"k": value}
    return value


# -- 1. register_type refuses what cannot be loaded back ----------------------------------------


def test_register_type_refuses_a_class_that_cannot_be_loaded_back() -> None:
    store = Store()
    with pytest.raises(TypeError, match=r"register_type\(HoldsPlain\): field 'thing'"):
        store.register_type(HoldsPlain)
    with pytest.raises(TypeError, match="register_type"):  # so still refused at set()
        store.load(None).set("v", HoldsPlain.__new__(HoldsPlain))


def test_register_type_error_says_what_to_do() -> None:
    with pytest.raises(TypeError, match=r"NotAttrs.*a type cattrs can rebuild") as info:
        Store().register_type(HoldsPlain)
    assert "X | None" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [Loose(1), Loose("1"), LooseDC([1, "x", 2]), HoldsLoose([Loose(2), Loose("two")])],
)
def test_unions_of_builtins_register_and_round_trip_type_exact(value: Any) -> None:
    # Before issue 22, register_type refused them: cattrs cannot tell int from str on loading.
    # The tagged codec can: such a position is carried like a top-level value.
    back = round_trip(store_with(Loose, LooseDC, HoldsLoose), value)
    assert back == value
    assert repr(back) == repr(value)  # 1 and "1" differ in repr: the type came back too


def test_register_type_refuses_an_unresolvable_forward_reference() -> None:
    @attrs.define
    class Dangling:
        x: Missing  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="Dangling"):
        Store().register_type(Dangling)


def test_supported_field_types_stay_accepted_and_round_trip() -> None:
    store = store_with(Supported, Mood)
    value = Supported(
        n=None,
        inner=Inner(1),
        many=[Inner(2)],
        pair=(3, "x"),
        index={"k": {4}},
        kind="b",
        when=datetime(2026, 1, 2),
        mood=Mood.OK,
        extra={"t": (1, 2), "s": {"x"}},
    )
    back = round_trip(store, value)
    assert back == value
    assert type(back.extra["t"]) is tuple


def test_recursive_optional_class_registers() -> None:
    assert round_trip(store_with(Node), Node(1, Node(2))) == Node(1, Node(2))


def test_object_and_any_fields_round_trip_type_exact() -> None:
    # Before: an object field made the session unloadable; an Any field flattened a tuple to a
    # list and an attrs object to a dict.
    store = store_with(Anything, Inner)
    back = round_trip(store, Anything({1, 2}, ((1, "a"), Inner(3))))
    assert back == Anything({1, 2}, ((1, "a"), Inner(3)))
    assert type(back.x) is set and type(back.y) is tuple and type(back.y[1]) is Inner


def test_object_field_holding_an_unregistered_type_fails_at_set() -> None:
    session = store_with(Anything).load(None)
    with pytest.raises(TypeError, match=r"NotAttrs.*register_type"):
        session.set("v", Anything(NotAttrs()))
    assert "v" not in session


def test_a_field_holding_what_its_annotation_refuses_fails_at_set() -> None:
    # attrs does not check annotations: int("many") would fail at the next load.
    store = store_with(Inner, Node)
    session = store.load(None)
    with pytest.raises(TypeError, match=r"str where int is declared.*\(at Inner\.a\)"):
        session.set("v", Inner("many"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"str where Node is declared.*\(at \[0\]\.next\)"):
        session.set("w", [Node(1, "not a node")])  # type: ignore[arg-type]
    assert not session.modified


# -- 2. lone surrogates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        "caf\udce9",  # what surrogateescape makes of a stray Latin-1 byte
        "\ud83d\ude00",  # a surrogate pair as two code points stays two code points
        "a\udfff😀é",
        {"\ud800": 1, "ok": "\udc00"},
        {"$t": "\ud800", "\udc80": ("\ud801", {"\ud802"}, frozenset({b"x"}))},
        ["\ud800", ("x", "\udbff")],
    ],
)
def test_strings_with_surrogates_round_trip(value: Any) -> None:
    back = round_trip(Store(), value)
    assert back == value
    if isinstance(value, str):
        assert len(back) == len(value)


def test_surrogates_inside_registered_objects_round_trip() -> None:
    store = store_with(Anything, Mood)
    value = Anything("\ud800", {"\udc00": Mood.OK})
    assert round_trip(store, value) == value


def test_a_session_key_with_a_surrogate_round_trips() -> None:
    store = Store()
    session = store.load(None)
    session["k\ud800"] = 1
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded.keys() == ["k\ud800"]


# -- 3. circular and deep values ---------------------------------------------------------------


def circular_values() -> list[Any]:
    a: list[Any] = []
    a.append(a)
    d: dict[str, Any] = {}
    d["d"] = d
    t: list[Any] = []
    t.append((1, t))
    bag = Bag([])
    bag.items.append({"me": bag})
    return [a, d, t, [0, {"x": a}], bag]


@pytest.mark.parametrize("value", circular_values())
def test_circular_values_fail_at_set_as_type_error(value: Any) -> None:
    session = store_with(Bag).load(None)
    with pytest.raises(TypeError, match="circular"):
        session.set("v", value)
    assert "v" not in session and not session.modified


def test_a_self_containing_registered_object_fails_at_set() -> None:
    node = Node(1)
    node.next = node
    session = store_with(Node).load(None)
    with pytest.raises(TypeError, match="circular"):
        session.set("v", node)


@pytest.mark.parametrize("wrap", [list, tuple, dict, set, frozenset])
def test_values_nested_too_deep_fail_at_set(wrap: Any) -> None:
    session = Store().load(None)
    if wrap in (set, frozenset):  # a set holds only hashables: a chain of frozensets in it
        value: Any = wrap({nested(DEPTH_LIMIT, frozenset)})
    else:
        value = nested(DEPTH_LIMIT + 1, wrap)
    with pytest.raises(TypeError, match=f"nested more than {DEPTH_LIMIT} levels"):
        session.set("v", value)
    for depth in (990, 5000):  # 990 used to pass set() and save, and lose the session at load
        with pytest.raises(TypeError, match="nested more than"):
            session.set("v", nested(depth, list))
    assert not session.modified


def test_a_deep_chain_of_registered_objects_fails_at_set() -> None:
    chain = None
    for i in range(500):
        chain = Node(i, chain)
    session = store_with(Node).load(None)
    with pytest.raises(TypeError, match="nested more than"):
        session.set("v", chain)


def test_values_within_the_depth_limit_are_accepted() -> None:
    session = Store().load(None)
    session.set("list", nested(DEPTH_LIMIT, list))
    session.set("dict", nested(DEPTH_LIMIT, dict))
    session.set("tuple", nested(DEPTH_LIMIT, tuple))


def test_deep_values_round_trip() -> None:
    store = Store()
    value = nested(DEPTH_LIMIT - 2, tuple)  # inside a list, and the data dict (for now)
    assert round_trip(store, [value, nested(DEPTH_LIMIT - 2, dict)]) == [
        value,
        nested(DEPTH_LIMIT - 2, dict),
    ]


def test_a_value_at_the_depth_limit_saves_and_loads() -> None:
    store = Store()
    value = nested(DEPTH_LIMIT, list)
    assert round_trip(store, value) == value
