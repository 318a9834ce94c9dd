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
