"""Markdown dialects: MkDocs Material / pymdownx, Docusaurus MDX and Hugo shortcodes.

The snippets use each generator's real syntax. Those marked "adapted from" are shortened from
public documentation: FastAPI (github.com/fastapi/fastapi, docs/en/docs, MIT licence) and
Docusaurus (github.com/facebook/docusaurus, website/docs, MIT licence).
"""

from __future__ import annotations

from indexer.markup import split_heading_id
from indexer.parsing import parse_markdown


def md(text: str) -> str:
    return parse_markdown(text, "fb").markdown


# --- heading ids ----------------------------------------------------------------------------


def test_heading_attribute_lists_give_the_id_and_leave_the_title() -> None:
    assert split_heading_id("Title { #custom }") == ("Title", "custom")
    assert split_heading_id("Title {#custom}") == ("Title", "custom")
    assert split_heading_id("Title {: #custom .wide data-x='a b' }") == ("Title", "custom")
    assert split_heading_id("Title { .no-toc }") == ("Title", None)
    assert split_heading_id("Use {placeholders} here") == ("Use {placeholders} here", None)
    assert split_heading_id("Set {value}") == ("Set {value}", None)


def test_mkdocs_heading_ids_are_normalised_and_never_in_the_title() -> None:
    # Adapted from FastAPI's docs, which give every heading an explicit id.
    parsed = parse_markdown(
        "# Cookie Parameter Models { #cookie-parameter-models }\n\n"
        "Text.\n\n## Cookies with a Pydantic Model { #cookies-with-a-pydantic-model }\n\n"
        "More.\n\n### Styled { .hidden }\n\nLast.\n",
        "fb",
    )

    assert parsed.title == "Cookie Parameter Models"
    assert "# Cookie Parameter Models {#cookie-parameter-models}\n" in parsed.markdown
    assert "## Cookies with a Pydantic Model {#cookies-with-a-pydantic-model}\n" in parsed.markdown
    assert "### Styled\n" in parsed.markdown


# --- MkDocs Material / pymdownx -------------------------------------------------------------


def test_indented_admonitions_become_titled_paragraphs() -> None:
    text = (
        "Intro.\n\n"
        '!!! note "Technical Details"\n'
        "    `FastAPI` is a class that inherits directly from `Starlette`.\n\n"
        "    You can use all the Starlette functionality.\n\n"
        "??? tip\n    Collapsed tip.\n\n"
        '???+ warning "Careful"\n    Open by default.\n\n'
        '!!! info ""\n    No title at all.\n\n'
        "After.\n"
    )

    assert md(text) == (
        "Intro.\n\n"
        "**Technical Details:** `FastAPI` is a class that inherits directly from `Starlette`.\n"
        "You can use all the Starlette functionality.\n\n"
        "**Tip:** Collapsed tip.\n\n"
        "**Careful:** Open by default.\n\n"
        "No title at all.\n\n"
        "After.\n"
    )


def test_admonition_with_code_keeps_the_code_de_indented() -> None:
    text = '!!! example "Run it"\n\n    ```bash\n    pip install fastapi\n    ```\n'

    assert md(text) == "**Run it:**\n\n```bash\npip install fastapi\n```\n"


def test_block_admonitions_and_tabs_nest() -> None:
    # Adapted from FastAPI's docs (pymdownx blocks: `////` tabs holding `///` admonitions).
    text = (
        "//// tab | Python 3.10+ non-Annotated\n\n"
        "/// tip\n\nPrefer to use the `Annotated` version if possible.\n\n///\n\n"
        '```Python hl_lines="7"\nq: str | None = None\n```\n\n'
        "////\n\n"
        "/// note | Technical Details\n    type: info\n\nA `Query` is a class.\n\n///\n"
    )

    assert md(text) == (
        "**Python 3.10+ non-Annotated:**\n"
        "**Tip:** Prefer to use the `Annotated` version if possible.\n\n"
        '```Python hl_lines="7"\nq: str | None = None\n```\n\n'
        "**Technical Details:** A `Query` is a class.\n"
    )


