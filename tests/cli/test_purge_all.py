"""``purge_all``: deletes as the scan goes, holds nothing, and reports a total."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionkit._abilities import CountableStorage, ScannableStorage
from sessionkit._ops.purge import purge_all
from tests.cli.conftest import KeptMemoryStorage, PlainStorage


class WatchedScan(KeptMemoryStorage):
    """A memory storage whose scan checks, before yielding each key, that the key it yielded
    last is gone already (so the caller deletes as it goes instead of collecting first)."""

    def scan(self) -> Iterator[tuple[str, bytes]]:
        previous: str | None = None
        for key, value in super().scan():
            assert previous is None or self.get(previous) is None, "collected before deleting"
            previous = key
            yield key, value


class Uncountable(PlainStorage):
    """Scans (watched as above), but cannot count: no total is known beforehand."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = WatchedScan()

    def scan(self) -> Iterator[tuple[str, bytes]]:
        return self.inner.scan()


def test_deletes_each_key_before_the_scan_moves_on() -> None:
    storage = WatchedScan()
    for i in range(7):
        storage.set(f"k{i}", b"v", None)
    calls: list[tuple[int, int]] = []
    assert purge_all(storage, lambda done, total: calls.append((done, total)), every=3) == 7
    assert calls == [(3, 7), (6, 7)]  # the total is the live count taken first
    assert len(storage) == 0


def test_without_count_the_progress_total_is_still_an_int() -> None:
    storage = Uncountable()
    assert isinstance(storage, ScannableStorage) and not isinstance(storage, CountableStorage)
    for i in range(5):
        storage.set(f"k{i}", b"v", None)
    calls: list[tuple[int, int]] = []
    assert purge_all(storage, lambda done, total: calls.append((done, total)), every=2) == 5
    assert calls == [(2, 2), (4, 4)]
    assert len(storage.inner) == 0


def test_the_total_never_falls_behind_what_was_done(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = WatchedScan()
    for i in range(4):
        storage.set(f"k{i}", b"v", None)
    monkeypatch.setattr("sessionkit._ops.purge.live_count", lambda storage: 1)  # stale count
    calls: list[tuple[int, int]] = []
    assert purge_all(storage, lambda done, total: calls.append((done, total)), every=2) == 4
    assert calls == [(2, 2), (4, 4)]
