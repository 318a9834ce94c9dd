"""HTML pages to Markdown, with markdownify.

Structure is what retrieval and answers need from a rendered page: fenced code with its
language (inside list items too), numbered and nested lists, inline code, tables and
definition lists. Site chrome (navigation, scripts, copy buttons, permalink marks) goes first;
a heading keeps the page's own `id` as `{#id}`, so a section links where the site does.
"""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup, Tag
from markdownify import MarkdownConverter

from indexer.markup import Parsed, first_heading

CHROME = ["script", "style", "nav", "header", "footer", "aside", "noscript", "form", "button"]
CHROME += ["svg", "template", "iframe"]
PERMALINK = re.compile(r"headerlink|hash-link|anchor-link|^anchor$|permalink")
LANGUAGE = re.compile(r"^(?:language|lang|highlight)-([\w+#.-]+)$")
NOT_LANGUAGES = {"none", "plaintext", "text", "default", "source", "notranslate", "ipython3"}
ADMONITION_TITLE = re.compile(r"admonition-title|admonitionHeading|callout-title")


def _classes(tag: Tag | None) -> list[str]:
    if tag is None:
        return []
    value = tag.get("class")
    return value if isinstance(value, list) else str(value or "").split()


def _language(pre: Tag) -> str:
    """`language-py` and kin on the block, its `code` or the highlight wrappers around it."""
    code = pre.find("code")
    parent = pre.parent
    wrappers = [parent, parent.parent] if parent is not None else []
    for tag in [code if isinstance(code, Tag) else None, pre, *wrappers]:
        for name in _classes(tag if isinstance(tag, Tag) else None):
            match = LANGUAGE.match(name)
            if match and match.group(1).lower() not in NOT_LANGUAGES:
                return match.group(1).lower()
    return ""


class _Converter(MarkdownConverter):
    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return text  # relative links mean nothing out of the site; the words stay

    def convert_b(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return text  # emphasis, as in Markdown sources' inline HTML, adds nothing to retrieve

    convert_strong = convert_em = convert_i = convert_b

    def convert_img(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return ""

    def convert_hN(self, n: int, el: Tag, text: str, parent_tags: set[str]) -> str:
        text = re.sub(r"\s+", " ", text).strip()
        if "_inline" in parent_tags or not text:
            return text
        anchor = el.get("id")
        suffix = f" {{#{anchor}}}" if isinstance(anchor, str) and anchor else ""
        return f"\n\n{'#' * max(1, min(6, n))} {text}{suffix}\n\n"


def _heading_ids(root: Tag) -> None:
    """Each heading's anchor as its `id`, permalink marks removed from its text."""
    for heading in root.find_all(re.compile(r"^h[1-6]$")):
        anchor = heading.get("id")
        for link in heading.find_all("a"):
            href = link.get("href")
            permalink = any(PERMALINK.search(c) for c in _classes(link)) or (
                link.get("aria-hidden") == "true"
            )
            if permalink or (isinstance(href, str) and href.startswith("#") and not link.text):
                if not anchor and isinstance(href, str) and href.startswith("#"):
                    anchor = href[1:]
                link.decompose()
            elif not anchor and isinstance(link.get("id"), str) and not link.text.strip():
                anchor = link.get("id")  # <a id="x"></a> placed for the anchor
                link.decompose()
        parent = heading.parent
        first = parent.find(re.compile(r"^h[1-6]$")) if parent is not None else None
        if not anchor and parent is not None and parent.name == "section" and first is heading:
            anchor = parent.get("id")  # Sphinx puts the id on the section
        if isinstance(anchor, str) and anchor:
            heading["id"] = anchor


def _code_blocks(root: Tag) -> None:
    # Line numbers set beside the code in a table: the code (and its language wrapper) stays.
    for table in root.select("table.highlighttable, table.codehilitetable"):
        cell = table.select_one("td.code")
        code = cell.find(True) if cell is not None else None
        table.replace_with(code if isinstance(code, Tag) else "")
    for pre in root.find_all("pre"):
        for number in pre.select(".linenos, .lineno, .linenodiv, .line-number"):
            number.decompose()
        for br in pre.find_all("br"):
            br.replace_with("\n")


def _admonitions(root: Tag) -> None:
    """A box's title leads its first paragraph, as the Markdown dialects have it."""
    for title in root.find_all(class_=ADMONITION_TITLE) + root.find_all("summary"):
        text = re.sub(r"\s+", " ", title.get_text(" ", strip=True))
        label = f"**{text}**" if text[-1:] in (".", ":", "?", "!") else f"**{text}:**"
        box = title.parent
        paragraphs = box.find_all("p") if isinstance(box, Tag) else []
        paragraph = next((p for p in paragraphs if p is not title), None)
        if text and isinstance(paragraph, Tag):
            paragraph.insert(0, label + " ")
            title.decompose()
        elif text:
            title.replace_with(BeautifulSoup(f"<p>{label}</p>", "html.parser"))
        else:
            title.decompose()


def html_to_markdown(text: str, fallback_title: str) -> Parsed:
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(strip=True) if title_tag else ""
    for junk in soup(CHROME):
        junk.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    assert isinstance(root, Tag)
    _heading_ids(root)
    _code_blocks(root)
    _admonitions(root)
    options: dict[str, Any] = {
        "heading_style": "ATX",
        "bullets": "-",
        "escape_asterisks": False,
        "escape_underscores": False,
        "code_language_callback": _language,
        "table_infer_header": True,
    }
    markdown = _Converter(**options).convert_soup(root)
    markdown = re.sub(r"[ \t]+\n", "\n", markdown)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip() + "\n"
    return Parsed(title=title or first_heading(markdown) or fallback_title, markdown=markdown)
