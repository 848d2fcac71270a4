"""Django's own session tests, fetched at test time, and an interpreter for each Django version.

Nothing of Django's is kept in this repository: ``sessions_tests`` (the package holding
``SessionTestsMixin``) is taken from Django's source distribution, downloaded with
``pip download --no-binary :all: --no-deps django==X``, and cached with everything else this
module makes under ``.cache/sessionkit-django/`` at the repository's root (a directory that
ignores itself in git). A warm cache makes no network call.

The Django installed in ``.venv`` is the LTS the suite runs on; the newest Django (6.x needs
Python 3.12 or later) runs in a venv of its own, built once with uv from a Python 3.12+ found
on this machine (``SESSIONKIT_DJANGO_PYTHON`` names one), with this repository's distributions
installed from the working tree, editable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

__all__ = ["CACHE", "NEWEST", "interpreter_for", "sessions_tests"]

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "sessionkit-django"
#: The newest Django release the contract is run on (bump it when Django releases).
NEWEST = os.environ.get("SESSIONKIT_DJANGO_NEWEST", "6.1.3")
#: This repository's distributions, installed into the newest Django's venv.
DISTRIBUTIONS = [
    ROOT,
    *sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()),
    ROOT / "tests" / "thirdparty_plugin",
]


def _cache() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    ignore = CACHE.parent / ".gitignore"
    if not ignore.exists():  # the cache is never committed, whatever the root .gitignore says
        ignore.write_text("# made by tests/django/_sdist.py\n*\n")
    return CACHE


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {argv}\n{done.stdout}{done.stderr}")


def sessions_tests(version: str) -> Path:
    """A directory holding Django ``version``'s ``sessions_tests`` package (from its sdist)."""
    target = _cache() / f"django-{version}"
    if (target / "sessions_tests" / "tests.py").exists():
        return target
    sdist = _cache() / "sdist" / f"django-{version}.tar.gz"
    if not sdist.exists():
        argv = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        argv += ["--disable-pip-version-check", "-q", f"django=={version}"]
        argv += ["-d", str(sdist.parent)]
        if int(version.split(".")[0]) >= 6:  # it needs 3.12, which pip checks against this one
            argv += ["--python-version", "3.12"]
        _run(argv, f"downloading Django {version}'s sdist")
        found = sorted(sdist.parent.glob(f"[dD]jango-{version}.tar.gz"))
        if not found:
            raise RuntimeError(f"pip download left no Django {version} sdist in {sdist.parent}")
        found[0].rename(sdist)
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    prefix = f"django-{version}/tests/sessions_tests/"
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            name = member.name.replace("Django-", "django-", 1)
            if name.startswith(prefix) and member.isfile() and name.endswith(".py"):
                data = archive.extractfile(member)
                assert data is not None
                path = partial / "sessions_tests" / name[len(prefix) :]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data.read())
    if not (partial / "sessions_tests" / "tests.py").exists():
        raise RuntimeError(f"{sdist} has no {prefix}tests.py")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split()
    return (int(parts[0]), int(parts[1])) if done.returncode == 0 and len(parts) == 2 else None


def _python_312() -> str:
    """A Python 3.12 or later: ``SESSIONKIT_DJANGO_PYTHON``, this one, one on ``PATH``, or
    pyenv's (whose shims answer only inside a pyenv-selected directory)."""
    named = os.environ.get("SESSIONKIT_DJANGO_PYTHON")
    candidates = [named] if named else []
    candidates.append(sys.executable)
    candidates += [
        found for n in ("python3.14", "python3.13", "python3.12") if (found := shutil.which(n))
    ]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        for home in sorted(pyenv.iterdir(), reverse=True):
            candidates.append(str(home / "bin" / "python3"))
    for candidate in candidates:
        version = _version_of(candidate)
        if version is not None and version >= (3, 12):
            return candidate
    raise RuntimeError(
        "Django 6 needs Python 3.12 or later and none was found (tried "
        f"{', '.join(candidates)}); name one with SESSIONKIT_DJANGO_PYTHON"
    )


def _installer() -> list[str]:
    """uv when ``.venv`` has it (seconds), else pip."""
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    return [sys.executable, "-m", "uv", "pip", "install", "-q"] if probe.returncode == 0 else []


def _stamp(python: str, version: str) -> str:
    digest = hashlib.sha256(f"{python}\n{version}\n".encode())
    for dist in DISTRIBUTIONS:
        for name in ("pyproject.toml", "hatch_build.py"):
            if (dist / name).exists():
                digest.update((dist / name).read_bytes())
    digest.update((ROOT / "sessionkit" / "_version.py").read_bytes())
    return digest.hexdigest()


def interpreter_for(version: str) -> str:
    """A Python running Django ``version`` with this repository installed: ``.venv``'s own
    when it has that version, else a venv under the cache, made (or refreshed) on demand."""
    import django

    if django.get_version() == version:
        return sys.executable
    home = _cache() / f"venv-django-{version}"
    python = home / "bin" / "python"
    stamp_file = home / "sessionkit-stamp.json"
    if python.exists() and stamp_file.exists():  # warm: no interpreter hunt
        made = json.loads(stamp_file.read_text())
        if made.get("stamp") == _stamp(made.get("python", ""), version):
            return str(python)
    base = _python_312()
    stamp = _stamp(base, version)
    shutil.rmtree(home, ignore_errors=True)
    installer = _installer()
    editable = [arg for dist in DISTRIBUTIONS for arg in ("-e", str(dist))]
    if installer:
        _run([*installer[:3], "venv", "-q", "--python", base, str(home)], "creating a venv")
        _run([*installer, "--python", str(python), f"django=={version}", *editable], "installing")
    else:
        _run([base, "-m", "venv", str(home)], "creating a venv")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run([*pip, f"django=={version}", *editable], "installing")
    stamp_file.write_text(json.dumps({"stamp": stamp, "python": base, "django": version}))
    return str(python)
