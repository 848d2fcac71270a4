"""Starting and collecting the runs of Django's own session tests (``_contract_run.py``).

Each Django version runs in a process of its own: the LTS in ``.venv``, the newest in a cached
Python 3.12+ venv (:mod:`tests.django._sdist`). The conftest starts them with the session's
first test, so they run beside the rest of ``tests/django``; ``test_contract.py`` reads their
reports last.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import django

from tests.django._sdist import NEWEST, interpreter_for, sessions_tests

__all__ = ["KINDS", "LTS", "TIMEOUT", "VERSIONS", "ContractRuns"]

HERE = Path(__file__).resolve().parent
#: The LTS: the Django of ``.venv`` when it is a 5.2 (else that series' release named here).
LTS = django.get_version() if django.VERSION[:2] == (5, 2) else "5.2.19"
VERSIONS = [LTS, NEWEST]
KINDS = ("memory", "sqlite", "redis", "mongo", "example")
#: How long one Django version's run may take (it takes seconds; a first run also downloads).
TIMEOUT = 600


def storage_urls(redis_url: str, mongo_url: str, tmp: Path, version: str) -> list[str]:
    """``NAME=URL`` for each of :data:`KINDS`, in namespaces of this run's own."""
    tag = f"{version.replace('.', '_')}_{os.urandom(4).hex()}"
    redis = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix=sk-contract-{tag}:"
    head, _, query = mongo_url.partition("?")
    mongo = f"{head.rstrip('/')}/sessionkit?" + "&".join(filter(None, [query, f"collection={tag}"]))
    return [
        "memory=memory://",
        f"sqlite=sqlite:///{tmp}/contract-{tag}.db",
        f"redis={redis}",
        f"mongo={mongo}",
        f"example=example://?prefix=contract-{tag}:",
    ]


class ContractRuns:
    """One run per Django version, started side by side."""

    def __init__(self, redis_url: str, mongo_url: str, tmp: Path) -> None:
        self._servers = (redis_url, mongo_url)
        self._tmp = tmp
        self._runs: dict[str, tuple[subprocess.Popen[str], Path]] = {}

    def _start(self, version: str) -> None:
        """Fetch what the version needs (first run only) and start its run."""
        out = self._tmp / f"report-{version}.json"
        argv = [interpreter_for(version), str(HERE / "_contract_run.py")]
        argv += ["--tests", str(sessions_tests(version)), "--out", str(out)]
        argv += storage_urls(*self._servers, self._tmp, version)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._runs[version] = (proc, out)

    def start(self) -> None:
        with ThreadPoolExecutor(len(VERSIONS)) as pool:  # a cold cache downloads side by side
            for started in [pool.submit(self._start, version) for version in VERSIONS]:
                started.result()

    def report(self, version: str) -> dict[str, Any]:
        """Wait for ``version``'s run; its report (see ``_contract_run.main``)."""
        proc, out = self._runs[version]
        output, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, output
        loaded: dict[str, Any] = json.loads(out.read_text())
        return loaded

    def stop(self) -> None:
        for proc, _ in self._runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
