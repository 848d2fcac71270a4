"""The repository's pytest setup: the test servers and backends as plugins, and the garbage
collector tuned for a process that holds the whole collected suite.

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
