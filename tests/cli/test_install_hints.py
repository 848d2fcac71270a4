"""Every ``pip install`` the library prints is safe: a source directory of the checkout
sessionkit runs from, or a requirement pinned to this release, never a bare ``sessionkit`` or
``sessionkit[...]``, which the public index answers with an unrelated project's package."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import sessionkit
from sessionkit import PluginRegistry, StorageNotFound
from sessionkit._install import WHERE_FROM, install_command, install_commands, install_hint
from sessionkit._ops.cli import main

PACKAGE = Path(sessionkit.__file__).parent


class FakeDistribution:
    """What ``metadata.distribution("sessionkit")`` returns, with a chosen ``direct_url.json``."""

    def __init__(self, direct_url: dict[str, Any] | None) -> None:
        self.direct_url = direct_url

    def read_text(self, filename: str) -> str | None:
        if filename != "direct_url.json" or self.direct_url is None:
            return None
        return json.dumps(self.direct_url)


def installed_as(monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, Any] | None) -> None:
    real = metadata.distribution

    def distribution(name: str) -> Any:
        return FakeDistribution(direct_url) if name == "sessionkit" else real(name)

    monkeypatch.setattr("sessionkit._install.metadata.distribution", distribution)


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sessionkit installed editable from ``tmp_path``, which holds the redis plugin's source."""
    root = tmp_path / "my checkout"
    (root / "plugins" / "sessionkit-redis").mkdir(parents=True)
    (root / "plugins" / "sessionkit-redis" / "pyproject.toml").write_text("[project]\n")
    installed_as(monkeypatch, {"url": root.as_uri(), "dir_info": {"editable": True}})
    return root


@pytest.fixture
def from_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    """sessionkit installed from a wheel or an index: no ``direct_url.json``."""
    installed_as(monkeypatch, None)


def test_an_editable_checkout_hints_the_plugin_source_in_it(checkout: Path) -> None:
    source = checkout / "plugins" / "sessionkit-redis"
    assert install_command("sessionkit-redis") == f"pip install -e '{source}'"
    assert install_hint("sessionkit-redis") == f"pip install -e '{source}'"  # no note needed


def test_an_editable_checkout_without_that_plugin_falls_back_to_a_pinned_requirement(
    checkout: Path,
) -> None:
    version = sessionkit.__version__
    assert install_command("sessionkit-mongo") == f'pip install "sessionkit-mongo=={version}"'
    both = install_hint(["sessionkit-redis", "sessionkit-mongo"])
    redis = checkout / "plugins" / "sessionkit-redis"
    assert both == f"pip install -e '{redis}' \"sessionkit-mongo=={version}\" {WHERE_FROM}"


def test_installed_from_a_wheel_hints_a_pinned_requirement_and_where_from(
    from_wheel: None,
) -> None:
    version = sessionkit.__version__
    assert install_command("sessionkit-redis") == f'pip install "sessionkit-redis=={version}"'
    hint = install_hint("sessionkit-redis")
    assert hint.startswith(f'pip install "sessionkit-redis=={version}" (')
    for words in ("--find-links DIR", "--index-url URL", "docs/install.md"):
        assert words in hint


