"""A registered class changes while sessions of its old shape are stored (issue 22).

docs/values.md, "Changing your session classes", says what happens in each case; each test
here is one case. The rule behind them all: a record loads when the class as it is now can be
built from it, and a record that cannot is a lost session -- the visitor gets a fresh one, a
WARNING names the session by a fingerprint only -- never an error answered to the request.

Each test writes with one store ("the release before") and reads with another ("the release
after") over one storage, as two deploys of an app do.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from decimal import Decimal
from typing import Any

import attrs
import pytest

from sessionkit import Store
from sessionkit._store import fingerprint
from sessionkit_memory import MemoryStorage
from tests.web._support import asgi_app, asgi_client

NAME = "shop.Cart"


def write(
    cls: type, value: Any, storage: Any = None, *, name: str | None = NAME
) -> tuple[Store, str]:
    """Save ``{"cart": value, "n": 1}`` with a store that registered ``cls`` under ``name``."""
    store = Store(storage=storage if storage is not None else MemoryStorage())
    store.register_type(cls, name=name)
    session = store.load(None)
    session["cart"] = value
    session["n"] = 1
    session.save()
    return store, session.id


def read(cls: type, writer: Store, sid: str, *, name: str | None = NAME) -> Any:
    """The session ``sid`` as a store that registered ``cls`` under ``name`` loads it."""
    store = Store(storage=writer.storage)
    store.register_type(cls, name=name)
    return store.get_by_id(sid)


def assert_lost(
    cls: type, writer: Store, sid: str, caplog: pytest.LogCaptureFixture, *, name: str | None = NAME
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert read(cls, writer, sid, name=name) is None
    (warning,) = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert fingerprint(sid) in warning.getMessage() and sid[:16] not in caplog.text


# -- a field added ------------------------------------------------------------------------------


@dataclasses.dataclass
class CartV1:
    skus: list[str]


@dataclasses.dataclass
class CartV2:
    skus: list[str]
    coupon: str | None = None
    total: Decimal = Decimal(0)
    notes: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CartV2NoDefault:
    skus: list[str]
    coupon: str


def test_a_field_added_with_a_default_loads_old_records_with_the_default() -> None:
    writer, sid = write(CartV1, CartV1(["a"]))
    session = read(CartV2, writer, sid)
    assert session is not None and session["cart"] == CartV2(["a"], None, Decimal(0), [])
    assert session["n"] == 1


def test_a_field_added_without_a_default_makes_old_records_lost_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, sid = write(CartV1, CartV1(["a"]))
    assert_lost(CartV2NoDefault, writer, sid, caplog)


# -- a field removed ----------------------------------------------------------------------------


def test_a_field_removed_is_ignored_in_old_records() -> None:
    writer, sid = write(CartV2, CartV2(["a"], "SPRING", Decimal("9.5"), [(1, 2)]))
    session = read(CartV1, writer, sid)
    assert session is not None and session["cart"] == CartV1(["a"])


def test_a_removed_field_that_held_a_class_no_longer_registered_loses_the_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The stored value of the gone field names a type the new release does not register: the
    # record cannot be read past it (see the docs: drop the field a release before the class).
    @attrs.define
    class Gift:
        label: str

    @attrs.define
    class WithGift:
        skus: list[str]
        gift: Any = None

    store = Store()
    store.register_type(Gift)
    store.register_type(WithGift, name=NAME)
    session = store.load(None)
    session["cart"] = WithGift(["a"], Gift("card"))
    session.save()
    assert_lost(CartV1, store, session.id, caplog)


# -- a field renamed ----------------------------------------------------------------------------


@dataclasses.dataclass
class CartRenamed:
    items: list[str] = dataclasses.field(default_factory=list)  # was: skus


@dataclasses.dataclass
class CartRenamedNoDefault:
    items: list[str]


def test_a_field_renamed_is_a_removal_and_an_addition(caplog: pytest.LogCaptureFixture) -> None:
    writer, sid = write(CartV1, CartV1(["a"]))
    session = read(CartRenamed, writer, sid)
    assert session is not None and session["cart"] == CartRenamed([])  # old value dropped
    assert_lost(CartRenamedNoDefault, writer, sid, caplog)


# -- a field retyped ----------------------------------------------------------------------------


@attrs.define
class Qty:
    qty: Any


@attrs.define
class QtyStr:
    qty: str


@attrs.define
class QtyInt:
    qty: int


@attrs.define
class QtyFloat:
    qty: float


@attrs.define
class QtyList:
    qty: list[int]


@attrs.define
class QtyDecimal:
    qty: Decimal


@pytest.mark.parametrize(
    ("stored", "new", "loaded"),
    [
        (5, QtyFloat, QtyFloat(5)),  # admitted as it is: an int is a float (PEP 484)
        (5, QtyStr, QtyStr("5")),  # converted, as cattrs converts: str(5)
        ("5", QtyInt, QtyInt(5)),  # int("5")
        ([1, 2], QtyList, QtyList([1, 2])),
        ((1, 2), QtyList, QtyList([1, 2])),  # converted: list((1, 2))
        ("five", QtyInt, None),  # int("five") fails: lost
        (5, QtyList, None),
        (5.5, QtyDecimal, None),  # leaf types are never converted: lost
    ],
)
def test_a_field_retyped_loads_what_the_new_type_admits_or_converts(
    stored: Any, new: type, loaded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    writer, sid = write(Qty, Qty(stored))
    if loaded is None:
        assert_lost(new, writer, sid, caplog)
    else:
        session = read(new, writer, sid)
        assert session is not None
        assert session["cart"] == loaded and type(session["cart"].qty) is type(loaded.qty)


# -- a class renamed or moved -------------------------------------------------------------------


@dataclasses.dataclass
class MovedCart:  # CartV1, moved to another module and renamed
    skus: list[str]


def test_a_class_renamed_or_moved_loads_under_the_name_it_was_stored_under() -> None:
    writer, sid = write(CartV1, CartV1(["a"]), name=None)  # stored under module.QualName
    stored_as = f"{CartV1.__module__}.{CartV1.__qualname__}"
    session = read(MovedCart, writer, sid, name=stored_as)
    assert session is not None and session["cart"] == MovedCart(["a"])


def test_a_class_renamed_without_keeping_its_name_loses_old_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, sid = write(CartV1, CartV1(["a"]), name=None)
    assert_lost(MovedCart, writer, sid, caplog, name=None)


# -- a class no longer registered ---------------------------------------------------------------


def test_a_class_no_longer_registered_loses_old_records(caplog: pytest.LogCaptureFixture) -> None:
    writer, sid = write(CartV1, CartV1(["a"]))
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert Store(storage=writer.storage).get_by_id(sid) is None
    assert "not registered" in caplog.text and sid[:16] not in caplog.text


class Plan(enum.Enum):
    FREE = "free"
    PRO = "pro"


class PlanV2(enum.Enum):  # PRO gone, TEAM added
    FREE = "free"
    TEAM = "team"


@pytest.mark.parametrize(("member", "kept"), [(Plan.FREE, True), (Plan.PRO, False)])
def test_an_enum_member_removed_loses_only_records_holding_it(
    member: Plan, kept: bool, caplog: pytest.LogCaptureFixture
) -> None:
    writer, sid = write(Plan, member)
    if kept:
        session = read(PlanV2, writer, sid)
        assert session is not None and session["cart"] is PlanV2.FREE
    else:
        assert_lost(PlanV2, writer, sid, caplog)


# -- never an error answered --------------------------------------------------------------------


async def test_a_request_on_a_record_the_new_class_cannot_load_is_served_fresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, sid = write(CartV1, CartV1(["a"]))
    store = Store(storage=writer.storage)
    store.register_type(CartV2NoDefault, name=NAME)
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await asgi_client(store, asgi_app(store)).get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200 and reply.text == "1"  # a fresh session: n starts over
    assert reply.cookie.value != sid
    assert sid[:16] not in caplog.text


# -- a rolling deploy: both releases at once ----------------------------------------------------


def test_both_releases_read_each_others_records_during_a_rolling_deploy() -> None:
    storage = MemoryStorage()
    old, new = Store(storage=storage), Store(storage=storage)
    old.register_type(CartV1, name=NAME)
    new.register_type(CartV2, name=NAME)

    session = new.load(None)
    session["cart"] = CartV2(["a"], "SPRING")
    session.save()
    on_old = old.get_by_id(session.id)  # the new field is ignored by the old release ...
    assert on_old is not None and on_old["cart"] == CartV1(["a"])
    on_old["cart"] = CartV1(["a", "b"])
    on_old.save()
    on_new = new.get_by_id(session.id)  # ... which saves without it: the default fills in
    assert on_new is not None and on_new["cart"] == CartV2(["a", "b"], None)
