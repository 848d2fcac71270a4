"""The public faces, pinned: a name added to or dropped from an ``__all__`` fails here.

Users code against these names (shared/spec/api.md fixes them); one that vanishes breaks their
imports, one that appears is a promise to keep. Changing a face is a decision: update the
snapshot below and say so in CHANGELOG.md. (``sessionkit.storage`` and ``sessionkit.testing``,
the faces for plugin authors, are pinned by their own tests.)
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FACES = {
    "sessionkit": [
        "AsyncFromSyncMixin", "AtomicStorage", "Backend", "ConditionalStorage", "Config",
        "ConfigError", "CountableStorage", "CreatingStorage", "ErrorResponse", "InstalledBackend",
        "KeyLookup",
        "PerLoop", "PluginLoadWarning", "PluginRegistry", "PurgeableStorage", "ScannableStorage",
        "Session", "SessionGone", "SessionKitError", "SessionTooLarge", "Storage", "StorageError",
        "StorageNotFound", "Store", "__version__", "available_backends", "default_key_generator",
        "flash", "get_flashed_messages", "hookimpl", "hookspec", "open_storage", "ttl_seconds",
    ],
    "sessionkit.asgi": [
        "ASGIApp", "CSRFMiddleware", "Message", "Receive", "Scope", "Send", "SessionMiddleware",
    ],
    "sessionkit.wsgi": ["CSRFMiddleware", "SessionMiddleware"],
    "sessionkit.flask": ["FlaskSession", "SessionkitInterface", "SkippedSession", "init_app"],
    "sessionkit.django": [
        "SessionMiddleware", "SessionStore", "SettingError", "get_store", "register_type",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(FACES))
def test_the_public_face_is_exactly_the_snapshot(module: str) -> None:
    if module == "sessionkit.django":
        pytest.importorskip("django")
    face = importlib.import_module(module)
    assert sorted(face.__all__) == sorted(FACES[module])
    for name in face.__all__:  # every promised name is really there
        assert hasattr(face, name), f"{module}.{name}"


def test_pre_commit_runs_the_pinned_ruff() -> None:
    """The pre-commit hook and ``nox -s lint`` must judge with the same ruff."""
    pin = re.search(r"^ruff==(\S+)$", (REPO / "requirements" / "lint.txt").read_text(), re.M)
    hook = re.search(r"rev: v(\S+)", (REPO / ".pre-commit-config.yaml").read_text())
    assert pin and hook and pin.group(1) == hook.group(1)
