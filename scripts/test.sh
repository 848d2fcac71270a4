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
elapsed() { echo "test: $1 after $((SECONDS - start)) s" >&2; }

if (($#)); then
  bash scripts/bootstrap.sh --system dev
  elapsed ".venv ready"
  exec .venv/bin/nox "$@"
fi

# The default run. Debian's packages install in the background (network and disk, not CPU)
# while .venv is built and lint and typing run; the tests wait for them.
apt_log=$(mktemp)
bash scripts/bootstrap.sh --system-only >"$apt_log" 2>&1 &
apt_pid=$!
bash scripts/bootstrap.sh dev
elapsed ".venv ready"
.venv/bin/nox -s lint typing
if ! wait "$apt_pid"; then
  cat "$apt_log" >&2
  exit 1
fi
cat "$apt_log" >&2
elapsed "system packages ready"
.venv/bin/nox -s tests load
elapsed "done"
