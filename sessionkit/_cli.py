"""The ``sessionkit`` command line.

Each sub-command is a small function taking parsed arguments and returning an exit code:
0 success, 1 the operation failed (a storage error, a failed check), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ._discovery import available_backends

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


def _cmd_backends(args: argparse.Namespace) -> int:
    backends = available_backends()
    if not backends:
        print('no storage backends installed; try: pip install "sessionkit[all]"')
        return 1
    rows = [
        (i.backend.name, ", ".join(f"{s}://" for s in i.backend.schemes), i.distribution, i.version)
        for i in backends
    ]
    header = ("backend", "schemes", "distribution", "version")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; sub-commands register themselves on it."""
    parser = argparse.ArgumentParser(
        prog="sessionkit", description="Server-side sessions for Python web apps."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    backends = sub.add_parser("backends", help="list the installed storage backends")
    backends.set_defaults(func=_cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
