"""Heading-aware chunking: sections, anchors, budgets, atomic code and tables, overlap, ids."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from config.settings import SourceSpec
from indexer.chunking import Chunk, Chunker, slugify, split_blocks, split_sections
from indexer.embedding import LocalEmbedder
from indexer.sources import Document, LoadStats, load_folder

MILVUS_DOCS = Path(__file__).parent / "fixtures" / "milvus-docs"


def words(texts: Sequence[str]) -> list[int]:
    """A deterministic token counter: one token a whitespace-separated word."""
    return [len(t.split()) for t in texts]


def doc(markdown: str, title: str = "Guide", path: str = "guide.md") -> Document:
    return Document("src", path, title, markdown, f"https://docs.example.com/{path}")


def chunk(markdown: str, budget: int = 200, overlap: int = 0, **kw: str) -> list[Chunk]:
    return Chunker(budget, overlap, words).chunk(doc(markdown, **kw))


def sentences(n: int, word: str = "Sentence") -> str:
    """n five-word sentences in one paragraph."""
    return " ".join(f"{word} number {i} goes here." for i in range(n))


# --- sections, heading paths, anchors -------------------------------------------------------

HEADINGS = """\
# Guide

Intro para.

## Install `Milvus` on **Linux**!

Install text.

### Docker setup {#docker-way}

Docker text.

#### Compose

Compose text.

## FAQ

First FAQ.

## FAQ

Second FAQ.

## Back to *top*

