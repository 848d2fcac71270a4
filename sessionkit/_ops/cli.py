"""The ``sessionkit`` command line.

Each sub-command is a small function taking parsed arguments and returning an exit code:
0 success, 1 the operation failed (a storage error, a failed check), 2 bad usage,
3 aborted at a confirmation prompt. Their logic lives in small modules (``_check``,
``_stats``, ``_purge``, ``_rekey``, ``_newplugin``); this file only parses, prints and maps errors
to codes.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import json
import os
import shlex
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import attrs

from .. import __version__
from .._discovery import InstalledBackend, available_backends, open_storage
from .._errors import ConfigError, StorageNotFound
from .._install import install_hint
from .._storage import Storage
from ..demo._command import add_demo_command
from .check import format_step, run_check
from .newplugin import PluginNames, generate, taken_by
from .purge import Unsupported, expired_purger, live_count, purge_all
from .rekey import KEYS_ENV, Rekey, keys_from, parse_duration, rekey
from .stats import collect_stats, format_stats
from .text import describe, in_process_notice, not_a_url, redact

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]
StorageCommand = Callable[[argparse.Namespace, Storage], int]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 3


def _schemes(installed: InstalledBackend) -> str:
    return ", ".join(f"{s}://" for s in installed.backend.schemes)


def _cmd_backends(args: argparse.Namespace) -> int:
    backends = available_backends()
    if not backends:
        hint = install_hint("sessionkit-memory")
        print(f"no storage backends installed; install the default one (memory://) with: {hint}")
        return 1
    header = ("backend", "schemes", "distribution", "version")
    rows = [header]
    for installed in backends:
        # A long list of schemes (Redis has thirteen) wraps within its column, between schemes.
        lines = textwrap.wrap(_schemes(installed), _SCHEMES_WIDTH, break_long_words=False) or [""]
        first = (installed.backend.name, lines[0], installed.distribution, installed.version)
        rows += [first, *(("", more, "", "") for more in lines[1:])]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


#: The widest the schemes column of ``sessionkit backends`` gets before it wraps.
_SCHEMES_WIDTH = 48


def version_lines() -> list[str]:
    """``sessionkit VERSION``, then one line per installed plugin distribution with its version
    and schemes: what a bug report needs, and a quick look at whether the versions match."""
    schemes: dict[tuple[str, str], list[str]] = {}
    for installed in available_backends():
        schemes.setdefault((installed.distribution, installed.version), []).append(
            _schemes(installed)
        )
    plugins = [f"{d} {v} ({', '.join(s)})" for (d, v), s in sorted(schemes.items())]
    return [f"sessionkit {__version__}", *plugins]


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_lines` and exit 0, before any sub-command is
    required (as argparse's own ``version`` action, which prints one fixed string)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print("\n".join(version_lines()), flush=True)
        parser.exit()


def _err(message: str) -> None:
    print(f"sessionkit: {message}", file=sys.stderr, flush=True)


def _with_storage(command: StorageCommand) -> Command:
    """Open ``args.url`` for ``command`` and close it afterwards, mapping failures to codes:
    a URL nothing can open is bad usage (2), a storage that fails is a failure (1)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            storage = open_storage(args.url)
        except StorageNotFound as exc:
            # A file path or host:port given for a URL: say what to type instead.
            _err(not_a_url(args.url) or str(exc))
            return EXIT_USAGE
        except ConfigError as exc:
            _err(str(exc))
            return EXIT_USAGE
        except Exception as exc:
            _err(f"cannot open {redact(args.url)}: {describe(exc)}")
            return EXIT_FAILED
        notice = in_process_notice(args.url)
        if notice is not None:
            _err(notice)
        try:
            return command(args, storage)
        except BrokenPipeError:
            raise  # not the storage's failure: the reader went away (see main)
        except Exception as exc:
            _err(describe(exc))
            return EXIT_FAILED
        finally:
            with contextlib.suppress(Exception):
                storage.close()

    return run


