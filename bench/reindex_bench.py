"""Scheduled re-indexing of a git source: what a run costs when nothing or one page changed,
against re-embedding everything (what the seeds' recipe does on every run: it has no
incremental path).

The docs are committed to a local git repository and indexed through a `git+file://` source,
so every run pays what a scheduled run pays: `git fetch` + reset, the lease, the run record,
hash comparison, and embedding what changed (all-MiniLM-L6-v2, Milvus Lite, SQLite). Runs are
interleaved (rebuild, unchanged, one page edited) and repeated; medians are printed, with the
ratios against the rebuild measured in the same repetition. Nothing asserts on time.

    .venv/bin/python bench/reindex_bench.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.benchlib import CORPUS  # noqa: E402
from bot.wiring import make_indexer, open_backends  # noqa: E402
from config.settings import Settings  # noqa: E402
from indexer.jobs import IndexJobs  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "milvus-docs"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def commit(repo: Path, message: str) -> None:
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-qm", message], check=True)


def timed(jobs: IndexJobs, **kwargs: object) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    outcome = jobs.run("manual", **kwargs)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    assert outcome is not None and outcome.report is not None, outcome
    return seconds, outcome.report.as_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the 7 fixture pages")
    args = parser.parse_args()
    corpus = FIXTURE if args.quick or not CORPUS.is_dir() else CORPUS
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = work / "docs-repo"
        shutil.copytree(corpus, repo, ignore=shutil.ignore_patterns("LICENSE", ".git"))
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        commit(repo, "docs")
        settings = Settings(
            sources=[f"git+file://{repo}@main"],
            milvus_uri=str(work / "milvus.db"),
            database_url=f"sqlite:///{work / 'docsbot.db'}",
            git_cache_dir=str(work / "git"),
            embedding_model="sentence-transformers/all-MiniLM-L6-v2",
            reranker_model=None,
        )
        backends = open_backends(settings)
        jobs = IndexJobs(make_indexer(backends), backends.sessions, lease_s=60)
        first, report = timed(jobs)
        print(
            f"{corpus.name}: {report['docs_seen']} pages, {report['chunks_embedded']} chunks; "
            f"first run {first:.1f} s"
        )
        page = next(p for p in sorted(repo.rglob("*.md")) if "fragments" not in p.parts)
        rows: dict[str, list[float]] = {"rebuild": [], "unchanged": [], "one page edited": []}
        for n in range(args.repeat):
            rows["rebuild"].append(timed(jobs, rebuild=True)[0])
            rows["unchanged"].append(timed(jobs)[0])
            page.write_text(page.read_text() + f"\n\nEdited for repetition {n}.\n")
            commit(repo, f"edit {n}")
            seconds, edited = timed(jobs)
            rows["one page edited"].append(seconds)
            assert edited["docs_changed"] == 1, edited
        backends.close()
    rebuild = statistics.median(rows["rebuild"])
    print(f"\n{'run':18} {'median':>9}  vs re-embedding everything")
    figures: dict[str, object] = {"pages": report["docs_seen"], "chunks": report["chunks_embedded"]}
    for name, values in rows.items():
        median = statistics.median(values)
        ratio = rebuild / median
        print(f"{name:18} {median:8.2f}s  {ratio:6.1f}x")
        figures[name] = {"median_s": round(median, 3), "runs_s": [round(v, 3) for v in values]}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
