"""Key rotation, see ``docs/security.md``:

    "Rotating ``encryption_keys`` (a new key first, the old ones after it) or
    ``storage_key_secret`` (a new secret first) logs nobody out: records under an old key or an
    old name still open, each write seals under the first key and moves the record to the
    first secret's name (one live copy at a time, never zero), a session ended during the
    rotation ends under every name, and ``sessionkit rekey`` re-encrypts every record under the
    first key online, losing no concurrent write, and resumes where an interrupted run stopped."

Why it matters: a key or a secret that cannot be rotated without logging every user out is
never rotated, and a leaked one stays in service. Rotation must be invisible to users and safe
under traffic: a save racing with a move or a rekey must not be lost, and a logout racing with
them must not be undone.

Request-level tests run through ASGI, WSGI and Flask on every backend; the rekey tests drive
``sessionkit._ops.rekey`` (what ``sessionkit rekey`` runs; the command line itself is tested in
``tests/cli/test_rekey.py``) against every backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import Store
from sessionkit._crypto import Keyring, parse_keys
from sessionkit._ops.rekey import Rekey, rekey
from sessionkit.testing import FakeClock
from tests._sessions import saved_sessions
from tests.security._crypto_support import WEB, key_of, new_key, records, stored_names
from tests.security._records import raw_storage
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

K1, K2 = new_key(), new_key()
S1, S2 = new_key(), new_key()  # storage_key_secret: 43 characters, above the 32-byte floor
USERS = ("ada", "bob", "cy")


@pytest.fixture(params=sorted(WEB))
def web(request: pytest.FixtureRequest) -> MakeClient:
    return WEB[request.param]


def _keyring(*keys: str) -> Keyring:
    return Keyring(parse_keys("encryption_keys", keys))


def _sealed_by(storage: CountingStorage, request: pytest.FixtureRequest) -> list[str | None]:
    return sorted(str(key_of(raw, K1, K2)) for _, raw in records(storage, request))


async def _log_in(web: MakeClient, store: Store) -> list[Browser]:
    browsers = []
    for user in USERS:
        browser = Browser(web(store))
        await browser.get(f"/set?user={user}")
        browsers.append(browser)
    return browsers


async def _still_logged_in(browsers: list[Browser], store: Store, web: MakeClient) -> None:
    for browser, user in zip(browsers, USERS, strict=True):
        browser.client = web(store)
        before = browser.value
        assert (await browser.get("/get?k=user")).text == f'"{user}"'
        assert browser.value == before


async def test_rotating_encryption_keys_keeps_everyone_logged_in(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    browsers = await _log_in(web, make_store(clock, storage, encryption_keys=[K1]))
    assert _sealed_by(storage, request) == [K1] * 3

    rotated = make_store(clock, storage, encryption_keys=[K2, K1])  # the new key first
    await _still_logged_in(browsers, rotated, web)
    await browsers[0].get("/count")  # a write seals under the first key
    assert _sealed_by(storage, request) == sorted([K2, K1, K1])

    done = rekey(
        raw_storage(storage), _keyring(K2, K1), expiration=timedelta(hours=24), clock=clock
    )
    assert (done.rekeyed, done.current, done.complete) == (2, 1, True)
    assert _sealed_by(storage, request) == [K2] * 3

    await _still_logged_in(browsers, make_store(clock, storage, encryption_keys=[K2]), web)


async def test_control_dropping_the_old_key_without_rekey_logs_its_sessions_out(
    web: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Control: the rekey above is what kept them in."""
    browsers = await _log_in(web, make_store(clock, storage, encryption_keys=[K1]))
    browsers[0].client = web(make_store(clock, storage, encryption_keys=[K2]))
    assert (await browsers[0].get("/get?k=user")).text == "null"


