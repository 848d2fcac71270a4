"""Values inside registered classes come back exactly (issue 22, docs/values.md).

A field whose annotation pins its value's type (``list[Cart]``, ``dict[str, Decimal]``,
``Cart | None``, ``tuple[int, ...]``) travels compactly, as cattrs writes it; any other (``Any``,
``object``, no annotation, a bare ``list``/``dict``/``tuple``/``set``/``frozenset``, an
abstract collection, a union of built-ins) travels through the session's tagged codec, as a
top-level value does. Before, a tuple in a bare ``list`` field came back a list.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Optional, Union
from uuid import UUID

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionkit import Store
from tests._backends import open_backend
from tests.core._values_support import round_trip
from tests.core.test_values import Level, Status, same


@dataclasses.dataclass
class Cart:
    items: list  # type: ignore[type-arg]
    total: Decimal


@attrs.define
class Item:
    sku: str
    qty: int


@attrs.define
class Bare:
    items: list  # type: ignore[type-arg]
    index: dict  # type: ignore[type-arg]
    pair: tuple  # type: ignore[type-arg]
    tags: set  # type: ignore[type-arg]
    frozen: frozenset  # type: ignore[type-arg]
    anything: Any
    thing: object
    either: int | str | None
    maybe: list | None  # type: ignore[type-arg]
    seq: Sequence[Item]
    table: Mapping[str, Item]


@attrs.define
class Untyped:
    # attrs collects fields with no annotation only when every field is an attrs.field().
    first = attrs.field()
    second = attrs.field(default=None)


@attrs.define
class Typed:
    items: list[Item]
    prices: dict[str, Decimal]
    best: Item | None
    counts: tuple[int, ...]
    pair: tuple[int, str]
    when: datetime | None = None


class Plain:
    pass


def make_store(*classes: type, storage: Any = None) -> Store:
    store = Store() if storage is None else Store(storage=storage)
    for cls in (Item, Cart, Bare, Untyped, Typed, Status, Level, *classes):
        store.register_type(cls)
    return store


def stored(store: Store, value: Any) -> Any:
    """The JSON tree ``value`` is stored as (under the key ``"v"``)."""
    return json.loads(store.types.dumps(store.types.encode_data({"v": value})))["v"]


def test_a_tuple_in_a_bare_list_field_stays_a_tuple() -> None:
    # The issue's own case: came back Cart(items=[1, [2, 3]], ...).
    back = round_trip(make_store(), Cart([1, (2, 3)], Decimal("1.10")))
    assert same(back.items, [1, (2, 3)])
    assert back.total == Decimal("1.10")


def test_every_loose_position_keeps_types_exact() -> None:
    value = Bare(
        items=[1, (2, 3), {4}, b"x", Item("a", 1), Status.OPEN],
        index={"t": (1,), "d": date(2026, 1, 1), "$t": frozenset({UUID(int=1)})},
        pair=(1, [2, (3,)]),
        tags={(1, 2), Decimal("1.5")},
        frozen=frozenset({("a",)}),
        anything=(Item("b", 2), {"k": (None,)}),
        thing=timedelta(seconds=1),
        either="1",
        maybe=[(1,)],
        seq=(Item("c", 3),),
        table={"x": Item("d", 4)},
    )
    back = round_trip(make_store(), value)
    for field in attrs.fields(Bare):
        assert same(getattr(back, field.name), getattr(value, field.name)), field.name
    untyped = round_trip(make_store(), Untyped((1, 2), {"i": Item("e", 5)}))
    assert same(untyped.first, (1, 2)) and untyped.second == {"i": Item("e", 5)}


def test_typed_positions_stay_compact() -> None:
    value = Typed(
        items=[Item("a", 1)],
        prices={"a": Decimal("2")},
        best=Item("b", 2),
        counts=(1, 2),
        pair=(3, "x"),
    )
    tree = stored(make_store(), value)
    assert tree["v"] == {
        "items": [{"sku": "a", "qty": 1}],
        "prices": {"a": {"$t": "decimal", "v": "2"}},
        "best": {"sku": "b", "qty": 2},
        "counts": [1, 2],
        "pair": {"$t": "tuple", "v": [3, "x"]},
        "when": None,
    }
    assert same(round_trip(make_store(), value).counts, (1, 2))


def test_a_registered_object_in_a_loose_position_is_tagged_and_comes_back() -> None:
    tree = stored(make_store(), Cart([Item("a", 1)], Decimal(0)))
    assert tree["v"]["items"] == [
        {"$t": "obj", "n": f"{__name__}.Item", "v": {"sku": "a", "qty": 1}}
    ]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (Cart([1, Plain()], Decimal(0)), r"Cart\.items\[1\]"),
        (Cart([1, {"deep": [Plain()]}], Decimal(0)), r"Cart\.items\[1\]\['deep'\]\[0\]"),
        ({"cart": Cart([Plain()], Decimal(0))}, r"\['cart'\]\.items\[0\]"),
        (
            [Bare([], {}, (), set(), frozenset(), Plain(), None, 1, None, (), {})],
            r"\[0\]\.anything",
        ),
    ],
)
def test_an_unregistered_type_fails_at_set_naming_its_path(value: Any, path: str) -> None:
    session = make_store().load(None)
    with pytest.raises(TypeError, match=rf"Plain.*register_type.*\(at {path}\)"):
        session["v"] = value
    assert "v" not in session and not session.modified


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            Typed((Item("a", 1),), {}, None, (), (1, "x")),
            r"tuple where list\[.*Item\] is declared.*Typed\.items",
        ),
        (Typed([], {}, None, [1], (1, "x")), r"list where tuple\[int, \.\.\.\] is declared"),  # type: ignore[arg-type]
        (Typed([], {}, None, (), (1, "x"), when="now"), r"str where datetime is declared|when"),  # type: ignore[arg-type]
        (
            Bare((), {}, (), set(), frozenset(), 0, 0, 1, None, (), {}),
            r"tuple where list is declared.*Bare\.items",
        ),
        (
            Bare([], {}, (), set(), frozenset(), 0, 0, 1.5, None, (), {}),
            r"float where .*int.* is declared.*Bare\.either",
        ),
        (
            Bare([], {}, (), set(), frozenset(), 0, 0, 1, None, [Plain()], {}),
            r"Plain where .*Item.* is declared.*Bare\.seq\[0\]",
        ),
    ],
)
def test_a_value_its_annotation_does_not_admit_fails_at_set(value: Any, message: str) -> None:
    # cattrs would have turned the tuple into a list, or the list into a tuple.
    session = make_store().load(None)
    with pytest.raises(TypeError, match=message):
        session["v"] = value


def test_a_subclass_at_a_typed_position_fails_at_set() -> None:
    @attrs.define
    class SpecialItem(Item):
        note: str = ""

    session = make_store().load(None)
    with pytest.raises(TypeError, match=r"SpecialItem where .*Item is declared.*Typed\.items\[0\]"):
        session["v"] = Typed([SpecialItem("a", 1, "gift")], {}, None, (), (1, "x"))


def test_loose_positions_keep_the_depth_and_circularity_rules() -> None:
    session = make_store().load(None)
    deep: Any = 0
    for _ in range(70):
        deep = [deep]
    with pytest.raises(TypeError, match="nested more than 64 levels"):
        session["v"] = Cart(deep, Decimal(0))
    loop: list[Any] = []
    cart = Cart(loop, Decimal(0))
    loop.append(cart)
    with pytest.raises(TypeError, match="circular"):
        session["v"] = cart


def test_surrogates_in_loose_and_typed_positions_round_trip() -> None:
    value = Bare(
        ["\ud800"],
        {"\udc80": ("\udfff",)},
        (),
        set(),
        frozenset(),
        "a\udce9",
        0,
        "\ud801",
        None,
        (),
        {},
    )
    assert round_trip(make_store(), value) == value
    assert round_trip(make_store(), Item("\udce9", 1)) == Item("\udce9", 1)


def test_scalars_of_a_compatible_type_keep_their_type() -> None:
    # PEP 484 lets an int stand for a float, and a bool is an int: kept as they are given.
    @attrs.define
    class Numbers:
        ratio: float
        count: int

    back = round_trip(make_store(Numbers), Numbers(1, True))
    assert type(back.ratio) is int and back.count is True


# -- records written before issue 22 -----------------------------------------------------------

#: The data of a record written by the release before issue 22, byte for byte (a bare
#: ``tuple`` field stored as a JSON list, an untyped attrs field and ``Any`` fields, a
#: ``Sequence`` of classes, a str in an int field, which that release converted on loading).
PREVIOUS_DATA = (
    b'{"order":{"$t":"obj","n":"tests.core.test_values_nested.Old","v":{"items":[{"sku":"a",'
    b'"qty":2}],"pair":[1,[2,3]],"maybe":[1,2],"loose":[1,[2,3]],"any":{"$t":"tuple","v":[4]},'
    b'"untyped":[5,6],"seq":[{"sku":"b","qty":3}],"ratio":2,"count":"7","when":{"$t":'
    b'"datetime","v":"2026-01-02T03:04:00"},"best":null}},"n":41}'
)


@attrs.define
class Old:
    items: list[Item] = attrs.field()
    pair: tuple = attrs.field()  # type: ignore[type-arg]
    maybe: list | None = attrs.field()  # type: ignore[type-arg]
    loose: list = attrs.field()  # type: ignore[type-arg]
    any: Any = attrs.field()
    untyped = attrs.field()
    seq: Sequence[Item] = attrs.field(default=())
    ratio: float = attrs.field(default=0.0)
    count: int = attrs.field(default=0)
    when: datetime | None = attrs.field(default=None)
    best: Item | None = attrs.field(default=None)


def test_a_record_in_the_previous_format_still_loads() -> None:
    store = make_store(Old)
    key = store.new_id()
    now = store.now()
    record = b'{"v":1,"c":%r,"t":%r,"l":null,"d":%s}' % (now, now, PREVIOUS_DATA)
    store.storage.set(store.storage_key(key), record, None)
    session = store.get_by_id(key)
    assert session is not None, "the record was lost"
    order = session["order"]
    assert session["n"] == 41
    assert order.items == [Item("a", 2)]
    assert same(order.pair, (1, [2, 3]))  # as the previous release loaded it
    assert same(order.maybe, [1, 2])
    assert same(order.loose, [1, [2, 3]])
    assert same(order.any, (4,))
    assert same(order.untyped, [5, 6])
    assert same(list(order.seq), [Item("b", 3)])
    assert order.ratio == 2 and order.count == 7  # converted as before: "7" was stored
    assert order.when == datetime(2026, 1, 2, 3, 4)


# -- the proof: generated classes, every storage ------------------------------------------------

hashable_leaves: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, st.integers()),
    (str, st.text(max_size=6)),
    (bool, st.booleans()),
    (bytes, st.binary(max_size=6)),
    (Decimal, st.decimals(allow_nan=False, allow_infinity=False, places=2)),
    (UUID, st.uuids()),
    (date, st.dates()),
    (time, st.times()),
    (timedelta, st.timedeltas()),
]
leaves = [
    *hashable_leaves,
    (float, st.floats()),
    (
        datetime,
        st.datetimes(
            timezones=st.sampled_from([None, timezone.utc, timezone(timedelta(hours=-5))])
        ),
    ),
    (Status, st.sampled_from(Status)),
    (Level, st.sampled_from(Level)),
]
hashable_values = st.one_of(*(s for _, s in hashable_leaves))
any_values = st.recursive(
    st.one_of(*(s for _, s in leaves), st.builds(Item, st.text(max_size=3), st.integers())),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "$t", "v"]), inner, max_size=3),
        st.frozensets(hashable_values, max_size=3),
        st.sets(st.tuples(hashable_values), max_size=2),
    ),
    max_leaves=6,
)
_counter = iter(range(10**9))


@st.composite
def position(draw: st.DrawFn, depth: int = 0) -> tuple[Any, Any]:
    """``(annotation, value)``: a field annotation of any kind and a value it admits."""
    kinds = ["leaf", "any", "bare", "union", "abstract"]
    if depth < 2:
        kinds += ["list", "tuple_of", "pair", "dict", "set", "optional", "record", "bare_of"]
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        annotation, values = draw(st.sampled_from(leaves))
        return annotation, draw(values)
    if kind == "any":
        return draw(st.sampled_from([Any, object])), draw(any_values)
    if kind == "bare":
        bare = draw(st.sampled_from([list, tuple, dict, set, frozenset]))
        if bare is dict:
            return dict, draw(st.dictionaries(st.text(max_size=3), any_values, max_size=3))
        if bare in (set, frozenset):
            return bare, bare(draw(st.sets(hashable_values, max_size=3)))
        return bare, bare(draw(st.lists(any_values, max_size=3)))
    if kind == "union":
        members = draw(st.lists(st.sampled_from(leaves), min_size=2, max_size=3))
        annotation = Union[tuple(m for m, _ in members)]  # noqa: UP007
        return annotation, draw(st.one_of(*(s for _, s in members)))
    if kind == "abstract":
        _, values = draw(st.sampled_from(leaves))
        annotation, value = draw(
            st.sampled_from(
                [
                    (Sequence[Item], st.lists(st.builds(Item, st.text(max_size=2), st.integers()))),
                    (Sequence[int], st.lists(st.integers(), max_size=3).map(tuple)),
                    (Mapping[str, Any], st.dictionaries(st.text(max_size=2), values, max_size=2)),
                ]
            )
        )
        return annotation, draw(value)
    if kind == "set":
        annotation, values = draw(st.sampled_from(hashable_leaves))
        container = draw(st.sampled_from([set, frozenset]))
        return container[annotation], container(draw(st.sets(values, max_size=3)))
    if kind == "record":
        return draw(record_class(depth + 1))
    inner, value = draw(position(depth + 1))
    if kind == "list":
        return list[inner], [value, value]  # type: ignore[valid-type]
    if kind == "tuple_of":
        return tuple[inner, ...], (value,)  # type: ignore[valid-type]
    if kind == "pair":
        other, second = draw(position(depth + 1))
        return tuple[inner, other], (value, second)  # type: ignore[valid-type]
    if kind == "dict":
        return dict[str, inner], {"k": value, "$t": value}  # type: ignore[valid-type]
    if kind == "bare_of":  # a generic container of loose items (what a top-level value holds)
        item = draw(any_values)
        return draw(st.sampled_from([(list[Any], [item]), (dict[str, Any], {"k": item})]))
    return Optional[inner], draw(st.sampled_from([None, value]))  # noqa: UP045


@st.composite
def record_class(draw: st.DrawFn, depth: int = 0) -> tuple[type, Any]:
    """A new attrs class or dataclass of generated fields, and an instance of it."""
    fields = draw(st.lists(position(depth), min_size=1, max_size=4))
    names = [f"f{i}" for i in range(len(fields))]
    name = f"Generated{next(_counter)}"
    if draw(st.booleans()):
        if draw(st.booleans()):  # a field with no annotation at all holds anything storable
            fields[0] = (None, draw(any_values))
        cls = attrs.make_class(
            name, {n: attrs.field(type=a) for n, (a, _) in zip(names, fields, strict=True)}
        )
    else:
        cls = dataclasses.make_dataclass(
            name, [(n, a) for n, (a, _) in zip(names, fields, strict=True)]
        )
    return cls, cls(*(v for _, v in fields))


def exact(a: Any, b: Any) -> bool:
    """``same`` all the way down, into attrs objects and dataclasses too."""
    if type(a) is not type(b):
        return False
    if attrs.has(type(a)):
        return all(exact(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if dataclasses.is_dataclass(a):
        return all(exact(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return same(a, b)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=record_class())
def test_generated_classes_round_trip_exactly_through_every_storage(
    generated: tuple[type, Any], backend: str, request: pytest.FixtureRequest
) -> None:
    cls, value = generated
    store = _stores(request, backend)
    store.register_type(cls, name=cls.__qualname__)
    back = round_trip(store, {"value": value, "in_a_list": [value]})
    assert exact(back, {"value": value, "in_a_list": [value]}), (value, back)


def _stores(request: pytest.FixtureRequest, backend: str) -> Store:
    """One store per test and backend (Hypothesis runs many examples against it)."""
    cache: dict[str, Store] = request.node.__dict__.setdefault("_sessionkit_stores", {})
    if backend not in cache:
        cache[backend] = make_store(storage=open_backend(request, backend))
    return cache[backend]
