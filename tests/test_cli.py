"""The `docsbot` command as a person or a script runs it: a real process, real exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MILVUS_DOCS, MINILM, subprocess_environment
from tests.fakes.openai_server import FakeOpenAI

DOCSBOT = [sys.executable, "-m", "bot.cli"]
INDEX_KEYS = {
    "docs_seen",
    "docs_added",
    "docs_changed",
    "docs_removed",
    "chunks_embedded",
    "chunks_deleted",
    "seconds",
}


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        DOCSBOT + args,
        cwd=cwd,
        env=subprocess_environment(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """One folder indexed once by the real CLI; the tests below read it."""
    root = tmp_path_factory.mktemp("cli")
    docs = root / "docs"
    shutil.copytree(MILVUS_DOCS, docs, ignore=shutil.ignore_patterns("LICENSE"))
    env = {
        "DOCSBOT_SOURCES": f"{docs}=https://milvus.io/docs/{{stem}}.md",
        "DOCSBOT_EMBEDDING_MODEL": MINILM,
        "DOCSBOT_RERANKER_MODEL": "none",
    }
    result = run(["index", "--json"], root, **env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= INDEX_KEYS
    assert report["docs_added"] == report["docs_seen"] == 7
    assert report["chunks_embedded"] > 7
    yield root, env


def test_second_index_run_embeds_nothing(indexed: tuple[Path, dict[str, str]]) -> None:
    root, env = indexed
    result = run(["index", "--json"], root, **env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["docs_seen"], report["chunks_embedded"], report["chunks_deleted"]) == (7, 0, 0)


def test_ask_json_with_an_llm(indexed: tuple[Path, dict[str, str]]) -> None:
    root, env = indexed
    with FakeOpenAI() as fake:
        fake.chat_reply = "Milvus runs on Windows through Docker [1]; see also [7]."
        result = run(
            ["ask", "Can I install Milvus on Windows?", "--json"],
            root,
            OPENAI_BASE_URL=f"{fake.url}/v1",
            **env,
        )
        chats = fake.requests_to("/v1/chat/completions")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"answer", "abstained", "citations", "timings"}
    assert answer["abstained"] is False
    assert answer["answer"] == "Milvus runs on Windows through Docker [1]; see also."
    [citation] = answer["citations"]
    assert set(citation) == {"n", "title", "heading", "source", "url", "score", "doc_set"}
    assert citation["n"] == 1
    assert not citation["source"].startswith("/")
    assert citation["url"].startswith("https://milvus.io/docs/")
    assert set(answer["timings"]) == {"embed", "search", "rerank", "generate"}
    assert len(chats) == 1 and chats[0].json["model"] == "gpt-4o"


def test_ask_without_an_llm_answers_extractively(indexed: tuple[Path, dict[str, str]]) -> None:
    root, env = indexed
    result = run(["ask", "Can I install Milvus on Windows?", "--json"], root, **env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["abstained"] is False
    assert "faq/operational_faq.md" in [c["source"] for c in answer["citations"]]
    assert "[1]" in answer["answer"]


def test_ask_with_the_llm_down_apologises_without_traceback(
    indexed: tuple[Path, dict[str, str]],
) -> None:
    root, env = indexed
    with FakeOpenAI() as fake:
        fake.fail_with = 503
        result = run(
            ["ask", "Can I install Milvus on Windows?"],
            root,
            OPENAI_BASE_URL=f"{fake.url}/v1",
            DOCSBOT_LLM_MAX_RETRIES="0",
            **env,
        )
    assert result.returncode == 1
    assert "Sorry" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_eval_json_reports_every_mode(indexed: tuple[Path, dict[str, str]]) -> None:
    root, env = indexed
    questions = root / "q.jsonl"
    questions.write_text(
        json.dumps({"q": "Can I install Milvus on Windows?", "sources": ["faq/operational_faq.md"]})
        + "\n"
        + json.dumps({"q": "What is a bitset?", "sources": ["reference/bitset.md"]})
        + "\n"
    )
    result = run(["eval", str(questions), "--json"], root, **env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"dense", "bm25", "hybrid"}  # no reranker configured
    for values in metrics.values():
        assert set(values) == {"recall@1", "recall@3", "recall@5", "recall@10", "mrr@10"}
    assert metrics["hybrid"]["recall@5"] == 1.0


def test_a_bad_setting_fails_at_start_naming_it(tmp_path: Path) -> None:
    result = run(["ask", "anything"], tmp_path, DOCSBOT_DEVICE="gpu")
    assert result.returncode == 2
    assert "DOCSBOT_DEVICE" in result.stderr and "'auto', 'cpu' or 'cuda'" in result.stderr
    assert "Traceback" not in result.stderr


def test_index_falls_back_from_unavailable_defaults_only_when_allowed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nText.\n")
    strict = run(
        ["index"],
        tmp_path,
        DOCSBOT_SOURCES="docs",
        HF_HUB_OFFLINE="1",
        DOCSBOT_MODEL_FALLBACK="false",
    )
    assert strict.returncode == 2
    assert "Qwen/Qwen3-Embedding-0.6B" in strict.stderr
    assert "DOCSBOT_EMBEDDING_MODEL" in strict.stderr
    assert not (tmp_path / "data" / "milvus.db").exists()

    chosen = run(
        ["index"],
        tmp_path,
        DOCSBOT_SOURCES="docs",
        HF_HUB_OFFLINE="1",
        DOCSBOT_EMBEDDING_MODEL="Qwen/Qwen3-Embedding-4B",
    )
    assert chosen.returncode == 2, "a model someone chose is never swapped"

    fallback = run(["index", "--json"], tmp_path, DOCSBOT_SOURCES="docs", HF_HUB_OFFLINE="1")
    assert fallback.returncode == 0, fallback.stderr
    said = " ".join(fallback.stderr.split())  # log lines wrap at the terminal's width
    assert "using the packaged all-MiniLM-L6-v2" in said and "reranking is off" in said
    assert "Traceback" not in said
    assert json.loads(fallback.stdout)["docs_added"] == 1


def test_demo_runs_offline_and_says_which_models_it_used(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs"
    result = run(["demo", "--docs", str(docs)], tmp_path, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    notice = [line for line in result.stderr.splitlines() if "all-MiniLM-L6-v2" in line]
    assert notice, result.stderr
    assert "Sources" in result.stdout and "PostgreSQL" in result.stdout


def test_manifest_covers_exactly_what_the_code_uses(tmp_path: Path) -> None:
    import yaml

    result = run(["manifest", "--url", "https://bot.acme.io/"], tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    events_url = "https://bot.acme.io/slack/events"
    assert manifest["settings"]["event_subscriptions"]["request_url"] == events_url
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": events_url}
    [command] = manifest["features"]["slash_commands"]
    assert (command["command"], command["url"]) == ("/ask", events_url)
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_mention",
        "assistant_thread_started",
        "assistant_thread_context_changed",
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "assistant:write",
        "channels:read",
        "groups:read",
        "channels:history",
        "groups:history",
        "mpim:history",
        "im:history",
        "chat:write",
        "commands",
    }
    socket = yaml.safe_load(run(["manifest", "--socket-mode"], tmp_path).stdout)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["event_subscriptions"]