@pytest.mark.parametrize(
    "direct_url",
    [
        {"url": "file:///somewhere", "dir_info": {}},  # a plain (not editable) directory install
        {"url": "https://example.org/sessionkit.tar.gz", "archive_info": {}},
        {"url": "git+https://example.org/sessionkit.git", "vcs_info": {"vcs": "git"}},
        {"url": "https://example.org/x", "dir_info": {"editable": True}},  # not a file:// URL
    ],
)
def test_anything_but_an_editable_local_directory_gets_the_pinned_requirement(
    direct_url: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    installed_as(monkeypatch, direct_url)
    assert install_command("sessionkit-sqlite") == (
        f'pip install "sessionkit-sqlite=={sessionkit.__version__}"'
    )


def test_no_sessionkit_distribution_at_all_gets_the_pinned_requirement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> Any:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr("sessionkit._install.metadata.distribution", missing)
    assert "==" in install_commands(["sessionkit-memory"])


@pytest.mark.usefixtures("from_wheel")
@pytest.mark.parametrize(
    ("url", "distribution"),
    [
        ("redis://h/0", "sessionkit-redis"),
        ("unix:///tmp/r.sock", "sessionkit-redis"),
        ("mongodb+srv://h/db", "sessionkit-mongo"),
        ("sqlite:///x.db", "sessionkit-sqlite"),
    ],
)
def test_storage_not_found_pins_the_plugin_when_installed_from_a_wheel(
    url: str, distribution: str
) -> None:
    with pytest.raises(StorageNotFound) as info:
        PluginRegistry(group="sessionkit_empty_group").open(url)
    message = str(info.value)
    assert f'Install it with: pip install "{distribution}=={sessionkit.__version__}"' in message
    assert "--find-links DIR" in message and "--index-url URL" in message
    assert "sessionkit[" not in message


def test_storage_not_found_points_into_the_checkout_when_editable(checkout: Path) -> None:
    with pytest.raises(StorageNotFound) as info:
        PluginRegistry(group="sessionkit_empty_group").open("rediss://h/0")
    source = checkout / "plugins" / "sessionkit-redis"
    assert str(info.value).endswith(f"Install it with: pip install -e '{source}'")


@pytest.mark.usefixtures("from_wheel")
def test_an_unknown_scheme_lists_the_missing_first_party_plugins_pinned() -> None:
    with pytest.raises(StorageNotFound) as info:
        PluginRegistry(group="sessionkit_empty_group").open("nosuch://x")
    message = str(info.value)
    version = sessionkit.__version__
    for name in ("memory", "sqlite", "redis", "mongo"):
        assert f'"sessionkit-{name}=={version}"' in message
    assert "sessionkit[" not in message


@pytest.mark.usefixtures("from_wheel")
def test_backends_with_none_installed_hints_the_pinned_memory_plugin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sessionkit._ops.cli.available_backends", list)
    assert main(["backends"]) == 1
    out = capsys.readouterr().out
    assert f'pip install "sessionkit-memory=={sessionkit.__version__}"' in out
    assert "--find-links DIR" in out and "sessionkit[" not in out


#: A requirement naming sessionkit or one of its plugins (``sessionkit``, ``"sessionkit[all]"``,
#: ``sessionkit-redis>=1``), as a pip argument: not part of a path (``-e plugins/sessionkit-x``)
#: nor a ``literal`` in prose.
_REQUIREMENT = re.compile(
    r"(?<![\w/.`-])(?P<name>sessionkit(?:-[a-z0-9]+)*)(?P<extras>\[[^\]]*\])?(?P<spec>[=<>!~]=?\S*)?"
)


def unpinned_requirements(line: str) -> list[str]:
    """The sessionkit requirements after ``pip install`` on ``line`` that are not ``==``."""
    _, found, after = line.partition("pip install")
    if not found:
        return []
    return [
        m.group(0)
        for m in _REQUIREMENT.finditer(after)
        if not (m.group("spec") or "").startswith("==")
    ]


@pytest.mark.parametrize(
    ("line", "unpinned"),
    [
        ('print("try: pip install \\"sessionkit[all]\\"")', ["sessionkit[all]"]),
        ("pip install sessionkit", ["sessionkit"]),
        ("pip install 'sessionkit-redis>=1'", ["sessionkit-redis>=1"]),
        ('pip install "sessionkit-redis==9.8.7"', []),
        ("pip install -e /src/plugins/sessionkit-redis", []),
        ("``pip install -e``, registers through the ``sessionkit`` group", []),
    ],
)
def test_the_scanner_tells_pinned_from_unpinned(line: str, unpinned: list[str]) -> None:
    assert [u.strip("\\\"'") for u in unpinned_requirements(line)] == unpinned


def test_no_source_in_the_package_prints_an_unpinned_sessionkit_requirement() -> None:
    offenders = []
    scanned = 0
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".typed":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            scanned += "pip install" in line
            offenders += [
                f"{path.relative_to(PACKAGE)}:{number}: {u}" for u in unpinned_requirements(line)
            ]
    assert scanned >= 3  # the scan saw the hints (the template's README, the demo, ...)
    assert offenders == []
