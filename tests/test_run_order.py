"""The order in which the tests lane hands out files (the root ``conftest.py``): the files
known to run long with few tests first, so that none of them ends the run alone."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import LONG_FILES, ROOT


def test_every_long_file_still_exists() -> None:
    """A renamed or removed file would silently lose its place at the front."""
    assert [name for name in LONG_FILES if not (ROOT / name).is_file()] == []


def _collected(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """The node ids ``pytest --collect-only`` lists for ``args``, in its order."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env=None if env is None else {**os.environ, **env},
    )
    return [line for line in done.stdout.splitlines() if "::" in line]


def _collected_files(
    *paths: str, flags: tuple[str, ...] = ("--no-loadscope-reorder",)
) -> list[str]:
    files: list[str] = []
    for line in _collected(*flags, *paths):
        name = line.partition("::")[0]
        if name not in files:
            files.append(name)
    return files


def test_long_files_come_first_longest_first_then_the_rest_by_size() -> None:
    short_big = "tests/core/test_values.py"
    short_small = "tests/core/test_plans.py"
    long_files = ["tests/cli/test_rekey.py", "tests/security/test_21_storage_faults.py"]
    assert LONG_FILES[long_files[1]] > LONG_FILES[long_files[0]]
    order = _collected_files(short_small, short_big, *long_files)
    assert order == [long_files[1], long_files[0], short_big, short_small]


def test_without_the_flag_the_order_is_pytests_own() -> None:
    """A plain ``pytest`` (and the load session) keeps the collected order."""
    paths = ("tests/core/test_plans.py", "tests/security/test_21_storage_faults.py")
    assert _collected_files(*paths, flags=()) == list(paths)


def test_every_long_load_scenario_still_exists() -> None:
    """The short load run's order (``tests/load/conftest.py``) names scenarios by function."""
    from tests.load.conftest import LONG_SCENARIOS

    functions = {node.partition("::")[2].partition("[")[0] for node in _load_order()}
    assert sorted(set(LONG_SCENARIOS) - functions) == []


def test_the_short_load_run_pairs_each_long_scenario_with_a_short_test() -> None:
    """pytest-xdist starts each worker on two consecutive tests: never two long ones."""
    from tests.load.conftest import LONG_SCENARIOS

    def seconds(node: str) -> int:
        if node.endswith("[NOTSET]"):  # an empty parameter set, which pytest skips
            return 0
        return LONG_SCENARIOS.get(node.partition("::")[2].partition("[")[0], 0)

    order = _load_order()
    long = [node for node in order if seconds(node) >= 10]
    assert len(long) >= 6  # the faults and the Sentinel failover
    head = order[: 2 * len(long)]
    assert head[0::2] == sorted(long, key=seconds, reverse=True)
    # The shortest follow them (a skipped parameter set, the harness's own checks), and the
    # rest come shortest first.
    assert all(seconds(node) < 10 for node in head[1::2])
    tail = [seconds(node) for node in order[2 * len(long) :]]
    assert tail == sorted(tail)


def _load_order() -> list[str]:
    """The node ids of the short load run (``nox -s load``'s first pytest), in its order."""
    return _collected("-m", "not alone", "tests/load", env={"SESSIONKIT_LOAD": "short"})
