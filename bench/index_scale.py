"""A large first index: pages per second and peak memory, then a re-run that changes nothing.

A synthetic corpus of PAGES Markdown pages (several sections each, distinct words) is indexed
by `docsbot index` as its own process, on Milvus Lite and SQLite, with the remote-embedder
path pointed at the test fake (hash vectors: the embedding model's cost is not what this
measures; bench/embed_bench.py does that). Peak RSS is the child's maximum resident set, read
from the kernel after it exits; the growth is measured against the same process indexing one
page, so the interpreter, the libraries and Milvus Lite are not counted.

    .venv/bin/python bench/index_scale.py [--pages 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

WORDS = [
    "replica", "shard", "segment", "index", "vector", "query", "collection", "schema",
    "partition", "field", "cluster", "node", "proxy", "coordinator", "compaction", "flush",
    "channel", "timestamp", "consistency",
]  # fmt: skip


def write_corpus(root: Path, pages: int) -> None:
    for n in range(pages):
        folder = root / f"part{n // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        sections = []
        for s in range(3):
            body = " ".join(f"{WORDS[(n + s * 7 + k) % len(WORDS)]}{n % 97}" for k in range(70))
            sections.append(f"## Section {s} of page {n}\n\n{body}.\n")
        (folder / f"page{n:05d}.md").write_text(f"# Page {n}\n\n" + "\n".join(sections))


def run_index(work: Path, env: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """Seconds, peak RSS (MiB) and the run's JSON summary of one `docsbot index` child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "index", "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child yet
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return seconds, max(peak, before) / 1024, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="docsbot-scale-"))
    try:
        with FakeOpenAI() as embeddings:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCSBOT_", "SLACK_"))}
            env.update(
                PYTHONPATH=str(ROOT),
                HF_HUB_OFFLINE="1",
                DOCSBOT_EMBEDDING_MODEL="hash-embedding",
                DOCSBOT_EMBEDDING_URL=f"{embeddings.url}/v1",
                DOCSBOT_EMBEDDING_BATCH_SIZE="256",
                DOCSBOT_RERANKER_MODEL="none",
                DOCSBOT_LOG_LEVEL="WARNING",
            )
            small = work / "small"
            write_corpus(small / "docs", 1)
            _, base_mib, _ = run_index(small, {**env, "DOCSBOT_SOURCES": "docs"})
            big = work / "big"
            started = time.perf_counter()
            write_corpus(big / "docs", args.pages)
            written_s = time.perf_counter() - started
            first_s, first_mib, first = run_index(big, {**env, "DOCSBOT_SOURCES": "docs"})
            again_s, _, again = run_index(big, {**env, "DOCSBOT_SOURCES": "docs"})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "pages": args.pages,
        "chunks": first["chunks_embedded"],
        "first_index_s": round(first_s, 1),
        "pages_per_s": round(args.pages / first_s, 1),
        "peak_rss_mib": round(first_mib, 1),
        "one_page_rss_mib": round(base_mib, 1),
        "rss_growth_mib": round(first_mib - base_mib, 1),
        "rerun_s": round(again_s, 1),
        "rerun_chunks_embedded": again["chunks_embedded"],
        "corpus_written_s": round(written_s, 1),
    }
    print(
        f"first index of {args.pages} pages ({figures['chunks']} chunks): {first_s:.0f} s, "
        f"{figures['pages_per_s']} pages/s; peak RSS {first_mib:.0f} MiB, "
        f"{figures['rss_growth_mib']:.0f} MiB over indexing one page ({base_mib:.0f} MiB)"
    )
    print(
        f"re-run with nothing changed: {again_s:.1f} s, {again['chunks_embedded']} chunks embedded"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
