#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: one virtualenv, .venv, holding this
# repo's distributions (editable, from the working tree) and a requirement set:
#
#   bash scripts/bootstrap.sh [--system|--system-only] [demo|dev|FILE...]
#
#   demo  the core, the memory and SQLite plugins, and requirements/demo.txt (a few seconds)
#   dev   every distribution of the repo and requirements/dev.txt (tests, lint, typing, nox)
#   FILE  any other requirements file, installed on top of dev (docs, benchmarks)
#
# --system also installs the system packages the tests need (as root, from Debian's archive,
# only when missing); --system-only does only that (scripts/test.sh runs it in the background
# while the venv is built and linted). Installs go through uv (fetched into .venv once; it resolves and installs
# the whole dev set in seconds where pip takes minutes), or pip when uv cannot be had. Either
# way no sessionkit* name is ever resolved from the package index, where ``sessionkit`` belongs
# to an unrelated project: ours are installed from the tree, in the same run as the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "bootstrap: $*" >&2; }

system=0 only_system=0
case "${1:-}" in
  --system) system=1 && shift ;;
  --system-only) system=1 only_system=1 && shift ;;
esac
profile=${1:-dev}
(($#)) && shift

need_apt=()
if [[ $profile != demo ]]; then
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
  # The PostgreSQL and MariaDB plugins' tests start private servers from these when none
  # answers on the usual port (tests/_server_postgres.py, tests/_server_mysql.py).
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || need_apt+=(mariadb-server)
  if [[ "${SESSIONKIT_BROWSER_TESTS:-1}" == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
    need_apt+=(chromium)
  fi
fi
if ((${#need_apt[@]})); then
  if ((system)) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need_apt[*]} from Debian's archive (first run only)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    say "please install: ${need_apt[*]} (the tests need them)"
  fi
fi
((only_system)) && exit 0

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi

UV_VERSION=0.13.9
if ! .venv/bin/python -m uv --version 2>/dev/null | grep -q " $UV_VERSION"; then
  say "fetching uv $UV_VERSION into .venv (the installer; first run only)"
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>/dev/null ||
    say "uv is unavailable; installing with pip instead (minutes, not seconds)"
fi

args=(-e . -e plugins/sessionkit-memory)
case $profile in
  demo)
    args+=(-e plugins/sessionkit-sqlite -r requirements/demo.txt)
    ;;
  *)
    for p in plugins/*/; do
      [[ -f "$p/pyproject.toml" && "$p" != plugins/sessionkit-memory/ ]] && args+=(-e "$p")
    done
    # The third-party plugin the discovery tests install, as an outsider's would be.
    args+=(-e tests/thirdparty_plugin -r requirements/dev.txt)
    [[ $profile != dev ]] && args+=(-r "$profile")
    ;;
esac
for extra in "$@"; do args+=(-r "$extra"); done

say "installing into .venv: ${args[*]}"
if .venv/bin/python -m uv --version >/dev/null 2>&1; then
  # --python: this venv, whatever is active. The machine's pip settings (extra indexes,
  # find-links) are pip's; uv reads the package index alone, and resolves ours from the tree.
  .venv/bin/python -m uv pip install -q --python .venv/bin/python "${args[@]}"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check "${args[@]}"
fi
say ".venv is ready"
