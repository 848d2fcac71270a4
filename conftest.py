"""The repository's pytest setup: the test servers and backends as plugins, the garbage
collector tuned for a process that holds the whole collected suite, and the order in which
the tests lane's workers take files.

Every test process (each of the tests lane's workers) collects all 11,000-odd tests, and
CPython's cyclic collector walks every object still alive at each full collection: about a fifth
of the workers' CPU went to it (51 s of 277 s, measured with ``gc.callbacks``). After
collection, the objects that live for the whole run (modules, test items, fixtures' defs) are
moved out of the collector's sight (``gc.freeze()``), and the first generation is collected
every 7,000 allocations instead of 700. The collector still runs, and explicit ``gc.collect()``
(the leak tests) still finds everything made after collection; on this machine, the whole lane
on six workers took 189 s against 203 s without (one run each, nothing else running), and the
collector's time fell from 51 s to 23 s.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

pytest_plugins = [
    "tests._servers",
    "tests._server_postgres",
    "tests._server_mysql",
    "tests._backends",
]


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


ROOT = Path(__file__).parent

# Files that run for many seconds with few tests, mostly waiting (a server frozen, a timeout
# run out, processes started), with their wall time in seconds on this 2-core machine, alone
# on one worker. pytest-xdist hands out files largest first by test count, which put these last:
# the tests lane then ended with one or two workers waiting on them while the others idled.
# (``tests/test_run_order.py`` checks that each path still exists.)
LONG_FILES = {
    "tests/security/test_21_storage_faults.py": 51,
    "tests/security/test_fuzz_transport.py": 39,
    "tests/core/test_values_nested.py": 25,
    "tests/security/test_19_concurrent_requests.py": 25,
    "tests/cli/test_sql_servers.py": 22,
    "tests/core/test_loops.py": 21,
    "plugins/sessionkit-redis/tests/test_failover.py": 16,
    "tests/conformance/test_broken_plugins.py": 15,
    "plugins/sessionkit-mysql/tests/test_server.py": 15,
    "plugins/sessionkit-redis/tests/test_client_cache_processes.py": 14,
    "plugins/sessionkit-mongo/tests/test_timeouts.py": 14,
    "plugins/sessionkit-postgres/tests/test_timeouts.py": 14,
    "tests/cli/test_rekey.py": 14,
    "plugins/sessionkit-sqlite/tests/test_locks.py": 12,
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--no-loadscope-reorder`` (the tests session passes it), run files longest first:
    those of ``LONG_FILES`` by their time, then the rest by their number of tests (what
    pytest-xdist's ``loadfile`` does by itself when not told to keep the collected order).
    Without it, the order is pytest's own (xdist may still reorder by size).

    The tests of one file stay together and in their order; files of equal weight keep the
    order they were collected in, so every worker computes the same order."""
    if getattr(config.option, "loadscopereorder", True):
        return
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def weight(tests: list[pytest.Item]) -> tuple[int, int]:
        path = tests[0].path
        seconds = (
            LONG_FILES.get(path.relative_to(ROOT).as_posix(), 0) if path.is_relative_to(ROOT) else 0
        )
        return (-seconds, -len(tests))

    items[:] = [item for tests in sorted(files.values(), key=weight) for item in tests]
