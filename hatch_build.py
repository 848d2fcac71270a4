"""Build hook shared by every distribution of this repository: one version, exact sibling pins.

The version is written once, in ``sessionkit/_version.py``. Each ``pyproject.toml`` here lists
``version``, ``dependencies`` and ``optional-dependencies`` as dynamic and gives its requirement
lists to this hook (``[tool.hatch.metadata.hooks.custom]``), naming siblings bare
(``"sessionkit"``, ``"sessionkit-redis"``). The hook pins each sibling to ``==`` this version.

Why exact pins: the name ``sessionkit`` on the public package index belongs to an unrelated
project. A requirement ``sessionkit==X`` can only be met by this repository's release X, so no
resolver can take the stranger's package for ours, and one release's core and plugins always
install together. A sibling written with its own specifier is refused, so a hand-written
``>=`` cannot slip back in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

VERSION_FILE = Path(__file__).resolve().parent / "sessionkit" / "_version.py"
_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
_SIBLING = re.compile(r"^\s*(sessionkit(?:-[A-Za-z0-9_]+)*)\s*(\[[^\]]*\])?\s*(.*)$", re.IGNORECASE)


def release_version() -> str:
    """The version written in ``sessionkit/_version.py``."""
    match = _VERSION.search(VERSION_FILE.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f'no __version__ = "..." line in {VERSION_FILE}')
    return match.group(1)


def pin(requirement: str, version: str) -> str:
    """``requirement`` with a bare sibling pinned to ``==version``; others unchanged."""
    match = _SIBLING.match(requirement)
    if match is None:
        return requirement
    name, extras, rest = match.group(1), match.group(2) or "", match.group(3)
    if rest:
        raise ValueError(
            f"{requirement!r}: name sibling distributions bare; the release hook pins them "
            "to this repository's version"
        )
    return f"{name}{extras}=={version}"


class ReleaseMetadataHook(MetadataHookInterface):
    """Set ``version`` and the (pinned) requirement lists of the distribution being built."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        version = release_version()
        metadata["version"] = version
        requires = self.config.get("dependencies")
        if requires is not None:
            metadata["dependencies"] = [pin(r, version) for r in requires]
        extras = self.config.get("optional-dependencies")
        if extras is not None:
            metadata["optional-dependencies"] = {
                extra: [pin(r, version) for r in reqs] for extra, reqs in extras.items()
            }
