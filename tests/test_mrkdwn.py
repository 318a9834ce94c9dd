"""Markdown → Slack mrkdwn, escaping, splitting, and Block Kit builders: pure functions."""

from __future__ import annotations

from bot.answer.types import Answer, Citation
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.mrkdwn import SECTION_LIMIT, escape, from_slack, split_mrkdwn, to_mrkdwn


def test_markdown_becomes_mrkdwn() -> None:
    md = "## Install\n\nUse **Docker** and *care*, not ~~luck~~.\n\n- one\n  - two\n1. first"
    assert to_mrkdwn(md) == (
        "*Install*\n\nUse *Docker* and _care_, not ~luck~.\n\n• one\n  • two\n1. first"
    )


def test_code_is_kept_verbatim_but_escaped_and_tables_become_code() -> None:
    md = "```python\nif a < b and c:\n    x = **y**\n```\n\n| k | v |\n|---|---|\n| a | b |"
    out = to_mrkdwn(md)
    assert out.startswith("```\nif a &lt; b and c:\n    x = **y**\n```")
    assert out.endswith("```\n| k | v |\n|---|---|\n| a | b |\n```")


def test_nothing_can_ping_or_hide_a_link() -> None:
    hostile = "<!channel> hi @here <https://evil.example|docs> [click](https://evil.example)"
    out = to_mrkdwn(hostile, {1: "https://docs.example/a#b"})
    assert "<!channel>" not in out and "&lt;!channel&gt;" in out
    assert "@here" not in out and "@\u2060here" in out
    assert "|docs>" not in out  # Slack's masked-link syntax arrives escaped
    assert "click (<https://evil.example>)" in out  # an unknown link shows where it goes
    assert escape("a & <b>") == "a &amp; &lt;b&gt;"


def test_citations_link_to_their_sections_and_known_links_stay_masked() -> None:
    out = to_mrkdwn(
        "See [the guide](https://docs.example/a#b) [1].", {1: "https://docs.example/a#b"}
    )
    assert out == "See <https://docs.example/a#b|the guide> <https://docs.example/a#b|[1]>."
    assert "`[1]`" in to_mrkdwn("Index `[1]` is code [1].", {1: "https://d/x"})


def test_long_answers_split_under_the_section_limit_keeping_code_blocks_whole() -> None:
    prose = ("A sentence of prose. " * 40 + "\n\n") * 6
    code = "```\n" + "\n".join(f"line {i} of code" for i in range(400)) + "\n```"
    pieces = split_mrkdwn(prose + code)
    assert len(pieces) > 3 and all(len(p) <= SECTION_LIMIT for p in pieces)
    for piece in pieces:
        assert piece.count("```") % 2 == 0, "every piece opens and closes its own code"
    joined = "\n".join(pieces)
    assert all(f"line {i} of code" in joined for i in range(400))


def test_slack_markup_becomes_the_question_searched() -> None:
    text = "<@UBOT> why does <#C1|general> say &lt;error&gt;? see <https://x.y/z|this> <@U2>"
    assert from_slack(text, "UBOT") == "why does #general say <error>? see this (https://x.y/z) @U2"


def test_answer_blocks_carry_sources_and_feedback_on_the_last_message() -> None:
    citations = [
        Citation(1, "Install", "On Windows", "install.md", "https://d/install#win", 0.9),
        Citation(2, "FAQ", "", "faq.md", "file:///srv/docs/faq.md#top", 0.5),
    ]
    answer = Answer("q", "Use Docker [1][2].\n\n" + "More. " * 3000, "llm", citations)
    messages = kit.answer_messages(answer, 42)
    assert all(len(m) <= kit.MAX_BLOCKS for m in messages)
    last = messages[-1]
    assert last[-1]["type"] == "actions"
    assert [e["value"] for e in last[-1]["elements"]] == ["42", "42"]
    sources = last[-2]["elements"][0]["text"]
    assert "<https://d/install#win|[1] Install › On Windows>" in sources
    assert "[2] FAQ (`faq.md#top`)" in sources  # no clickable file:// links in Slack
    first = messages[0][0]["text"]["text"]
    assert first.startswith("Use Docker <https://d/install#win|[1]>")


