#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: system packages the tests need (as
# root, from Debian's archive, only when missing) and a virtualenv in .venv holding nox and every
# distribution of this repo, installed from the working tree in one pip run. No sessionkit*
# name is ever resolved from the package index (it belongs to an unrelated project there).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [[ "${SESSIONKIT_BROWSER_TESTS:-1}" == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if ((${#need_apt[@]})) && [[ "${1:-}" == --system ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need_apt[*]} from Debian's archive" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: please install: ${need_apt[*]} (the tests need them)" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
args=(-e .)
for p in plugins/*/; do
  [[ -f "$p/pyproject.toml" ]] && args+=(-e "$p")
done
.venv/bin/python -m pip install -q "${args[@]}" -r requirements-dev.txt nox
