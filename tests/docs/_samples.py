"""Extracting and running the ```python samples of the documentation.

A page's samples run in order, in one fresh module, so a later sample may use what an earlier
one defined, exactly as a reader would type them. Two HTML comments, on the last non-blank
line before a fence, change that (they are invisible on the rendered page):

* ``<!-- skip -->``: not run (for what cannot run here: a Redis Cluster, a real server);
* ``<!-- requires: django, flask_session -->``: run only where those modules import, else
  reported as skipped.

Samples name the test servers by placeholder URLs, which the runner points at the servers of
``tests/_servers.py``: ``redis://localhost:6379`` and ``mongodb://localhost:27017`` (path and
query kept; the server's own query options are added).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import attrs

__all__ = ["PLACEHOLDERS", "Sample", "SampleSkipped", "extract", "point_at", "run_page"]

#: Placeholder URL prefix -> the pytest fixture that gives the real server's URL.
PLACEHOLDERS: Mapping[str, str] = {
    "redis://localhost:6379": "redis_url",
    "mongodb://localhost:27017": "mongo_url",
    "mysql://localhost:3306": "mysql_url",
    "postgresql://localhost:5432": "postgres_url",
}

_OPEN = re.compile(r"^(?P<indent>[ \t]*)```python\b.*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<what>skip|requires:(?P<mods>[^>]*?))\s*-->\s*$")


@attrs.frozen
class Sample:
    """One fenced sample: where it starts (the fence's 1-based line) and its code."""

    page: str
    line: int
    code: str
    skip: bool = False
    requires: tuple[str, ...] = ()


class SampleSkipped(Exception):
    """Samples of the page were skipped for a module that is not installed."""


def _marker(line: str) -> tuple[bool, tuple[str, ...]]:
    match = _MARKER.match(line)
    if match is None:
        return False, ()
    if match["what"] == "skip":
        return True, ()
    return False, tuple(m.strip() for m in match["mods"].split(",") if m.strip())


def extract(text: str, page: str = "<page>") -> list[Sample]:
    """Every ```python block of ``text``, dedented (blocks inside tabs are indented)."""
    lines = text.splitlines()
    samples = []
    previous = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        opened = _OPEN.match(line)
        if opened is None:
            if line.strip():
                previous = line
            index += 1
            continue
        indent = opened["indent"]
        fence_line = index + 1
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].rstrip() != f"{indent}```":
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise ValueError(f"{page}:{fence_line}: unclosed ```python fence")
        skip, requires = _marker(previous)
        code = textwrap.dedent("\n".join(body))
        samples.append(Sample(page, fence_line, code, skip, requires))
        previous = ""
        index += 1
    return samples


def point_at(code: str, placeholder: str, real_url: str) -> str:
    """Replace each ``placeholder[/path][?query]`` URL in ``code`` with the real server's."""
    real = urlsplit(real_url)
    pattern = re.compile(
        re.escape(placeholder) + r"(?P<path>/[^\s\"'?]*)?(?:\?(?P<query>[^\s\"']*))?"
    )

    def swap(match: re.Match[str]) -> str:
        path = match["path"] or real.path
        query = "&".join(q for q in (match["query"], real.query) if q)
        return urlunsplit((real.scheme, real.netloc, path, query, ""))

    return pattern.sub(swap, code)


def placeholders_in(samples: list[Sample]) -> Iterator[str]:
    """The placeholders the page's samples use."""
    for placeholder in PLACEHOLDERS:
        if any(placeholder in s.code for s in samples):
            yield placeholder


def run_page(
    samples: list[Sample], module_name: str, rewrite: Callable[[str], str] = lambda c: c
) -> int:
    """Run ``samples`` in order in one new module; return how many ran.

    A failure propagates with its traceback pointing into the page (``docs/x.md``, line N).
    Raises :class:`SampleSkipped` at the end if a sample needed a missing module, once every
    other sample has run.
    """
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # dataclasses, attrs and cattrs look classes up here
    missing: list[str] = []
    ran = 0
    try:
        for sample in samples:
            if sample.skip:
                continue
            absent = [m for m in sample.requires if importlib.util.find_spec(m) is None]
            if absent:
                missing.append(f"{sample.page}:{sample.line} needs {', '.join(absent)}")
                continue
            # Pad with newlines so tracebacks give the sample's real line in the page.
            source = "\n" * sample.line + rewrite(sample.code)
            exec(compile(source, sample.page, "exec"), module.__dict__)
            ran += 1
    finally:
        del sys.modules[module_name]
    if missing:
        raise SampleSkipped("; ".join(missing))
    return ran


def pages(root: Path) -> list[Path]:
    """Every Markdown page under ``root`` that has at least one ```python sample."""
    return [p for p in sorted(root.rglob("*.md")) if "```python" in p.read_text(encoding="utf-8")]
