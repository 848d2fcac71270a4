"""Storage discovery through pluggy and the ``sessionkit`` entry-point group."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sessionkit
from sessionkit import (
    PluginLoadWarning,
    PluginRegistry,
    SessionKitError,
    StorageNotFound,
    open_storage,
)
from sessionkit._install import install_command


def make_dist(root: Path, dist: str, module: str, source: str, group: str) -> None:
    """Lay out an installed distribution (dist-info + module) on a path entry."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{module} = {module}\n")


GOOD = """
    from sessionkit import Backend, hookimpl

    def _open(url, options):
        from sessionkit_memory import MemoryStorage
        return MemoryStorage()

    @hookimpl
    def sessionkit_backends():
        return [Backend(name="toy", schemes=("toy",), open=_open)]
"""


@pytest.fixture
def group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private entry-point group holding one good and one broken plugin."""
    name = "sessionkit_test_group"
    make_dist(tmp_path, "toy-plugin", "toy_plugin", GOOD, name)
    make_dist(tmp_path, "broken-plugin", "broken_plugin", "raise ImportError('boom')", name)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_broken_plugin_warns_naming_its_distribution_and_others_still_load(group: str) -> None:
    registry = PluginRegistry(group=group, strict=False)
    with pytest.warns(PluginLoadWarning, match=r"'broken-plugin'.*boom"):
        schemes = registry.by_scheme()
    assert set(schemes) == {"toy"}
    assert schemes["toy"].distribution == "toy-plugin"
    assert registry.open("toy://") is not None


def test_strict_mode_raises_for_a_broken_plugin(group: str) -> None:
    with pytest.raises(SessionKitError, match="broken-plugin"):
        PluginRegistry(group=group, strict=True).by_scheme()


def test_strict_mode_from_environment(group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONKIT_STRICT_PLUGINS", "1")
    with pytest.raises(SessionKitError):
        PluginRegistry(group=group).by_scheme()


def test_unknown_scheme_names_installed_backends_and_closest_match() -> None:
    with pytest.raises(StorageNotFound) as info:
        open_storage("mongo://localhost")
    message = str(info.value)
    assert "memory (memory://)" in message
    assert "'mongodb'" in message
    assert isinstance(info.value, LookupError)


def test_first_party_backend_not_installed_gives_exact_pip_install() -> None:
    registry = PluginRegistry(group="sessionkit_empty_group")
    for scheme, extra in [
        ("redis", "redis"),
        ("rediss", "redis"),
        ("unix", "redis"),
        ("mongodb+srv", "mongo"),
        ("sqlite", "sqlite"),
    ]:
        with pytest.raises(StorageNotFound) as info:
            registry.open(f"{scheme}://somewhere")
        # One source for the hint (sessionkit._install): the plugin's source in this checkout,
        # or its distribution pinned to this release; never the unpinned core with an extra.
        assert f"Install it with: {install_command(f'sessionkit-{extra}')}" in str(info.value)
        assert "sessionkit[" not in str(info.value)


def test_memory_backend_by_plain_name_and_url_with_options() -> None:
    from sessionkit_memory import MemoryStorage

    assert isinstance(open_storage("memory"), MemoryStorage)
    capped = open_storage("memory://?max_entries=3")
    assert isinstance(capped, MemoryStorage) and capped.max_entries == 3
    assert open_storage("memory://?max_entries=3", max_entries=5).max_entries == 5  # type: ignore[attr-defined]


def test_bad_backend_option_is_a_config_error_naming_it() -> None:
    with pytest.raises(sessionkit.ConfigError, match="colour"):
        open_storage("memory://?colour=blue")
    with pytest.raises(sessionkit.ConfigError, match="max_entries"):
        open_storage("memory://?max_entries=lots")


def test_nothing_is_scanned_or_imported_at_import_time() -> None:
    code = textwrap.dedent(
        """
        import sys
        import sessionkit
        from sessionkit import _discovery
        assert _discovery._default_registry._by_scheme is None, "scanned at import"
        for heavy in ("sessionkit_memory", "redis", "pymongo", "sqlite3", "sessionkit.testing"):
            assert heavy not in sys.modules, heavy
        sessionkit.available_backends()
        assert "redis" not in sys.modules and "pymongo" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cli_backends_lists_memory_with_distribution_and_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sessionkit", "backends"], capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("memory"))
    assert "memory://" in line and "sessionkit-memory" in line and sessionkit.__version__ in line


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("memory://?max_entries=3&max_entries=100000000", "max_entries"),
        ("redis://127.0.0.1:6379/0?prefix=a:&prefix=b:", "prefix"),
        ("sqlite:///x.db?table=a&table=b", "table"),
        ("mongodb://127.0.0.1:1/db?collection=a&collection=b", "collection"),
    ],
)
def test_a_query_parameter_given_twice_is_a_config_error_naming_it(url: str, name: str) -> None:
    # Keeping either value silently would put sessions somewhere nobody asked for.
    with pytest.raises(sessionkit.ConfigError, match="more than once") as caught:
        open_storage(url)
    assert caught.value.field == name


def test_a_backend_may_accept_repeats_it_reads_from_the_url_itself() -> None:
    # MongoDB takes one readPreferenceTags per tag set, in order of preference.
    url = (
        "mongodb://127.0.0.1:1/db?readPreferenceTags=dc:ny&readPreferenceTags=dc:sf"
        "&readPreference=secondary&serverSelectionTimeoutMS=100"
    )
    storage = open_storage(url)
    try:
        tags = storage._client.read_preference.tag_sets  # type: ignore[attr-defined]
        assert tags == [{"dc": "ny"}, {"dc": "sf"}]
    finally:
        storage.close()
