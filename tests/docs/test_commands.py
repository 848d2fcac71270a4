"""The commands the documentation shows are safe to type, and work from a fresh clone.

* Every ``pip install`` (in a code block or in inline code, on every page of ``docs/`` and in
  the README) names sessionkit safely: the name ``sessionkit`` on PyPI belongs to an unrelated
  project, so a requirement naming ``sessionkit`` or ``sessionkit-*`` is a directory (``-e
  PATH``, ``./path``) or is pinned with ``==`` to this release (``sessionkit.__version__``),
  and no command uses ``--pre`` or ``--extra-index-url``.
* ``nox`` is not on the PATH of a fresh clone (``scripts/bootstrap.sh`` installs it into
  ``.venv``): a command is ``.venv/bin/nox -s SESSION``, never ``nox …``, and the sessions and
  scripts the docs name exist.
* The Install and Production pages are in the site's navigation.

The checkers are tested first, on good and bad lines, since a check that can never fail would
be worse than none.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import sessionkit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
VERSION = sessionkit.__version__

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
#: Inline code: a run of backticks, text without a blank line, the same run (CommonMark).
_INLINE = re.compile(
    r"(?<!`)(?P<ticks>`+)(?!`)(?P<code>(?:(?!\n[ \t]*\n).)+?)(?<!`)(?P=ticks)(?!`)", re.S
)
_PROMPT = re.compile(r"^\s*\$\s+")
#: pip options that take a value (the next token), so it is not read as a requirement.
_VALUED = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-f", "--find-links", "-i", "--index-url",
        "-t", "--target", "--prefix", "--root", "--src", "--platform", "--python-version",
        "--implementation", "--abi", "--upgrade-strategy", "--progress-bar", "--report",
        "--trusted-host", "--no-binary", "--only-binary", "-C", "--config-settings",
        "--global-option", "--hash", "--cert", "--client-cert", "--proxy", "--timeout",
        "--retries", "--log", "--cache-dir", "--exists-action", "--python",
    }
)  # fmt: skip
_FORBIDDEN = ("--pre", "--extra-index-url")


@attrs.frozen
class Command:
    """One command as the page shows it: where, and its text from the program name on."""

    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _split_page(text: str) -> tuple[list[tuple[int, str, list[str]]], str]:
    """``(code blocks as (first line number, info string, lines), the prose with every code
    block blanked out line for line)``."""
    lines = text.splitlines()
    blocks: list[tuple[int, str, list[str]]] = []
    prose: list[str] = []
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if opened is None:
            prose.append(lines[index])
            index += 1
            continue
        fence, start = opened["fence"], index + 1
        body: list[str] = []
        prose.append("")
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index])
            prose.append("")
            index += 1
        prose.append("")
        index += 1
        blocks.append((start + 1, opened["info"].strip().lower(), body))
    return blocks, "\n".join(prose)


def _segments(line: str) -> Iterator[str]:
    """The simple commands of one shell line: split on ``&&``, ``||``, ``;`` and ``|``, each
    without its prompt and its comment."""
    line = _PROMPT.sub("", line, count=1)
    if line.lstrip().startswith("#"):
        return
    line = re.split(r"\s#\s", line, maxsplit=1)[0]
    for part in re.split(r"&&|\|\||;|\s\|\s", line):
        if part.strip():
            yield part.strip()


def commands(text: str, page: str) -> Iterator[Command]:
    """Every shell command of ``text``: each line of a code block that is not Python, and each
    inline code span."""
    blocks, prose = _split_page(text)
    for start, info, body in blocks:
        if info.startswith(("python", "pycon", "toml", "ini", "yaml", "json")):
            continue
        for offset, line in enumerate(body):
            for segment in _segments(line):
                yield Command(page, start + offset, segment)
    for match in _INLINE.finditer(prose):
        code = " ".join(match["code"].split())
        line = prose.count("\n", 0, match.start()) + 1
        for segment in _segments(code):
            yield Command(page, line, segment)


def pip_installs(text: str, page: str) -> Iterator[Command]:
    """Every ``pip install`` command of ``text``, from ``pip install`` on."""
    for command in commands(text, page):
        at = command.text.find("pip install")
        if at >= 0:
            yield attrs.evolve(command, text=command.text[at:])


def _is_path(token: str) -> bool:
    return (
        token.startswith((".", "/", "~", "<"))
        or "/" in token
        or token.endswith((".whl", ".tar.gz", ".zip"))
    )


def pip_problems(command: str, version: str) -> list[str]:
    """What is unsafe in one ``pip install …`` command; empty when nothing is."""
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        return [f"cannot be read as a shell command ({exc})"]
    if tokens[:2] != ["pip", "install"]:
        return [f"not a pip install command: {command!r}"]
    problems = []
    args = iter(tokens[2:])
    for arg in args:
        if arg.startswith("("):
            break  # a printed hint goes on in prose: "... (from where sessionkit came from: ..."
        arg = arg.rstrip(".,;:")  # the end of a sentence, not of the requirement
        option = arg.split("=", 1)[0]
        if option in _FORBIDDEN:
            problems.append(f"uses {option}")
            if option == "--extra-index-url" and "=" not in arg:
                next(args, None)
            continue
        if option in ("-e", "--editable"):
            if "=" not in arg:
                next(args, None)  # a directory: nothing is looked up by name
            continue
        if arg.startswith("-"):
            if arg in _VALUED:
                next(args, None)
            continue
        if _is_path(arg):
            continue
        try:
            requirement = Requirement(arg)
        except InvalidRequirement:
            if "sessionkit" in arg.lower():
                problems.append(f"{arg!r} names sessionkit but is no requirement pip can read")
            continue
        name = canonicalize_name(requirement.name)
        if name != "sessionkit" and not name.startswith("sessionkit-"):
            continue
        if requirement.url is not None:
            continue  # a direct reference names its own file
        if str(requirement.specifier) != f"=={version}":
            problems.append(
                f"{arg!r} is not pinned to this release: write {requirement.name}"
                f"{'[' + ','.join(sorted(requirement.extras)) + ']' if requirement.extras else ''}"
                f"=={version}, or install it from its directory with -e"
            )
    return problems


def _id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _page_commands(page: Path) -> list[Command]:
    return list(commands(page.read_text(encoding="utf-8"), _id(page)))


# -- every page -------------------------------------------------------------------------------


def test_the_docs_show_pip_installs_and_the_install_page_shows_each_source() -> None:
    found = [c for page in PAGES for c in pip_installs(page.read_text(encoding="utf-8"), _id(page))]
    on_install = " ".join(c.text for c in found if c.page == "docs/install.md")
    assert "--find-links" in on_install and "--index-url" in on_install, on_install
    assert "-e ." in on_install, on_install
    assert len(found) >= 8, [str(c) for c in found]


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_pip_install_names_sessionkit_safely(page: Path) -> None:
    bad = [
        f"{command}: {'; '.join(problems)}"
        for command in pip_installs(page.read_text(encoding="utf-8"), _id(page))
        if (problems := pip_problems(command.text, VERSION))
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=_id)
def test_nox_is_run_from_the_venv(page: Path) -> None:
    bare = [str(c) for c in _page_commands(page) if c.text.split()[:1] == ["nox"]]
    assert not bare, "a fresh clone has no nox on the PATH: write .venv/bin/nox\n" + "\n".join(bare)


def _nox_sessions() -> set[str]:
    """The session names noxfile.py defines (``name=`` or the function's name)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if ast.unparse(target) != "nox.session":
                continue
            name = node.name
            if isinstance(decorator, ast.Call):
                for keyword in decorator.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        name = str(keyword.value.value)
            names.add(name)
    return names


def test_every_nox_session_and_script_the_docs_name_exists() -> None:
    sessions = _nox_sessions()
    missing = []
    for page in PAGES:
        for command in _page_commands(page):
            try:
                words = shlex.split(command.text)
            except ValueError:  # prose in backticks, not a command
                continue
            if words[:1] == [".venv/bin/nox"] and "-s" in words:
                named = words[words.index("-s") + 1] if len(words) > words.index("-s") + 1 else ""
                placeholder = named.isupper() or named.startswith("<")  # -s NAME, -s <session>
                if not placeholder and named.split("(", 1)[0] not in sessions:
                    missing.append(f"{command}: no nox session {named!r} in noxfile.py")
            script = words[1] if words[:1] == ["bash"] and len(words) > 1 else ""
            if script.startswith("scripts/") and not (ROOT / script).is_file():
                missing.append(f"{command}: no {script}")
    assert not missing, "\n".join(missing)


def _nav() -> list[tuple[str, str]]:
    """The ``(title, page)`` entries of mkdocs.yml's nav, in order, nested ones included."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    block = re.search(r"^nav:\n(?P<body>(?:[ \t]+.*\n)+)", text, re.M)
    assert block is not None, "mkdocs.yml has no nav"
    return re.findall(r"^\s*-\s*(.+?):\s*(\S+\.md)\s*$", block["body"], re.M)


def test_install_and_production_pages_are_in_the_nav() -> None:
    nav = _nav()
    assert ("Install", "install.md") in nav, nav
    assert ("Production checklist", "production.md") in nav, nav
    assert nav.index(("Install", "install.md")) <= 2, "Install belongs near the top of the nav"
    for _, page in nav:
        assert (DOCS / page).is_file(), f"mkdocs.yml names {page}, which does not exist"


# -- the checkers ------------------------------------------------------------------------------

V = "1.0.0"


@pytest.mark.parametrize(
    "command",
    [
        f'pip install --find-links /path/to/dist "sessionkit[redis]=={V}"',
        f'pip install --index-url https://pypi.example.internal/simple "sessionkit[redis]=={V}"',
        "pip install -e . -e plugins/sessionkit-memory -e plugins/sessionkit-redis",
        f'pip install --find-links dist "sessionkit-mongo=={V}" "fastapi[standard]"',
        f'pip install "Sessionkit_Redis=={V}"',
        "pip install ./sessionkit ./sessionkit/plugins/sessionkit-memory",
        'pip install -e "./sessionkit-etcd[test]"',
        "pip install -r docs/requirements.txt -c constraints.txt",
        "pip install -e",
        "pip install --find-links …",
        "pip install dist/sessionkit-1.0.0-py3-none-any.whl",
        f'pip install "sessionkit-redis=={V}" (from where sessionkit came from: --find-links DIR',
        f'pip install "sessionkit-redis=={V}".',
    ],
)
def test_safe_pip_installs_pass(command: str) -> None:
    assert pip_problems(command, V) == []


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("pip install sessionkit", "not pinned"),
        ('pip install "sessionkit[redis]>=1.0"', "not pinned"),
        ('pip install "sessionkit[redis]"', r"write sessionkit\[redis\]==1\.0\.0"),
        ('pip install "sessionkit==0.3.1"', "not pinned"),
        ('pip install "sessionkit~=1.0.0"', "not pinned"),
        ("pip install sessionkit_redis>=1", "not pinned"),
        ('pip install -r req.txt "sessionkit-mongo"', "not pinned"),
        (f'pip install --pre "sessionkit=={V}"', "uses --pre"),
        (f'pip install --extra-index-url https://x/simple "sessionkit=={V}"', "extra-index-url"),
        (f'pip install --extra-index-url=https://x/simple "sessionkit=={V}"', "extra-index-url"),
        ('pip install "sessionkit[sqlite|redis|mongo|all]"', "no requirement pip can read"),
        ('pip install "sessionkit==1.0.0', "cannot be read"),
        ('pip install "sessionkit[redis]". (from the index)', "not pinned"),
    ],
)
def test_unsafe_pip_installs_fail(command: str, problem: str) -> None:
    problems = pip_problems(command, V)
    assert problems and re.search(problem, "; ".join(problems)), problems


PAGE = """\
# A page

Install with `pip install "sessionkit[redis]>=1.0"`, or run `nox -s docs`, or
`.venv/bin/nox -s
docs` (wrapped).

```sh
$ nox -s lint && pip install --pre x   # a comment: pip install sessionkit
bash scripts/test.sh
```

```python
print("pip install sessionkit")  # Python is not a shell
```

=== "Tab"

    ```console
    $ pip install -e .
    ```
"""


def test_commands_are_found_in_blocks_tabs_and_inline_code_with_their_lines() -> None:
    found = [(c.line, c.text) for c in commands(PAGE, "page.md")]
    assert found == [
        (8, "nox -s lint"),
        (8, "pip install --pre x"),
        (9, "bash scripts/test.sh"),
        (19, "pip install -e ."),
        (3, 'pip install "sessionkit[redis]>=1.0"'),
        (3, "nox -s docs"),
        (4, ".venv/bin/nox -s docs"),
    ]
    assert [c.text for c in pip_installs(PAGE, "page.md")] == [
        "pip install --pre x",
        "pip install -e .",
        'pip install "sessionkit[redis]>=1.0"',
    ]


def test_nav_parsing_sees_nested_entries() -> None:
    nav = _nav()
    assert ("Redis", "backends/redis.md") in nav and ("Home", "index.md") in nav
