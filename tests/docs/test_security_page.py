"""docs/security.md names the tests that prove each guarantee: every name must exist, and every
requirement of the spec must have its row and its file, so the page cannot drift from the suite.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
SECURITY = ROOT / "tests" / "security"
REQUIREMENTS = range(1, 23)


def _defined() -> tuple[set[str], set[str]]:
    files = {p.name for p in SECURITY.glob("test_*.py")}
    functions: set[str] = set()
    for path in SECURITY.glob("test_*.py"):
        functions |= set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
    return files, functions


def test_every_test_the_page_names_exists() -> None:
    files, functions = _defined()
    named = set(re.findall(r"`(test_\w+?)(\.py)?`", PAGE))
    missing = sorted(
        name + ext
        for name, ext in named
        if (name + ext not in files if ext else name not in functions)
    )
    assert named and not missing, f"docs/security.md names tests that do not exist: {missing}"


def test_every_requirement_has_a_row_and_a_file() -> None:
    files, _ = _defined()
    for n in REQUIREMENTS:
        assert re.search(rf"^\| {n} \|", PAGE, re.M), f"requirement {n} has no row"
        assert any(f.startswith(f"test_{n:02d}_") for f in files), f"requirement {n} has no file"
        row = next(line for line in PAGE.splitlines() if line.startswith(f"| {n} |"))
        assert f"test_{n:02d}_" in row, f"requirement {n}'s row does not name its file"
