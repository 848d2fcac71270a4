"""What a plugin's test class declares, and the fixtures every check shares.

Each declaration exists because a check cannot find the answer by looking at the storage:
whether its clock can be injected, how to make it fail like a dead server, which URLs it must
refuse, whether two processes can open the same records. A missing declaration fails the
check that needs it with a message saying what to declare, so a plugin cannot pass the
stricter suite by saying nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar

import pytest

from .._storage import Storage
from ._harness import Harness, StorageHandle, new_namespace

__all__ = ["SuiteBase"]


class SuiteBase:
    """The declarations and fixtures of :class:`~sessionkit.testing.StorageConformance`."""

    clock_injectable: ClassVar[bool] = False
    conditional: ClassVar[bool] = True
    #: Off by default, so a plugin written before ``AtomicStorage`` existed still conforms.
    atomic: ClassVar[bool] = False
    #: Off by default for the same reason: ``CreatingStorage`` came later still.
    creating: ClassVar[bool] = False

    #: Why this storage has no driver that can fail (``"an in-process dict"``): the fault
    #: checks then skip with that reason. Leave it empty and implement
    #: :meth:`make_broken_storage` when the storage talks to a server, a file or a library.
    no_driver_faults: ClassVar[str] = ""
    #: Seconds within which every call on a broken storage must raise: a dead server must
    #: fail a request quickly (the middleware answers 503), not hang a worker.
    fault_timeout: ClassVar[float] = 10.0

    #: URLs this plugin's scheme must refuse with ``ConfigError`` when opened: a misspelt
    #: option (``redis://h/0?prefx=a``), a value out of range. Required unless
    #: :attr:`takes_no_options`.
    bad_urls: ClassVar[Sequence[str]] = ()
    #: True when the plugin's URLs take no options at all (then ``bad_urls`` may be empty).
    takes_no_options: ClassVar[bool] = False

    #: True when two processes opening :meth:`storage_url` see the same records (a server, a
    #: file): the atomic writes are then raced from two processes as well as threads.
    processes_share_storage: ClassVar[bool] = False
    #: Threads that race for one record, and how many records they race for.
    race_threads: ClassVar[int] = 8
    race_rounds: ClassVar[int] = 12

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        """Open a storage whose keys live in ``namespace`` (a prefix, a table, a collection).

        ``namespace`` is unique per test: a letter, then letters, digits and underscores. Two
        storages made with different namespaces must not see each other's keys, and ``reset``
        of one must leave the other intact, even when both share a server or a file.
        ``clock`` (seconds, a :class:`FakeClock`) is given when :attr:`clock_injectable`;
        otherwise it is ``None`` and the storage keeps its own time.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement make_storage()")

    def make_broken_storage(self, namespace: str) -> Storage:
        """Open a storage whose driver fails on every call: a server on a closed port, a
        stopped server, a dropped table. Every method must then raise ``StorageError`` with
        the driver's exception as ``__cause__``, within :attr:`fault_timeout` seconds."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_broken_storage() (a storage whose "
            "driver fails: a closed port, a stopped server), or set no_driver_faults to the "
            "reason it has no driver that can fail"
        )

    def storage_url(self, namespace: str) -> str | None:
        """The URL ``open_storage`` opens this storage by, on ``namespace``; ``None`` (the
        default) when the plugin has no URL. The URL checks add an unknown option to it, and
        the process race opens it in a second process."""
        return None

    def drop_namespace(self, namespace: str) -> None:
        """Drop what ``namespace`` left on the server after its storages were reset and
        closed (a table, a collection). Keys under a prefix need nothing: ``reset`` removed
        them. Called once per namespace the suite used, so a run leaves nothing behind."""

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture(params=["sync", "async"])
    def harness(self, request: pytest.FixtureRequest) -> Iterator[Harness]:
        """A :class:`Harness` in sync or async mode; every test using it runs in both."""
        harness = Harness(self, request.param, new_namespace())
        yield harness
        harness.close()

    @pytest.fixture
    def sync_harness(self) -> Iterator[Harness]:
        """A :class:`Harness` in sync mode only, for the optional abilities."""
        harness = Harness(self, "sync", new_namespace())
        yield harness
        harness.close()

    @pytest.fixture
    def storage(self, harness: Harness) -> StorageHandle:
        """A storage on this test's namespace, closed at teardown."""
        return harness.open()

    def _require_conditional(self) -> None:
        if not self.conditional:
            pytest.skip("storage declares conditional = False (no replace/areplace)")

    def _require_atomic(self) -> None:
        if not self.atomic:
            pytest.skip("storage declares atomic = False (no take/replace_if)")

    def _require_creating(self) -> None:
        if not self.creating:
            pytest.skip("storage declares creating = False (no create)")
