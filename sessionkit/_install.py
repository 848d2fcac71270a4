"""The one place that words an install command for one of this project's distributions.

The name ``sessionkit`` on the public package index belongs to an unrelated project, and the
plugin distributions (``sessionkit-sqlite``, ...) are not published there at all. So a hint
naming the core with an extra, unpinned, could fetch a stranger's code. Every hint the library
prints comes from here and names either a local source tree or a requirement pinned to this
very release, followed by where it has to come from.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "FIRST_PARTY",
    "WHERE_FROM",
    "editable_root",
    "install_command",
    "install_commands",
    "install_hint",
]

#: The distribution of this repository's plugins, in the order hints list them.
FIRST_PARTY = (
    "sessionkit-memory",
    "sessionkit-sqlite",
    "sessionkit-redis",
    "sessionkit-mongo",
    "sessionkit-postgres",
    "sessionkit-mysql",
)

#: Said after a pinned requirement: the public index cannot serve it (safely).
WHERE_FROM = (
    "(from the same source as the core: --find-links DIR for built wheels, --index-url URL "
    "for a private index; see the Install page, docs/install.md)"
)


def editable_root() -> Path | None:
    """The source tree the ``sessionkit`` distribution was installed from in editable mode
    (``pip install -e DIR``), read from its PEP 610 ``direct_url.json``; else ``None``.

    A developer working from a checkout gets hints pointing into that checkout, where the
    plugins' sources are, instead of a requirement no index may be able to serve.
    """
    try:
        text = metadata.distribution("sessionkit").read_text("direct_url.json")
        record = json.loads(text) if text else None
    except (metadata.PackageNotFoundError, ValueError, OSError):
        return None
    if not isinstance(record, dict):
        return None
    url, dir_info = record.get("url"), record.get("dir_info")
    if not (isinstance(url, str) and isinstance(dir_info, dict) and dir_info.get("editable")):
        return None
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    from urllib.request import url2pathname  # http.client and more: only hints need it

    return Path(url2pathname(parts.path))


def _version() -> str:
    # Read at call time: this module is imported while the package itself is being set up.
    from . import __version__

    return __version__


def _source(distribution: str, root: Path | None) -> Path | None:
    """The plugin's source directory in the editable checkout, if there is one."""
    if root is None:
        return None
    source = root / "plugins" / distribution
    return source if (source / "pyproject.toml").is_file() else None


def _plan(distributions: Sequence[str]) -> tuple[str, bool]:
    """The ``pip install`` line, and whether it names a requirement an index must serve."""
    root = editable_root()
    arguments: list[str] = []
    pinned = False
    for distribution in distributions:
        source = _source(distribution, root)
        if source is not None:
            arguments += ["-e", shlex.quote(str(source))]
        else:
            arguments.append(f'"{distribution}=={_version()}"')
            pinned = True
    return " ".join(["pip", "install", *arguments]), pinned


def install_commands(distributions: Sequence[str]) -> str:
    """One ``pip install`` line installing every one of ``distributions``.

    Each is ``-e <checkout>/plugins/<distribution>`` when sessionkit runs from an editable
    checkout that holds it, else ``"<distribution>==<this release>"``: never an unpinned
    requirement, which the public index could answer with someone else's package.
    """
    return _plan(distributions)[0]


def install_command(distribution: str) -> str:
    """The ``pip install`` line for one distribution (``sessionkit-redis``); see
    :func:`install_commands`."""
    return install_commands([distribution])


def install_hint(distributions: str | Sequence[str]) -> str:
    """:func:`install_commands`, followed by :data:`WHERE_FROM` when it names a requirement
    (an index or a wheel directory must serve it) rather than local source directories."""
    names = [distributions] if isinstance(distributions, str) else list(distributions)
    command, pinned = _plan(names)
    return f"{command} {WHERE_FROM}" if pinned else command
