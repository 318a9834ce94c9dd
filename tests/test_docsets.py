"""Doc sets: each place searches the docs meant for it, and restricted docs never leak.

Two sets, each holding a phrase found nowhere else: `product` (everywhere, shared channels
too) and `runbooks` (the SRE channel, and the on-call engineer's DMs). Asked from every place
where `runbooks` is not allowed, its phrase appears in no answer, no citation, no Slack call
and no LLM request (checked through the fakes); asked where it is allowed, it is found."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.answer.retrieval import Retriever
from bot.wiring import Backends, make_indexer, open_backends
from config.docsets import DocSet, Place, allowed_sets
from config.settings import Settings, SettingsError, load_settings
from indexer.embedding import LocalEmbedder
from tests.conftest import MINILM, clear_own_variables, storage
from tests.fakes.slack_server import block_text, mention, message
from tests.slack_harness import Bot

SECRET_PHRASE = "MAGENTAFALCON"  # only in the runbooks
PUBLIC_PHRASE = "ZEBRAQUARTZ"  # only in the product docs
SRE, ONCALL, SHARED = "C0SRE0001", "U0ONCALL1", "C0SHARED1"
QUESTION = "How do I restart the payment gateway?"


def doc_sets(root: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "product",
            "description": "Public product documentation",
            "sources": [f"{root / 'product'}=https://docs.example.com/{{path_noext}}/"],
            "channels": ["*"],
            "external": True,
        },
        {
            "name": "runbooks",
            "sources": [f"{root / 'runbooks'}=https://runbooks.example.com/{{path_noext}}/"],
            "channels": [SRE, SHARED],
            "users": [ONCALL],
            "owners": ["U0SRELEAD"],
        },
    ]


def write_docs(root: Path) -> None:
    (root / "product").mkdir(parents=True)
    (root / "runbooks").mkdir()
    (root / "product" / "payments.md").write_text(
        "# Payments\n\n## Card payments\n\nCards are charged at checkout; receipts go out "
        f"by e-mail. The {PUBLIC_PHRASE} light shows the service is healthy.\n"
    )
    (root / "runbooks" / "gateway.md").write_text(
        "# Gateway runbook\n\n## Restarting the payment gateway\n\nTo restart the payment "
        f"gateway, page the on-call engineer and run the {SECRET_PHRASE} procedure.\n"
    )


@pytest.fixture(scope="module")
def sets_index(
    tmp_path_factory: pytest.TempPathFactory, minilm: LocalEmbedder
) -> Iterator[Backends]:
    root = tmp_path_factory.mktemp("docsets")
    write_docs(root)
    with pytest.MonkeyPatch.context() as mp:
        clear_own_variables(mp)
        settings = Settings(
            **storage(root),
            doc_sets=doc_sets(root),
            embedding_model=MINILM,
            reranker_model=None,
            device="cpu",
            dtype="float32",
        )
        backends = open_backends(settings, embedder=minilm)
        report = make_indexer(backends).run()
        assert report.docs_added == 2
    yield backends
    backends.close()


# --- configuration and the rules ----------------------------------------------------------------


def test_sets_come_from_toml_or_one_json_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docsbot.toml").write_text(
        '[[doc_sets]]\nname = "product"\nsources = ["./docs"]\nchannels = ["*"]\n'
        'external = true\n\n[[doc_sets]]\nname = "runbooks"\nsources = ["./runbooks"]\n'
        'channels = ["C0SRE0001"]\nusers = ["U0ONCALL1"]\n'
    )
    from_toml = load_settings()
    assert [s.name for s in from_toml.sets] == ["product", "runbooks"]
    assert all(src.key.startswith("runbooks:") for src in from_toml.sets[1].sources)
    (tmp_path / "docsbot.toml").unlink()
    monkeypatch.setenv("DOCSBOT_DOC_SETS", json.dumps(doc_sets(tmp_path)))
    assert [s.name for s in load_settings().sets] == ["product", "runbooks"]
    monkeypatch.setenv("DOCSBOT_SOURCES", "./docs")
    with pytest.raises(SettingsError, match="either DOCSBOT_SOURCES"):
        load_settings()


def test_without_doc_sets_one_set_is_searchable_everywhere_as_before() -> None:
    settings = Settings(sources=["./docs"])
    [only] = settings.sets
    assert only.implicit and only.everywhere and only.external
    assert not only.sources[0].key.startswith("docs:")  # existing indexes keep their keys
    assert allowed_sets(settings.sets, Place.of("C9", "U9", external=True)) == ["docs"]


@pytest.mark.parametrize(
    ("place", "allowed"),
    [
        (Place.of("C1", "U1"), ["product"]),
        (Place.of("C1", ONCALL), ["product"]),  # the channel decides, not who asks
        (Place.of(SRE, "U1"), ["product", "runbooks"]),
        (Place.of(SHARED, "U1", external=True), ["product"]),  # Slack Connect: external only
        (Place("D1", "U1", private=True), ["product"]),
        (Place("D2", ONCALL, private=True), ["product", "runbooks"]),
    ],
)
def test_who_may_search_what(tmp_path: Path, place: Place, allowed: list[str]) -> None:
    sets = [DocSet.model_validate(s) for s in doc_sets(tmp_path)]
    assert allowed_sets(sets, place) == allowed


def test_every_search_is_filtered_to_the_allowed_sets(sets_index: Backends) -> None:
    retriever = Retriever(sets_index.embedder, sets_index.store, None)
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search(QUESTION, mode, 10, sets=["product"])  # type: ignore[arg-type]
        assert hits and {h.doc_set for h in hits} == {"product"}, mode
        assert all(SECRET_PHRASE not in h.text for h in hits)
        both = retriever.search(QUESTION, mode, 10, sets=["product", "runbooks"])  # type: ignore[arg-type]
        assert {h.doc_set for h in both} == {"product", "runbooks"}, mode
    assert retriever.search(QUESTION, "hybrid", 10, sets=[]) == []


# --- nothing crosses a boundary in Slack --------------------------------------------------------


def everything_sent(bot: Bot) -> str:
    """Every Slack call's arguments and every LLM request, as text."""
    slack = [json.dumps(c.params) for c in bot.slack.calls + bot.slack.refused]
    llm = [json.dumps(r.json) for r in bot.openai.requests]
    return "\n".join(slack + llm)


