"""A griffe extension: render the Sphinx roles of sessionkit's docstrings as Markdown code.

The docstrings are written for readers of the source and for ``help()``, in the reST style
most Python code uses (``:class:`~sessionkit.StorageError```). mkdocstrings renders Markdown,
where those roles would show raw; this turns each into a code span, shortening ``~``-prefixed
targets to their last part as Sphinx would.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    short, target = match.groups()
    target = target.split("<")[-1].rstrip(">").strip()  # :meth:`text <target>`
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrites roles in every docstring as the objects are loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)