def test_vote_acknowledgements() -> None:
    assert "👍" in words.vote_thanks("up", None)
    assert "changed from 👍" in words.vote_thanks("down", "up")
    assert "already" in words.vote_thanks("up", "up")


def test_streamed_pieces_are_escaped_the_same_however_they_are_cut() -> None:
    from bot.slack.mrkdwn import escape_stream

    text = "Ask @here or <!channel>, see [the docs](https://evil.example/login) & more"
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    streamed = "".join(escape_stream(p) for p in pieces)
    assert streamed == escape_stream(text)
    assert "@here" not in streamed and "<!channel>" not in streamed
    assert "](" not in streamed.replace("\\](", "")  # no Markdown link can form


def test_code_inside_a_link_label_and_stray_placeholders() -> None:
    out = to_mrkdwn("See [`search()`](https://d/x) [1].", {1: "https://d/x"})
    assert out == "See <https://d/x|`search()`> <https://d/x|[1]>."
    assert "\x00" not in to_mrkdwn("odd \x000\x00 text [1]", {1: "https://d/x"})


def test_overlong_lines_are_cut_between_words() -> None:
    line = " ".join(f"word{i}" for i in range(1500))
    pieces = split_mrkdwn(line)
    assert len(pieces) > 1 and all(len(p) <= SECTION_LIMIT for p in pieces)
    words = " ".join(pieces).split()
    assert words == line.split()


# -- the converter built on markdown-it-py's tokens (issue "Slack as it really is") ---------


def test_headings_are_bold_lines_without_nested_bold() -> None:
    # Was `*Title *x*`: a bold inside the bold line closed it early.
    assert to_mrkdwn("# Title **x**") == "*Title x*"
    assert to_mrkdwn("## A *b* [c](https://d/x) [1]", {1: "https://d/x"}) == (
        "*A _b_ <https://d/x|c> <https://d/x|[1]>*"
    )


def test_bold_italic_strike_nest_the_way_slack_reads_them() -> None:
    assert to_mrkdwn("***b***") == "*_b_*"  # was `*_b*_`: crossed markers
    assert to_mrkdwn("**bold**, *it*, ~~gone~~, ***both***") == "*bold*, _it_, ~gone~, *_both_*"
    # Slack formats within a line: a style spanning a line break is closed and reopened.
    assert to_mrkdwn("**a\nb**") == "*a*\n*b*"
    # Inside a word Slack needs a boundary: a zero-width space gives it one.
    assert to_mrkdwn("foo**bar**baz") == "foo\u200b*bar*\u200bbaz"


def test_bare_urls_are_never_rewritten() -> None:
    out = to_mrkdwn("See https://example.com/*x*/a*b*c/_y_/~z~/ now.")
    assert out == "See <https://example.com/*x*/a*b*c/_y_/~z~/> now."  # was `/_x_/`
    # Trailing punctuation and an unbalanced `)` are prose (GFM's autolink rule).
    assert to_mrkdwn("(see https://x/Foo_(bar)).") == "(see <https://x/Foo_(bar)>)."


def test_links_with_parentheses_in_the_url() -> None:
    assert to_mrkdwn("[Foo](https://x/Foo_(bar))") == "Foo (<https://x/Foo_(bar)>)"
    known = {1: "https://x/Foo_(bar)"}
    assert to_mrkdwn("[Foo](https://x/Foo_(bar))", known) == "<https://x/Foo_(bar)|Foo>"


def test_link_rules_known_unknown_and_non_http() -> None:
    links = {1: "https://docs.example/ñ#a"}
    md = "[known](https://docs.example/ñ#a) [other](https://e.example) [f](file:///etc/x)"
    assert to_mrkdwn(md + " [m](mailto:a@b.c) <https://a.b/c>", links) == (
        "<https://docs.example/%C3%B1#a|known> other (<https://e.example>) f m <https://a.b/c>"
    )
    # A `|` cannot end a label early; a citation inside a link's label stays text.
    assert to_mrkdwn("[a|b](https://e/x)") == "a¦b (<https://e/x>)"
    assert to_mrkdwn("[see [1]](https://e/x)", {1: "https://d/1"}) == "see [1] (<https://e/x>)"
    # Numbered links read as citations, whether inline or with a definition.
    assert to_mrkdwn("[2](https://d/2)", {2: "https://d/2"}) == "<https://d/2|[2]>"
    assert to_mrkdwn("[3]\n\n[3]: https://d/3", {3: "https://d/3"}) == "<https://d/3|[3]>"
    assert to_mrkdwn("[4] and [5]", {4: "file:///x"}) == "[4] and [5]"  # nothing to link to


