#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (Debian's redis-server
# and chromium as root; .venv through scripts/bootstrap.sh), then runs nox's default sessions in
# that one environment: lint, typing, django, tests (tests/ and plugins/, security included,
# on four workers), and load (the short load-and-fault run through real uvicorn and gunicorn servers).
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
# (network and disk) while .venv is built; then two lanes run side by side. One runs the tests
# (tests/ and plugins/, on four workers: they wait on servers and sockets as much as on the
# CPU). The other runs lint, typing and django (sessionkit.django under Django's own session
# tests, and a startproject end to end), then the short load suite, whose promises (nothing
# acknowledged lost, no 500, every answer within the storage timeout plus a second) hold on a
# shared CPU.
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
other_log=$(mktemp)
(
  .venv/bin/nox -s lint typing django && elapsed "lint, typing and django finished" &&
    .venv/bin/nox -s load && elapsed "load finished"
) >"$other_log" 2>&1 &
other_pid=$!
status=0
.venv/bin/nox -s tests || status=$?
elapsed "tests finished"
wait "$other_pid" || status=$?
cat "$other_log"
elapsed "done"
exit "$status"
