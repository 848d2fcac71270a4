"""``sessionkit check --reset-scratch`` drops the scratch namespace it made, where it can.

In-process, with storages that record what was done to them; the real thing (no
``skcheck_...`` table left on PostgreSQL or MariaDB) is in ``test_sql_servers``.
"""

from __future__ import annotations

from typing import Any

from sessionkit import ConfigError
from sessionkit._ops.check import run_check
from tests.cli.conftest import KeptMemoryStorage


class Namespaced(KeptMemoryStorage):
    """A memory storage that takes a ``table`` and can be dropped (like the SQL plugins')."""

    def __init__(self, log: list[str], table: str = "real", fail_drop: bool = False) -> None:
        super().__init__()
        self.log, self.table, self.fail_drop = log, table, fail_drop

    def drop(self) -> None:
        self.log.append(f"drop {self.table}")
        if self.fail_drop:
            raise OSError("permission denied to drop the table")

    def close(self) -> None:
        self.log.append(f"close {self.table}")


def _opener(log: list[str], fail_drop: bool = False) -> Any:
    def opener(**options: str) -> Namespaced:
        """Like a SQL plugin's: a ``table`` option, no other namespace option."""
        if set(options) - {"table"}:
            raise ConfigError(next(iter(options)), "unknown option")
        return Namespaced(log, options.get("table", "async"), fail_drop)

    return opener


def test_the_scratch_table_is_dropped_then_closed_and_the_real_one_never() -> None:
    log: list[str] = []
    real = Namespaced(log)
    steps = {s.name: s for s in run_check(real, _opener(log), reset_scratch=True)}
    assert steps["reset"].ok is True, steps["reset"]
    (scratch,) = [entry.split()[1] for entry in log if entry.startswith("drop")]
    assert scratch.startswith("skcheck_")
    assert log[-2:] == [f"drop {scratch}", f"close {scratch}"]
    assert "drop real" not in log


def test_a_scratch_table_that_cannot_be_dropped_fails_the_step_and_names_it() -> None:
    log: list[str] = []
    real = Namespaced(log)
    steps = {s.name: s for s in run_check(real, _opener(log, fail_drop=True), reset_scratch=True)}
    reset = steps["reset"]
    assert reset.ok is False
    assert "could not be dropped, drop it by hand" in reset.detail
    assert "table=skcheck_" in reset.detail and "permission denied" in reset.detail
    assert log[-1].startswith("close skcheck_")  # closed all the same
