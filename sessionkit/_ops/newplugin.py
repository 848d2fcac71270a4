"""``sessionkit new-plugin``: lay out a storage plugin distribution that works on the first try.

The files come from ``plugin_template/`` next to this module (shipped inside the wheel), with
``$placeholders`` filled by :class:`string.Template`. What comes out installs with
``pip install -e``, registers its scheme through the ``sessionkit`` entry-point group, and
passes :mod:`sessionkit.testing` unchanged, so a plugin author starts from green and changes
one thing at a time.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import attrs

from .._discovery import FIRST_PARTY_EXTRAS, available_backends

__all__ = ["PluginNames", "generate"]

TEMPLATE = Path(__file__).with_name("plugin_template")
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*\Z")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")


@attrs.frozen
class PluginNames:
    """Every name the template needs, derived from the plugin's short name."""

    name: str
    scheme: str

    @classmethod
    def parse(cls, name: str, scheme: str | None = None) -> PluginNames:
        """Validate ``name`` (``redis2``, ``my-kv``) and ``scheme``; raise ``ValueError``."""
        name = name.removeprefix("sessionkit-").removeprefix("sessionkit_")
        if not _NAME.match(name):
            raise ValueError(
                f"plugin name {name!r}: use lower-case letters and digits, "
                "words joined by '-' or '_', starting with a letter"
            )
        scheme = scheme if scheme is not None else name.replace("_", "-")
        if not _SCHEME.match(scheme):
            raise ValueError(f"scheme {scheme!r}: use lower-case letters, digits, '+', '-', '.'")
        return cls(name, scheme)

    @property
    def dist(self) -> str:
        return f"sessionkit-{self.name.replace('_', '-')}"

    @property
    def package(self) -> str:
        return f"sessionkit_{self.name.replace('-', '_')}"

    @property
    def cls(self) -> str:
        return "".join(w.capitalize() for w in re.split(r"[-_]", self.name)) + "Storage"

    def mapping(self, core_version: str) -> dict[str, str]:
        return {
            "name": self.name,
            "scheme": self.scheme,
            "dist": self.dist,
            "package": self.package,
            "cls": self.cls,
            "title": self.cls.removesuffix("Storage"),
            "core_version": core_version,
        }


def taken_by(scheme: str) -> str | None:
    """The distribution (or first-party extra) that already owns ``scheme``, if any."""
    for installed in available_backends():
        if scheme in installed.backend.schemes:
            return installed.distribution
    extra = FIRST_PARTY_EXTRAS.get(scheme)
    return None if extra is None else f"sessionkit-{extra}"


def generate(names: PluginNames, parent: Path, core_version: str) -> list[Path]:
    """Write the distribution into ``parent / names.dist``; return the files written.

    Raises ``FileExistsError`` when that directory exists and is not empty: a generator that
    overwrote someone's work would be worse than none.
    """
    root = parent / names.dist
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} already exists and is not empty")
    values = names.mapping(core_version)
    written = []
    for source in sorted(TEMPLATE.rglob("*")):
        if source.is_dir() or source.name.startswith(".") or "__pycache__" in source.parts:
            continue
        relative = source.relative_to(TEMPLATE)
        parts = [names.package if p == "package" else p for p in relative.parts]
        target = root.joinpath(*parts)
        text = source.read_text(encoding="utf-8")
        if target.suffix == ".tmpl":
            target = target.with_suffix("")
            text = string.Template(text).substitute(values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