@pytest.fixture
def sets_bot(make_bot: Callable[..., Bot], sets_index: Backends) -> Bot:
    settings = sets_index.settings
    bot = make_bot(
        backends=sets_index,
        doc_sets=[s.model_dump() for s in settings.doc_sets],
        offer_private_answers=True,
    )
    bot.openai.chat_reply = "Here is what the docs say [1]."
    bot.slack.shared_channels.add(SHARED)
    return bot


def test_where_runbooks_are_not_allowed_nothing_of_them_reaches_anyone(sets_bot: Bot) -> None:
    bot = sets_bot
    bot.send.event(mention(QUESTION, channel="C1", user="U1", ts="10.1"))  # a channel
    bot.send.event(mention(QUESTION, channel=SHARED, user="U1", ts="11.1"))  # Slack Connect
    bot.send.event(  # a DM from someone who is not on call
        message(QUESTION, channel="D1", user="U1", ts="12.1", channel_type="im")
    )
    bot.send.event(  # the assistant pane of someone who is not on call
        message(QUESTION, channel="D2", user="U2", ts="13.2", thread_ts="13.1", channel_type="im")
    )
    bot.send.command(QUESTION, channel="C1", user="U1", response_url=bot.slack.response_url("a"))
    bot.wait_status("answered", count=5, timeout=120)
    bot.send.event(  # a follow-up in the channel thread, by the on-call engineer
        message("and after that?", channel="C1", user=ONCALL, ts="10.2", thread_ts="10.1")
    )
    bot.wait_status("answered", count=6, timeout=120)
    assert SECRET_PHRASE not in everything_sent(bot)
    for row in bot.rows():
        assert row.doc_sets == ["product"], (row.kind, row.channel_id)
        assert all(c.get("doc_set") == "product" for c in row.citations or [])


def test_where_runbooks_are_allowed_they_are_found(sets_bot: Bot) -> None:
    bot = sets_bot
    bot.send.event(mention(QUESTION, channel=SRE, user="U1", ts="20.1"))
    bot.send.event(message(QUESTION, channel="D3", user=ONCALL, ts="21.1", channel_type="im"))
    rows = bot.wait_status("answered", count=2, timeout=120)
    assert all(r.doc_sets == ["product", "runbooks"] for r in rows)
    llm = [json.dumps(r.json) for r in bot.openai.requests]
    assert sum(SECRET_PHRASE in request for request in llm) == 2
    answers = [c for c in bot.slack.calls_to("chat.update") if c.params.get("channel") == SRE]
    sources = block_text(answers[-1].params["blocks"])
    assert "runbooks" in sources  # the sources block names each source's set


