"""The principal index on the plugin's storage (``Config.principal_key``; issue 20).

The index is built on the contract the other checks hold a plugin to (``get``, ``create``,
``replace_if``, ``take``), so a plugin needs nothing new for it. What these checks add is the
way a user meets it: a store on the plugin's storage lists a user's sessions and logs them out
everywhere, with several log-ins racing, through the sync methods and their async twins. A
storage that refuses index keys (``principal.`` and 64 hex digits), that loses a log-in's
entry to a racing one, or that lists a destroyed session, fails here.
"""

from __future__ import annotations

import threading
from typing import Any

from .._store import Store
from ._base import SuiteBase
from ._harness import Harness, StorageHandle

__all__ = ["PrincipalChecks"]

_LOGINS = 6


class PrincipalChecks(SuiteBase):
    """``sessions_for`` / ``destroy_all`` through a store on the plugin's storage."""

    def _store(self, harness: Harness, storage: StorageHandle) -> Store:
        raw: Any = storage.storage
        clock = harness.clock
        if clock is None:
            return Store(storage=raw, principal_key="user")
        return Store(storage=raw, principal_key="user", clock=clock)

    def test_a_users_sessions_are_listed_and_logged_out_everywhere(
        self, harness: Harness, storage: StorageHandle
    ) -> None:
        """Log-ins racing each other are all listed; ``destroy_all(keep=...)`` ends all but one."""
        store = self._store(harness, storage)
        sync = harness.mode == "sync"
        ids = _logins_in_threads(store) if sync else harness.run(_alogins(store))
        other = _log_in(store, "bob")
        listed = _listed(harness, store, "ada")
        assert sorted(listed) == sorted(ids), (
            "every log-in of a user is listed by sessions_for (a racing log-in's index entry "
            "must not be lost)"
        )
        destroyed = _destroyed(harness, store, "ada", keep=ids[0])
        assert destroyed == _LOGINS - 1, "destroy_all(keep=...) ends every other session"
        assert _listed(harness, store, "ada") == [ids[0]], "only the kept session is listed"
        assert all(store.get_by_id(sid) is None for sid in ids[1:]), (
            "a session destroy_all ended cannot be loaded"
        )
        assert store.get_by_id(other) is not None, "another user's session is left alone"
        assert _destroyed(harness, store, "ada", keep=None) == 1
        assert _listed(harness, store, "ada") == [], "no destroyed session is listed"


def _log_in(store: Store, user: str) -> str:
    session = store.load(None)
    session["user"] = user
    session.save()
    return session.id


def _logins_in_threads(store: Store) -> list[str]:
    barrier = threading.Barrier(_LOGINS)
    ids: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            ids.append(_log_in(store, "ada"))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(_LOGINS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    assert len(ids) == _LOGINS, "a log-in did not finish within 60 s"
    return ids


async def _alogins(store: Store) -> list[str]:
    import asyncio

    async def log_in() -> str:
        session = await store.aload(None)
        session["user"] = "ada"
        await session.asave()
        return session.id

    return list(await asyncio.gather(*(log_in() for _ in range(_LOGINS))))


def _listed(harness: Harness, store: Store, user: str) -> list[str]:
    if harness.mode == "sync":
        return store.sessions_for(user)
    return harness.run(store.asessions_for(user))


def _destroyed(harness: Harness, store: Store, user: str, keep: str | None) -> int:
    if harness.mode == "sync":
        return store.destroy_all(user, keep=keep)
    return harness.run(store.adestroy_all(user, keep=keep))
