#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then runs nox's default
# sessions (lint, typing, tests, security). The tests start their own Mongo test server, and a Redis
# server when none answers on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --system
exec .venv/bin/nox "$@"
