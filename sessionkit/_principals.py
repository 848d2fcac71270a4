"""The principal index: which sessions a user holds (``Config.principal_key``).

What "log out everywhere" needs is the list of a user's sessions without a scan of the whole
storage. Each user (a *principal*: the value the session holds under ``principal_key``) gets
one more record in the same storage, the *index*, listing the storage keys of the sessions
that were saved holding that value. It is built on the storage contract every plugin already
keeps (``get``, ``create``, ``replace_if``, ``take``), so a plugin needs nothing new.

Why it can be trusted:

- **Written first.** A session record is written only once the index lists it: a crash or a
  failed write between the two leaves an entry for a record that does not hold the principal,
  which the reads below skip; never a session the index misses.
- **Never believed alone.** :meth:`PrincipalIndex.live_steps` reads each listed record and
  keeps it only if it is live and still holds the principal: the index never names an expired,
  destroyed or logged-out session as live, and never makes one live again (it is a list of
  names, not data).
- **It outlives what it lists.** Each entry carries ``until``, a time the record is known not
  to outlive: the record's envelope stores the same *horizon* (``"p"``), and a save that would
  make the record outlive it indexes it again first (with twice the lifetime ahead, so a
  session is re-indexed about once per lifetime, not on every save). Entries only grow their
  ``until``, and are dropped once it has passed; the index record's own TTL is its latest
  ``until``. So the cost of a user's index grows with that user's own sessions.
- **Concurrent logins keep each other.** Entries are added by compare-and-swap (``replace_if``,
  or ``create`` for a user's first), retried as a merge is.

What the index holds is no more than the storage already shows: storage keys (HMACs of the
ids when ``storage_key_secret`` is set) and times. The ids themselves, which
:meth:`Store.sessions_for <sessionkit.Store.sessions_for>` returns, are the storage keys when
no ``storage_key_secret`` is set; with one, they are kept sealed with ``encryption_keys``, and
without those keys ``sessions_for`` is refused (``destroy_all`` works either way).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ConfigError, StorageError
from ._steps import GET, PAUSE, Steps
from ._values import DecodeError, check_nesting

if TYPE_CHECKING:
    from ._records import Records

__all__ = ["Entry", "PrincipalIndex", "is_index", "principal_text"]

logger = logging.getLogger("sessionkit")

#: Index records are named ``principal.<digest>``: a ``.`` is in no session id and in no HMAC
#: storage key (both base64url), so an index never shares a name with a session.
_PREFIX = "principal."
_HEADER = b'{"v":1,"i":'
#: How long adding an entry keeps retrying while other logins of the user change the index.
_BUDGET = 5.0
_MISSING: Any = object()
#: Additional data sealing an id in an index, so a sealed record cannot pass for an id.
_ID_AAD = "principal-id:"


def principal_text(value: object) -> str:
    """The principal as the index names it: a str and an int never name the same user
    (``"5"`` is not ``5``). Anything else is refused: a value the index cannot name would
    leave a session that "log out everywhere" misses."""
    if isinstance(value, str):
        return f"s:{value}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"i:{value}"
    raise TypeError(f"the principal_key value must be a str or an int, not {type(value).__name__}")


def is_index(payload: bytes) -> bool:
    """Whether ``payload`` is a principal index rather than a session (for the tools)."""
    return payload.startswith(_HEADER)


@attrs.frozen
class Entry:
    """One session of a user, as listed in the user's index."""

    #: The storage keys the record may be under, its current name first (more than one while
    #: ``storage_key_secret`` rotates).
    names: tuple[str, ...]
    #: The session id sealed with ``encryption_keys`` (when ``storage_key_secret`` hides ids
    #: in the storage keys), else ``None``: the id is the first name.
    token: str | None
    #: The record does not outlive this time (seconds since the epoch).
    until: float


def _decode(payload: bytes | None) -> dict[str, Entry]:
    """The entries of an index record, by current name; an unreadable one reads as empty
    (logged), and is replaced by the next entry added."""
    if payload is None:
        return {}
    try:
        check_nesting(payload)
        body = json.loads(payload)
        entries = {}
        for names, token, until in body["i"]:
            if not names or not all(type(n) is str for n in names):
                raise ValueError("entry without names")
            if token is not None and type(token) is not str:
                raise ValueError("malformed id token")
            entries[names[0]] = Entry(tuple(names), token, float(until))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        logger.warning("sessionkit: unreadable principal index dropped (%s)", exc)
        return {}
    return entries


def _encode(entries: Iterable[Entry]) -> bytes:
    listed = [[list(e.names), e.token, e.until] for e in entries]
    return _HEADER + json.dumps(listed, separators=(",", ":")).encode() + b"}"


def _plain_name(principal: str) -> str:
    return _PREFIX + hashlib.sha256(principal.encode()).hexdigest()


def _secret_name(secret: bytes, principal: str) -> str:
    """With ``storage_key_secret``: a dump of the storage does not tell whose index it is."""
    digest = hmac.new(secret, b"principal\0" + principal.encode(), hashlib.sha256)
    return _PREFIX + digest.hexdigest()


