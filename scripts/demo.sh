#!/usr/bin/env bash
# The demo web app on the embedded default storage (SQLite: sessionkit-demo.db at the checkout's
# root, kept so that sessions outlive a restart), from a fresh machine: sets up .venv with only
# what the demo needs (the core, its memory and SQLite plugins, starlette and uvicorn; seconds
# with uv), then runs `sessionkit demo`, which prints its URL and one line per request. Extra
# arguments go to it (--port, --storage URL).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: setting up .venv (first run only)" >&2
bash scripts/bootstrap.sh demo
echo "demo: starting: .venv/bin/sessionkit demo $*" >&2
exec .venv/bin/sessionkit demo "$@"
