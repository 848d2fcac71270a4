#!/usr/bin/env bash
# The demo web app on the embedded default storage (SQLite if its plugin is installed, which
# it is here), from a fresh machine. Extra arguments go to `sessionkit demo` (--port, --storage).
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONKIT_BROWSER_TESTS=0 bash scripts/bootstrap.sh
exec .venv/bin/sessionkit demo "$@"
