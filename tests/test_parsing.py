"""Parsing: Markdown cleanup, fragment includes, reStructuredText and HTML to Markdown."""

from __future__ import annotations

from indexer.parsing import (
    clean_markdown,
    find_includes,
    html_to_markdown,
    parse_by_suffix,
    parse_markdown,
    parse_rst,
    resolve_includes,
    split_front_matter,
)

# --- Markdown: front matter and title -------------------------------------------------------


def test_front_matter_title_wins_over_first_heading() -> None:
    text = '---\ntitle: "Install: Docker"\nsummary: x\n---\n# Installing\n\nRun it.\n'

    parsed = parse_markdown(text, "fallback")

    assert parsed.title == "Install: Docker"
    assert parsed.markdown == "# Installing\n\nRun it.\n"
    assert "summary" not in parsed.markdown


def test_title_falls_back_to_first_heading_then_to_file_name() -> None:
    assert parse_markdown("intro\n\n## Setup\n\n# Later\n", "fb").title == "Setup"
    # A heading-looking line inside code is not a heading.
    assert parse_markdown("```bash\n# not a title\n```\n\ntext\n", "my file").title == "my file"


def test_broken_yaml_front_matter_is_dropped_not_indexed() -> None:
    text = "---\ntitle: [unclosed\nbad: : :\n---\n# Real Title\n\nBody text.\n"

    parsed = parse_markdown(text, "fb")

    assert parsed.title == "Real Title"
    assert parsed.markdown == "# Real Title\n\nBody text.\n"
    assert "unclosed" not in parsed.markdown


def test_front_matter_that_is_not_a_mapping_is_dropped() -> None:
    assert split_front_matter("---\n- a\n- b\n---\nbody") == ({}, "body")
    assert split_front_matter("no front matter\n---\nx: 1\n---\n") == (
        {},
        "no front matter\n---\nx: 1\n---\n",
    )


# --- Markdown: fragment includes and template noise -----------------------------------------


def test_fragments_are_inlined_nested_without_their_front_matter() -> None:
    fragments = {
        "fragments/outer.md": "---\ntitle: Outer\n---\nOuter says {{ fragments/inner.md }}.",
        "fragments/inner.md": "inner words",
    }

    result = resolve_includes("Start. {{fragments/outer.md}} End.", fragments.get)

    assert result == "Start. Outer says inner words. End."


def test_missing_fragment_is_removed() -> None:
    none: dict[str, str] = {}

    result = resolve_includes("Before {{fragments/gone.md}}after", none.get)

    assert result == "Before after"


def test_self_including_fragment_stops_at_the_depth_guard() -> None:
    calls: list[str] = []

    def load(name: str) -> str | None:
        calls.append(name)
        return "loop {{fragments/loop.md}}"

    result = resolve_includes("{{fragments/loop.md}}", load, max_depth=3)

    assert result == "loop loop loop "
    assert calls == ["fragments/loop.md"] * 3


def test_only_fragment_paths_are_includes() -> None:
    text = "{{fragments/a.md}} {{ fragments/sub/b.md }} {{tab}} {{other/x.md}}"

    assert find_includes(text) == ["fragments/a.md", "fragments/sub/b.md"]


def test_tab_template_markers_are_removed() -> None:
    assert clean_markdown("Linux {{tab}} macOS {{ tab }} Windows\n") == "Linux  macOS  Windows\n"


# --- Markdown: inline HTML, images, code ----------------------------------------------------


def test_inline_html_becomes_plain_text() -> None:
    text = (
        '<div class="alert note">\n'
        "Milvus needs <b>SSE4.2</b> &amp; AVX.<br>Check your CPU first.\n"
        "</div>\n\n"
        "<table><tr><th>Key</th><th>Default</th></tr>"
        "<tr><td>port</td><td>19530</td></tr></table>\n\n"
        'See <a href="https://milvus.io/docs">the install guide</a> for more.\n'
    )

    cleaned = clean_markdown(text)

    assert "<" not in cleaned and ">" not in cleaned
    assert "alert" not in cleaned and "href" not in cleaned
    assert "Milvus needs SSE4.2 & AVX.\nCheck your CPU first." in cleaned
    assert "| Key | Default" in cleaned
    assert "| port | 19530" in cleaned
    assert "See the install guide for more." in cleaned


def test_html_headings_and_lists_in_markdown_become_markdown() -> None:
    cleaned = clean_markdown("<h3>Limits</h3><ul><li>one</li><li>two</li></ul>")

    assert "### Limits" in cleaned
    assert "\n- one" in cleaned and "\n- two" in cleaned


def test_code_fences_are_untouched() -> None:
    code = (
        "```html\n"
        '<div class="alert note">kept &amp; verbatim</div>\n'
        "![diagram](arch.png) {{tab}}\n"
        "```"
    )
    text = f"Intro <b>bold</b>.\n\n{code}\n\n~~~\n<br>\n~~~\n\nAfter <i>it</i>.\n"

    cleaned = clean_markdown(text)

    assert code in cleaned
    assert "~~~\n<br>\n~~~" in cleaned
    assert cleaned.startswith("Intro bold.")
    assert cleaned.endswith("After it.\n")


