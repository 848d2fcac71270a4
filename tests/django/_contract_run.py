"""Run Django's own session tests against ``sessionkit.django``.

Executed as a script, in a process of its own per Django version (Django's settings can be
configured once per process), by ``tests/django/test_contract.py``::

    python tests/django/_contract_run.py --tests DIR --out FILE NAME=URL [NAME=URL ...]

``DIR`` holds ``sessions_tests``, taken at test time from Django's source distribution (never
copied into this repository). For each ``NAME=URL`` (a storage), with ``SESSIONKIT =
{"storage": URL}``:

* ``SessionTestsMixin``, the contract of a session engine, runs against
  ``sessionkit.django.SessionStore``;
* ``SessionMiddlewareTests``, Django's tests of its session middleware (cookie settings,
  ``Vary``, 5xx responses, ``flush()``), run against ``sessionkit.django.SessionMiddleware``,
  which takes the place of Django's in that module.

The tests in :data:`SKIPS` are skipped by name with their reason (docs/frameworks/django.md
lists them). ``FILE`` receives the outcome of each test as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import unittest
from pathlib import Path
from typing import Any

#: Tests that do not apply to sessionkit, by suite, with the reason. None of the mixin's:
#: every test of ``SessionTestsMixin`` applies, and passes, on every storage.
SKIPS: dict[str, dict[str, str]] = {
    "SessionTestsMixin": {},
    "SessionMiddlewareTests": {
        "test_empty_session_saved": (
            "it reads the record from Django's database table (django.contrib.sessions.models."
            "Session), which sessionkit does not use; tests/django checks the same behaviour "
            "(an emptied session keeps its key, record and cookie) through sessionkit's store"
        ),
    },
}


class Recorder(unittest.TestResult):
    """Every test's outcome, by storage and test name."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[str, dict[str, dict[str, dict[str, str]]]] = {}

    def _put(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        suite, storage = type(test).suite, type(test).storage
        tests = self.outcomes.setdefault(suite, {}).setdefault(storage, {})
        tests[test._testMethodName] = {"outcome": outcome, "detail": detail}

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._put(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._put(test, "failed", self._exc_info_to_string(err, test))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        self._put(test, "failed", self._exc_info_to_string(err, test))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self._put(test, "skipped", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._put(test, "failed", "expected failure: " + self._exc_info_to_string(err, test))

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._put(test, "failed", "unexpected success")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        if err is not None:  # its test is then not reported a success
            self._put(test, "failed", f"{subtest}: {self._exc_info_to_string(err, test)}")


def _configure(tests_dir: Path) -> None:
    sys.path.insert(0, str(tests_dir))
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="sessionkit contract run",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",  # the mixin's module imports Django's session model
            "sessions_tests",  # ... and its own (from the sdist)
            "sessionkit.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        SESSION_ENGINE="sessionkit.django",
        USE_TZ=True,
    )
    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()


def _case(suite: type[Any], name: str, url: str) -> type[unittest.TestCase]:
    """``suite`` on the storage ``url``, its :data:`SKIPS` skipped by name."""
    from django.test import SimpleTestCase, override_settings

    from sessionkit.django import SessionStore, get_store

    title = suite.__name__
    bases = (suite,) if issubclass(suite, unittest.TestCase) else (suite, SimpleTestCase)
    namespace: dict[str, Any] = {"suite": title, "storage": name, "__module__": __name__}
    if title == "SessionTestsMixin":
        namespace["backend"] = SessionStore
    for test, reason in SKIPS[title].items():
        namespace[test] = unittest.skip(reason)(getattr(suite, test))

    @classmethod
    def tearDownClass(cls: type[SimpleTestCase]) -> None:
        get_store().reset()  # this run's namespace only (a prefix, a collection)
        super(case, cls).tearDownClass()

    namespace["tearDownClass"] = tearDownClass
    case = type(f"{title}_{name}", bases, namespace)
    return override_settings(SESSIONKIT={"storage": url})(case)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("storages", nargs="+", metavar="NAME=URL")
    args = parser.parse_args(argv)
    _configure(args.tests)
    import django
    from django.test.utils import setup_databases, teardown_databases
    from sessions_tests import tests

    from sessionkit.django import SessionMiddleware

    suites = [tests.SessionTestsMixin, tests.SessionMiddlewareTests]
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for pair in args.storages:
        name, _, url = pair.partition("=")
        for tested in suites:
            suite.addTests(loader.loadTestsFromTestCase(_case(tested, name, url)))
    result = Recorder()
    databases = setup_databases(verbosity=0, interactive=False)
    # Django's middleware tests build the middleware by this module-global name.
    tests.SessionMiddleware = SessionMiddleware
    try:
        suite.run(result)
    except Exception:  # a broken harness must not pass for an empty result
        result.outcomes.setdefault("harness", {}).setdefault("run", {})["run"] = {
            "outcome": "failed",
            "detail": traceback.format_exc(),
        }
    finally:
        teardown_databases(databases, verbosity=0)
    report = {
        "django": django.get_version(),
        "python": sys.version.split()[0],
        "tests": {s.__name__: sorted(n for n in dir(s) if n.startswith("test")) for s in suites},
        "skips": SKIPS,
        "outcomes": result.outcomes,
    }
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
