"""``sessionkit rekey``: re-encrypt every record of a storage under the first key, online.

After a new key is put first in ``encryption_keys`` (the old ones kept after it), every new
write is sealed with it, but a record that is not written again stays under its old key until
it expires. ``rekey`` walks the storage (``scan()``) and seals each record that is not under
the first key yet (plaintext ones included) with that key, so the old keys can be dropped:

* **online**: each record is replaced with the storage's atomic ``replace_if(key, expected,
  new, ttl)``, so a record the application changed meanwhile is left alone (its own write
  sealed it with the first key already, or the next pass will); a session it destroyed stays
  destroyed. No request waits on a lock and nobody is logged out.
* **resumable**: records already under the first key are skipped by their key id, without
  decrypting them, so a run that was interrupted (or that failed halfway) is simply run again.
* **the record stays the same record**: the plaintext envelope is carried over byte for byte
  (no value is decoded, so no registered type is needed), bound to the same storage key, and
  written with the TTL it has left (from its save time and lifetime; ``expiration`` and
  ``absolute_timeout`` must be the application's for records without a lifetime of their own).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

import attrs

from .._abilities import CountableStorage, ScannableStorage
from .._crypto import Keyring, parse_keys, sealed_key_id
from .._envelope import envelope_times
from .._errors import ConfigError
from .._principals import is_index
from .._storage import AtomicStorage, ConditionalStorage, Storage
from .._values import DecodeError
from .purge import Unsupported

__all__ = [
    "KEYS_ENV",
    "PROGRESS_EVERY",
    "Rekey",
    "Unsupported",
    "keys_from",
    "parse_duration",
    "rekey",
]

#: The environment variable the command line reads the keys from (comma-separated).
KEYS_ENV = "SESSIONKIT_ENCRYPTION_KEYS"

#: Report progress after every this many records scanned.
PROGRESS_EVERY = 1000
#: Passes over the storage at most: a record changed by a request while a pass read it is
#: looked at again by the next one (where, written by a request, it is usually current).
PASSES = 3


def keys_from(path: str | None, environ: Mapping[str, str]) -> Keyring:
    """The keys of ``--keys-file`` (one a line, ``#`` comments) or of :data:`KEYS_ENV`
    (comma- or space-separated), first one first; :class:`ConfigError` when there are none or
    one is malformed (its message never shows a key)."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
        items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        where = f"--keys-file {path}"
    else:
        items = environ.get(KEYS_ENV, "").replace(",", " ").split()
        where = f"${KEYS_ENV}"
    items = [item for item in items if item]
    if not items:
        raise ConfigError("encryption keys", f"none given: set ${KEYS_ENV} or use --keys-file")
    try:
        return Keyring(parse_keys("encryption keys", items))
    except ConfigError as exc:
        why = str(exc).removeprefix(f"{exc.field}: ")
        raise ConfigError("encryption keys", f"{why} (in {where})") from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``24h`` or ``7d`` as a positive ``timedelta``."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 24h, 30m, 7d or seconds, got {text!r}"
        ) from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"a duration must be positive, got {text!r}")
    return timedelta(seconds=seconds)


@attrs.define
class Rekey:
    """What a run did."""

    #: Records the scan found.
    scanned: int = 0
    #: Records sealed under the first key by this run.
    rekeyed: int = 0
    #: Records found under the first key already (skipped, not decrypted).
    current: int = 0
    #: Records past their expiry, or gone before they could be rewritten.
    expired: int = 0
    #: Records no configured key opens, or that are no session envelope: left as they are.
    unreadable: int = 0
    #: Records a request kept changing through every retry: still under an old key.
    changed: int = 0
    #: Users' session indexes (``Config.principal_key``): never sealed, so left as they are.
    indexes: int = 0

    @property
    def complete(self) -> bool:
        """Whether every readable record is now under the first key."""
        return self.changed == 0 and self.unreadable == 0


#: ``progress(scanned, total, summary)`` (``total``: ``None`` when the storage cannot count).
Progress = Callable[[int, int | None, Rekey], None]


def rekey(
    storage: Storage,
    keyring: Keyring,
    *,
    expiration: timedelta,
    absolute_timeout: timedelta | None = None,
    progress: Progress | None = None,
    every: int | None = None,
    passes: int = PASSES,
    clock: Callable[[], float] = time.time,
) -> Rekey:
    """Seal every record of ``storage`` that is not under ``keyring``'s first key with it.

    ``progress`` is called after every ``every`` records scanned (default
    :data:`PROGRESS_EVERY`). One scan; the records a request changed between the scan's read and the replace are read
    again by key and retried, ``passes - 1`` more times at most. Raise :class:`Unsupported`
    when the storage cannot ``scan()``.
    """
    if not isinstance(storage, ScannableStorage):
        raise Unsupported("rekey needs a storage that can scan its records (scan())")
    every = every or PROGRESS_EVERY
    keyring = attrs.evolve(keyring, accept_plaintext=True)  # plaintext records are sealed too
    total = storage.count() if isinstance(storage, CountableStorage) else None
    summary = Rekey()
    one = functools.partial(
        _rekey_one, storage, keyring, expiration=expiration, absolute=absolute_timeout, clock=clock
    )
    retry: list[str] = []
    for key, value in storage.scan():
        summary.scanned += 1
        outcome = one(key, value)
        if outcome == "changed":
            retry.append(key)
        else:
            _count(summary, outcome)
        if progress is not None and summary.scanned % every == 0:
            progress(summary.scanned, total, summary)
    for _ in range(passes - 1):
        again, retry = retry, []
        for key in again:
            current = storage.get(key)
            outcome = "expired" if current is None else one(key, current)
            if outcome == "changed":
                retry.append(key)
            else:
                _count(summary, outcome)
    summary.changed = len(retry)
    return summary


def _count(summary: Rekey, outcome: str) -> None:
    setattr(summary, outcome, getattr(summary, outcome) + 1)


def _rekey_one(
    storage: Storage,
    keyring: Keyring,
    key: str,
    value: bytes,
    *,
    expiration: timedelta,
    absolute: timedelta | None,
    clock: Callable[[], float],
) -> str:
    """Rekey one record; return which :class:`Rekey` counter it adds to."""
    if sealed_key_id(value) == keyring.current_id:
        return "current"
    if is_index(value):
        return "indexes"
    try:
        plaintext = keyring.open(value, (key,))
        times = envelope_times(plaintext)
    except DecodeError:
        return "unreadable"
    now = clock()
    lifetime = expiration.total_seconds() if times.lifetime is None else times.lifetime
    left = times.saved + lifetime - now
    if absolute is not None:
        left = min(left, times.created + absolute.total_seconds() - now)
    if left <= 0:
        return "expired"
    return (
        "rekeyed" if _swap(storage, key, value, keyring.seal(plaintext, key), left) else "changed"
    )


def _swap(storage: Storage, key: str, expected: bytes, value: bytes, seconds: float) -> bool:
    """Write ``value`` over ``key`` only if it still holds ``expected``: one atomic
    ``replace_if`` where the storage has it; else compare, then replace only a live record,
    which narrows the race to the gap between."""
    ttl = timedelta(seconds=seconds)
    if isinstance(storage, AtomicStorage):
        return storage.replace_if(key, expected, value, ttl)
    if storage.get(key) != expected:
        return False
    if isinstance(storage, ConditionalStorage):
        return storage.replace(key, value, ttl)
    if not storage.touch(key, ttl):
        return False
    storage.set(key, value, ttl)
    return True
