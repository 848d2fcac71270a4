"""The release version is written once, and every distribution takes it from there.

``sessionkit/_version.py`` holds it; ``hatch_build.py`` gives it to every distribution at build
time and pins each sibling requirement to it exactly. A version or a sibling pin written by
hand anywhere else would drift at the next release, and a loose sibling bound (``>=``) is what
once let pip take the unrelated ``sessionkit`` from the package index. (The built wheels'
metadata is checked in test_wheels.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sessionkit

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
PROJECTS = [
    REPO,
    *sorted(p for p in (REPO / "plugins").iterdir() if (p / "pyproject.toml").exists()),
]
SIBLING = re.compile(r"^\s*sessionkit(-[a-z0-9_]+)*\s*(\[[^\]]*\])?", re.IGNORECASE)


def test_the_version_is_a_final_release() -> None:
    """pip skips pre-releases unless asked (--pre): a pre-release of ours loses to the
    stranger's final 0.3.x on the index."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", sessionkit.__version__), sessionkit.__version__


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_each_project_takes_version_and_sibling_pins_from_the_hook(project: Path) -> None:
    data = tomllib.loads((project / "pyproject.toml").read_text())
    meta = data["project"]
    assert "version" not in meta and "version" in meta["dynamic"]
    assert "dependencies" not in meta and "dependencies" in meta["dynamic"]
    hook = data["tool"]["hatch"]["metadata"]["hooks"]["custom"]
    assert (project / hook.get("path", "hatch_build.py")).resolve() == REPO / "hatch_build.py"
    requirements = list(hook.get("dependencies", []))
    for extra in hook.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    for requirement in requirements:
        match = SIBLING.match(requirement)
        if match:  # named bare; the hook adds "==<version>"
            assert requirement.strip() == match.group(0).strip(), requirement


def test_no_version_literal_outside_the_version_file() -> None:
    version = re.escape(sessionkit.__version__)
    literal = re.compile(rf"""["']{version}["']""")
    sources = [*REPO.glob("sessionkit/**/*.py"), *REPO.glob("plugins/*/sessionkit_*/**/*.py")]
    sources += [p / "pyproject.toml" for p in PROJECTS]
    hits = [
        str(path.relative_to(REPO))
        for path in sources
        if path != REPO / "sessionkit" / "_version.py" and literal.search(path.read_text())
    ]
    assert hits == []
