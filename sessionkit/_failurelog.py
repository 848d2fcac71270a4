"""Logging storage failures without flooding the log during an outage.

When the storage goes down, every request that needs it fails the same way: a busy site
would write a traceback of some fifty lines per request, burying what came before the outage
and filling disks. So each *kind* of failure (the backend, the library's error, the driver's
error class) is logged once per interval as one WARNING line carrying the driver's message and
how many repeats were left out since the last line; every failure still goes to DEBUG with its
traceback, for whoever needs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["FailureLog", "INTERVAL"]

logger = logging.getLogger("sessionkit")

#: Seconds between two WARNING lines of the same kind of failure.
INTERVAL = 10.0


class FailureLog:
    """Rate-limits the WARNING lines of repeated failures, one line per kind per interval."""

    def __init__(
        self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        #: kind -> [time of its last WARNING line, repeats left out since]
        self._seen: dict[tuple[str, ...], list[float]] = {}

    def report(self, kind: tuple[str, ...], message: str, exc: BaseException | None) -> None:
        """Log ``message`` at DEBUG (with ``exc``'s traceback), and at WARNING unless a line
        of the same ``kind`` was logged less than :attr:`interval` seconds ago."""
        logger.debug("sessionkit: %s", message, exc_info=exc)
        with self._lock:
            now = self._clock()
            seen = self._seen.get(kind)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return
            left_out = 0 if seen is None else int(seen[1])
            self._seen[kind] = [now, 0]
        if left_out:
            logger.warning(
                "sessionkit: %s [%d more like it since the last such line, not logged]",
                message,
                left_out,
            )
        else:
            logger.warning("sessionkit: %s", message)


def kind_of(backend: str, exc: BaseException) -> tuple[str, str, str]:
    """What makes two failures "the same": the backend, the error, and the driver's error."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return backend, type(exc).__qualname__, type(cause).__qualname__
