"""Values round-trip through a store type-exactly (api.md "Values"; security.md 13-15)."""

from __future__ import annotations

import dataclasses
import enum
import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionkit import Store
from tests.core._values_support import round_trip


@attrs.define
class CartItem:
    sku: str
    qty: int
    tags: tuple[str, ...] = ()
    added: datetime | None = None


@dataclasses.dataclass
class Address:
    street: str
    number: int
    history: list[date] = dataclasses.field(default_factory=list)


@attrs.frozen
class Order:
    items: list[CartItem]
    ship_to: Address
    status: Status


class Status(enum.Enum):
    OPEN = "open"
    PAID = "paid"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def make_store() -> Store:
    store = Store()
    for cls in (CartItem, Address, Order, Status, Level):
        store.register_type(cls)
    return store


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same type, all the way down (so a tuple that came back a list fails)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, (set, frozenset)):
        return a == b and all(type(x) in {type(y) for y in b} for x in a)
    return bool(a == b)


hashables = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.uuids(),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
leaves = st.one_of(
    hashables,
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(
        timezones=st.one_of(
            st.none(),
            st.just(timezone.utc),
            st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-600, 600)),
        )
    ),
    st.times(),
    st.timedeltas(),
    st.sets(hashables, max_size=4),
    st.frozensets(hashables, max_size=4),
    st.tuples(hashables, hashables),
)
registered = st.one_of(
    st.builds(
        CartItem,
        sku=st.text(max_size=5),
        qty=st.integers(),
        tags=st.lists(st.text(max_size=3), max_size=3).map(tuple),
        added=st.none() | st.datetimes(),
    ),
    st.builds(
        Address,
        street=st.text(max_size=5),
        number=st.integers(),
        history=st.lists(st.dates(), max_size=2),
    ),
    st.sampled_from(Status),
    st.sampled_from(Level),
)
values = st.recursive(
    st.one_of(leaves, registered),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        # "$t" among the keys proves user dicts cannot pose as type tags.
        st.dictionaries(
            st.one_of(st.text(max_size=6), st.just("$t"), st.just("v")), children, max_size=4
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_value_type_round_trips_type_exact(value: Any) -> None:
    store = make_store()
    assert same(round_trip(store, value), value)


def test_nested_registered_types_round_trip() -> None:
    store = make_store()
    order = Order(
        items=[CartItem("a", 2, ("x",), datetime(2026, 1, 2, 3, 4, 5))],
        ship_to=Address("Main", 1, [date(2026, 1, 1)]),
        status=Status.PAID,
    )
    back = round_trip(store, {"order": order, "pair": (order.items[0], Level.HIGH)})
    assert back["order"] == order
    assert type(back["pair"]) is tuple
    assert type(back["pair"][1]) is Level


def test_unregistered_type_fails_at_set_naming_type_and_register_type() -> None:
    store = Store()
    session = store.load(None)
    with pytest.raises(TypeError, match=r"CartItem.*register_type"):
        session.set("item", CartItem("a", 1))
    with pytest.raises(TypeError, match="register_type"):
        session["nested"] = {"ok": [1, {"bad": object()}]}
    assert "item" not in session and "nested" not in session
    assert not session.modified


def test_non_str_dict_keys_fail_at_set() -> None:
    session = Store().load(None)
    with pytest.raises(TypeError, match="keys must be str"):
        session.set("d", {1: "one"})
    with pytest.raises(TypeError, match="keys must be str"):
        session.set(1, "x")  # type: ignore[arg-type]


def test_subclass_of_builtin_is_not_silently_downcast() -> None:
    class Tag(str):
        pass

    with pytest.raises(TypeError, match="Tag"):
        Store().load(None).set("t", Tag("x"))


def test_registries_are_per_store() -> None:
    a, b = Store(), Store()
    a.register_type(CartItem)
    a.load(None).set("ok", CartItem("x", 1))
    with pytest.raises(TypeError):
        b.load(None).set("no", CartItem("x", 1))


def test_register_type_rejects_plain_classes_and_name_clashes() -> None:
    store = Store()

    class Plain:
        pass

    with pytest.raises(TypeError, match="attrs classes, dataclasses and enums"):
        store.register_type(Plain)
    store.register_type(CartItem, name="cart")
    store.register_type(CartItem, name="cart")  # idempotent
    with pytest.raises(ValueError, match="already registered"):
        store.register_type(Address, name="cart")


def test_explicit_name_keeps_old_sessions_readable_after_a_class_moves() -> None:
    storage_store = Store()
    storage_store.register_type(CartItem, name="shop.CartItem")
    session = storage_store.load(None)
    session.set("c", CartItem("a", 1))
    session.save()

    @attrs.define
    class MovedCartItem:
        sku: str
        qty: int
        tags: tuple[str, ...] = ()
        added: datetime | None = None

    reader = Store(storage=storage_store.storage)
    reader.register_type(MovedCartItem, name="shop.CartItem")
    loaded = reader.get_by_id(session.id)
    assert loaded is not None and loaded["c"] == MovedCartItem("a", 1)


def test_values_given_are_kept_as_given_until_saved() -> None:
    store = Store()
    session = store.load(None)
    cart: list[int] = [1]
    session.set("cart", cart)
    cart.append(2)  # mutation before save is what gets saved
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded["cart"] == [1, 2]


def test_special_floats_and_big_ints() -> None:
    store = Store()
    back = round_trip(
        store,
        [
            math.inf,
            -math.inf,
            -0.0,
            2**200,
            Decimal("1e-30"),
            UUID(int=7),
            time(1, 2, 3, 4),
            timedelta(days=-3, microseconds=5),
        ],
    )
    assert back[2] == 0 and math.copysign(1, back[2]) == -1
    assert back[3] == 2**200
    assert back[4] == Decimal("1e-30")