def test_content_tabs() -> None:
    text = (
        '=== ":material-linux: Linux"\n\n    ```bash\n    apt install x\n    ```\n\n'
        '=== "Windows"\n\n    Use PowerShell:\n\n    ```powershell\n    winget install x\n    ```\n'
    )

    assert md(text) == (
        "**Linux:**\n\n```bash\napt install x\n```\n\n"
        "**Windows:**\nUse PowerShell:\n\n```powershell\nwinget install x\n```\n"
    )


def test_admonition_syntax_inside_code_is_code() -> None:
    code = '```markdown\n!!! note "Title"\n    body\n\n/// tip\nx\n///\n```\n'

    assert md(code) == code


def test_mkdocstrings_lines_and_their_options_are_dropped() -> None:
    text = (
        "# API\n\nThe app class.\n\n"
        "::: fastapi.FastAPI\n    options:\n      members:\n        - get\n\nEnd.\n"
    )

    assert md(text) == "# API\n\nThe app class.\n\nEnd.\n"


def test_unresolved_includes_leave_nothing() -> None:
    # Adapted from FastAPI's docs: both include syntaxes, the older one inside a fence.
    text = (
        "Intro.\n\n"
        "{* ../../docs_src/cookie_param_models/tutorial001_an_py310.py hl[9:12,16] *}\n\n"
        '```Python hl_lines="7"\n{!> ../../../docs_src/query/tutorial001.py!}\n```\n\n'
        "//// tab | Python 3.8+\n\n```Python\n{!> ../../../docs_src/query/tutorial001.py!}\n```\n\n"
        "////\n\n"
        '--8<-- "includes/abbreviations.md"\n\n'
        "End.\n"
    )

    assert md(text) == "Intro.\n\nEnd.\n"


def test_an_escaped_snippet_marker_is_shown_and_an_unresolved_one_dropped() -> None:
    text = '```markdown\n;--8<-- "shown.md"\n--8<-- "missing.md"\nText.\n```\n'

    assert md(text) == '```markdown\n--8<-- "shown.md"\nText.\n```\n'


def test_terminal_markup_in_console_blocks_is_reduced_to_text() -> None:
    # Adapted from FastAPI's docs (termynal console blocks) and Typer's (Rich output).
    text = (
        '<div class="termy">\n\n```console\n$ uvicorn main:app --reload\n\n'
        '<span style="color: green;">INFO</span>:     Uvicorn running on http://127.0.0.1:8000\n'
        '<font color="#4E9A06">╭─ Options ─╮</font> a &lt;b&gt;\n```\n\n</div>\n\n'
        '```html\n<span style="color: red">kept</span>\n```\n'
    )

    assert md(text) == (
        "```console\n$ uvicorn main:app --reload\n\n"
        "INFO:     Uvicorn running on http://127.0.0.1:8000\n"
        "╭─ Options ─╮ a <b>\n```\n\n"
        '```html\n<span style="color: red">kept</span>\n```\n'
    )


def test_inline_attribute_lists_and_icons_are_dropped() -> None:
    text = (
        "Make sure you [Upgrade](../versions.md#upgrading){.internal-link target=_blank} first.\n\n"
        "[Subscribe](#){ .md-button } :material-check: done\n\n"
        "- item\n{ .annotate }\n\n"
        "  [Upgrade]: ../versions.md\n[^1]: A footnote stays.\n"
    )

    assert md(text) == (
        "Make sure you [Upgrade](../versions.md#upgrading) first.\n\n"
        "[Subscribe](#)  done\n\n- item\n\n[^1]: A footnote stays.\n"
    )


# --- Docusaurus MDX -------------------------------------------------------------------------

