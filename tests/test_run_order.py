"""The order in which the tests lane hands out files (the root ``conftest.py``): the files
known to run long with few tests first, so that none of them ends the run alone."""

from __future__ import annotations

import subprocess
import sys

from conftest import LONG_FILES, ROOT


def test_every_long_file_still_exists() -> None:
    """A renamed or removed file would silently lose its place at the front."""
    assert [name for name in LONG_FILES if not (ROOT / name).is_file()] == []


def _collected_files(
    *paths: str, flags: tuple[str, ...] = ("--no-loadscope-reorder",)
) -> list[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            *flags,
            *paths,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    files: list[str] = []
    for line in done.stdout.splitlines():
        name = line.partition("::")[0]
        if "::" in line and name not in files:
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