def test_the_on_call_engineer_is_offered_the_private_answer_alone(sets_bot: Bot) -> None:
    bot = sets_bot
    bot.send.event(mention(QUESTION, channel="C1", user=ONCALL, ts="30.1"))
    [asked] = bot.wait_status("answered", timeout=120)
    [offer] = bot.slack.wait_for("chat.postEphemeral", lambda p: p.get("user") == ONCALL)
    assert SECRET_PHRASE not in json.dumps(offer.params)
    assert bot.slack.ephemerals[-1].seen  # in the answer's thread, which exists
    [button] = [b for b in offer.params["blocks"] if b["type"] == "actions"]
    click = {"user": "U1", "channel": "C1", "message_ts": "30.1"}  # someone else: refused
    bot.send.click(button["elements"][0]["action_id"], str(asked.id), **click)
    click = {"user": ONCALL, "channel": "C1", "message_ts": "30.1"}
    bot.send.click(button["elements"][0]["action_id"], str(asked.id), **click)
    rows = bot.wait_status("answered", count=2, timeout=120)
    private = rows[-1]
    assert private.kind == "dm" and private.channel_id.startswith("D")
    assert private.doc_sets == ["product", "runbooks"] and private.user_id == ONCALL
    assert SECRET_PHRASE in json.dumps(bot.openai.requests[-1].json)
    channel_side = [
        json.dumps(c.params) for c in bot.slack.calls if c.params.get("channel") == "C1"
    ]
    assert not any(SECRET_PHRASE in text for text in channel_side)


def test_the_home_tab_shows_each_person_only_their_sets(sets_bot: Bot) -> None:
    bot = sets_bot
    for user in ("U1", ONCALL):
        bot.send.event({"type": "app_home_opened", "user": user, "tab": "home"})
    views = bot.slack.wait_for("views.publish", count=2)
    shown = {c.params["user_id"]: json.dumps(c.params["view"]) for c in views}
    assert "runbooks" not in shown["U1"] and "product" in shown["U1"]
    assert "runbooks" in shown[ONCALL]


def test_ask_from_the_command_line_searches_what_slack_would(
    sets_index: Backends, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.cli.app import app

    settings = sets_index.settings
    monkeypatch.setenv("DOCSBOT_DOC_SETS", json.dumps([s.model_dump() for s in settings.doc_sets]))
    monkeypatch.setenv("DOCSBOT_MILVUS_URI", settings.milvus_uri)  # this process has it open
    monkeypatch.setenv("DOCSBOT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DOCSBOT_EMBEDDING_MODEL", MINILM)
    monkeypatch.setenv("DOCSBOT_RERANKER_MODEL", "none")
    monkeypatch.setenv("DOCSBOT_LLM_MODEL", "none")
    runner = CliRunner()

    def cited_sets(*args: str) -> set[str]:
        result = runner.invoke(app, ["ask", QUESTION, "--json", *args])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout.strip().splitlines()[-1])
        return {c["doc_set"] for c in payload["citations"]}

    assert cited_sets("--channel", "C1", "--user", ONCALL) == {"product"}
    assert cited_sets("--channel", SHARED, "--user", "U1", "--shared") == {"product"}
    assert "runbooks" in cited_sets("--channel", SRE, "--user", "U1")
    assert "runbooks" in cited_sets("--user", ONCALL)  # a DM
    assert cited_sets("--user", "U1") == {"product"}


def test_one_set_is_re_indexed_alone_and_deletes_only_its_own(
    make_settings: Callable[..., Settings], tmp_path: Path, minilm: LocalEmbedder
) -> None:
    write_docs(tmp_path)
    (tmp_path / "runbooks" / "oncall.md").write_text("# On call\n\nWho carries the pager.\n")
    backends = open_backends(make_settings(doc_sets=doc_sets(tmp_path)), embedder=minilm)
    try:
        indexer = make_indexer(backends)
        assert indexer.run().docs_added == 3
        (tmp_path / "runbooks" / "gateway.md").unlink()
        (tmp_path / "product" / "payments.md").write_text("# Payments\n\nNow by invoice too.\n")

        product = indexer.run(only_set="product")
        assert (product.docs_changed, product.docs_removed, product.docs_seen) == (1, 0, 1)
        runbooks = indexer.run(only_set="runbooks", confirm_deletions=True)
        assert (runbooks.docs_removed, runbooks.docs_seen) == (1, 1)
        hits = backends.store.search_bm25("payments invoice", 5, ["product"])
        assert hits and all(h.doc_set == "product" for h in hits)
        assert backends.store.search_bm25("gateway restart", 5, ["runbooks"]) == []
    finally:
        backends.close()


def test_channels_slack_does_not_know_are_reported_not_fatal(tmp_path: Path) -> None:
    from slack_sdk import WebClient

    from bot.slack.budget import SlackBudget
    from bot.slack.gate import SlackGate
    from bot.slack.scope import check_channels
    from tests.fakes.slack_server import FakeSlack

    settings = Settings(doc_sets=doc_sets(tmp_path))
    with FakeSlack() as slack:
        slack.unknown_channels.add(SHARED)
        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        assert check_channels(settings, SlackGate(client, SlackBudget())) == [SHARED]
