"""Run the conformance suite, in this process, against a plugin broken on purpose.

Each test here writes a small test module (a broken storage and its ``StorageConformance``
subclass), runs the checks it names through a nested ``pytest.main``, and reads back each
check's outcome and failure text. Proving that the suite fails a broken plugin, with a message
naming the broken promise, is the only way to know the suite guards that promise at all.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest


@attrs.frozen
class SuiteRun:
    """What a nested run reported: outcome and failure text, by test id (the part after ::)."""

    outcomes: dict[str, str]
    failures: dict[str, str]

    def failed(self, fragment: str) -> str:
        """The failure text of the one test whose id contains ``fragment``; fails the calling
        test when that check passed or did not run."""
        names = [name for name in self.outcomes if fragment in name]
        assert names, f"no check matching {fragment!r} ran: {sorted(self.outcomes)}"
        failed = [name for name in names if self.outcomes[name] == "failed"]
        assert failed, f"the suite passed a broken plugin: {self.outcomes}"
        return "\n".join(self.failures[name] for name in failed)


class _Recorder:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.failures: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::", 1)[-1]
        if report.failed:
            self.outcomes[name] = "failed"
            self.failures[name] = self.failures.get(name, "") + report.longreprtext
        elif report.when == "call" or report.skipped:
            self.outcomes.setdefault(name, report.outcome)


RunSuite = Callable[[str, str], SuiteRun]


@pytest.fixture
def run_suite(tmp_path: Path) -> RunSuite:
    """``run_suite(source, select)``: run the checks matching ``-k select`` in ``source``."""

    def run(source: str, select: str) -> SuiteRun:
        # A name of its own (modules are cached by name in this process) that no -k matches.
        module = tmp_path / f"test_case_{uuid.uuid4().hex[:12]}.py"
        module.write_text(textwrap.dedent(source))
        (tmp_path / "pytest.ini").write_text(  # not this project's settings
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        )
        recorder = _Recorder()
        pytest.main(
            [
                str(module),
                "-q",
                "-p",
                "no:cacheprovider",
                "--import-mode=importlib",
                "-k",
                select,
                "--rootdir",
                str(tmp_path),
                "-c",
                str(tmp_path / "pytest.ini"),
            ],
            plugins=[recorder],
        )
        return SuiteRun(recorder.outcomes, recorder.failures)

    return run