def test_backslash_escapes_stay_literal() -> None:
    # Was `\_x\_`. Slack has no escape: a literal marker that could pair becomes a look-alike;
    # one that cannot pair is left alone.
    out = to_mrkdwn(r"\*x\* and \_y\_ and \~z\~ and \`c\`")
    assert out == "∗x∗ and ˍyˍ and ∼z∼ and ˋcˋ"
    assert to_mrkdwn(r"2 * 3, snake_case, ~5 min, a\*b") == "2 * 3, snake_case, ~5 min, a*b"
    assert to_mrkdwn(r"\*a **b**") == "∗a *b*"  # nor with one of ours
    assert to_mrkdwn(r"\[1\] \# not a heading", {1: "https://d/x"}) == "[1] # not a heading"


def test_broadcasts_are_defused_in_prose_only() -> None:
    md = "Tell @here, me@here.com and @channel: `echo @here`\n\n```\nping @everyone <b>\n```"
    out = to_mrkdwn(md)
    assert out == (
        "Tell @\u2060here, me@here.com and @\u2060channel: `echo @here`\n\n"
        "```\nping @everyone &lt;b&gt;\n```"
    )
    assert escape("mail me@here.com or @here") == "mail me@here.com or @\u2060here"


def test_code_blocks_are_never_altered() -> None:
    code = "def f(a, b):\n    return a*b * _x_ ~y~ @here  # **no** [1]\n\n\n    pass"
    out = to_mrkdwn(f"- item\n\n  ```python\n{_indent(code)}\n  ```\n> ~~~\n> {code[:6]}\n> ~~~")
    assert f"```\n{code}\n```" in out  # no indent, no escapes, no word joiners
    assert out.endswith("```\ndef f(\n```")  # nor a quote sign inside code
    assert to_mrkdwn("```\nx\n") == "```\nx\n```"  # an unclosed fence (a half-written answer)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.split("\n"))


def test_tables_are_aligned_code() -> None:
    md = "| Option | Default | Notes |\n|---|:-:|--:|\n| `a<b` | 1 | **x** [l](https://u) |"
    assert to_mrkdwn(md) == (
        "```\n"
        "| Option | Default |           Notes |\n"
        "|--------|---------|-----------------|\n"
        "| a&lt;b    |    1    | x l (https://u) |\n"
        "```"
    )
    wide = to_mrkdwn("| a | b |\n|---|---|\n| 日本 | x |").split("\n")
    assert wide[1] == "| a    | b |" and wide[3] == "| 日本 | x |"


def test_lists_nest_and_keep_their_numbers_and_quotes_keep_their_sign() -> None:
    md = "3. three\n4. four\n   - sub\n     1. deep\n5. five\n\n> **Note**\n> - quoted\n\n---"
    assert to_mrkdwn(md) == (
        "3. three\n4. four\n   • sub\n     1. deep\n5. five\n\n> *Note*\n> • quoted\n\n───"
    )


def test_from_slack_reads_groups_dates_and_broadcasts() -> None:
    text = "<!subteam^S0614TZR7|@team> on <!date^1392734382^{date_pretty}|Feb 18>: <!here> ok?"
    assert from_slack(text) == "@team on Feb 18: @here ok?"  # was "@@team on @Feb 18"
    assert from_slack("<!channel> <!everyone> <!date^1392734382^{date}>") == (
        "@channel @everyone 2014-02-18"
    )


def test_escape_does_not_reformat_what_it_is_given() -> None:
    assert escape("a*b* _c_ <!here> & @everyone") == "a*b* _c_ &lt;!here&gt; &amp; @\u2060everyone"


def test_split_keeps_converted_tables_and_code_closed() -> None:
    rows = "\n".join(f"| {i} | value {i} |" for i in range(300))
    pieces = split_mrkdwn(to_mrkdwn("Intro.\n\n| k | v |\n|---|---|\n" + rows))
    assert len(pieces) > 1 and all(len(p) <= SECTION_LIMIT for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)
