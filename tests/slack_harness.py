"""The Slack bot as the tests run it: the real Bolt app and worker pool behind the real HTTP
server, a strict fake Slack and a fake OpenAI on loopback, one index of the fixture docs per
module (a copy of the session's pristine index) and an SQL database per bot."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.answer.condense import CONDENSE_PROMPT
from bot.queue.store import QuestionStore
from bot.queue.tables import Feedback, Question
from bot.slack import blocks as kit
from bot.slack.server import BotServer, build_server, slack_client
from bot.wiring import Backends, make_answerer, open_backends
from config.db import make_engine, make_session_factory, upgrade
from config.settings import Settings
from indexer.embedding import LocalEmbedder
from tests.conftest import MINILM, clear_own_variables, storage
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack, SlackSender, action_ids

SECRET = "test-signing-secret"
WINDOWS = "How do I install Milvus on Windows?"
WINDOWS_PAGE = "https://milvus.io/docs/operational_faq.md"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def index(
    tmp_path_factory: pytest.TempPathFactory, pristine_index: Path, minilm: LocalEmbedder
) -> Iterator[Backends]:
    """The fixture docs indexed (a copy of the pristine index) for the module; each bot gets
    its own SQL database."""
    root = tmp_path_factory.mktemp("slack-index")
    shutil.copytree(pristine_index, root / "data")
    with pytest.MonkeyPatch.context() as mp:
        clear_own_variables(mp)
        settings = Settings(
            **storage(root),
            embedding_model=MINILM,
            reranker_model=None,
            device="cpu",
            dtype="float32",
        )
        backends = open_backends(settings, embedder=minilm)
        backends.store.check_model()
    yield backends
    backends.close()


def reply_with_citations(body: dict[str, Any]) -> str:
    """The fake model: rewrites follow-ups when asked to, otherwise answers citing [1]."""
    messages = body["messages"]
    if messages[0]["content"] == CONDENSE_PROMPT:
        return "How do I uninstall Milvus on Windows?"
    return "Milvus runs on Windows with **Docker Desktop** [1]. See also [2] and [9]."


@dataclass
class Bot:
    server: BotServer
    slack: FakeSlack
    openai: FakeOpenAI
    send: SlackSender
    store: QuestionStore

    def rows(self) -> list[Question]:
        with self.store.sessions() as session:
            return list(session.scalars(select(Question).order_by(Question.id)))

    def votes(self) -> list[Feedback]:
        with self.store.sessions() as session:
            return list(session.scalars(select(Feedback)))

    def wait_status(self, status: str, count: int = 1, timeout: float = 60) -> list[Question]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.rows() if r.status == status]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} question(s) {status}: {[r.status for r in self.rows()]}")

    def answers(self, channel: str) -> list[dict[str, Any]]:
        """Final answer messages (the ones carrying 👍/👎) posted or updated in a channel."""
        return [
            c.params
            for c in self.slack.calls
            if c.method in ("chat.update", "chat.postMessage")
            and c.params.get("channel") == channel
            and kit.FEEDBACK_UP in action_ids(c.params.get("blocks") or [])
        ]


@pytest.fixture
def make_bot(
    index: Backends, tmp_path: Path, fake_openai: FakeOpenAI
) -> Iterator[Callable[..., Bot]]:
    started: list[tuple[BotServer, FakeSlack]] = []
    fake_openai.chat_reply = reply_with_citations
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    upgrade(engine)
    sessions = make_session_factory(engine)

    def start(
        *,
        prepare: Callable[[QuestionStore], None] | None = None,
        socket_url: str | None = None,
        backends: Backends | None = None,
        slack_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Bot:
        slack = FakeSlack(**(slack_options or {})).__enter__()
        slack.socket_url = socket_url
        values: dict[str, Any] = {
            **{k: getattr(index.settings, k) for k in ("milvus_uri", "embedding_model")},
            "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
            "reranker_model": None,
            "slack_bot_token": "xoxb-test",
            "slack_signing_secret": SECRET,
            "slack_api_url": slack.api_url,
            "openai_base_url": f"{fake_openai.url}/v1",
            "openai_api_key": "test",
            "llm_max_retries": 0,
            "workers": 2,
        }
        values.update(overrides)
        settings = Settings(**values)
        store = QuestionStore(sessions, max_queued=settings.max_queued)
        if prepare:
            prepare(store)
        answerer = make_answerer(replace(backends or index, settings=settings), None, load=False)
        server = build_server(settings, answerer, store, slack_client(settings))
        server.start(host="127.0.0.1", port=0)
        started.append((server, slack))
        send = SlackSender(f"http://127.0.0.1:{server.port}/slack/events", SECRET, slack=slack)
        slack.echo_to = SlackSender(send.url, SECRET)  # the bot hears its own posts, as on Slack
        return Bot(server, slack, fake_openai, send, store)

    yield start
    for server, slack in started:
        server.stop()
        slack.__exit__()
    engine.dispose()
