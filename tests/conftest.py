"""Shared fixtures: real parts everywhere, fakes only at the network edge.

Milvus Lite and SQLite live in each test's tmp dir; models are the packaged all-MiniLM-L6-v2
(real semantics) and tiny random Qwen3 models built here (real architecture); OpenAI is a
loopback HTTP server the real `openai` client talks to.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# No test may reach for the Hugging Face hub: a model that is not local must fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from config.settings import Settings, SourceSpec
from indexer.embedding import LocalEmbedder
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.tiny_qwen import build_embedder, build_reranker

# The Slack bot's fixtures (index, make_bot) for every module that drives the bot.
pytest_plugins = ["tests.slack_harness"]

FIXTURES = Path(__file__).parent / "fixtures"
MILVUS_DOCS = FIXTURES / "milvus-docs"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


OWN_VARIABLES = ("DOCSBOT_", "OPENAI_", "SLACK_")
# The suite's own switches (DOCSBOT_TEST_POSTGRES_URL, DOCSBOT_TEST_REQUIRE_POSTGRES): read
# once at import, and not settings, so docsbot itself ignores them.
TEST_VARIABLES = "DOCSBOT_TEST_"


def _is_own(name: str) -> bool:
    return name.startswith(OWN_VARIABLES) and not name.startswith(TEST_VARIABLES)


def clear_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own DOCSBOT_*/OPENAI_*/SLACK_* variables must not leak into a test."""
    for name in list(os.environ):
        if _is_own(name):
            monkeypatch.delenv(name, raising=False)


def subprocess_environment(**extra: str) -> dict[str, str]:
    """The environment for a `docsbot` child process: ours without those variables, the
    checkout importable, then `extra`."""
    env = {k: v for k, v in os.environ.items() if not _is_own(k)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env.update(extra)
    return env


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail, naming `what`, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_process(process: subprocess.Popen[str], timeout: float = 60) -> None:
    """SIGTERM, as `docker stop` sends, then SIGKILL if it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A developer's own settings (variables or docsbot.toml) must not leak in."""
    clear_own_variables(monkeypatch)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def minilm() -> LocalEmbedder:
    """One loaded all-MiniLM-L6-v2 for the whole session (loading costs ~1 s)."""
    return LocalEmbedder(MINILM, device="cpu", dtype="float32", batch_size=32)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-qwen")
    return {
        "embedder": build_embedder(root / "embedder"),
        "reranker": build_reranker(root / "reranker"),
    }


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A private, editable copy of the fixture corpus."""
    target = tmp_path / "docs"
    shutil.copytree(MILVUS_DOCS, target, ignore=shutil.ignore_patterns("LICENSE"))
    return target


MILVUS_SOURCE = "milvus-docs"


def milvus_docs_source(docs: Path) -> SourceSpec:
    """The fixture corpus as a named source: its key in the index does not depend on where a
    copy of it lies, so one pristine index serves every test's copy of the docs."""
    return SourceSpec(
        location=str(docs), base_url="https://milvus.io/docs/{stem}.md", name=MILVUS_SOURCE
    )


def storage(root: Path) -> dict[str, str]:
    """Milvus Lite and SQLite under `root`/data: where make_settings points a test."""
    return {
        "milvus_uri": str(root / "data" / "milvus.db"),
        "database_url": f"sqlite:///{root / 'data' / 'docsbot.db'}",
    }


@pytest.fixture(scope="session")
def pristine_index(tmp_path_factory: pytest.TempPathFactory, minilm: LocalEmbedder) -> Path:
    """The fixture docs indexed once per session (per xdist worker) with all-MiniLM-L6-v2:
    tests that need an indexed corpus copy it (`indexed_data`) instead of indexing again."""
    from bot.wiring import make_indexer, open_backends

    root = tmp_path_factory.mktemp("pristine")
    docs = root / "docs"
    shutil.copytree(MILVUS_DOCS, docs, ignore=shutil.ignore_patterns("LICENSE"))
    with pytest.MonkeyPatch.context() as mp:
        clear_own_variables(mp)
        settings = Settings(
            **storage(root),
            sources=[milvus_docs_source(docs)],
            embedding_model=MINILM,
            reranker_model=None,
            device="cpu",
            dtype="float32",
        )
        backends = open_backends(settings, embedder=minilm)
        try:
            assert make_indexer(backends).run().docs_added == 7
        finally:
            backends.close()
    return root / "data"


@pytest.fixture
def indexed_data(tmp_path: Path, pristine_index: Path) -> Path:
    """A private copy of the pristine index where `make_settings` looks (tmp_path/data); index
    `docs_copy` as `milvus_docs_source(docs_copy)` and nothing needs embedding."""
    target = tmp_path / "data"
    shutil.copytree(pristine_index, target)
    return target


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on embedded storage in the test's tmp dir; keyword arguments override."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **storage(tmp_path),
            "embedding_model": MINILM,
            "reranker_model": None,
            "llm_model": "gpt-4o",
            "device": "cpu",
            "dtype": "float32",
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


POSTGRES_URL = os.environ.get(
    "DOCSBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("DOCSBOT_TEST_REQUIRE_POSTGRES") == "1"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Skips (saying why) where no server answers, unless DOCSBOT_TEST_REQUIRE_POSTGRES=1 (CI), where
    a missing server is a failure: storage tests must not silently stop running there.
    """
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL required but unreachable at {POSTGRES_URL}: {error}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} ({type(error).__name__})")
    name = f"docsbot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Site:
    """A tiny web site: path -> (status, content type, body); requests are recorded."""

    pages: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            status, kind, body = served.pages.get(self.path, (404, "text/plain", "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def html_page(title: str, heading: str, text: str) -> str:
    return (
        f"<html><head><title>{title}</title><script>track()</script></head><body>"
        f"<nav>Menu</nav><main><h2>{heading}</h2><p>{text}</p></main></body></html>"
    )
