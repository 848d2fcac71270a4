"""Requirement 22: every storage passes one shared conformance suite, state machine included.

The suite is :class:`sessionkit.testing.StorageConformance`; each backend runs it from its own
``tests/test_conformance.py`` (``plugins/*/`` for ours, ``tests/thirdparty_plugin/`` for the
outside-author example), collected by the normal test run. This module is the guard that keeps
it so: every *installed* backend must come from a project of this repository that has such a
module, defining a collected subclass of the suite that implements ``make_storage`` and
overrides none of its tests, and the suite must hold the Hypothesis state machine over every
storage operation. It does not run the suite again.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis.stateful import RuleBasedStateMachine

from sessionkit import InstalledBackend, available_backends
from sessionkit.testing import StorageConformance, _StorageMachine
from tests._backends import ALL_BACKENDS

ROOT = Path(__file__).resolve().parents[2]
#: Our own distributions: they must also declare the conditional ``replace`` (requirement 20)
#: and the atomic ``take``/``replace_if`` that close the regenerate and renewal races.
FIRST_PARTY = {f"sessionkit-{name}" for name in ALL_BACKENDS}
#: The storage operations the state machine must drive against its model.
OPERATIONS = {
    "get",
    "set",
    "create",
    "delete",
    "touch",
    "replace",
    "take",
    "replace_if",
    "reset",
}
SUITE_TESTS = sorted(name for name in dir(StorageConformance) if name.startswith("test_"))


def _projects() -> dict[str, Path]:
    """Distribution name -> project directory, for every installable project of the repo."""
    found: dict[str, Path] = {}
    for pyproject in [*ROOT.glob("plugins/*/pyproject.toml"), *ROOT.glob("tests/*/pyproject.toml")]:
        match = re.search(r'^name\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        if match:
            found[match.group(1)] = pyproject.parent
    return found


def _import(path: Path) -> ModuleType:
    name = f"_conformance_guard_{path.parent.parent.name.replace('-', '_')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def conformance_classes(distribution: str, testpaths: list[str]) -> list[type[StorageConformance]]:
    """The suite's subclasses that the test run collects for ``distribution``; fails the test
    with the reason when there are none."""
    project = _projects().get(distribution)
    assert project is not None, (
        f"backend distribution {distribution!r} is installed but is no project of this repo: "
        "nothing shows that it runs the conformance suite"
    )
    path = project / "tests" / "test_conformance.py"
    assert path.is_file(), f"{distribution} ships no {path.relative_to(ROOT)}"
    where = path.relative_to(ROOT).parts[0]
    assert where in testpaths, f"{path} is outside the collected testpaths {testpaths}"
    module = _import(path)
    assert not _skipped(getattr(module, "pytestmark", [])), f"{path} skips its module"
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, StorageConformance)
        and obj is not StorageConformance
        and obj.__module__ == module.__name__
    ]
    assert classes, f"{path} defines no subclass of StorageConformance"
    for cls in classes:
        assert cls.__name__.startswith("Test"), f"{cls.__name__} is not collected by pytest"
        assert cls.make_storage is not StorageConformance.make_storage, cls
        assert not _skipped(getattr(cls, "pytestmark", [])), f"{cls.__name__} is skipped"
        overridden = [
            t for t in SUITE_TESTS if getattr(cls, t) is not getattr(StorageConformance, t)
        ]
        assert not overridden, f"{cls.__name__} replaces suite tests {overridden}"
        assert isinstance(cls.clock_injectable, bool) and isinstance(cls.conditional, bool)
        assert isinstance(cls.atomic, bool) and isinstance(cls.creating, bool)
    return classes


def _skipped(marks: object) -> bool:
    marks = marks if isinstance(marks, list) else [marks]
    return any(getattr(m, "name", None) in {"skip", "skipif", "xfail"} for m in marks)


@pytest.fixture(scope="module")
def installed() -> list[InstalledBackend]:
    found = available_backends()
    assert found, "no storage backend is installed"
    return found


def test_every_installed_backend_runs_the_conformance_suite(
    installed: list[InstalledBackend], pytestconfig: pytest.Config
) -> None:
    testpaths = list(pytestconfig.getini("testpaths"))
    for entry in installed:
        classes = conformance_classes(entry.distribution, testpaths)
        if entry.distribution in FIRST_PARTY:
            # Requirement 20 holds strictly only for storages with an atomic replace().
            assert all(cls.conditional for cls in classes), entry.distribution
            assert all(cls.atomic for cls in classes), entry.distribution
            # New records never overwrite a live one (a colliding id): create-only writes.
            assert all(cls.creating for cls in classes), entry.distribution


def test_first_party_backends_run_in_the_security_suite(installed: list[InstalledBackend]) -> None:
    """Requirements 19-21 run on ``tests._backends.ALL_BACKENDS``: no first-party backend may be
    installed without being one of them."""
    ours = {e.backend.name for e in installed if e.distribution in FIRST_PARTY}
    assert ours == set(ALL_BACKENDS)


def test_the_suite_holds_a_state_machine_over_every_operation() -> None:
    assert "test_state_machine_matches_a_dict_model" in SUITE_TESTS
    assert issubclass(_StorageMachine, RuleBasedStateMachine)
    rules = {
        name
        for name, value in vars(_StorageMachine).items()
        if getattr(value, "hypothesis_stateful_rule", None) is not None
    }
    assert rules >= OPERATIONS, f"the state machine never calls {sorted(OPERATIONS - rules)}"
    # A clock move is a rule too, so expiry is part of what the model checks.
    assert "advance_clock_then_read_every_key" in rules


def test_the_guard_refuses_a_backend_without_the_suite(pytestconfig: pytest.Config) -> None:
    """The guard can fail: a distribution with no conformance module is refused."""
    with pytest.raises(AssertionError, match="no project of this repo"):
        conformance_classes("sessionkit-unknown", list(pytestconfig.getini("testpaths")))
