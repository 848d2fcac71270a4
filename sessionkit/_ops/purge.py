"""``sessionkit purge``: delete every session of a storage, or only the expired ones.

Deleting everything goes key by key when the storage can ``scan()``, so a long purge can
report progress and be interrupted with the deleted part really gone; otherwise it is one
``reset()`` (this storage's namespace only, by the storage contract). Deleting only the
expired sessions needs ``purge_expired()``: judging expiry from outside would need the
application's config (``absolute_timeout``), which the command line does not have.
"""

from __future__ import annotations

from collections.abc import Callable

from .._abilities import CountableStorage, PurgeableStorage, ScannableStorage
from .._storage import Storage

__all__ = ["PROGRESS_EVERY", "Unsupported", "expired_purger", "live_count", "purge_all"]

#: Report progress after every this many deletions.
PROGRESS_EVERY = 1000

Progress = Callable[[int, int], None]


class Unsupported(Exception):
    """The storage lacks the optional ability the operation needs."""


def live_count(storage: Storage) -> int | None:
    """``count()`` when the storage has it, else ``None`` (unknown)."""
    return storage.count() if isinstance(storage, CountableStorage) else None


def purge_all(storage: Storage, progress: Progress, every: int | None = None) -> int | None:
    """Delete every key of ``storage``'s namespace; return how many (``None``: unknown).

    Keys are deleted as the scan yields them (the scan contract allows it), so neither the
    keys nor the values are held, and an interrupted purge has really deleted what it counted.
    ``progress(done, total)`` is called after every ``every`` deletions (default
    :data:`PROGRESS_EVERY`); ``total`` is the live count taken before starting (sessions
    created meanwhile can make ``done`` pass it, so it is raised to ``done`` then), or
    ``done`` itself when the storage cannot count.
    """
    every = every or PROGRESS_EVERY
    total = live_count(storage)
    if not isinstance(storage, ScannableStorage):
        storage.reset()
        return total
    done = 0
    for key, _ in storage.scan():
        storage.delete(key)
        done += 1
        if done % every == 0:
            progress(done, done if total is None else max(total, done))
    return done


def expired_purger(storage: Storage) -> PurgeableStorage:
    """``storage`` as a :class:`PurgeableStorage`; raise :class:`Unsupported` if it is not one.

    Called before asking for confirmation, so an operator is not asked to agree to
    something the backend cannot do.
    """
    if not isinstance(storage, PurgeableStorage):
        raise Unsupported("purging expired sessions is not supported by this backend")
    return storage