Last text.
"""


def test_heading_paths_drop_an_h1_equal_to_the_title() -> None:
    chunks = chunk(HEADINGS)

    assert [(c.heading, c.text) for c in chunks] == [
        ("", "Intro para."),
        ("Install `Milvus` on **Linux**!", "Install text."),
        ("Install `Milvus` on **Linux**! › Docker setup", "Docker text."),
        ("Install `Milvus` on **Linux**! › Docker setup › Compose", "Compose text."),
        ("FAQ", "First FAQ."),
        ("FAQ", "Second FAQ."),
        ("Back to *top*", "Last text."),
    ]
    assert [c.ordinal for c in chunks] == list(range(7))
    assert {c.title for c in chunks} == {"Guide"}


def test_section_urls_use_github_style_anchors() -> None:
    urls = [c.url for c in chunk(HEADINGS)]

    base = "https://docs.example.com/guide.md"
    assert urls == [
        f"{base}#guide",
        f"{base}#install-milvus-on-linux",
        f"{base}#docker-way",  # custom {#id}, and the marker is not part of the heading
        f"{base}#compose",
        f"{base}#faq",
        f"{base}#faq-1",  # duplicate heading
        f"{base}#back-to-top",
    ]


def test_an_h1_that_differs_from_the_title_stays_in_the_path() -> None:
    chunks = chunk("Preamble.\n\n# Overview\n\n## Details\n\nText.\n", title="Guide")

    assert [(c.heading, c.url.partition("#")[2]) for c in chunks] == [
        ("", ""),  # text before any heading links to the page itself
        ("Overview › Details", "details"),
    ]
    assert chunks[0].url == "https://docs.example.com/guide.md"


def test_slugify_matches_github() -> None:
    assert slugify("What's new in 2.4?") == "whats-new-in-24"
    assert slugify("Use [the CLI](cli.md) `--flag`") == "use-the-cli---flag"
    assert slugify("Scenario 1: **Fast** path") == "scenario-1-fast-path"


def test_slugify_keeps_underscores_inside_words() -> None:
    assert slugify("`Guarantee_timestamp`") == "guarantee_timestamp"
    assert slugify("snake_case and _emphasis_") == "snake_case-and-emphasis"


def test_headings_inside_code_are_not_sections() -> None:
    markdown = "## Run\n\n```bash\n# comment, not a heading\nrun it\n```\n\nDone.\n"

    sections = split_sections(markdown)

    assert [s.path for s in sections] == [[], ["Run"]]
    assert [c.heading for c in chunk(markdown)] == ["Run"]


def test_chunks_never_cross_sections() -> None:
    markdown = (
        "## Alpha\n\n" + sentences(6, "Alpha") + "\n\n## Beta\n\n" + sentences(6, "Beta") + "\n"
    )

    chunks = chunk(markdown, budget=1000)  # everything would fit in one chunk

    assert [c.heading for c in chunks] == ["Alpha", "Beta"]
    assert "Beta" not in chunks[0].text and "Alpha" not in chunks[1].text


# --- budget, code blocks and tables ---------------------------------------------------------


def code_block(lines: int, lang: str = "python") -> str:
    return "\n".join(
        [f"```{lang}", *(f"value_{i} = compute({i}) + 1" for i in range(lines)), "```"]
    )


def table(rows: int) -> str:
    head = ["| Name | Type | Meaning |", "|------|------|---------|"]
    return "\n".join(head + [f"| field{i} | INT{i} | the field number {i} |" for i in range(rows)])


MIXED = "\n\n".join(
    [
        "## Everything",
        sentences(30),
        code_block(40),
        "Between the blocks.",
        table(25),
        sentences(4, "Closing"),
    ]
)


def test_every_chunk_is_within_budget_without_overlap() -> None:
    chunks = chunk(MIXED, budget=40, overlap=0)

    sizes = words([c.text for c in chunks])
    assert len(chunks) >= 8
    # +1: the closing fence re-added to a split code block is not counted.
    assert max(sizes) <= 41
    # Nothing is lost: every sentence and row is in some chunk.
    text = "\n".join(c.text for c in chunks)
    for needle in ("number 29 goes", "value_39 =", "field24", "Closing number 3"):
        assert needle in text


def test_a_code_block_that_fits_is_never_split() -> None:
    code = code_block(6)  # 6 lines x 5 words + 2 fences = 32 words
    markdown = "## Code\n\n" + sentences(4) + "\n\n" + code + "\n\nAfter the code.\n"

    chunks = chunk(markdown, budget=40)

    holding = [c for c in chunks if "```" in c.text]
    assert len(holding) == 1
    assert code in holding[0].text
    assert chunks[0].text == sentences(4)  # the code did not fit after the prose


def test_an_oversized_code_block_is_split_into_fenced_pieces() -> None:
    code = code_block(30, lang="python title='x.py'")

    chunks = chunk("## Code\n\n" + code + "\n", budget=30)

    assert len(chunks) >= 4
    bodies: list[str] = []
    for c in chunks:
        lines = c.text.split("\n")
        assert lines[0] == "```python title='x.py'"
        assert lines[-1] == "```"
        bodies += lines[1:-1]
    assert bodies == code.split("\n")[1:-1]  # every line once, in order


def test_a_split_table_repeats_its_header() -> None:
    rows = table(20).split("\n")

    chunks = chunk("## Fields\n\n" + table(20) + "\n", budget=40)

    assert len(chunks) >= 3
    body: list[str] = []
    for c in chunks:
        lines = c.text.split("\n")
        assert lines[:2] == rows[:2]
        body += lines[2:]
    assert body == rows[2:]


def test_blocks_keep_code_and_tables_atomic() -> None:
    lines = ["Para one", "continues.", "", "| a | b |", "|---|---|", "| 1 | 2 |", "Para two."]
    lines += ["```", "code", "", "more code", "```"]

    assert split_blocks(lines) == [
        ("prose", "Para one\ncontinues."),
        ("table", "| a | b |\n|---|---|\n| 1 | 2 |"),
        ("prose", "Para two."),
        ("code", "```\ncode\n\nmore code\n```"),
    ]


# --- overlap --------------------------------------------------------------------------------


def test_consecutive_chunks_of_a_long_section_overlap() -> None:
    chunks = chunk("## Long\n\n" + sentences(40) + "\n", budget=30, overlap=8)

    assert len(chunks) >= 6
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.split(". ")[-1]
        assert after.text.startswith(last_sentence)
        assert len(last_sentence.split()) <= 8
    assert chunk("## Long\n\n" + sentences(40) + "\n", budget=30)[1].text.startswith(
        "Sentence number 6 goes here."  # without overlap the next chunk starts fresh
    )


def test_overlap_must_be_smaller_than_budget() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Chunker(50, 50, words)
    # v3: heading attribute lists and notes kept with their example change the chunks of
    # unchanged Markdown, so every document is re-chunked once.
    assert Chunker(350, 40, words).signature == "v3:350:40"


def test_overlap_stays_within_the_budget() -> None:
    chunks = chunk("## Long\n\n" + sentences(40) + "\n", budget=30, overlap=8)

    assert max(words([c.text for c in chunks])) <= 31


def test_overlap_is_never_taken_from_a_code_block() -> None:
    markdown = (
        "## Connect\n\nIntro words here.\n\n"
        "```python\n# Step one. Connect to the server\nclient = MilvusClient(uri)\n```\n\n"
        + sentences(5, "Filler")
    )

    chunks = chunk(markdown, budget=20, overlap=8)

    for c in chunks:
        assert c.text.count("```") % 2 == 0, c.text


def test_a_giant_line_is_cut_within_the_budget() -> None:
    line = "Long line: " + " ".join(f"w{i}" for i in range(130))

    chunks = chunk("## Line\n\n" + line + "\n", budget=40)

    assert max(words([c.text for c in chunks])) <= 40
    assert " ".join(c.text for c in chunks).split() == line.split()


def test_a_table_with_a_huge_header_still_fits_the_budget() -> None:
    header = "| " + " | ".join(f"column{i}" for i in range(40)) + " |"
    rows = [header, "|" + "---|" * 40] + [f"| r{i} |" + " x |" * 39 for i in range(6)]

    chunks = chunk("## Wide\n\n" + "\n".join(rows) + "\n", budget=60)

    assert max(words([c.text for c in chunks])) <= 61


def test_a_longer_fence_is_not_closed_by_a_shorter_one() -> None:
    markdown = (
        "## Writing docs\n\n````markdown\n```bash\n# Install the package\npip install x\n```\n"
        "````\n\nMore text.\n"
    )

    assert [c.heading for c in chunk(markdown)] == ["Writing docs"]


# --- ids and embedded content ---------------------------------------------------------------


def test_identical_paragraphs_get_distinct_ids() -> None:
    markdown = "## FAQ\n\nSame answer.\n\n## FAQ\n\nSame answer.\n\n## FAQ\n\nSame answer.\n"

    chunks = chunk(markdown)

    assert [c.content for c in chunks] == ["Guide\nFAQ\n\nSame answer."] * 3
    ids = [c.id for c in chunks]
    assert len(set(ids)) == 3
    assert all(len(i) == 32 for i in ids)
    assert ids[1] == ids[0][:29] + "-01" and ids[2] == ids[0][:29] + "-02"


def test_ids_are_stable_and_follow_the_text() -> None:
    first = [c.id for c in chunk(HEADINGS)]
    again = [c.id for c in Chunker(200, 0, words).chunk(doc(HEADINGS))]
    edited = [c.id for c in chunk(HEADINGS.replace("Docker text.", "Docker text, edited."))]
    moved = [c.id for c in chunk(HEADINGS, path="other.md")]

    assert first == again
    assert [a == b for a, b in zip(first, edited, strict=True)] == [
        True,
        True,
        False,  # only the edited section's chunk changes
        True,
        True,
        True,
        True,
    ]
    assert not set(first) & set(moved)  # the path is part of the identity


def test_content_starts_with_title_and_heading_path() -> None:
    chunks = chunk(HEADINGS)

    assert chunks[0].content == "Guide\n\nIntro para."
    assert chunks[3].content == (
        "Guide\nInstall `Milvus` on **Linux**! › Docker setup › Compose\n\nCompose text."
    )
    for c in chunks:
        assert c.content.startswith(f"{c.title}\n")
        assert c.content.endswith(c.text)


# --- the real tokenizer ---------------------------------------------------------------------


def test_real_tokenizer_budget_on_the_fixture_docs(minilm: LocalEmbedder) -> None:
    docs = list(load_folder(SourceSpec(location=str(MILVUS_DOCS)), 10_000_000, LoadStats()))
    # about/limitations.md has a table whose header alone is ~350 tokens: see
    # test_a_table_with_a_huge_header_still_fits_the_budget.
    docs = [d for d in docs if d.path != "about/limitations.md"]
    chunker = Chunker(128, 0, minilm.count_tokens)

    chunks = [c for d in docs for c in chunker.chunk(d)]

    sizes = minilm.count_tokens([c.text for c in chunks])
    assert len(docs) == 6 and len(chunks) > 100
    assert max(sizes) <= 128 + 4  # slack: a re-added closing fence is not counted
    assert sum(sizes) / len(sizes) > 40  # chunks are filled, not shredded
    bitset = [c for c in chunks if c.path == "reference/bitset.md"]
    assert all(c.title == "Bitset" for c in bitset)
    assert any(re.search(r"#[a-z0-9-]+$", c.url) for c in bitset)
    assert all(Path(c.path).suffix == ".md" for c in chunks)


# --- heading ids and notes from the documentation dialects -----------------------------------


def test_heading_attribute_lists_give_anchors_and_stay_out_of_headings() -> None:
    markdown = (
        "## Title { #custom }\n\nA.\n\n## Other {: #other-id .wide }\n\nB.\n\n"
        "## Styled { .no-toc }\n\nC.\n\n## Set {value}\n\nD.\n"
    )

    assert [(c.heading, c.url.partition("#")[2]) for c in chunk(markdown)] == [
        ("Title", "custom"),
        ("Other", "other-id"),
        ("Styled", "styled"),
        ("Set {value}", "set-value"),
    ]


def test_a_mkdocs_material_page_links_to_its_heading_ids(tmp_path: Path) -> None:
    # The shape of a FastAPI docs page (MIT licence): ids on every heading, an admonition.
    root = tmp_path / "docs"
    (root / "tutorial").mkdir(parents=True)
    (root / "tutorial" / "cookies.md").write_text(
        "# Cookie Parameter Models { #cookie-parameter-models }\n\n"
        "Declare related cookies in one model.\n\n"
        "## Cookies with a Pydantic Model { #cookies-with-a-pydantic-model }\n\n"
        "Declare the cookie parameters in a model.\n\n"
        "/// info\n\nBrowsers handle cookies in special ways.\n\n///\n"
    )
    spec = SourceSpec(location=str(root), base_url="https://fastapi.tiangolo.com/{path_noext}/")

    (page,) = load_folder(spec, 100_000, LoadStats())
    chunks = Chunker(200, 0, words).chunk(page)

    assert page.title == "Cookie Parameter Models"
    assert [(c.title, c.heading, c.url) for c in chunks] == [
        (
            "Cookie Parameter Models",
            "",
            "https://fastapi.tiangolo.com/tutorial/cookies/#cookie-parameter-models",
        ),
        (
            "Cookie Parameter Models",
            "Cookies with a Pydantic Model",
            "https://fastapi.tiangolo.com/tutorial/cookies/#cookies-with-a-pydantic-model",
        ),
    ]
    assert chunks[1].text == (
        "Declare the cookie parameters in a model.\n\n"
        "**Info:** Browsers handle cookies in special ways."
    )
    assert not any("{" in c.content or "///" in c.content for c in chunks)


def test_a_short_tip_stays_with_the_example_it_explains() -> None:
    code = code_block(6)  # 32 words
    tip = "**Tip:** Notice that the function returns the exception. It does not raise it."
    markdown = f"## Errors\n\n{sentences(4)}\n\n{code}\n\n{tip}\n"

    chunks = chunk(markdown, budget=55)

    # Packed greedily, the intro and the code would fill one chunk and the tip be left alone.
    assert [c.text for c in chunks] == [sentences(4), f"{code}\n\n{tip}"]


def test_a_tip_that_cannot_join_the_block_before_joins_the_one_after() -> None:
    code = code_block(8)  # 42 words
    tip = "**Tip:** Prefer the `Annotated` version."
    markdown = f"## Query\n\n{code}\n\n{tip}\n\n{code_block(2)}\n"

    chunks = chunk(markdown, budget=45)

    assert [c.text for c in chunks] == [code, f"{tip}\n\n{code_block(2)}"]


def test_a_lead_in_stays_with_what_it_introduces() -> None:
    code = code_block(6)  # 32 words
    markdown = f"## Run\n\n{sentences(2)}\n\nRun the live server:\n\n{code}\n"

    chunks = chunk(markdown, budget=40)

    assert [c.text for c in chunks] == [sentences(2), f"Run the live server:\n\n{code}"]
