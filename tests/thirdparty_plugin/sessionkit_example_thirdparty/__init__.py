"""An example third-party storage for sessionkit: ``example://?prefix=session:``.

The "server" is a dict shared by every storage in the process, each keeping its keys under its
own prefix, the way several storages would share one key-value server. It has no ``replace``,
so sessionkit falls back to ``touch`` then ``set`` when saving an existing session (and, the
storage being a ``SyncStorage``, it has no ``areplace`` either).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sessionkit.storage import (
    Backend,
    ConfigError,
    StorageError,
    SyncStorage,
    hookimpl,
    ttl_seconds,
)

__all__ = ["ExampleStorage", "sessionkit_backends"]

_server: dict[str, tuple[bytes, float | None]] = {}
_server_lock = threading.Lock()


class ExampleStorage(SyncStorage):
    """A prefix of the shared dict; ``clock`` returns seconds (monotonic by default).

    Only the sync methods are written: the async twins are derived, run inline since a dict
    under a lock never keeps the event loop waiting.
    """

    async_calls = "inline"

    def __init__(
        self, prefix: str = "session:", clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not prefix:
            raise ConfigError("prefix", "must not be empty")
        self.prefix = prefix
        self._clock = clock
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise StorageError("example storage is closed")

    def _deadline(self, ttl: timedelta | None) -> float | None:
        seconds = ttl_seconds(ttl)
        return None if seconds is None else self._clock() + seconds

    def _live(self, name: str) -> tuple[bytes, float | None] | None:
        entry = _server.get(name)
        if entry is not None and entry[1] is not None and entry[1] <= self._clock():
            del _server[name]
            return None
        return entry

    def get(self, key: str) -> bytes | None:
        with _server_lock:
            self._check()
            entry = self._live(self.prefix + key)
        return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        deadline = self._deadline(ttl)
        with _server_lock:
            self._check()
            _server[self.prefix + key] = (bytes(value), deadline)

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        deadline = self._deadline(ttl)
        with _server_lock:
            self._check()
            entry = self._live(self.prefix + key)
            if entry is None:
                return False
            _server[self.prefix + key] = (entry[0], deadline)
            return True

    def delete(self, key: str) -> None:
        with _server_lock:
            self._check()
            _server.pop(self.prefix + key, None)

    def reset(self) -> None:
        with _server_lock:
            self._check()
            for name in [n for n in _server if n.startswith(self.prefix)]:
                del _server[name]

    def close(self) -> None:
        self._closed = True

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> ExampleStorage:
        """Build from ``example://?prefix=...`` (the query merged with keyword options)."""
        if urlsplit(url).netloc or urlsplit(url).path:
            raise ConfigError("storage", f"example storage URLs are just example://, got {url!r}")
        unknown = set(options) - {"prefix", "clock"}
        if unknown:
            raise ConfigError("storage", f"unknown example storage option(s) {sorted(unknown)}")
        return cls(**options)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    # The class is right here, so a loader returning it names it; a plugin whose storage
    # module imports a driver names it as text instead: storage="package._storage:Class".
    return [
        Backend(
            name="example",
            schemes=("example",),
            storage=lambda: ExampleStorage,
            description="an example",
        )
    ]
