"""Our built wheels, offered to pip beside the public index, are the ones pip picks.

The name ``sessionkit`` on the public index belongs to an unrelated project (0.3.x). A user
installs our wheels with ``pip install --find-links dist "sessionkit[redis]"`` (docs/install.md)
with the index still in reach for attrs, redis and the rest, so both are candidates. These
tests build every wheel with ``scripts/wheels.sh``, then ask a fresh venv's own pip what it
would install (``--dry-run --report``), exactly as the Install page says, and check that every
``sessionkit*`` distribution chosen is ours: this release's version, from ``dist/``.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import sessionkit

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VERSION = sessionkit.__version__
DISTRIBUTIONS = {"sessionkit", *(p.name for p in (REPO / "plugins").glob("sessionkit-*"))}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(["bash", str(REPO / "scripts" / "wheels.sh"), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def fresh_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A brand-new venv's python: nothing of ours installed, pip as the venv module ships it."""
    venv = tmp_path_factory.mktemp("venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


def would_install(python: Path, *args: str, tmp: Path) -> dict[str, dict[str, Any]]:
    """What ``pip install --dry-run`` would install, by distribution name."""
    report = tmp / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_PRE", "VIRTUAL_ENV"))}
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--disable-pip-version-check",
            "--report",
            str(report),
            *args,
        ],
        check=True,
        env=env,
    )
    chosen = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): item for item in chosen}


def ours(chosen: dict[str, dict[str, Any]], dist: Path) -> dict[str, str]:
    """The ``sessionkit*`` distributions chosen, each checked to be this release from dist/."""
    picked = {}
    for name, item in chosen.items():
        if not name.startswith("sessionkit"):
            continue
        url = item["download_info"]["url"]
        assert url.startswith(dist.as_uri()), f"{name} {item['metadata']['version']} from {url}"
        assert item["metadata"]["version"] == VERSION, item["metadata"]
        picked[name] = item["metadata"]["version"]
    return picked


def test_every_wheel_has_the_release_version_and_pins_its_siblings(dist: Path) -> None:
    wheels = sorted(dist.glob("*.whl"))
    seen = set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            meta = email.message_from_bytes(zf.read(meta_name))
        seen.add(meta["Name"])
        assert meta["Version"] == VERSION
        for requirement in meta.get_all("Requires-Dist") or []:
            name = requirement.split(";")[0].split("==")[0].split(">")[0].split("[")[0].strip()
            if name.startswith("sessionkit"):
                spec = requirement.split(";")[0]
                assert spec.endswith(f"=={VERSION}"), f"{meta['Name']}: {requirement}"
    assert seen == DISTRIBUTIONS


@pytest.mark.parametrize("requirement", ["sessionkit[redis]", "sessionkit[all]", "sessionkit"])
def test_find_links_install_picks_our_wheels_over_the_index(
    requirement: str, dist: Path, fresh_pip: Path, tmp_path: Path
) -> None:
    chosen = would_install(fresh_pip, "--find-links", str(dist), requirement, tmp=tmp_path)
    picked = ours(chosen, dist)
    expected = {"sessionkit", "sessionkit-memory"}
    if requirement == "sessionkit[redis]":
        expected.add("sessionkit-redis")
    elif requirement == "sessionkit[all]":
        expected = DISTRIBUTIONS
    assert set(picked) == expected
    if requirement == "sessionkit[redis]":
        assert "redis" in chosen  # the extra took, with its dependency from the index
        assert "hiredis" in chosen  # and redis-py's C reply parser, which the plugin requires


def test_a_pinned_install_can_never_take_the_strangers_package(
    dist: Path, fresh_pip: Path, tmp_path: Path
) -> None:
    """The Install page's recommended line: the pin leaves the stranger nothing to offer."""
    chosen = would_install(
        fresh_pip, "--find-links", str(dist), f"sessionkit[redis]=={VERSION}", tmp=tmp_path
    )
    assert set(ours(chosen, dist)) == {"sessionkit", "sessionkit-memory", "sessionkit-redis"}


def test_the_index_alone_offers_the_strangers_package(fresh_pip: Path, tmp_path: Path) -> None:
    """The hazard the tests above guard against is real: without our wheels, pip takes the
    unrelated project's ``sessionkit`` from the index (skipped where no index is reachable)."""
    try:
        chosen = would_install(fresh_pip, "--no-deps", "sessionkit", tmp=tmp_path)
    except subprocess.CalledProcessError:
        pytest.skip("no package index reachable")
    assert chosen["sessionkit"]["metadata"]["version"] != VERSION
