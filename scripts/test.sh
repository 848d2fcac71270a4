#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (Debian's redis-server
# and chromium as root; .venv through scripts/bootstrap.sh), then runs nox's default sessions in
# that one environment: lint, typing, django, slow (the tests that build wheels and pip-install),
# tests (the rest of tests/ and plugins/, security included, on six workers), and load (the short
# load-and-fault run through real uvicorn and gunicorn servers).
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

# The default run, arranged for a two-core machine: Debian's packages install in the background
# (network and disk) while .venv is built; then the tests (tests/ and plugins/, on six
# workers: they wait on servers and sockets as much as on the CPU) run beside lint, typing,
# django (sessionkit.django under Django's own session tests, and a startproject end to end) and
# the slow tests (they wait on pip and the package index: at the end of the lane they kept it
# waiting while the CPU idled);
# the short load suite runs last, alone. (Run beside the tests, it saved a minute but pushed a
# timed failover test of the tests' past its bound: the load suite keeps the CPU busy.)
apt_log=$(mktemp)
bash scripts/bootstrap.sh --system-only >"$apt_log" 2>&1 &
apt_pid=$!
bash scripts/bootstrap.sh dev
export SESSIONKIT_VENV_READY=1 # the sessions below, two at a time, need not install again
elapsed ".venv ready"
if ! wait "$apt_pid"; then
  cat "$apt_log" >&2
  exit 1
fi
cat "$apt_log" >&2
elapsed "system packages ready"
static_log=$(mktemp)
.venv/bin/nox -s lint typing django slow >"$static_log" 2>&1 &
static_pid=$!
status=0
.venv/bin/nox -s tests -- -m "not slow" || status=$?
elapsed "tests finished"
wait "$static_pid" || status=$?
cat "$static_log"
elapsed "lint, typing, django and slow finished"
((status == 0)) || exit "$status"
.venv/bin/nox -s load
elapsed "done"
