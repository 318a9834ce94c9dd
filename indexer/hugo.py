"""Hugo shortcodes: `{{< name args >}}` and `{{% name args %}}`.

Wrappers (`note`, `tabs`, `details`...) give way to their content, titled where the shortcode
names a title; `highlight` becomes a fenced block; inline ones (`ref`, `figure`) become the
words they render, and the rest (`youtube`, `param`) nothing. `{{</* x */>}}` is Hugo's way of
showing a shortcode literally, and stays literal.
"""

from __future__ import annotations

import re

LINE = re.compile(r"^[ \t]*\{\{([<%])[ \t]*(?![/*])([\w./-]+)(.*?)[ \t]*[>%]\}\}[ \t]*$")
INLINE = re.compile(r"\{\{([<%])(/\*)?\s*([^{}]*?)\s*(\*/)?([>%])\}\}")
ARG = re.compile(r"""(?:([\w-]+)=)?("[^"]*"|'[^']*'|`[^`]*`|[^\s"'`=]+)""")
NOTES = {"note", "notice", "alert", "hint", "tip", "warning", "info", "caution", "important"}
NOTES |= {"danger", "callout", "admonition", "warn", "attention", "expand", "details", "box"}
TITLED = {"note", "hint", "tip", "warning", "info", "caution", "important", "danger", "warn"}
TABS = {"tab", "tabpane", "tab-item"}
CODE = {"highlight", "code", "code-toggle"}
INLINE_ONLY = {"ref", "relref", "param", "figure", "img", "image", "youtube", "vimeo", "tweet"}
INLINE_ONLY |= {"x", "gist", "instagram", "imgproc", "readfile", "include", "asciinema"}


def _args(text: str) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    named: dict[str, str] = {}
    for key, value in ARG.findall(text):
        value = value[1:-1] if value[:1] in "\"'`" else value
        if key:
            named[key.lower()] = value
        else:
            positional.append(value)
    return positional, named


def opening(line: str) -> tuple[str, str, str | None, str] | None:
    """A line that is only an opening shortcode: (style, name, title, code language)."""
    match = LINE.match(line)
    if not match or match.group(3).rstrip().endswith("/"):
        return None
    name = match.group(2).lower()
    if name in INLINE_ONLY:
        return None
    positional, named = _args(match.group(3))
    if name in CODE:
        return "code", name, None, (positional[0] if positional else named.get("lang", ""))
    title = next((named[k] for k in ("title", "name", "header", "label") if k in named), None)
    if name in TABS:  # Docsy: a tab with `lang` holds code
        return "tab", name, title or (positional[0] if positional else None), named.get("lang", "")
    if name in NOTES:
        kind = named.get("type") or named.get("style") or (positional[0] if positional else "")
        title = title or (kind.capitalize() if kind else None)
        return "note", name, title or (name.capitalize() if name in TITLED else None), ""
    return "plain", name, None, ""


CLOSING = re.compile(r"\{\{[<%]\s*/\s*([\w./-]+)\s*[>%]\}\}")


def closed_names(text: str) -> set[str]:
    """The shortcodes `text` closes somewhere: only those can open a container."""
    return {name.lower() for name in CLOSING.findall(text)}


def closes(name: str, line: str) -> bool:
    match = INLINE.fullmatch(line.strip())
    return bool(match and not match.group(2) and match.group(3).lstrip("/ ").lower() == name)


def _inline(match: re.Match[str]) -> str:
    inner = match.group(3)
    if match.group(2) and match.group(4):  # {{</* x */>}} shows {{< x >}}
        return "{{" + match.group(1) + " " + inner + " " + match.group(5) + "}}"
    name, _, rest = inner.replace("\n", " ").partition(" ")
    positional, named = _args(rest.rstrip("/ "))
    name = name.lower()
    if name in ("ref", "relref"):
        return positional[0] if positional else named.get("path", "")
    if name in ("figure", "img", "image"):
        return next((named[k] for k in ("caption", "title", "alt") if named.get(k)), "")
    return ""  # a wrapper's own tag, or a shortcode that renders no words


def reduce_inline(prose: str) -> str:
    return INLINE.sub(_inline, prose)
