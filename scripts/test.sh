#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then runs nox's default
# sessions (lint, typing, tests, security, and load: the short load-and-fault run, at most two
# minutes, through real uvicorn and gunicorn servers). The tests start their own Mongo test server,
# and a Redis server when none answers on 127.0.0.1:6379. ``bash scripts/test.sh -s load -- --full``
# runs the whole load suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --system
exec .venv/bin/nox "$@"