async def test_rotating_storage_key_secret_keeps_everyone_logged_in_and_moves_on_write(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    old = make_store(clock, storage, storage_key_secret=S1, encryption_keys=[K1])
    browsers = await _log_in(web, old)
    old_names = sorted(old.storage_key(b.value or "") for b in browsers)
    assert stored_names(storage, request) == old_names

    new = make_store(clock, storage, storage_key_secret=[S2, S1], encryption_keys=[K1])
    await _still_logged_in(browsers, new, web)
    assert stored_names(storage, request) == old_names  # reads move nothing

    ada = browsers[0]
    await ada.get("/set?seen=1")
    assert ada.value == browsers[0].value
    moved, was = new.storage_key(ada.value or ""), old.storage_key(ada.value or "")
    # one copy: under the new name, and no longer under the old one
    assert stored_names(storage, request) == sorted([moved, *(n for n in old_names if n != was)])
    assert (await ada.get("/all")).text == '{"seen": 1, "user": "ada"}'

    # Once every record was written, the old secret can go.
    for browser in browsers[1:]:
        await browser.get("/count")
    final = make_store(clock, storage, storage_key_secret=S2, encryption_keys=[K1])
    await _still_logged_in(browsers, final, web)


async def test_a_read_only_session_is_moved_by_its_renewal(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """A visitor who only reads is never written by a save: the renewal past half the
    lifetime moves the record, so the old secret can be dropped one lifetime after rotating."""
    config: dict[str, Any] = {"expiration": timedelta(hours=1), "encryption_keys": [K1]}
    browser = Browser(web(make_store(clock, storage, storage_key_secret=S1, **config)))
    await browser.get("/set?user=ada")
    new = make_store(clock, storage, storage_key_secret=[S2, S1], **config)
    browser.client = web(new)
    clock.advance(40 * 60)
    assert (await browser.get("/get?k=user")).text == '"ada"'
    assert stored_names(storage, request) == [new.storage_key(browser.value or "")]
    clock.advance(40 * 60)  # past the first save's lifetime: alive thanks to the renewal
    browser.client = web(make_store(clock, storage, storage_key_secret=S2, **config))
    assert (await browser.get("/get?k=user")).text == '"ada"'


@pytest.mark.parametrize("end", ["destroy", "regenerate", "reset"])
async def test_a_session_ended_during_rotation_ends_under_every_name(
    web: MakeClient, clock: FakeClock, storage: CountingStorage, end: str
) -> None:
    old = make_store(clock, storage, storage_key_secret=S1)
    browser = Browser(web(old))
    await browser.get("/set?user=ada")
    sid = browser.value
    assert sid is not None
    browser.client = web(make_store(clock, storage, storage_key_secret=[S2, S1]))
    await browser.get(f"/{end}?x=1")
    assert browser.value != sid
    for store in (old, make_store(clock, storage, storage_key_secret=[S2, S1])):
        assert store.get_by_id(sid) is None  # the old id opens nothing, under any name


async def test_a_stale_save_racing_a_destroy_during_rotation_resurrects_nothing(
    clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Two requests load one session from its old name; one logs out, the other saves after:
    the save must not bring the session back under the new name."""
    make_store(clock, storage, storage_key_secret=S1)
    old = make_store(clock, storage, storage_key_secret=S1)
    session = old.load(None)
    session["user"] = "ada"
    session.save()
    new = make_store(clock, storage, storage_key_secret=[S2, S1])
    slow, logout = new.get_by_id(session.id), new.get_by_id(session.id)
    assert slow is not None and logout is not None
    logout.destroy()
    slow["cart"] = "book"
    with pytest.raises(Exception, match="destroyed or regenerated"):
        slow.save()
    assert records(storage, request) == []


async def test_two_requests_moving_one_session_keep_one_copy(
    clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    old = make_store(clock, storage, storage_key_secret=S1, encryption_keys=[K1])
    session = old.load(None)
    session["user"] = "ada"
    session.save()
    new = make_store(clock, storage, storage_key_secret=[S2, S1], encryption_keys=[K2, K1])
    first, second = new.get_by_id(session.id), new.get_by_id(session.id)
    assert first is not None and second is not None
    first["a"] = 1
    first.save()
    second["b"] = 2
    second.save()  # the record was moved meanwhile: replaced there, not a second copy
    assert stored_names(storage, request) == [new.storage_key(session.id)]
    reread = new.get_by_id(session.id)
    assert reread is not None and reread["user"] == "ada" and reread["b"] == 2


# -- sessionkit rekey ------------------------------------------------------------------------


class _Interrupt(Exception):
    pass


def test_an_interrupted_rekey_resumes_where_it_stopped(
    clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    store = make_store(clock, storage, encryption_keys=[K1])
    ids = saved_sessions(store, 12)
    inner = raw_storage(storage)

    def stop(done: int, total: int | None, summary: Rekey) -> None:
        raise _Interrupt

    with pytest.raises(_Interrupt):
        rekey(
            inner,
            _keyring(K2, K1),
            expiration=timedelta(hours=24),
            progress=stop,
            every=5,
            clock=clock,
        )
    assert _sealed_by(storage, request).count(K2) == 5

    done = rekey(inner, _keyring(K2, K1), expiration=timedelta(hours=24), clock=clock)
    assert (done.scanned, done.current, done.rekeyed, done.complete) == (12, 5, 7, True)
    after = make_store(clock, storage, encryption_keys=[K2])
    assert [after.get_by_id(sid)["n"] for sid in ids] == list(range(12))  # type: ignore[index]


def test_rekey_keeps_each_records_ttl_and_skips_expired_ones(
    clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, encryption_keys=[K1], expiration=timedelta(hours=1))
    short = store.load(None)
    short["x"] = 1
    short.set_expiry(timedelta(minutes=5))
    short.save()
    (long_id,) = saved_sessions(store, 1)
    clock.advance(10 * 60)  # the 5-minute one is past its expiry
    done = rekey(raw_storage(storage), _keyring(K2, K1), expiration=timedelta(hours=1), clock=clock)
    assert (done.rekeyed, done.expired) == (1, int(done.scanned == 2))
    after = make_store(clock, storage, encryption_keys=[K2], expiration=timedelta(hours=1))
    assert after.get_by_id(long_id) is not None
    clock.advance(51 * 60)  # the rewritten record kept its hour from its save, not a new one
    assert after.get_by_id(long_id) is None


class _RacingStorage:
    """The storage rekey sees: before each of its first ``races`` ``replace_if`` calls, an
    old worker (still sealing with K1) saves that very record, as a request landing between
    rekey's read and its write would."""

    def __init__(self, inner: Any, old: Store, ids: dict[str, str], races: int) -> None:
        self.inner, self.old, self.ids, self.races = inner, old, ids, races

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        return self.inner.scan()  # type: ignore[no-any-return]

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta) -> bool:
        if self.races > 0:
            self.races -= 1
            session = self.old.get_by_id(self.ids[key])
            assert session is not None
            session["n"] = session["n"] + 100
            session.save()
        return self.inner.replace_if(key, expected, value, ttl)  # type: ignore[no-any-return]


def test_rekey_loses_no_save_that_lands_between_its_read_and_its_write(
    clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    old = make_store(clock, storage, encryption_keys=[K1, K2])
    ids = saved_sessions(old, 6)
    by_key = {old.storage_key(sid): sid for sid in ids}
    racing = _RacingStorage(raw_storage(storage), old, by_key, races=3)
    from sessionkit import AtomicStorage, ScannableStorage

    assert isinstance(racing, AtomicStorage) and isinstance(racing, ScannableStorage)
    done = rekey(racing, _keyring(K2, K1), expiration=timedelta(hours=24), clock=clock)
    assert done.complete and done.rekeyed == 6  # the 3 raced ones on the retry
    assert _sealed_by(storage, request) == [K2] * 6
    after = make_store(clock, storage, encryption_keys=[K2])
    values = sorted(after.get_by_id(sid)["n"] for sid in ids)  # type: ignore[index]
    assert sum(v >= 100 for v in values) == 3  # every raced save is there


def test_rekey_under_concurrent_saves_loses_nothing(
    clock: FakeClock, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Real threads: two workers keep saving their own sessions while rekey runs, one still
    sealing with the old key (a rolling deploy: it knows the new key, but not yet as the
    first), one with the new; every save's value is there at the end, all under the first key
    once the workers stop and a last rekey pass ran."""
    old = make_store(clock, storage, encryption_keys=[K1, K2])
    new = make_store(clock, storage, encryption_keys=[K2, K1])
    ids = saved_sessions(old, 40)
    expected = {sid: i for i, sid in enumerate(ids)}
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(store: Store, mine: list[str]) -> None:
        try:
            while not stop.is_set():
                for sid in mine:
                    session = store.get_by_id(sid)
                    assert session is not None, "a session was lost"
                    session["n"] += 1
                    session.save()
                    expected[sid] += 1
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(old, ids[:5])),
        threading.Thread(target=work, args=(new, ids[5:10])),
    ]
    for worker in workers:
        worker.start()
    try:
        first = rekey(
            raw_storage(storage), _keyring(K2, K1), expiration=timedelta(hours=24), clock=clock
        )
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert not errors, errors
    assert first.unreadable == 0
    last = rekey(
        raw_storage(storage), _keyring(K2, K1), expiration=timedelta(hours=24), clock=clock
    )
    assert last.complete
    assert _sealed_by(storage, request) == [K2] * 40
    after = make_store(clock, storage, encryption_keys=[K2])
    assert {sid: after.get_by_id(sid)["n"] for sid in ids} == expected  # type: ignore[index]


@pytest.mark.parametrize(
    "secret",
    [[], [S1, S1], [S1, "short"], [S1, 42], ("x" * 31,)],
    ids=["empty", "twice", "one-short", "not-text", "short-alone"],
)
def test_a_bad_secret_list_fails_at_construction_naming_the_field(secret: object) -> None:
    from sessionkit import Config, ConfigError

    with pytest.raises(ConfigError) as caught:
        Config(storage_key_secret=secret)  # type: ignore[arg-type]
    assert caught.value.field == "storage_key_secret"
    assert S1 not in str(caught.value)
