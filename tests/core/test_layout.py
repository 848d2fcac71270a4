"""The package's layout is its architecture: the request path never loads the operator's tools."""

from __future__ import annotations

import json
import subprocess
import sys

REQUEST_PATH = ["sessionkit", "sessionkit.asgi", "sessionkit.wsgi", "sessionkit.storage"]


def test_serving_requests_never_imports_the_operator_tools() -> None:
    """A web worker imports the middlewares and opens a storage, a bad URL included; none of
    that may pull in the command line, its text helpers or the plugin template (argparse,
    and code a worker never runs)."""
    script = f"""
import json, sys
import {", ".join(REQUEST_PATH)}
from sessionkit import ConfigError, Store
Store().close()
try:
    Store(storage="redis://user:secret@[::1")
except (ConfigError, Exception):
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith("sessionkit"))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert "sessionkit._redact" in loaded  # the bad URL's message was masked
    assert not [m for m in loaded if m.startswith("sessionkit._ops")], loaded


def test_a_worker_serving_sessions_imports_no_heavy_helpers() -> None:
    """What only an error message or a registration needs is imported then: ``urllib.request``
    (install hints) and cattrs (registered classes), so neither is paid for by every process."""
    script = f"""
import json, sys
import {", ".join(REQUEST_PATH)}
from sessionkit import Store
store = Store()
session = store.load(None)
session.set("n", 1)
session.save()
print(json.dumps([m for m in ("urllib.request", "cattrs") if m in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []
