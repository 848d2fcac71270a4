"""An outage logs one line per kind of failure per interval, not a traceback per request.

A storage that is down fails every request that needs it the same way; at about fifty lines
of traceback a request, a busy site's log filled with one story told a thousand times. The
middleware logs one WARNING line per kind (backend, error, driver error) per interval, with the
driver's message and how many repeats it left out, and every failure at DEBUG with its
traceback.
"""

from __future__ import annotations

import gc
import logging

import pytest

from sessionkit import StorageError
from sessionkit._failurelog import FailureLog
from tests.web._support import Browser, Client, CountingStorage, failure_logs


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sessionkit")


async def test_fifty_failed_requests_log_one_warning_line(
    client: Client, storage: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(client)
    await browser.get("/set?user=ada")
    storage.down = True
    # Garbage earlier tests left (a client of an event loop they closed logs "Unclosed" at
    # ERROR when collected) is collected now, not inside the window this test judges.
    gc.collect()
    caplog.clear()
    for _ in range(50):
        assert (await browser.get("/get?k=user")).status == 503
    lines, tracebacks = failure_logs(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "ConnectionError" in lines[0].getMessage()  # the driver's message
    assert "CountingStorage" in lines[0].getMessage()  # the backend
    assert lines[0].exc_info is None  # no traceback above DEBUG
    assert len(tracebacks) == 50  # every one still at DEBUG
    noisy = [r for r in caplog.records if r.levelno > logging.DEBUG and r.exc_info is not None]
    assert noisy == []


def _failure(driver: BaseException) -> StorageError:
    try:
        raise StorageError(f"call failed: {driver}") from driver
    except StorageError as exc:
        return exc


def test_a_line_per_kind_per_interval_with_the_count_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = FailureLog(interval=10.0, clock=lambda: now[0])
    refused, timeout = _failure(ConnectionRefusedError("refused")), _failure(TimeoutError("slow"))
    for _ in range(5):
        log.report(("redis", "StorageError", "ConnectionRefusedError"), "refused", refused)
    log.report(("redis", "StorageError", "TimeoutError"), "slow", timeout)  # another kind
    now[0] = 10.5
    log.report(("redis", "StorageError", "ConnectionRefusedError"), "refused", refused)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "sessionkit: refused",
        "sessionkit: slow",
        "sessionkit: refused [4 more like it since the last such line, not logged]",
    ]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 7 and all(r.exc_info is not None for r in debug)
