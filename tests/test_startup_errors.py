"""An operator's mistakes at start: each ends in one message naming the setting and what to
do, exit status 2, and no traceback. Driven through the real `docsbot` command."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import subprocess_environment
from tests.test_cli import DOCSBOT

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def docsbot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    values = {
        "HF_HUB_OFFLINE": "1",
        "DOCSBOT_EMBEDDING_MODEL": MINILM,
        "DOCSBOT_RERANKER_MODEL": "none",
        **env,
    }
    return subprocess.run(
        [*DOCSBOT, *args],
        cwd=cwd,
        env=subprocess_environment(**values),
        capture_output=True,
        text=True,
        timeout=180,
    )


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in message, message
    return message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a firewall, a wedged proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_milvus_lite_failures_are_told_apart_by_cause(tmp_path: Path) -> None:
    no_suffix = docsbot(["ask", "q"], tmp_path, DOCSBOT_MILVUS_URI="./data/milvus")
    refused(no_suffix, "DOCSBOT_MILVUS_URI", "ending in .db")
    (tmp_path / "afile").write_text("not a folder")
    under_a_file = docsbot(["ask", "q"], tmp_path, DOCSBOT_MILVUS_URI="./afile/milvus.db")
    refused(under_a_file, "afile is a file, not a folder")
    (tmp_path / "garbage.db").write_text("not an index")
    garbage = docsbot(["ask", "q"], tmp_path, DOCSBOT_MILVUS_URI="./garbage.db")
    refused(garbage, "is a file, not a Milvus Lite index")


def test_database_failures_name_the_setting(tmp_path: Path, silent_port: int) -> None:
    malformed = docsbot(
        ["stats"], tmp_path, DOCSBOT_DATABASE_URL="postgresql+psycopg://u@host:notaport/db"
    )
    refused(malformed, "DOCSBOT_DATABASE_URL is not a database URL")
    closed = docsbot(
        ["stats"], tmp_path, DOCSBOT_DATABASE_URL="postgresql+psycopg://u@127.0.0.1:1/db"
    )
    refused(closed, "did not answer", "DOCSBOT_DATABASE_URL")
    hanging = docsbot(
        ["stats"],
        tmp_path,
        DOCSBOT_DATABASE_URL=f"postgresql+psycopg://u@127.0.0.1:{silent_port}/db",
        DOCSBOT_DB_CONNECT_TIMEOUT_S="2",
    )
    refused(hanging, "did not answer")
    (tmp_path / "broken.db").write_bytes(b"this is not SQLite" * 100)
    unreadable = docsbot(["stats"], tmp_path, DOCSBOT_DATABASE_URL="sqlite:///broken.db")
    refused(unreadable, "SQLite database", "DOCSBOT_DATABASE_URL")
    (tmp_path / "plain").write_text("a file")
    parent_is_file = docsbot(["stats"], tmp_path, DOCSBOT_DATABASE_URL="sqlite:///plain/x.db")
    refused(parent_is_file, "is a file, not a folder")


def test_a_missing_model_folder_and_a_dead_embedding_server(tmp_path: Path) -> None:
    missing = docsbot(["ask", "q"], tmp_path, DOCSBOT_EMBEDDING_MODEL="/no/such/model")
    refused(missing, "DOCSBOT_EMBEDDING_MODEL", "no folder there")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nSome text.\n")
    dead = docsbot(
        ["index"],
        tmp_path,
        DOCSBOT_SOURCES="docs",
        DOCSBOT_EMBEDDING_MODEL="remote-model",
        DOCSBOT_EMBEDDING_URL="http://127.0.0.1:1/v1",
    )
    refused(dead, "embedding server", "DOCSBOT_EMBEDDING_URL")


def test_a_port_in_use_is_said_plainly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = docsbot(
            ["serve", "--port", str(port)],
            tmp_path,
            SLACK_BOT_TOKEN="xoxb-x",
            SLACK_SIGNING_SECRET="s",
            DOCSBOT_HOST="127.0.0.1",
            DOCSBOT_SOURCES="docs",  # a fresh install: serve would index at once
            DOCSBOT_EMBEDDING_MODEL="remote-model",
            DOCSBOT_EMBEDDING_URL="http://127.0.0.1:1/v1",
        )
    refused(busy, f"127.0.0.1:{port}", "DOCSBOT_PORT")