class PrincipalIndex:
    """The index of one store's records (see the module's docstring), written and read
    through them (sessionkit._records); the store calls it."""

    def __init__(self, records: Records, key: str, secrets: tuple[bytes, ...]) -> None:
        self._records = records
        #: The session key naming the user (``Config.principal_key``).
        self.key = key
        self._namers: tuple[Callable[[str], str], ...] = tuple(
            functools.partial(_secret_name, s) for s in secrets
        ) or (_plain_name,)
        self._hidden_ids = bool(secrets)

    def principal_of(self, data: dict[str, Any]) -> str | None:
        """The principal ``data`` holds (``None``: none)."""
        value = data.get(self.key, _MISSING)
        return None if value is _MISSING else principal_text(value)

    # -- writing ------------------------------------------------------------------------------

    def add_steps(self, session_id: str, principal: str, horizon: float) -> Steps[None]:
        """List ``session_id``'s record in ``principal``'s index until at least ``horizon``;
        done before the record is written (see the module's docstring)."""
        records = self._records
        name = self._namers[0](principal)
        names = tuple(records.names(session_id))
        token = self._token(session_id, names[0])
        deadline = time.monotonic() + _BUDGET
        for attempt in itertools.count():
            if attempt > 1:  # other logins of this user keep changing it: step aside a while
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"the sessions index of a user kept changing for {_BUDGET:.0f} s; "
                        "nothing was written"
                    )
                yield PAUSE, (random.uniform(0, min(0.05, 0.001 * 2**attempt)),)
            current: bytes | None = yield GET, (name,)
            now = records.now()
            entries = {k: e for k, e in _decode(current).items() if e.until > now}
            old = entries.get(names[0])
            until = horizon if old is None else max(horizon, old.until)
            entries[names[0]] = Entry(names, token, until)
            if (yield from self._write_steps(name, current, entries.values(), now)):
                return

    def _write_steps(
        self, name: str, current: bytes | None, entries: Iterable[Entry], now: float
    ) -> Steps[bool]:
        """Write the index over exactly ``current`` (``None``: over no record); whether it
        was. A storage without ``create``/``replace_if`` gets a plain write (a race of two
        logins may then drop an entry: see docs/principals.md)."""
        entries = list(entries)
        payload = _encode(entries)
        # One second more than the latest entry: the record never expires before its entries.
        ttl = timedelta(seconds=max(e.until for e in entries) - now + 1.0)
        return (yield from self._records.strategy.swap(name, current, payload, ttl))

    def _token(self, session_id: str, name: str) -> str | None:
        keyring = self._records.keyring
        if not self._hidden_ids or keyring is None:
            return None
        sealed = keyring.seal(session_id.encode(), _ID_AAD + name)
        return base64.urlsafe_b64encode(sealed).decode()

    # -- reading ------------------------------------------------------------------------------

    def live_steps(self, principal: str) -> Steps[list[Entry]]:
        """The entries of ``principal``'s sessions that are live and still hold it."""
        records = self._records
        listed: dict[str, Entry] = {}
        for namer in self._namers:  # the older secrets' indexes too, while rotating
            listed.update(_decode((yield GET, (namer(principal),))))
        live, now = [], records.now()
        for entry in listed.values():
            if entry.until <= now:
                continue
            for name in entry.names:
                payload: bytes | None = yield GET, (name,)
                if payload is not None:
                    break
            else:
                continue  # destroyed, expired, or never written (a failed save)
            try:
                record = records.record_of(payload, entry.names, now)
            except DecodeError:  # no configured key opens it, or it is no envelope: lost
                continue
            if record is not None and self.named_in(record.data) == principal:
                live.append(entry)
        return live

    def named_in(self, data: dict[str, Any]) -> str | None:
        """:meth:`principal_of` for stored data, which may hold a value the index cannot name
        (written before ``principal_key`` was set): ``None`` then, rather than an error."""
        try:
            return self.principal_of(data)
        except TypeError:
            return None

    def session_id(self, entry: Entry) -> str:
        """The id of a listed session."""
        if not self._hidden_ids:
            return entry.names[0]
        keyring = self._records.keyring
        if keyring is None:
            raise ConfigError(
                "principal_key",
                "sessions_for() cannot return ids while storage_key_secret hides them and no "
                "encryption_keys are set to keep them sealed in the index; set encryption_keys "
                "(destroy_all() needs neither)",
            )
        if entry.token is None:
            raise DecodeError("index entry without an id (written before encryption_keys)")
        sealed = base64.urlsafe_b64decode(entry.token)
        return keyring.open(sealed, [_ID_AAD + entry.names[0]]).decode()

    def prune_steps(self, principal: str, gone: set[str]) -> Steps[None]:
        """Drop the entries named in ``gone`` from ``principal``'s index, once, best effort: a
        concurrent change wins, and the entries then lapse at their ``until``."""
        name = self._namers[0](principal)
        current: bytes | None = yield GET, (name,)
        if current is None:
            return
        now = self._records.now()
        entries = [e for k, e in _decode(current).items() if k not in gone and e.until > now]
        if entries:  # else left to lapse: a take could drop an entry a login adds meanwhile
            yield from self._write_steps(name, current, entries, now)
