"""``sessionkit.django.SessionStore`` beyond Django's contract: sessionkit's guarantees (ids
never adopted, typed values without pickle, server-side expiry, saves and key changes that
never resurrect), and how ``SESSIONKIT`` and Django's settings combine.

Django's own ``SessionTestsMixin`` (``test_contract.py``) covers the contract itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from sessionkit import ConfigError, StorageError
from sessionkit.django import SessionStore, SettingError, get_store, register_type
from sessionkit.django._engine import engine
from sessionkit_memory import MemoryStorage
from tests.django.conftest import using
from tests.web._support import CountingStorage


@pytest.fixture
def counting() -> Iterator[CountingStorage]:
    """A memory storage counting its calls, in use for the test."""
    storage = CountingStorage(MemoryStorage())
    with using(storage):
        yield storage


class Clock:
    """The store's clock, moved by hand (``get_store().now``)."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The store's clock, moved by hand; the storage keeps real time (its TTLs run late)."""
    fake = Clock()
    with using(MemoryStorage()):
        get_store().now = fake
        yield fake


def _saved(**data: Any) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


# -- ids ----------------------------------------------------------------------------------------


def test_keys_are_made_by_the_stores_key_generator(storage: str) -> None:
    session = _saved(a=1)
    key = session.session_key
    assert key is not None and get_store().is_valid_id(key) and len(key) == 43


def test_a_custom_key_generator_from_sessionkit_is_used() -> None:
    made: list[str] = []

    def generate() -> str:
        made.append(secrets.token_urlsafe(24))
        return made[-1]

    with using("memory://", key_generator=generate):
        assert _saved(a=1).session_key == made[-1]


def test_a_key_that_loads_nothing_becomes_a_new_key_on_save(counting: CountingStorage) -> None:
    planted = secrets.token_urlsafe(32)  # well formed, made by no server
    session = SessionStore(planted)
    session["user"] = "mallory"
    session.save()
    assert session.session_key not in (None, planted)
    assert counting.inner.get(planted) is None
    assert SessionStore(planted).load() == {}


def test_a_client_key_is_never_written_under_even_without_a_load(counting: CountingStorage) -> None:
    planted = secrets.token_urlsafe(32)
    for must_create in (True, False):
        session = SessionStore(planted)
        session.clear()  # data set without loading the record
        session["user"] = "mallory"
        session.save(must_create=must_create)
        assert session.session_key != planted
        assert counting.inner.get(planted) is None


def test_a_clients_live_key_after_clear_replaces_that_record() -> None:
    live = _saved(cart=["book"]).session_key
    session = SessionStore(live)
    session.clear()
    session["cart"] = []
    session.save()
    assert session.session_key == live
    assert SessionStore(live).load() == {"cart": []}


@pytest.mark.parametrize("key", ["../../etc/passwd", "*", '{"$gt": ""}', "a" * 100, "x" * 42])
def test_a_malformed_key_never_reaches_the_storage(counting: CountingStorage, key: str) -> None:
    session = SessionStore(key)
    assert session.load() == {}
    assert not session.exists(key)
    session.delete(key)
    assert sum(counting.calls.values()) == 0


def test_must_create_on_an_existing_record_raises_create_error() -> None:
    session = _saved(a=1)
    with pytest.raises(CreateError):
        session.save(must_create=True)


def test_storage_key_secret_keeps_ids_out_of_the_storage(counting: CountingStorage) -> None:
    with using(counting, storage_key_secret="s" * 32):
        key = _saved(a=1).session_key
        assert key is not None
        assert counting.inner.get(key) is None  # stored under an HMAC of the id
        assert SessionStore(key).load() == {"a": 1}


# -- values -------------------------------------------------------------------------------------


def test_values_keep_their_types(storage: str) -> None:
    values = {
        "when": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc),
        "day": date(2024, 5, 6),
        "price": Decimal("9.99"),
        "tags": {"a", "b"},
        "pair": (1, "two"),
        "blob": b"\x00\xff",
        "_auth_user_id": "42",  # what django.contrib.auth stores: strings
    }
    key = _saved(**values).session_key
    loaded = SessionStore(key).load()
    assert loaded == values
    assert {k: type(v) for k, v in loaded.items()} == {k: type(v) for k, v in values.items()}


class Opaque:
    pass


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.__setitem__("x", Opaque()),
        lambda s: s.update({"x": Opaque()}),
        lambda s: s.setdefault("x", Opaque()),
        lambda s: asyncio.run(s.aset("x", Opaque())),
        lambda s: asyncio.run(s.aupdate({"x": Opaque()})),
        lambda s: s.__setitem__(1, "not a str key"),
    ],
    ids=["setitem", "update", "setdefault", "aset", "aupdate", "key"],
)
def test_an_unstorable_value_fails_where_it_is_set(write: Any) -> None:
    session = SessionStore()
    with pytest.raises(TypeError, match=r"register_type|str"):
        write(session)
    assert dict(session.items()) == {}
    assert session.modified is False


@dataclasses.dataclass
class Cart:
    items: list[str]


def test_registered_types_round_trip_and_survive_a_store_rebuild() -> None:
    register_type(Cart)
    key = _saved(cart=Cart(["book"])).session_key
    assert SessionStore(key)["cart"] == Cart(["book"])
    with using("memory://"):  # a new store: the registration holds for it too
        assert SessionStore(_saved(cart=Cart([])).session_key)["cart"] == Cart([])


def test_register_type_refuses_a_plain_class_at_once() -> None:
    with pytest.raises(TypeError, match="attrs classes, dataclasses and enums"):
        register_type(Opaque)


def test_stored_records_are_json_never_pickle(counting: CountingStorage) -> None:
    key = _saved(a=1).session_key
    assert key is not None
    raw = counting.inner.get(key)
    assert raw is not None and raw.startswith(b'{"v":1,')
    assert SessionStore().decode(SessionStore().encode({"a": 1})) == {"a": 1}


def test_a_pickled_or_corrupt_record_is_a_lost_session_never_code_run(
    counting: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    for raw in (pickle.dumps({"a": 1}), b"{not json", b'{"v":99}'):
        key = secrets.token_urlsafe(32)
        counting.inner.set(key, raw, timedelta(hours=1))
        session = SessionStore(key)
        assert session.load() == {}
        assert session.session_key is None
        assert key not in caplog.text  # logged by fingerprint, never the id
    assert SessionStore().decode(pickle.dumps({"a": 1}).decode("latin-1")) == {}
    assert "Session data corrupted" in caplog.text


# -- expiry -------------------------------------------------------------------------------------


def test_expiry_is_enforced_by_the_server_whatever_the_storage_holds(clock: Clock) -> None:
    session = _saved(a=1)
    session.set_expiry(60)
    session.save()
    clock.now += 59
    assert SessionStore(session.session_key).load() == {"a": 1, "_session_expiry": 60}
    clock.now += 2  # the storage's own TTL runs on real time: it still holds the record
    assert get_store().storage.get(session.session_key or "") is not None
    assert SessionStore(session.session_key).load() == {}


def test_a_save_renews_an_idle_expiry(clock: Clock) -> None:
    session = _saved(a=1)
    clock.now += 1_000_000  # within the two weeks of SESSION_COOKIE_AGE
    session["b"] = 2
    session.save()
    clock.now += 1_000_000
    assert SessionStore(session.session_key).load() == {"a": 1, "b": 2}


def test_an_expiry_date_is_not_moved_by_saves(clock: Clock) -> None:
    session = SessionStore()
    session["a"] = 1
    session.set_expiry(datetime.fromtimestamp(clock.now + 100, tz=timezone.utc))
    session.save()
    clock.now += 50
    session.save()
    clock.now += 51
    assert SessionStore(session.session_key).load() == {}


def test_a_session_past_its_expiry_date_is_not_written(counting: CountingStorage) -> None:
    session = _saved(a=1)
    key = session.session_key
    counting.clear()
    session.set_expiry(-timedelta(seconds=10))
    session.save()
    assert counting.writes == 1 and counting.calls["delete"] == 1  # its record went
    assert SessionStore(key).load() == {}
    assert session._max_age() <= 0  # and the cookie goes with it


def test_sessionkit_expiration_is_the_default_age(clock: Clock) -> None:
    with using(MemoryStorage(), expiration=timedelta(minutes=5)):
        get_store().now = clock
        session = _saved(a=1)
        assert session.get_expiry_age() == 300
        clock.now += 301
        assert SessionStore(session.session_key).load() == {}


def test_absolute_timeout_ends_a_session_whatever_the_activity(clock: Clock) -> None:
    with using(
        MemoryStorage(),
        expiration=timedelta(hours=1),
        absolute_timeout=timedelta(hours=2),
    ):
        get_store().now = clock
        session = _saved(a=1)
        for _ in range(2):
            clock.now += 50 * 60
            session.cycle_key()  # a log-in keeps the session's start
            session["b"] = 1
            session.save()
        assert session._max_age() == 20 * 60  # the cookie ends with it
        clock.now += 20 * 60
        assert SessionStore(session.session_key).load() == {}


def test_a_lifetime_is_capped_at_400_days(counting: CountingStorage) -> None:
    session = SessionStore()
    session["a"] = 1
    session.set_expiry(timedelta(days=4000))
    session.save()
    assert session._max_age() == 400 * 86400


# -- lifecycle ----------------------------------------------------------------------------------


def test_cycle_key_moves_the_data_and_takes_the_old_record(storage: str) -> None:
    session = _saved(cart=["book"])
    old = session.session_key
    session.cycle_key()
    assert session.session_key != old
    assert not session.exists(old)
    assert SessionStore(session.session_key).load() == {"cart": ["book"]}


def test_cycle_key_does_not_carry_a_session_ended_meanwhile(storage: str) -> None:
    """A log-out in another request (``flush``) wins over a key change racing it
    (``update_session_auth_hash`` after a password change)."""
    mine = _saved(_auth_user_id="1")
    other = SessionStore(mine.session_key)
    other.flush()  # the log-out, meanwhile
    mine.cycle_key()
    assert mine.session_key is None and dict(mine.items()) == {}
    mine["_auth_user_hash"] = "h"  # what update_session_auth_hash sets next
    mine.save()
    assert SessionStore(mine.session_key).load() == {"_auth_user_hash": "h"}  # no user


def test_a_failed_cycle_key_leaves_everything_as_it_was(counting: CountingStorage) -> None:
    session = _saved(a=1)
    old = session.session_key
    counting.failing = frozenset({"take"})
    with pytest.raises(StorageError):
        session.cycle_key()
    counting.failing = frozenset()
    assert session.session_key == old and dict(session.items()) == {"a": 1}
    assert SessionStore(old).load() == {"a": 1}
    assert len(list(counting.inner.scan())) == 1  # the new copy was removed


def test_a_failed_async_cycle_key_leaves_everything_as_it_was(counting: CountingStorage) -> None:
    session = _saved(a=1)
    old = session.session_key
    counting.failing = frozenset({"take"})
    with pytest.raises(StorageError):
        asyncio.run(session.acycle_key())
    counting.failing = frozenset()
    assert session.session_key == old and SessionStore(old).load() == {"a": 1}
    assert len(list(counting.inner.scan())) == 1


def test_cycling_or_flushing_an_empty_session_writes_nothing(counting: CountingStorage) -> None:
    for key in (None, secrets.token_urlsafe(32)):
        for act in ("cycle_key", "flush", "clear"):
            session = SessionStore(key)
            getattr(session, act)()
            assert session.session_key is None or act == "clear"
    assert counting.writes == counting.calls["delete"]  # a flush deletes the client's key
    assert not list(counting.inner.scan())


def test_a_failed_flush_changes_nothing(counting: CountingStorage) -> None:
    session = _saved(a=1)
    key = session.session_key
    counting.down = True
    with pytest.raises(StorageError):
        session.flush()
    counting.down = False
    assert session.session_key == key and dict(session.items()) == {"a": 1}
    assert session._broke is not None  # the middleware will answer 503


def test_a_save_never_resurrects_a_deleted_session(storage: str) -> None:
    session = _saved(a=1)
    SessionStore().delete(session.session_key)
    session["a"] = 2
    with pytest.raises(UpdateError):
        session.save()
    assert SessionStore(session.session_key).load() == {}


def test_a_storage_failure_is_an_error_never_an_empty_session(counting: CountingStorage) -> None:
    key = _saved(a=1).session_key
    counting.down = True
    session = SessionStore(key)
    with pytest.raises(StorageError):
        session.get("a")
    with pytest.raises(StorageError):
        asyncio.run(SessionStore(key).aload())
    counting.down = False
    assert session._broke is not None and session.session_key == key


def test_create_stores_an_empty_session_as_django_does(storage: str) -> None:
    """``request.session.create()`` (or ``save()``) is how apps get a key: it must stick."""
    session = SessionStore()
    session.create()
    assert session.exists(session.session_key)
    assert SessionStore(session.session_key).load() == {}
    assert SessionStore(session.session_key).session_key == session.session_key


# -- clear_expired ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_clear_expired_purges_where_the_storage_can(
    kind: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    from tests.django.conftest import url_for

    with using(url_for(request, kind, tmp_path)):
        storage = get_store().storage
        storage.set("gone", b"x", timedelta(milliseconds=1))
        storage.set("kept", b"x", timedelta(hours=1))
        import time

        time.sleep(0.01)
        call_command("clearsessions")
        assert storage.count() == 1  # type: ignore[attr-defined]


def test_clear_expired_says_so_where_the_storage_cannot() -> None:
    with using("example://?prefix=cannot-purge:"):
        with pytest.raises(NotImplementedError, match="purge_expired"):
            SessionStore.clear_expired()
        with pytest.raises(CommandError, match="doesn't support clearing expired sessions"):
            call_command("clearsessions")


# -- settings -----------------------------------------------------------------------------------

COOKIE_FIELDS = [
    # (SESSIONKIT field, its value, Django setting, its value, Cookie attribute, expected)
    ("key_lookup", "cookie:sk", "SESSION_COOKIE_NAME", "dj", "name", ("sk", "dj")),
    ("expiration", timedelta(hours=1), "SESSION_COOKIE_AGE", 60, "age", (3600, 60)),
    ("cookie_domain", "a.example", "SESSION_COOKIE_DOMAIN", "b.example", "domain", None),
    ("cookie_path", "/a", "SESSION_COOKIE_PATH", "/b", "path", ("/a", "/b")),
    ("cookie_secure", True, "SESSION_COOKIE_SECURE", False, "secure", (True, False)),
    ("cookie_http_only", False, "SESSION_COOKIE_HTTPONLY", True, "http_only", (False, True)),
    ("cookie_same_site", "Strict", "SESSION_COOKIE_SAMESITE", None, "same_site", None),
    ("cookie_session_only", True, "SESSION_EXPIRE_AT_BROWSER_CLOSE", False, "session_only", None),
]


@pytest.mark.parametrize("field", COOKIE_FIELDS, ids=[f[0] for f in COOKIE_FIELDS])
def test_sessionkit_wins_where_it_sets_a_field_and_django_elsewhere(field: tuple[Any, ...]) -> None:
    name, ours, setting, theirs, attribute, expected = field
    if expected is None:
        expected = (ours, theirs)
    with override_settings(**{setting: theirs}), using("memory://"):
        assert getattr(engine().cookie, attribute) == expected[1]
        with using("memory://", **{name: ours}):
            assert getattr(engine().cookie, attribute) == expected[0]


def test_overridden_django_settings_are_read_again() -> None:
    with override_settings(SESSION_COOKIE_AGE=120, SESSION_SAVE_EVERY_REQUEST=True):
        assert SessionStore().get_expiry_age() == 120
        assert engine().cookie.save_every_request is True
    assert SessionStore().get_expiry_age() == 1209600


BAD = [
    ({"storag": "memory://"}, {}, 'SESSIONKIT["storag"]', "did you mean 'storage'"),
    ({"storage": "nosuch://x"}, {}, 'SESSIONKIT["storage"]', "no storage backend for scheme"),
    ({"storage": "redis://localhost/0?prefix="}, {}, 'SESSIONKIT["storage"]', "prefix"),
    ({"max_size": 1}, {}, 'SESSIONKIT["max_size"]', "at least 64"),
    ({"key_lookup": "header:X-Session"}, {}, 'SESSIONKIT["key_lookup"]', "cookie"),
    ({}, {"SESSION_COOKIE_AGE": 500 * 86400}, "SESSION_COOKIE_AGE", "at most 400 days"),
    ({}, {"SESSION_COOKIE_SAMESITE": "None"}, "SESSION_COOKIE_SAMESITE", "requires"),
    ({}, {"SESSION_COOKIE_NAME": "__Host-sid"}, "SESSION_COOKIE_SECURE", "__Host-"),
    (
        {"absolute_timeout": timedelta(hours=1)},
        {},
        'SESSIONKIT["absolute_timeout"]',
        "shorter than expiration",
    ),
]


@pytest.mark.parametrize(("fields", "django", "setting", "message"), BAD)
def test_a_bad_setting_fails_naming_it(
    fields: dict[str, Any], django: dict[str, Any], setting: str, message: str
) -> None:
    with override_settings(SESSIONKIT=fields, **django):
        with pytest.raises(SettingError, match=message) as info:
            engine()
        assert info.value.setting == setting
        assert str(info.value).startswith(f"{setting}: ")
        assert isinstance(info.value, ConfigError) and isinstance(info.value, ImproperlyConfigured)


def test_sessionkit_must_be_a_dict() -> None:
    with (
        override_settings(SESSIONKIT="redis://localhost"),
        pytest.raises(SettingError, match="dict"),
    ):
        engine()


def test_a_storage_object_is_used_and_never_closed_by_the_engine() -> None:
    storage = CountingStorage(MemoryStorage())
    with using(storage):
        assert get_store().storage is storage
        _saved(a=1)
    assert storage.calls["close"] == 0


def test_a_storage_opened_from_a_url_is_closed_when_replaced(tmp_path: Any) -> None:
    with using(f"sqlite:///{tmp_path}/s.db"):
        opened = get_store().storage
        _saved(a=1)
    with pytest.raises(StorageError):
        opened.get("x")  # closed


def test_the_django_security_logger_hears_of_corrupt_data(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"):
        assert SessionStore().decode("bad:encoded:value") == {}
    assert [r.name for r in caplog.records] == ["django.security.SuspiciousSession"]