DOCUSAURUS = """\
---
id: tabs
title: Tabs
slug: /markdown-features/tabs
---

import Tabs from '@theme/Tabs';

import TabItem from '@theme/TabItem';
import {
  Highlight,
} from '@site/src/components';

To show tabbed content within Markdown files, you can fall back on MDX.

:::info

By default, tabs are rendered eagerly.

:::

:::note[Your Title]

Some **content** with `syntax`.

:::

::::tip Outer

:::danger{title="Inner"}
Nested text.
:::

::::

{/* A comment the page never shows
    spread over two lines */}

<DocCardList />

export const toc = [
  {value: 'x', id: 'x'},
];

<Tabs groupId="operating-systems">
  <TabItem value="win" label="Windows" default>

```bash
setx PATH x
```

  </TabItem>
  <TabItem value="mac" label="macOS">Use Command + C to copy.</TabItem>
</Tabs>

```mdx-code-block
:::caution Unwrapped

Rendered, not shown as code.

:::
```
"""


def test_docusaurus_mdx() -> None:
    # Adapted from Docusaurus' docs (markdown-features-tabs.mdx, -admonitions.mdx).
    parsed = parse_markdown(DOCUSAURUS, "fb")

    assert (parsed.title, parsed.slug, parsed.doc_id) == ("Tabs", "/markdown-features/tabs", "tabs")
    assert parsed.markdown == (
        "To show tabbed content within Markdown files, you can fall back on MDX.\n\n"
        "**Info:** By default, tabs are rendered eagerly.\n\n"
        "**Your Title:** Some **content** with `syntax`.\n\n"
        "**Outer:**\n**Inner:** Nested text.\n\n"
        "**Windows:**\n\n```bash\nsetx PATH x\n```\n\n"
        "**macOS:**\nUse Command + C to copy.\n\n"
        "**Unwrapped:** Rendered, not shown as code.\n"
    )


def test_prose_starting_with_import_is_not_esm() -> None:
    text = "import the data first, then export it.\n\nimport x from 'y';\n"

    assert md(text) == "import the data first, then export it.\n"


# --- Hugo -----------------------------------------------------------------------------------

HUGO = """\
+++
title = "Install Hugo"
slug = "install"
+++

## Prerequisites {#prereq}

{{< note >}}
Hugo needs **Git** for modules.
{{< /note >}}

{{% notice tip %}}
Run `hugo server` to preview.
{{% /notice %}}

{{% alert title="Warning" color="warning" %}} Prefer `let`
to `var`. {{%
/alert %}}

See [the guide]({{< ref "getting-started/quick-start.md" >}}) for {{< param "version" >}} more.

{{< figure src="arch.png" caption="The architecture" >}}

{{< youtube w7Ft2ymGmfc >}}

{{< tabpane >}}
{{< tab header="Linux" lang="bash" >}}
sudo snap install hugo
{{< /tab >}}
{{< /tabpane >}}

{{< highlight go "linenos=table" >}}
func main() {}
{{< /highlight >}}

Write {{</* ref "x" */>}} to link.
"""


def test_hugo_shortcodes() -> None:
    parsed = parse_markdown(HUGO, "fb")

    assert (parsed.title, parsed.slug) == ("Install Hugo", "install")
    assert parsed.markdown == (
        "## Prerequisites {#prereq}\n\n"
        "**Note:** Hugo needs **Git** for modules.\n\n"
        "**Tip:** Run `hugo server` to preview.\n\n"
        " Prefer `let`\nto `var`.\n\n"
        "See [the guide](getting-started/quick-start.md) for  more.\n\n"
        "The architecture\n\n"
        "**Linux:**\n\n```bash\nsudo snap install hugo\n```\n\n"
        "```go\nfunc main() {}\n```\n\n"
        'Write {{< ref "x" >}} to link.\n'
    )


def test_an_unpaired_line_shortcode_is_not_a_container() -> None:
    text = "{{< details >}}\n\nStill here.\n"

    assert md(text) == "Still here.\n"
