#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (Debian's redis-server
# and chromium as root; .venv through scripts/bootstrap.sh), then runs nox's default sessions in
# that one environment: lint, typing, tests (tests/ and plugins/, security included, on two
# workers), and load (the short load-and-fault run through real uvicorn and gunicorn servers).
# The tests start their own Mongo test server, and a Redis server when none answers on
# 127.0.0.1:6379. Arguments go to nox: ``bash scripts/test.sh -s load -- --full`` runs the whole
# load suite, ``bash scripts/test.sh -s tests -- -m "not slow"`` a quick local loop.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/bootstrap.sh --system dev
echo "test: .venv ready after $((SECONDS - start)) s; running .venv/bin/nox $*" >&2
.venv/bin/nox "$@"
echo "test: done in $((SECONDS - start)) s" >&2
