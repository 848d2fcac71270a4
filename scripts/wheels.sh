#!/usr/bin/env bash
# Build the wheel of every distribution of this repo into dist/ (or the directory given):
# sessionkit and each plugin of plugins/, all at the one version of sessionkit/_version.py, each
# sibling pinned to it exactly. Install them as docs/install.md says, e.g.
#   pip install --find-links dist "sessionkit[redis]==$(sed -n 's/^__version__ = "\(.*\)"/\1/p' sessionkit/_version.py)"
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
mkdir -p "$out"
python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && python=.venv/bin/python
projects=(.)
for p in plugins/*/; do
  [[ -f "$p/pyproject.toml" ]] && projects+=("${p%/}")
done
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' sessionkit/_version.py)
rm -f "$out"/sessionkit-"$version"-*.whl "$out"/sessionkit_*-"$version"-*.whl
echo "wheels: building sessionkit $version: ${projects[*]}" >&2
if "$python" -m uv --version >/dev/null 2>&1; then
  for project in "${projects[@]}"; do
    "$python" -m uv build -q --wheel --out-dir "$out" "$project"
  done
else
  "$python" -m pip wheel -q --no-deps --disable-pip-version-check --wheel-dir "$out" "${projects[@]}"
fi
ls -1 "$out"/sessionkit*-"$version"-*.whl
