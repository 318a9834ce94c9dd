"""Includes: pymdownx snippets, FastAPI's `{* *}`, mdx_include's `{! !}`; inside the source only."""

from __future__ import annotations

import os
from pathlib import Path

from config.settings import SourceSpec
from indexer.includes import candidates, find_includes, resolve_includes
from indexer.sources import Document, LoadStats, load_folder

CODE = (
    "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n"
    "@app.get('/')\ndef root():\n    return {}\n"
)


def test_candidates_climb_to_the_root_and_never_leave_it() -> None:
    assert candidates("docs/en/docs/tutorial/x.md", "../../docs_src/a.py") == [
        "docs/en/docs_src/a.py",
        "docs/docs_src/a.py",
        "docs_src/a.py",
    ]
    assert candidates("docs/x.md", "../../../etc/passwd") == []
    assert candidates("docs/x.md", "/includes/a.md") == ["includes/a.md"]
    assert candidates("docs/x.md", "https://example.com/a.md") == []


def test_fastapi_code_includes_become_fenced_code() -> None:
    files = {"docs_src/first_steps/tutorial001.py": CODE}
    asked: list[str] = []

    def load(path: str) -> str | None:
        asked.append(path)
        return files.get(path)

    text = (
        "Intro.\n\n{* ../../docs_src/first_steps/tutorial001.py hl[3] *}\n\n"
        "{* ../../docs_src/first_steps/tutorial001.py ln[6:8] hl[6] *}\n\n"
        '```Python hl_lines="3"\n{!> ../../../docs_src/first_steps/tutorial001.py!}\n```\n'
    )

    result = resolve_includes(text, load, at="docs/en/docs/tutorial/first-steps.md")

    assert result == (
        f"Intro.\n\n```python\n{CODE}```\n\n"
        "```python\n@app.get('/')\ndef root():\n    return {}\n```\n\n"
        f'```Python hl_lines="3"\n{CODE}```\n'
    )
    assert "docs/en/docs_src/first_steps/tutorial001.py" in asked  # nearest folder first


def test_pymdownx_snippets() -> None:
    files = {
        "includes/note.md": 'Shared words.\n--8<-- "includes/inner.md"\n',
        "includes/inner.md": "Inner words.",
        "docs/lines.txt": "one\ntwo\nthree\nfour\n",
        "docs/sections.py": (
            "# --8<-- [start:func]\ndef f():\n    pass\n# --8<-- [end:func]\nother = 1\n"
        ),
    }
    text = (
        '--8<-- "includes/note.md"\n\n'
        '```\n--8<-- "lines.txt:2:3"\n```\n\n'
        '```python\n--8<-- "sections.py:func"\n```\n\n'
        "--8<--\nincludes/inner.md\n;includes/commented-out.md\n--8<--\n\n"
        ';--8<-- "shown-literally.md"\n\n'
        '--8<-- "https://example.com/remote.md"\n'
        '--8<-- "missing.md"\n'
    )

    result = resolve_includes(text, files.get, at="docs/page.md")

    assert result == (
        "Shared words.\nInner words.\n\n"
        "```\ntwo\nthree\n```\n\n"
        "```python\ndef f():\n    pass\n```\n\n"
        "Inner words.\n\n"
        ';--8<-- "shown-literally.md"\n\n'
    )


def test_an_indented_include_keeps_the_indent_of_its_container() -> None:
    files = {"src/a.py": "x = 1\ny = 2"}

    result = resolve_includes('=== "Python"\n\n    {* src/a.py *}\n', files.get, at="p.md")

    assert result == '=== "Python"\n\n    ```python\n    x = 1\n    y = 2\n    ```\n'


def test_a_self_including_snippet_stops_at_the_depth_guard() -> None:
    files = {"loop.md": 'again\n--8<-- "loop.md"'}

    result = resolve_includes('--8<-- "loop.md"\n', files.get, at="page.md")

    assert result.count("again") == 4


def test_snippet_files_are_found_as_includes() -> None:
    text = '--8<-- "abbr.md"\n{{fragments/x.md}}\n;--8<-- "no.md"\n--8<--\nb.md\n--8<--\n'
    exists = {"docs/abbr.md", "b.md"}.__contains__

    assert find_includes(text, at="docs/p.md", exists=exists) == [
        "fragments/x.md",
        "docs/abbr.md",
        "b.md",
    ]
    assert find_includes(text) == ["fragments/x.md"]  # without `exists`: fragments only


def write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)


def test_a_fastapi_like_repository_indexes_examples_not_paths(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            "docs/en/docs/tutorial/first-steps.md": (
                "# First Steps { #first-steps }\n\n"
                "{* ../../docs_src/first_steps/tutorial001.py *}\n\n"
                '--8<-- "docs/en/docs/_snippets/tip.md"\n'
            ),
            "docs/en/docs/_snippets/tip.md": "/// tip\n\nRun it with `fastapi dev`.\n\n///\n",
            "docs_src/first_steps/tutorial001.py": CODE,
        },
    )

    docs = list(load_folder(SourceSpec(location=str(root)), 100_000, LoadStats()))

    assert [d.path for d in docs] == ["docs/en/docs/tutorial/first-steps.md"]  # a snippet is a part
    assert docs[0].markdown == (
        "# First Steps {#first-steps}\n\n"
        f"```python\n{CODE}```\n\n"
        "**Tip:** Run it with `fastapi dev`.\n"
    )


def test_includes_never_read_outside_the_source(tmp_path: Path) -> None:
    outside = tmp_path / "secret.py"
    outside.write_text("TOPSECRET = 1\n")
    root = tmp_path / "docs"
    write(
        root,
        {
            "page.md": (
                "# Page\n\n{* ../secret.py *}\n\n{* link.py *}\n\n{* loop.py *}\n\n"
                '```\n{! ../secret.py !}\n```\n\n--8<-- "../secret.py"\n\nEnd.\n'
            )
        },
    )
    os.symlink(outside, root / "link.py")
    os.symlink(root / "loop.py", root / "loop.py")  # a link to itself: no crash either

    docs: list[Document] = list(load_folder(SourceSpec(location=str(root)), 100_000, LoadStats()))

    assert [d.markdown for d in docs] == ["# Page\n\nEnd.\n"]
