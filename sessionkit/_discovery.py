"""Finding storage plugins and opening a storage from a URL.

Nothing is scanned at import time: the entry points are read the first time a backend is
needed, once per process. A plugin that fails to load is reported with a warning naming its
distribution and skipped, so one broken third-party package cannot take an application down;
strict mode (``SESSIONKIT_STRICT_PLUGINS=1`` or ``PluginRegistry(strict=True)``) raises instead.
"""

from __future__ import annotations

import difflib
import os
import threading
import warnings
from collections.abc import Iterator
from importlib import metadata
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import pluggy

from ._errors import ConfigError, SessionKitError, StorageNotFound
from ._hookspec import PROJECT_NAME, Backend, HookSpecs, load_named
from ._install import install_hint
from ._storage import Storage
from ._url_options import folds_case, parse_options, refuse_repeats

__all__ = [
    "FIRST_PARTY_EXTRAS",
    "InstalledBackend",
    "PluginLoadWarning",
    "PluginRegistry",
    "available_backends",
    "open_storage",
]

#: Scheme -> extra of the core that installs its first-party plugin.
FIRST_PARTY_EXTRAS: dict[str, str] = {
    "memory": "memory",
    "sqlite": "sqlite",
    **{
        f"{name}{tls}{mode}": "redis"
        for name in ("redis", "valkey")
        for tls in ("", "s")
        for mode in ("", "+cluster", "+sentinel")
    },
    "unix": "redis",
    "mongodb": "mongo",
    "mongodb+srv": "mongo",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
}


class PluginLoadWarning(UserWarning):
    """A storage plugin could not be loaded and was skipped."""


@attrs.frozen
class InstalledBackend:
    """A backend together with the distribution that provides it."""

    backend: Backend
    distribution: str
    version: str