def test_html_comments_and_images_are_removed() -> None:
    text = "Before ![architecture](img/arch.png) after.<!-- TODO:\nfix -->\n\nNext para.\n"

    cleaned = clean_markdown(text)

    assert cleaned == "Before  after.\n\nNext para.\n"


def test_html_like_text_inside_inline_code_is_kept() -> None:
    cleaned = clean_markdown("Run `milvus_cli connect -h <host>` or use `Vec<T>`.\n")

    assert cleaned == "Run `milvus_cli connect -h <host>` or use `Vec<T>`.\n"


# --- reStructuredText -----------------------------------------------------------------------

RST = """\
=============
 Quick Start
=============

Intro with :ref:`the guide <guide-label>` and ``inline code``.

Install
=======

Run the installer.

.. code-block:: python

    from pymilvus import MilvusClient
    if True:
        client = MilvusClient("milvus.db")

Options
-------

Use the flag::

    milvus --flag

Back to top level
=================

Done.
"""


def headings_of(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


def test_rst_headings_become_markdown_levels() -> None:
    parsed = parse_rst(RST, "fb")

    assert parsed.title == "Quick Start"
    # Overlined "=" is its own style (level 1); underlined "=" is level 2, "-" level 3.
    assert headings_of(parsed.markdown)[:3] == ["# Quick Start", "## Install", "### Options"]
    assert "=====" not in parsed.markdown and "-----" not in parsed.markdown


def test_rst_underline_shorter_than_title_is_not_a_heading() -> None:
    markdown = parse_rst("Long title here\n===\n\ntext\n", "fb").markdown

    assert headings_of(markdown) == []


def test_rst_heading_returning_to_an_earlier_style_gets_that_level() -> None:
    assert headings_of(parse_rst(RST, "fb").markdown)[3] == "## Back to top level"
    text = "A\n===\n\nx\n\nB\n---\n\ny\n\nC\n===\n\nz\n"
    assert headings_of(parse_rst(text, "fb").markdown) == ["# A", "## B", "# C"]


def test_rst_code_block_becomes_a_fenced_block() -> None:
    markdown = parse_rst(RST, "fb").markdown

    assert (
        "```python\n"
        "from pymilvus import MilvusClient\n"
        "if True:\n"
        '    client = MilvusClient("milvus.db")\n'
        "```"
    ) in markdown
    assert ".. code-block::" not in markdown


def test_rst_roles_and_literals_become_markdown() -> None:
    markdown = parse_rst(RST, "fb").markdown

    assert "Intro with `the guide` and `inline code`." in markdown
    assert "Use the flag:\n" in markdown
    assert "::" not in markdown


def test_rst_without_headings_uses_fallback_title() -> None:
    parsed = parse_by_suffix(".RST", "Just a paragraph.\n", "notes")

    assert parsed == parse_rst("Just a paragraph.\n", "notes")
    assert parsed.title == "notes"
    assert parsed.markdown == "Just a paragraph.\n"


def test_rst_code_block_with_three_space_indent_keeps_its_indentation() -> None:
    text = ".. code-block:: python\n\n   def f():\n       return 1\n"

    assert "```python\ndef f():\n    return 1\n```" in parse_rst(text, "fb").markdown


def test_rst_code_block_options_are_not_code() -> None:
    text = ".. code-block:: python\n    :linenos:\n\n    x = 1\n"

    assert "```python\nx = 1\n```" in parse_rst(text, "fb").markdown


def test_rst_admonition_text_is_kept() -> None:
    text = "Intro.\n\n.. warning:: Back up the etcd volume before upgrading.\n"

    assert "Back up the etcd volume before upgrading." in parse_rst(text, "fb").markdown


# --- HTML -----------------------------------------------------------------------------------

PAGE = """\
<!doctype html>
<html><head><title>Bitset | Milvus Docs</title>
<script>var tracking = "NOISE-SCRIPT";</script><style>.x { color: red }</style></head>
<body>
<nav><a href="/">NOISE-NAV Home</a></nav>
<header>NOISE-HEADER</header>
<main>
<h1>Bitset</h1>
<p>A bitset is an array of <b>bits</b>.</p>
<h2>Implementation details</h2>
<pre><code>bitset = [0, 1]
if x &lt; 2:
    print(x)</code></pre>
<table><tr><th>Field</th><th>Type</th></tr><tr><td>id</td><td>INT64</td></tr></table>
<ul><li>first</li><li>second</li></ul>
</main>
<footer>NOISE-FOOTER</footer>
</body></html>
"""


def test_html_page_title_and_noise_removed() -> None:
    parsed = html_to_markdown(PAGE, "fb")

    assert parsed.title == "Bitset | Milvus Docs"
    assert "NOISE" not in parsed.markdown
    assert "color" not in parsed.markdown
    assert parsed.markdown.startswith("# Bitset\n\nA bitset is an array of bits.\n")


def test_html_structure_becomes_markdown() -> None:
    markdown = html_to_markdown(PAGE, "fb").markdown

    assert "\n## Implementation details\n" in markdown
    assert "```\nbitset = [0, 1]\nif x < 2:\n    print(x)\n```" in markdown
    # A pipe table needs its delimiter row to be a table at all (the old output lacked it).
    assert "| Field | Type |\n| --- | --- |\n| id | INT64 |" in markdown
    assert "\n- first\n- second" in markdown


def test_html_without_title_uses_first_heading_then_fallback() -> None:
    assert html_to_markdown("<body><h2>Only heading</h2><p>x</p></body>", "fb").title == (
        "Only heading"
    )
    assert parse_by_suffix(".htm", "<p>plain</p>", "page").title == "page"


def test_text_files_keep_their_text() -> None:
    parsed = parse_by_suffix(".txt", "\n  <b>not html</b> {{tab}}\n\n", "readme")

    assert parsed.title == "readme"
    assert parsed.markdown == "<b>not html</b> {{tab}}\n"


# --- HTML: structure a rendered documentation page carries -----------------------------------

# The shape of a page rendered by MkDocs Material (article, permalinks, admonitions, Pygments
# blocks with line numbers), with a Sphinx section and a Docusaurus heading and code block.
RENDERED = """\
<html><head><title>First Steps - Docs</title></head><body>
<header class="md-header"><nav>NOISE-HEADER</nav></header>
<main class="md-main"><div class="md-sidebar"><nav class="md-nav">NOISE-NAV</nav></div>
<article class="md-content__inner md-typeset">
<h1 id="first-steps">First Steps<a class="headerlink" href="#first-steps">&para;</a></h1>
<p>Copy that to a file <code>main.py</code>.</p>
<div class="admonition tip"><p class="admonition-title">Tip</p><p>It returns the error.</p></div>
<ol>
<li><p>Install it:</p>
<div class="language-bash highlight"><pre><span></span><code>pip install x
</code></pre></div></li>
<li>Run it<ul><li>with <code>--reload</code></li><li>or not</li></ul></li>
</ol>
<table class="highlighttable"><tr><td class="linenos"><div class="linenodiv"><pre>1
2</pre></div></td><td class="code"><div class="language-python highlight"><pre><code>x = 1
y = 2
</code></pre></div></td></tr></table>
<h2 id="options">Options</h2>
<dl><dt><code>--port</code></dt><dd>The port, default <code>8000</code>.</dd><dt>--host</dt>
<dd>The host.</dd></dl>
<section id="sphinx-style"><h2>Sphinx style<a class="headerlink" href="#sphinx-style">¶</a>
</h2><p>snake_case stays.</p></section>
<h2 class="anchor" id="docusaurus-h">Docusaurus<a href="#docusaurus-h" class="hash-link">&#8203;</a>
</h2>
<div class="language-js codeBlockContainer"><pre class="prism-code language-js"><code>
<span class="token-line">const a = 1;<br></span><span
class="token-line">b();<br></span></code></pre><button>NOISE-BUTTON</button></div>
</article></main>
<footer>NOISE-FOOTER</footer><script>NOISE()</script></body></html>
"""


def test_html_keeps_the_structure_of_a_rendered_page() -> None:
    parsed = html_to_markdown(RENDERED, "fb")

    assert parsed.title == "First Steps - Docs"
    assert "NOISE" not in parsed.markdown
    assert parsed.markdown == (
        "# First Steps {#first-steps}\n\n"
        "Copy that to a file `main.py`.\n\n"
        "**Tip:** It returns the error.\n\n"
        "1. Install it:\n\n"
        "   ```bash\n   pip install x\n   ```\n"
        "2. Run it\n   - with `--reload`\n   - or not\n\n"
        "```python\nx = 1\ny = 2\n```\n\n"
        "## Options {#options}\n\n"
        "`--port`\n:   The port, default `8000`.\n\n"
        "--host\n:   The host.\n\n"
        "## Sphinx style {#sphinx-style}\n\n"
        "snake_case stays.\n\n"
        "## Docusaurus {#docusaurus-h}\n\n"
        "```js\nconst a = 1;\nb();\n```\n"
    )


def test_html_heading_ids_make_the_section_anchors() -> None:
    from indexer.chunking import Chunker
    from indexer.sources import Document

    parsed = html_to_markdown(RENDERED, "fb")
    doc = Document("s", "u", parsed.title, parsed.markdown, "https://docs.example.com/first/")

    chunks = Chunker(200, 0, lambda texts: [len(t.split()) for t in texts]).chunk(doc)

    assert [(c.heading, c.url.rpartition("#")[2]) for c in chunks] == [
        ("First Steps", "first-steps"),
        ("First Steps › Options", "options"),
        ("First Steps › Sphinx style", "sphinx-style"),
        ("First Steps › Docusaurus", "docusaurus-h"),
    ]
