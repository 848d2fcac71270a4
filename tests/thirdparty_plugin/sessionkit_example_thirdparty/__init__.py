"""An example third-party storage for sessionkit: ``example://?prefix=session:``.

The "server" is a dict shared by every storage in the process, each keeping its keys under its
own prefix, the way several storages would share one key-value server. It has no ``replace``,
so sessionkit falls back to ``touch`` then ``set`` when saving an existing session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sessionkit import Backend, ConfigError, StorageError, hookimpl, ttl_seconds

__all__ = ["ExampleStorage", "sessionkit_backends"]

_server: dict[str, tuple[bytes, float | None]] = {}
_server_lock = threading.Lock()


class ExampleStorage:
    """A prefix of the shared dict; ``clock`` returns seconds (monotonic by default)."""

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

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self.set(key, value, ttl)

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        return self.touch(key, ttl)

    async def adelete(self, key: str) -> None:
        self.delete(key)

    async def areset(self) -> None:
        self.reset()

    async def aclose(self) -> None:
        self.close()


def _open(url: str, options: Mapping[str, Any]) -> ExampleStorage:
    if urlsplit(url).netloc or urlsplit(url).path:
        raise ConfigError("storage", f"example storage URLs are just example://, got {url!r}")
    unknown = set(options) - {"prefix", "clock"}
    if unknown:
        raise ConfigError("storage", f"unknown example storage option(s) {sorted(unknown)}")
    return ExampleStorage(**options)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [Backend(name="example", schemes=("example",), open=_open, description="an example")]