@_with_storage
def _cmd_check(args: argparse.Namespace, storage: Storage) -> int:
    print(f"checking {redact(args.url)}", flush=True)
    opener = functools.partial(open_storage, args.url)
    ok = True
    for step in run_check(storage, opener, reset_scratch=args.reset_scratch):
        print(format_step(step), flush=True)
        ok = ok and step.ok is not False
    print("all checks passed" if ok else "check FAILED")
    return EXIT_OK if ok else EXIT_FAILED


@_with_storage
def _cmd_stats(args: argparse.Namespace, storage: Storage) -> int:
    stats = collect_stats(storage)
    if args.json:
        print(json.dumps({"storage": redact(args.url), **attrs.asdict(stats)}))
    else:
        print("\n".join(format_stats(redact(args.url), stats, time.time())))
    return EXIT_OK


def _confirm(question: str) -> bool:
    """Ask on stderr, read the answer from stdin; anything but y/yes (or no input) is no."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():  # the answer was not echoed: end the prompt's line
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")


def _progress(done: int, total: int) -> None:
    print(f"purge: {done}/{total} deleted", file=sys.stderr, flush=True)


@_with_storage
def _cmd_purge(args: argparse.Namespace, storage: Storage) -> int:
    url = redact(args.url)
    purge: Callable[[], str]
    if args.expired_only:
        try:
            purger = expired_purger(storage)  # before asking: can the backend do it at all?
        except Unsupported as exc:
            _err(f"{exc} ({url})")
            return EXIT_FAILED
        question = f"Delete the expired sessions in {url}?"
        purge = lambda: f"{purger.purge_expired()} expired session(s)"  # noqa: E731
    else:
        count = live_count(storage)
        what = "every session" if count is None else f"all {count} sessions"
        question = f"Delete {what} in {url}? Their users will be logged out."
        purge = lambda: _deleted(purge_all(storage, _progress))  # noqa: E731
    if not args.yes and not _confirm(question):
        _err("aborted; nothing was deleted")
        return EXIT_ABORTED
    print(f"deleted {purge()} from {url}")
    return EXIT_OK


def _deleted(count: int | None) -> str:
    return "every session" if count is None else f"{count} session(s)"


def _cmd_rekey(args: argparse.Namespace) -> int:
    """``rekey``: the keys are read (and refused, as bad usage) before the storage is opened;
    they come from a file or the environment, never from the command line, where ``ps`` and
    the shell's history would show them, and are never printed."""
    try:
        keyring = keys_from(args.keys_file, os.environ)
    except (ConfigError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    return _with_storage(functools.partial(_rekey_storage, keyring=keyring))(args)


def _rekey_storage(args: argparse.Namespace, storage: Storage, *, keyring: Any) -> int:
    url = redact(args.url)
    print(f"rekeying {url}", flush=True)

    def progress(done: int, total: int | None, summary: Rekey) -> None:
        of = "" if total is None else f"/{max(total, done)}"
        print(
            f"rekey: {done}{of} scanned, {summary.rekeyed} re-encrypted",
            file=sys.stderr,
            flush=True,
        )

    try:
        summary = rekey(
            storage,
            keyring,
            expiration=args.expiration,
            absolute_timeout=args.absolute_timeout,
            progress=progress,
        )
    except Unsupported as exc:
        _err(f"{exc} ({url})")
        return EXIT_FAILED
    print(
        f"{summary.scanned} record(s): {summary.rekeyed} re-encrypted, {summary.current} already "
        f"under the first key, {summary.expired} expired, {summary.unreadable} unreadable, "
        f"{summary.changed} still changing"
        + (f", {summary.indexes} user index(es) left as they are" if summary.indexes else "")
    )
    if summary.unreadable:
        _err(
            f"{summary.unreadable} record(s) open with none of the keys given, or are not "
            "sessions: left as they are (were all the old keys given?)"
        )
    if summary.changed:
        _err(f"{summary.changed} record(s) kept changing; run rekey again")
    return EXIT_OK if summary.complete else EXIT_FAILED


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    try:
        names = PluginNames.parse(args.name, args.scheme)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    owner = taken_by(names.scheme)
    if owner is not None:
        _err(f"scheme {names.scheme!r} belongs to {owner}; choose another with --scheme")
        return EXIT_USAGE
    parent = Path(args.dir).expanduser().absolute()  # next steps that work from anywhere
    try:
        files = generate(names, parent, __version__)
    except OSError as exc:
        _err(str(exc))
        return EXIT_FAILED
    root = parent / names.dist
    print(f"created {root}")
    for path in files:
        print(f"  {path.relative_to(root)}")
    print("\nnext:")
    for step in next_steps(root, names.scheme):
        print(f"  {step}")
    return EXIT_OK


def next_steps(root: Path, scheme: str) -> list[str]:
    """The commands that take a generated plugin from files to a passing suite: installed
    with its ``test`` extra (the conformance suite needs pytest and hypothesis), tested, then
    checked through the ``sessionkit`` entry point it registered."""
    return [
        f"pip install -e {_double_quoted(f'{root}[test]')}",
        f"pytest {shlex.quote(str(root))}",
        f"sessionkit check {scheme}://",
    ]


def _double_quoted(text: str) -> str:
    """``text`` in double quotes (the brackets of an extra would be a glob to the shell), or
    single-quoted when it holds a character that double quotes do not protect."""
    return shlex.quote(text) if any(c in text for c in '"$`\\!') else f'"{text}"'


_URL_HELP = "storage URL: memory://, sqlite:////abs/path.db, redis://host:6379/0, mongodb://host/db"
_RAW = argparse.RawDescriptionHelpFormatter


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Command,
    *,
    summary: str,
    description: str,
    epilog: str,
    takes_url: bool = True,
) -> argparse.ArgumentParser:
    """Add sub-command ``name``; descriptions and epilogs keep their own line breaks."""
    parser = sub.add_parser(
        name, help=summary, description=description, epilog=epilog, formatter_class=_RAW
    )
    if takes_url:
        parser.add_argument("url", metavar="URL", help=_URL_HELP)
    parser.set_defaults(func=func)
    return parser