class PluginRegistry:
    """The set of installed storage backends, loaded lazily from entry points."""

    def __init__(self, *, strict: bool | None = None, group: str = PROJECT_NAME) -> None:
        if strict is None:
            strict = os.environ.get("SESSIONKIT_STRICT_PLUGINS", "") not in ("", "0")
        self._strict = strict
        self._group = group
        self._lock = threading.Lock()
        self._by_scheme: dict[str, InstalledBackend] | None = None

    def _fail(self, dist: str, what: str, exc: BaseException) -> None:
        message = f"sessionkit storage plugin from distribution {dist!r} {what}: {exc!r}"
        if self._strict:
            raise SessionKitError(message) from exc
        warnings.warn(message, PluginLoadWarning, stacklevel=4)

    def _load(self) -> dict[str, InstalledBackend]:
        pm = pluggy.PluginManager(PROJECT_NAME)
        pm.add_hookspecs(HookSpecs)
        found: dict[str, InstalledBackend] = {}
        for ep in metadata.entry_points(group=self._group):
            dist = ep.dist.name if ep.dist is not None else "<unknown>"
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                plugin = ep.load()
                pm.register(plugin, name=f"{dist}:{ep.name}")
                # Call this plugin's implementations alone, so a failure names its distribution.
                impls = pm.subset_hook_caller(
                    "sessionkit_backends",
                    remove_plugins=[p for p in pm.get_plugins() if p is not plugin],
                )
                backends = [b for group in impls() for b in group]
            except Exception as exc:
                self._fail(dist, "failed to load", exc)
                continue
            for backend in backends:
                if not isinstance(backend, Backend):
                    self._fail(dist, "returned something that is not a Backend", TypeError(backend))
                    continue
                for scheme in backend.schemes:
                    if scheme in found and found[scheme].distribution != dist:
                        self._fail(
                            dist,
                            f"claims scheme {scheme!r} already provided by {found[scheme].distribution!r}",
                            LookupError(scheme),
                        )
                        continue
                    found[scheme] = InstalledBackend(backend, dist, version)
        return found

    def by_scheme(self) -> dict[str, InstalledBackend]:
        """Return every installed backend keyed by URL scheme (loading plugins on first call)."""
        if self._by_scheme is None:
            with self._lock:
                if self._by_scheme is None:
                    self._by_scheme = self._load()
        return self._by_scheme

    def backends(self) -> Iterator[InstalledBackend]:
        """Yield each installed backend once, in name order."""
        seen: dict[int, InstalledBackend] = {}
        for item in self.by_scheme().values():
            seen.setdefault(id(item.backend), item)
        yield from sorted(seen.values(), key=lambda i: i.backend.name)

    def open(self, url: str, **options: Any) -> Storage:
        """Open the storage for ``url``; see :func:`open_storage`."""
        if not isinstance(url, str) or not url:
            raise ConfigError("storage", f"expected a storage URL or a storage object, got {url!r}")
        scheme = url.split(":", 1)[0].lower() if ":" in url else url.lower()
        installed = self.by_scheme()
        entry = installed.get(scheme)
        if entry is None:
            raise StorageNotFound(self._not_found_message(scheme))
        from ._redact import redact, scrub  # stdlib only, so cheap here

        query, unparsable = "", None
        try:
            query = urlsplit(url).query if ":" in url else ""
        except ValueError as exc:  # an unclosed "[", say; its message may quote the password
            unparsable = scrub(str(exc), url)
        if unparsable is not None:  # raised out here, so no traceback shows the original
            raise ConfigError("storage", f"not a valid URL: {redact(url)} ({unparsable})")
        pairs = parse_qsl(query, keep_blank_values=True)
        declared = entry.backend.options
        schema: type | None = None if declared is None else load_named(declared)
        refuse_repeats(pairs, entry.backend.repeatable, fold_case=folds_case(schema))
        merged: dict[str, Any] = {**dict(pairs), **options}
        if schema is not None:
            merged = parse_options(schema, merged, backend=entry.backend.name)
        return entry.backend.open(url, merged)

    def _not_found_message(self, scheme: str) -> str:
        installed = self.by_scheme()
        have = (
            ", ".join(
                f"{i.backend.name} ({', '.join(s + '://' for s in i.backend.schemes)})"
                for i in self.backends()
            )
            or "none"
        )
        parts = [f"no storage backend for scheme {scheme!r}; installed: {have}."]
        extra = FIRST_PARTY_EXTRAS.get(scheme)
        if extra is not None:
            parts.append(f"Install it with: {install_hint(f'sessionkit-{extra}')}")
        else:
            close = difflib.get_close_matches(
                scheme, sorted({*installed, *FIRST_PARTY_EXTRAS}), n=1
            )
            if close:
                parts.append(f"Did you mean {close[0]!r}?")
            missing = _missing_first_party(installed)
            if missing:
                parts.append(
                    f"First-party backends not installed: {', '.join(missing)}; "
                    f"install with: {install_hint(missing)}"
                )
        return " ".join(parts)


def _missing_first_party(installed: dict[str, InstalledBackend]) -> list[str]:
    """The first-party plugin distributions that are not installed, in the extras' order."""
    present = {item.distribution for item in installed.values()}
    wanted = dict.fromkeys(f"sessionkit-{extra}" for extra in FIRST_PARTY_EXTRAS.values())
    return [distribution for distribution in wanted if distribution not in present]


_default_registry = PluginRegistry()


def available_backends() -> list[InstalledBackend]:
    """Return the installed storage backends (each once), in name order."""
    return list(_default_registry.backends())


def open_storage(url: str, **options: Any) -> Storage:
    """Open a storage by URL: ``memory://``, ``sqlite:///path.db``, ``redis://host:6379/0``, ...

    The scheme picks the installed plugin; query parameters and keyword arguments are passed
    to it as options. Raises :class:`StorageNotFound` naming what is installed and the exact
    ``pip install`` when no plugin handles the scheme.
    """
    return _default_registry.open(url, **options)
