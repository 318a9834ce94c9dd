"""A question asked in another language than the docs': BM25 searches for its translation
(written by the LLM), and the answer is asked for in the asker's language.

Every text embeds to the same vector here (the fake OpenAI server's embeddings), so dense
search ranks nothing: what reaches the right page reaches it through BM25, and BM25 cannot
read a Chinese question over English docs, so the translation has to work for the test to
pass. tests/fixtures/shipit-docs/ is six short English pages written for these tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.answer.condense import TRANSLATE_PROMPT
from bot.answer.pipeline import Answerer
from bot.wiring import Backends, make_answerer, make_indexer, open_backends
from config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI

SHIPIT_DOCS = Path(__file__).parent / "fixtures" / "shipit-docs"
QUESTION = "服务器上会保留几个旧版本？"
TRANSLATIONS = {QUESTION: "How many old releases are kept on the server?"}
TRANSLATE_MARK = TRANSLATE_PROMPT.split("{", 1)[0]


def reply(body: dict[str, Any], translations: dict[str, str] = TRANSLATIONS) -> str:
    system, *_, last = body["messages"]
    if system["content"].startswith(TRANSLATE_MARK):
        return translations.get(last["content"], "")
    return "回答 [1]"


@pytest.fixture
def backends(tmp_path: Path, fake_openai: FakeOpenAI) -> Backends:
    fake_openai.chat_reply = reply
    fake_openai.embedding_fn = lambda _text: [1.0] + [0.0] * 15
    settings = Settings(
        milvus_uri=str(tmp_path / "milvus.db"),
        database_url=f"sqlite:///{tmp_path / 'docsbot.db'}",
        sources=[str(SHIPIT_DOCS)],
        embedding_model="fake-embedding",
        embedding_url=f"{fake_openai.url}/v1",
        reranker_model=None,
        openai_base_url=f"{fake_openai.url}/v1",
        openai_api_key="test",
        llm_max_retries=0,
    )
    opened = open_backends(settings)
    assert make_indexer(opened).run().docs_added == 6
    return opened


def answerer_for(backends: Backends) -> Answerer:
    return make_answerer(backends, load=False)


def chats(fake: FakeOpenAI) -> list[list[dict[str, str]]]:
    return [r.json["messages"] for r in fake.requests_to("/v1/chat/completions")]


def test_bm25_searches_for_the_translation_and_the_answer_comes_in_chinese(
    backends: Backends, fake_openai: FakeOpenAI
) -> None:
    try:
        answer = answerer_for(backends).answer(QUESTION)
    finally:
        backends.close()

    translate, write = chats(fake_openai)
    assert "into English" in translate[0]["content"]
    assert translate[-1]["content"] == QUESTION
    assert (answer.citations[0].source, answer.citations[0].heading) == (
        "rollback.md",
        "How many releases are kept",
    )
    assert "(Write the answer in Chinese.)" in write[-1]["content"]
    assert f"Question: {QUESTION}" in write[-1]["content"]


def test_without_the_translation_bm25_does_not_find_it(
    backends: Backends, fake_openai: FakeOpenAI
) -> None:
    """The control for the test above: the same question, a model that answers nothing when
    asked to translate (the question then goes to BM25 as asked)."""
    fake_openai.chat_reply = lambda body: reply(body, translations={})
    try:
        answer = answerer_for(backends).answer(QUESTION)
        unread = backends.store.search_bm25(QUESTION, 10, None)
    finally:
        backends.close()

    assert unread == []
    assert answer.citations[0].heading != "How many releases are kept"


def test_a_question_in_the_docs_language_is_not_translated(
    backends: Backends, fake_openai: FakeOpenAI
) -> None:
    try:
        answer = answerer_for(backends).answer(TRANSLATIONS[QUESTION])
    finally:
        backends.close()

    (write,) = chats(fake_openai)
    assert answer.citations[0].heading == "How many releases are kept"
    assert "Write the answer in" not in write[-1]["content"]