def _add_operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``check``, ``stats``, ``purge``, ``rekey`` and ``new-plugin``."""
    check = _command(
        sub,
        "check",
        _cmd_check,
        summary="round-trip scratch keys through a storage, timing each operation",
        description="Write, read, touch, replace and delete a random scratch key, wait 1.2 s\n"
        "for a 1 s TTL to lapse, repeat the round trip through the async methods, and\n"
        "print each operation's latency. Real sessions are never read, written or reset.",
        epilog="exit status: 0 every check passed, 1 a check failed, 2 bad URL\n\n"
        "example:\n  sessionkit check redis://localhost:6379/0 --reset-scratch",
    )
    check.add_argument(
        "--reset-scratch",
        action="store_true",
        help="also check reset(), on a scratch namespace opened with a prefix, table or "
        "collection option (skipped when the backend takes none; SQLite and MongoDB keep "
        "the empty scratch table or collection)",
    )

    stats = _command(
        sub,
        "stats",
        _cmd_stats,
        summary="count live sessions; show the oldest and the largest",
        description="Report what a storage can tell about its sessions, without decoding\n"
        "their data. A figure the backend cannot give is 'not supported by this backend'.",
        epilog="exit status: 0 reported, 1 the storage failed, 2 bad URL",
    )
    stats.add_argument("--json", action="store_true", help="print one JSON object")

    purge = _command(
        sub,
        "purge",
        _cmd_purge,
        summary="delete every session of a storage, or only the expired ones",
        description="Delete the sessions of a storage (its namespace only: the prefix, table\n"
        "or collection of the URL) after a y/N confirmation read from stdin.\n"
        "Long purges report progress on stderr.",
        epilog="exit status: 0 done, 1 the storage failed or cannot do it, 2 bad usage,\n"
        "3 aborted at the prompt\n\n"
        "example (cron):\n  sessionkit purge sqlite:////var/lib/app/sessions.db --expired-only --yes",
    )
    purge.add_argument(
        "--expired-only",
        action="store_true",
        help=(
            "delete only expired sessions (backends with purge_expired(): memory, SQLite, "
            "MongoDB; Redis expires keys itself and reports 0)"
        ),
    )
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    rekey_ = _command(
        sub,
        "rekey",
        _cmd_rekey,
        summary="re-encrypt every session under the first encryption key, online",
        description="Seal every record that is not under the first of the encryption keys\n"
        "(plaintext ones too) with it, in place, while the application runs: each record\n"
        "is replaced only if unchanged (replace_if), so no request's write is lost and\n"
        "nobody is logged out. Records already under the first key are skipped: an\n"
        "interrupted run is resumed by running it again. The keys (the app's\n"
        "encryption_keys, the first one first) come from --keys-file or from\n"
        f"${KEYS_ENV} (comma-separated), never from the command line,\n"
        "and are never printed. Progress goes to stderr.",
        epilog="exit status: 0 every readable record is under the first key, 1 some are\n"
        "not (unreadable, or changing: run again) or the storage failed, 2 bad usage\n\n"
        "example:\n  sessionkit rekey redis://localhost:6379/0 --keys-file /run/secrets/session-keys",
    )
    rekey_.add_argument(
        "--keys-file",
        metavar="FILE",
        help=f"the keys, one a line, the first first ('#' comments); default: ${KEYS_ENV}",
    )
    rekey_.add_argument(
        "--expiration",
        type=parse_duration,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="the app's Config.expiration, e.g. 24h, 30m, 7d or seconds (default 24h): the "
        "TTL a record without a lifetime of its own keeps; give the app's value or longer",
    )
    rekey_.add_argument(
        "--absolute-timeout",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="the app's Config.absolute_timeout, if it sets one",
    )

    new = _command(
        sub,
        "new-plugin",
        _cmd_new_plugin,
        takes_url=False,
        summary="generate a storage plugin that passes the conformance suite",
        description="Write DIR/sessionkit-NAME/: a pyproject declaring the 'sessionkit' entry\n"
        "point, the package sessionkit_NAME with a working storage to adapt, and\n"
        "tests/test_conformance.py running sessionkit.testing.StorageConformance.",
        epilog="exit status: 0 written, 1 the directory exists or cannot be written, "
        "2 bad name or scheme\n\n"
        "example:\n  sessionkit new-plugin etcd --dir ~/src\n"
        "  cd ~/src/sessionkit-etcd\n"
        '  pip install -e ".[test]"     # the conformance suite needs pytest and hypothesis\n'
        "  pytest\n"
        "  sessionkit check etcd://",
    )
    new.add_argument("name", metavar="NAME", help="short name, e.g. etcd or my-kv")
    new.add_argument("--scheme", help="URL scheme it serves (default: NAME)")
    new.add_argument("--dir", default=".", help="parent directory (default: the current one)")


class _CommandParser(argparse.ArgumentParser):
    """A sub-command's parser, strict about its own arguments.

    argparse hands a sub-command's unrecognized arguments back to the top-level parser, which
    then prints its own usage (``usage: sessionkit [-h] COMMAND ...``): no help for a typo in
    ``sessionkit check --reset-scrach URL``. Here the sub-command reports them itself, with its
    usage line and the closest option it has.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras))
        return parsed, extras

    def _unrecognized(self, extras: list[str]) -> str:
        message = f"unrecognized arguments: {' '.join(extras)}"
        options = [o for action in self._actions for o in action.option_strings]
        for extra in (e for e in extras if e.startswith("-")):
            close = difflib.get_close_matches(extra.split("=", 1)[0], options, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
        return message


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; sub-commands register themselves on it."""
    parser = argparse.ArgumentParser(
        prog="sessionkit", description="Server-side sessions for Python web apps."
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the version of sessionkit and of each installed storage plugin, and exit",
    )
    sub = cast(  # every sub-command's parser is a _CommandParser; callers need no more
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(
            dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
        ),
    )
    backends = sub.add_parser("backends", help="list the installed storage backends")
    backends.set_defaults(func=_cmd_backends)
    _add_operator_commands(sub)
    add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except BrokenPipeError:
        # The reader went away (``sessionkit stats ... | head``): stop quietly, as Unix tools
        # do. stdout is pointed at /dev/null first, or the interpreter's own flush at exit
        # would fail on the closed pipe and print a traceback after all.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
