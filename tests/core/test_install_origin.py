"""Every distribution of this repo is imported from this checkout, never from the index.

The name ``sessionkit`` on the public index belongs to an unrelated project; an install that
resolved it (or a sibling) from there would run a stranger's code under our name. CI installs
every distribution from the working tree in one resolver run; this test proves it did.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.name for p in (REPO / "plugins").iterdir() if (p / "pyproject.toml").exists())


@pytest.mark.parametrize("dist", ["sessionkit", *PLUGINS])
def test_distribution_is_imported_from_this_checkout(dist: str) -> None:
    module = importlib.import_module(dist.replace("-", "_"))
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(REPO), module.__file__
    assert metadata.version(dist) == metadata.version("sessionkit")
    # An editable install records where it points; a wheel from the index would not point here.
    direct = metadata.distribution(dist).read_text("direct_url.json") or ""
    assert REPO.as_uri() in direct or str(REPO) in direct, direct
