"""Every ```python sample of docs/ and of the README runs, page by page, so the documentation cannot rot.

The runner itself is tested first (a broken sample must fail, markers must be honoured), since a
docs test that can never fail would be worse than none.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import pytest

from tests.docs._samples import (
    PLACEHOLDERS,
    SampleSkipped,
    extract,
    pages,
    placeholders_in,
    point_at,
    run_page,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*pages(DOCS), ROOT / "README.md"]


def _id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_docs_have_samples() -> None:
    assert len(PAGES) >= 16, [_id(p) for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_page_samples_run(
    page: Path, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # samples may write files (sqlite:///sessions.db)
    relative = _id(page)
    samples = extract(page.read_text(encoding="utf-8"), relative)
    rewrites = []
    for placeholder in placeholders_in(samples):
        real_url = request.getfixturevalue(PLACEHOLDERS[placeholder])
        rewrites.append(functools.partial(point_at, placeholder=placeholder, real_url=real_url))

    def rewrite(code: str) -> str:
        for step in rewrites:
            code = step(code)
        return code

    module = "sample_" + _id(page).removesuffix(".md").replace("/", "_").replace("-", "_")
    try:
        ran = run_page(samples, module, rewrite)
    except SampleSkipped as exc:
        pytest.skip(str(exc))
    assert ran > 0


# -- the runner ---------------------------------------------------------------------------------

PAGE = textwrap.dedent(
    """\
    # A page

    ```python
    total = 1
    ```

    <!-- skip -->
    ```python
    raise SystemExit("a skipped sample must not run")
    ```

    === "Tab"

        ```python
        total += 1
        ```

    <!-- requires: a_module_that_is_not_there -->
    ```python
    raise SystemExit("needs a missing module")
    ```

    ```python
    assert total == 2
    ```
    """
)


def test_extract_finds_blocks_markers_and_lines() -> None:
    samples = extract(PAGE, "page.md")
    assert [s.line for s in samples] == [3, 8, 14, 19, 23]
    assert [s.skip for s in samples] == [False, True, False, False, False]
    assert samples[3].requires == ("a_module_that_is_not_there",)
    assert samples[2].code == "total += 1"  # dedented out of the tab


def test_runner_shares_one_namespace_and_reports_missing_modules_after_running_the_rest() -> None:
    with pytest.raises(SampleSkipped, match=r"page.md:19 needs a_module_that_is_not_there"):
        run_page(extract(PAGE, "page.md"), "docs_sample_runner_test")


def test_a_broken_sample_fails_and_points_at_its_line_in_the_page() -> None:
    broken = "text\n\n```python\nx = 1\nassert x == 2, 'the sample is wrong'\n```\n"
    with pytest.raises(AssertionError, match="the sample is wrong") as info:
        run_page(extract(broken, "broken.md"), "docs_sample_broken")
    frame = info.traceback[-1]
    assert (str(frame.path), frame.lineno + 1) == ("broken.md", 5)


def test_unclosed_fence_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"page\.md:1: unclosed"):
        extract("```python\nx = 1\n", "page.md")


def test_placeholder_urls_point_at_the_test_server() -> None:
    code = 'Store(storage="mongodb://localhost:27017/myapp?collection=sessions")'
    real = "mongodb://127.0.0.1:4242/?retryWrites=false"
    assert point_at(code, "mongodb://localhost:27017", real) == (
        'Store(storage="mongodb://127.0.0.1:4242/myapp?collection=sessions&retryWrites=false")'
    )
    code = 'open_storage("redis://localhost:6379/0?prefix=app:")'
    assert point_at(code, "redis://localhost:6379", "redis://127.0.0.1:7000/0") == (
        'open_storage("redis://127.0.0.1:7000/0?prefix=app:")'
    )
