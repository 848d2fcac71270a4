"""The sessions of a user: ``Config.principal_key``, ``Store.sessions_for`` and
``Store.destroy_all`` ("log out everywhere", "log out my other devices"; issue 20).

Each promise on every backend (the ``store`` fixture), through the ASGI and WSGI middlewares
and Flask where a request is involved:

- every session saved holding the principal is listed, and only live ones that still hold it
  (not expired, destroyed, logged out, or moved to another user);
- ``destroy_all`` ends them all, or all but ``keep``, and a parallel save does not bring one
  back;
- the index is written before the session: a save that fails after the index write leaves
  nothing a user can see, and nothing listed;
- concurrent log-ins of one user are all listed; a session renewed for longer than its first
  index lasts is still listed; one stored before ``principal_key`` was set is listed from its
  next save;
- what the index stores reveals no more than the storage already does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from datetime import timedelta

import attrs
import pytest

from sessionkit import ConfigError, SessionGone, StorageError, Store
from sessionkit.testing import FakeClock
from tests.security._faults import in_threads
from tests.web._parity import Kind, build
from tests.web._support import CountingStorage

_KEY = secrets.token_bytes(32)


def _indexed(store: Store, **fields: object) -> Store:
    return Store(attrs.evolve(store.config, principal_key="user", **fields), clock=store.now)


def _login(store: Store, user: str | int) -> str:
    session = store.load(None)
    session["user"] = user
    session.save()
    return session.id


def _user(store: Store, sid: str) -> object:
    session = store.get_by_id(sid)
    return None if session is None else session.get("user")


async def test_log_out_other_devices_through_each_integration(kind: Kind, store: Store) -> None:
    store = _indexed(store)
    client = build(kind, store)
    devices = []
    for _ in range(3):
        reply = await client.get("/regenerate?user=ada")
        assert reply.status == 200
        devices.append(f"session_id={reply.cookie.value}")
    bob = f"session_id={(await client.get('/regenerate?user=bob')).cookie.value}"
    ids = [cookie.split("=", 1)[1] for cookie in devices]
    assert sorted(store.sessions_for("ada")) == sorted(ids)

    assert store.destroy_all("ada", keep=ids[0]) == 2
    assert json.loads((await client.get("/get?k=user", cookie=devices[0])).text) == "ada"
    for cookie in devices[1:]:
        assert json.loads((await client.get("/get?k=user", cookie=cookie)).text) is None
    assert json.loads((await client.get("/get?k=user", cookie=bob)).text) == "bob"
    assert store.sessions_for("ada") == [ids[0]]
    assert store.destroy_all("ada") == 1
    assert store.sessions_for("ada") == []
    assert json.loads((await client.get("/get?k=user", cookie=devices[0])).text) is None


def test_async_twins(store: Store) -> None:
    store = _indexed(store)
    ids = {_login(store, "ada") for _ in range(2)}

    async def run() -> tuple[list[str], int, list[str]]:
        listed = await store.asessions_for("ada")
        destroyed = await store.adestroy_all("ada")
        return listed, destroyed, await store.asessions_for("ada")

    listed, destroyed, after = asyncio.run(run())
    assert set(listed) == ids and destroyed == 2 and after == []


def test_only_live_sessions_that_hold_the_principal_are_listed(
    store: Store, clock: FakeClock
) -> None:
    store = _indexed(store, expiration=timedelta(hours=1))
    expiring, logged_out, switched, destroyed, kept = (_login(store, "ada") for _ in range(5))
    session = store.get_by_id(logged_out)
    assert session is not None
    del session["user"]
    session["theme"] = "dark"
    session.save()
    session = store.get_by_id(switched)
    assert session is not None
    session["user"] = "bob"
    session.save()
    session = store.get_by_id(destroyed)
    assert session is not None
    session.destroy()
    clock.advance(1800)
    session = store.get_by_id(kept)
    assert session is not None
    session["seen"] = 1
    session.save()
    assert sorted(store.sessions_for("ada")) == sorted([expiring, kept])
    assert store.sessions_for("bob") == [switched]
    clock.advance(1800 + 1)  # ``expiring`` is past its hour, ``kept`` was saved half-way
    assert store.sessions_for("ada") == [kept]
    assert store.destroy_all("ada") == 1
    assert store.sessions_for("ada") == []


def test_destroy_all_ends_only_the_users_sessions(store: Store) -> None:
    store = _indexed(store)
    ada, logged_out, switched = (_login(store, "ada") for _ in range(3))
    for sid, user in ((logged_out, None), (switched, "bob")):
        session = store.get_by_id(sid)
        assert session is not None
        session.pop("user")
        if user is not None:
            session["user"] = user
        session["theme"] = "dark"
        session.save()
    assert store.destroy_all("ada") == 1 and store.get_by_id(ada) is None
    assert _user(store, switched) == "bob"
    assert store.get_by_id(logged_out) is not None  # a logged-out session is not destroyed


def test_a_str_and_an_int_name_different_users(store: Store) -> None:
    store = _indexed(store)
    text, number = _login(store, "5"), _login(store, 5)
    assert store.sessions_for("5") == [text] and store.sessions_for(5) == [number]


def test_a_principal_value_the_index_cannot_name_is_refused(store: Store) -> None:
    store = _indexed(store)
    session = store.load(None)
    session["user"] = 1.5
    with pytest.raises(TypeError, match="principal_key value must be a str or an int"):
        session.save()
    assert store.get_by_id(session.id) is None
    with pytest.raises(TypeError):
        store.sessions_for(True)  # type: ignore[arg-type]


def test_the_index_is_written_first_so_a_failed_save_leaves_nothing(
    kind: Kind, store: Store
) -> None:
    store = _indexed(store)
    listed = _login(store, "ada")
    counting = CountingStorage(store.storage)
    failing = Store(store.config, storage=counting, clock=store.now)
    client = build(kind, failing)
    # The index exists: a second log-in updates it (get, replace_if), then creates its
    # session, which the storage refuses.
    counting.failing = frozenset({"create"})

    async def log_in() -> None:
        reply = await client.get("/regenerate?user=ada")
        assert reply.status == 503 and reply.header("set-cookie") == []

    asyncio.run(log_in())
    assert counting.calls["replace_if"] >= 1  # the index was written before the failed create
    counting.failing = frozenset()
    assert store.sessions_for("ada") == [listed]
    assert store.destroy_all("ada") == 1


def test_a_failed_index_write_writes_no_session(store: Store) -> None:
    counting = CountingStorage(store.storage)
    failing = _indexed(Store(store.config, storage=counting, clock=store.now))
    counting.failing = frozenset({"create", "replace_if", "set"})
    session = failing.load(None)
    session["user"] = "ada"
    with pytest.raises(StorageError):
        session.save()
    assert counting.calls["create"] == 1  # the index's create; the session's was never tried
    counting.failing = frozenset()
    assert failing.get_by_id(session.id) is None


def test_destroy_all_during_parallel_saves_leaves_no_live_session(store: Store) -> None:
    store = _indexed(store)
    ids = [_login(store, "ada") for _ in range(6)]

    def work(worker: int) -> int:
        if worker == len(ids):
            return store.destroy_all("ada")
        for round_ in range(5):
            session = store.get_by_id(ids[worker])
            if session is None:
                return 0
            session["cart"] = round_
            with contextlib.suppress(SessionGone):
                session.save()
        return 0

    in_threads(len(ids) + 1, work)
    store.destroy_all("ada")  # the sessions the race let finish first
    assert store.sessions_for("ada") == []
    assert all(store.get_by_id(sid) is None for sid in ids)
    # A stale copy of a destroyed session saved afterwards does not bring it back.
    stale = store.load(None)
    stale["user"] = "ada"
    stale.save()
    copy = store.get_by_id(stale.id)
    assert copy is not None
    assert store.destroy_all("ada") == 1
    copy["cart"] = 9
    with pytest.raises(SessionGone):
        copy.save()
    assert store.get_by_id(stale.id) is None and store.sessions_for("ada") == []


def test_concurrent_logins_of_one_user_are_all_listed(store: Store) -> None:
    store = _indexed(store)
    ids = in_threads(8, lambda _: _login(store, "ada"))
    assert sorted(store.sessions_for("ada")) == sorted(ids)
    assert store.destroy_all("ada") == 8


def test_a_session_renewed_past_its_first_index_is_still_listed(
    kind: Kind, store: Store, clock: FakeClock
) -> None:
    store = _indexed(store, expiration=timedelta(hours=1))
    client = build(kind, store)

    async def browse() -> str:
        cookie = f"session_id={(await client.get('/set?user=ada')).cookie.value}"
        for _ in range(12):  # 7 h of reads, each renewing the session past its half-life
            clock.advance(35 * 60)
            reply = await client.get("/get?k=user", cookie=cookie)
            assert json.loads(reply.text) == "ada"
        return cookie.split("=", 1)[1]

    sid = asyncio.run(browse())
    assert store.sessions_for("ada") == [sid]
    assert store.destroy_all("ada") == 1


def test_sessions_stored_before_principal_key_are_listed_from_their_next_save(
    store: Store,
) -> None:
    sid = _login(store, "ada")  # no principal_key yet
    store = _indexed(store)
    assert store.sessions_for("ada") == []
    session = store.get_by_id(sid)
    assert session is not None
    session["theme"] = "dark"
    session.save()
    assert store.sessions_for("ada") == [sid]


def test_without_principal_key_there_is_no_index(store: Store) -> None:
    _login(store, "ada")
    with pytest.raises(ConfigError, match="principal_key"):
        store.sessions_for("ada")
    with pytest.raises(ConfigError, match="principal_key"):
        store.destroy_all("ada")
    with pytest.raises(ConfigError, match="principal_key"):
        Store(principal_key="")


def test_hidden_ids_are_listed_only_when_sealed(store: Store) -> None:
    hidden = _indexed(store, storage_key_secret=secrets.token_bytes(32))
    sid = _login(hidden, "ada")
    with pytest.raises(ConfigError, match="encryption_keys"):
        hidden.sessions_for("ada")
    assert hidden.destroy_all("ada") == 1 and hidden.get_by_id(sid) is None

    pytest.importorskip("cryptography")
    sealed = _indexed(store, storage_key_secret=secrets.token_bytes(32), encryption_keys=[_KEY])
    sid = _login(sealed, "ada")
    assert sealed.sessions_for("ada") == [sid]
    # Neither the id nor the user's name is anywhere in the storage.
    dump = b"".join(_every_record(sealed))
    assert sid.encode() not in dump and b"ada" not in dump


def _every_record(store: Store) -> list[bytes]:
    from sessionkit.storage import ScannableStorage

    storage = store.storage
    if not isinstance(storage, ScannableStorage):
        pytest.skip("the backend cannot list its records")
    return [key.encode() + value for key, value in storage.scan()]


def test_a_session_no_key_opens_is_skipped_not_an_error(store: Store) -> None:
    """A listed session sealed with a key since removed is a lost session: it is not listed,
    and it does not stop the user's other sessions being listed or logged out."""
    pytest.importorskip("cryptography")
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    before = _indexed(store, encryption_keys=[old])
    lost = _login(before, "ada")
    after = _indexed(store, encryption_keys=[new])
    kept = _login(after, "ada")
    assert after.sessions_for("ada") == [kept]
    assert after.destroy_all("ada") == 1 and after.get_by_id(kept) is None
    assert before.get_by_id(lost) is not None  # not destroyed: no key here could read it
