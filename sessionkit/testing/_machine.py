"""The stateful check: random sequences of every operation against a dict model."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from ._harness import LONG_TTL, Harness, Mode

if TYPE_CHECKING:
    from ._base import SuiteBase


#: Few keys, so that operations in a random sequence often meet the same key.
MACHINE_KEYS: tuple[str, ...] = ("a", "b", "a*", "[a]", "ключ")
_KEYS = st.sampled_from(MACHINE_KEYS)
_VALUES = st.binary(max_size=32)
_TTLS = st.one_of(st.none(), st.integers(1, 8))


class _StorageMachine(RuleBasedStateMachine):
    """A storage against a model: key -> (value, absolute expiry or None) on the same clock.

    A rule's ``ttl`` is ``None`` (no expiry) or a whole number ``n``. With a fake clock it
    means ``n + 0.5`` seconds while the clock only moves by whole seconds, so no read lands
    exactly on an expiry instant, where backends may fairly disagree (``<`` versus ``<=``).
    With real time it means an hour, which no run outlasts.
    """

    def __init__(self, suite: SuiteBase, mode: Mode, namespace: str) -> None:
        super().__init__()
        self.suite = suite
        self.harness = Harness(suite, mode, namespace)
        try:
            self.storage = self.harness.open()
            self.storage.reset()  # the namespace is shared by this test's examples
        except BaseException:
            self.harness.close()
            raise
        self.model: dict[str, tuple[bytes, float | None]] = {}

    def _ttl(self, choice: int | None) -> timedelta | None:
        if choice is None:
            return None
        return timedelta(seconds=choice + 0.5) if self.harness.clock is not None else LONG_TTL

    def _now(self) -> float:
        clock = self.harness.clock
        return clock() if clock is not None else time.time()

    def _remember(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self.model[key] = (value, None if ttl is None else self._now() + ttl.total_seconds())

    def _live(self, key: str) -> bytes | None:
        entry = self.model.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= self._now()):
            return None
        return entry[0]

    @rule(key=_KEYS, value=_VALUES, ttl=_TTLS)
    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self.storage.set(key, value, self._ttl(ttl))
        self._remember(key, value, self._ttl(ttl))

    @rule(key=_KEYS)
    def get(self, key: str) -> None:
        got, expected = self.storage.get(key), self._live(key)
        assert got == expected, f"get({key!r}) returned {got!r}; the model holds {expected!r}"

    @rule(key=_KEYS)
    def delete(self, key: str) -> None:
        self.storage.delete(key)
        self.model.pop(key, None)

    @rule(key=_KEYS, ttl=_TTLS)
    def touch(self, key: str, ttl: int | None) -> None:
        live = self._live(key)
        assert self.storage.touch(key, self._ttl(ttl)) is (live is not None)
        if live is not None:
            self._remember(key, live, self._ttl(ttl))

    @precondition(lambda self: self.suite.conditional)
    @rule(key=_KEYS, value=_VALUES, ttl=_TTLS)
    def replace(self, key: str, value: bytes, ttl: int | None) -> None:
        live = self._live(key)
        assert self.storage.replace(key, value, self._ttl(ttl)) is (live is not None)
        if live is not None:
            self._remember(key, value, self._ttl(ttl))

    @precondition(lambda self: self.suite.creating)
    @rule(key=_KEYS, value=_VALUES, ttl=_TTLS)
    def create(self, key: str, value: bytes, ttl: int | None) -> None:
        live = self._live(key)
        assert self.storage.create(key, value, self._ttl(ttl)) is (live is None)
        if live is None:
            self._remember(key, value, self._ttl(ttl))

    @precondition(lambda self: self.suite.atomic)
    @rule(key=_KEYS)
    def take(self, key: str) -> None:
        live = self._live(key)
        assert self.storage.take(key) is (live is not None)
        self.model.pop(key, None)

    @precondition(lambda self: self.suite.atomic)
    @rule(key=_KEYS, guess=st.one_of(st.none(), _VALUES), value=_VALUES, ttl=_TTLS)
    def replace_if(self, key: str, guess: bytes | None, value: bytes, ttl: int | None) -> None:
        """``guess=None`` expects the live value (the usual renewal); bytes, whatever it is."""
        live = self._live(key)
        expected = (live or b"") if guess is None else guess
        matches = live is not None and live == expected
        assert self.storage.replace_if(key, expected, value, self._ttl(ttl)) is matches
        if matches:
            self._remember(key, value, self._ttl(ttl))

    @rule()
    def reset(self) -> None:
        self.storage.reset()
        self.model.clear()

    @precondition(lambda self: self.harness.clock is not None)
    @rule(seconds=st.integers(1, 8))
    def advance_clock_then_read_every_key(self, seconds: int) -> None:
        """Expiry is checked where it happens: right after time passes."""
        assert self.harness.clock is not None
        self.harness.clock.advance(seconds)
        self.read_every_key()

    @rule()
    def read_every_key(self) -> None:
        for key in MACHINE_KEYS:
            self.get(key)

    def teardown(self) -> None:
        try:
            self.storage.reset()
        finally:
            self.harness.close()
