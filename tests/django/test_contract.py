"""Django's own session tests, run against ``sessionkit.django`` on every storage, for Django's
LTS and its newest release: ``SessionTestsMixin`` (the contract every Django session engine
passes) against ``SessionStore``, and ``SessionMiddlewareTests`` against ``SessionMiddleware``.

The tests come from Django's source distribution at test time (:mod:`tests.django._sdist`).
Each Django version runs in a process of its own (``_contract_run.py``), started with the
session's first test (the ``contract`` fixture, :mod:`tests.django._contract`); the tests here
run last and read the reports. Every test must run on every storage and pass, but for the ones
skipped by name (``_contract_run.SKIPS``), whose reasons docs/frameworks/django.md lists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.django import _contract_run
from tests.django._contract import KINDS, LTS, TIMEOUT, VERSIONS
from tests.django._sdist import sessions_tests

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "frameworks" / "django.md"


@pytest.mark.redis
@pytest.mark.mongo
@pytest.mark.parametrize("version", VERSIONS)
def test_djangos_session_tests_pass_on_every_storage(
    version: str, contract: Callable[[str], dict[str, Any]]
) -> None:
    report = contract(version)
    assert report["django"] == version
    assert sorted(report["outcomes"]) == sorted(_contract_run.SKIPS), report["outcomes"].keys()
    assert len(report["tests"]["SessionTestsMixin"]) >= 60  # the mixin was found and read
    lines = []
    for suite, by_storage in report["outcomes"].items():
        assert sorted(by_storage) == sorted(KINDS), by_storage.keys()
        summary = []
        for kind in KINDS:
            ran = by_storage[kind]
            assert sorted(ran) == report["tests"][suite], f"{suite}, {kind}: not every test ran"
            failed = {name: o["detail"] for name, o in ran.items() if o["outcome"] == "failed"}
            assert not failed, f"Django {version}, {suite}, {kind}:\n" + "\n\n".join(
                f"{name}:\n{detail}" for name, detail in failed.items()
            )
            skipped = {name: o["detail"] for name, o in ran.items() if o["outcome"] == "skipped"}
            assert skipped == _contract_run.SKIPS[suite]
            counts = Counter(o["outcome"] for o in ran.values())
            summary.append(f"{kind} {counts['passed']} passed, {counts['skipped']} skipped")
        lines.append(f"  {suite}: " + "; ".join(summary))
    print(f"\nDjango {version} (Python {report['python']}):\n" + "\n".join(lines))


def test_every_skip_is_listed_with_its_reason_in_the_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "SessionTestsMixin" in text
    flat = " ".join(text.split())  # the page wraps its lines
    for suite, skips in _contract_run.SKIPS.items():
        assert suite in text
        for name, reason in skips.items():
            assert f"`{name}`" in text, f"{name} is skipped but not listed in {DOC.name}"
            assert reason in flat, f"the reason {name} is skipped is not in {DOC.name}"


def test_the_contract_runner_fails_a_broken_engine(tmp_path: Path) -> None:
    """The harness can fail: an engine that adopts the client's key fails the mixin."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(
        "import sessionkit.django._backend as b\n"
        "b.SessionStore._found = lambda self, store, key, payload: {}\n"
    )
    out = tmp_path / "report.json"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")])
    )
    argv = [sys.executable, str(HERE / "_contract_run.py"), "--tests", str(sessions_tests(LTS))]
    argv += ["--out", str(out), "memory=memory://"]
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=TIMEOUT)
    outcomes = json.loads(out.read_text())["outcomes"]["SessionTestsMixin"]["memory"]
    failed = {name for name, o in outcomes.items() if o["outcome"] == "failed"}
    assert "test_session_load_does_not_create_record" in failed
