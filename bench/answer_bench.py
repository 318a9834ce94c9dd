"""One answer's retrieval on a CPU, stage by stage: embed the question, search, rerank 8.

What a person waits for before the LLM starts writing, with the default Qwen3-0.6B models
(published configurations, random weights: they cost what the real ones cost) on torch (the
default dtype) and on OpenVINO (int8 weights; int8-static, the default), in one process:

- the index: Milvus Lite in a temporary folder holding 5,000 chunks of milvus-docs prose
  (~300 tokens each, cycled) with random unit vectors (what is timed is the search, not
  recall, and embedding 5,000 chunks here would take an hour);
- each question goes through `bot.answer.retrieval.Retriever.retrieve`, exactly as an answer
  does: embed the question, hybrid search (dense + BM25, 20 candidates), rerank the best 8
  (DOCSBOT_RERANK_CANDIDATES' CPU default) in batches of 4 (the reranker's CPU default).

Every question is new, so its shapes (question length, candidates' widths, batch sizes) are
too: the OpenVINO models pad them to a few fixed shapes, whose kernels the first questions
build; `--exact-shapes` runs them unpadded (as before that change) for comparison, and
`--questions N` asks more questions (up to 10) to show the steady state.

Models are built (or reused) by bench/embed_bench.py and bench/rerank_bench.py under
DOCSBOT_BENCH_CACHE; OpenVINO exports are cached there too. Printed: per backend, the median
over the questions of each stage's seconds and the RSS the two models added. The last line is
one JSON object of the results.

    .venv/bin/python bench/answer_bench.py [--chunks N] [--questions N] [--exact-shapes]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (
    MIB,
    Stopwatch,
    build_tokenizer_dir,
    emit_json,
    loadavg,
    log,
    malloc_trim,
    median,
    rss_bytes,
    set_threads,
    texts_of_lengths,
)
from embed_bench import CACHE, build_embedding_model
from rerank_bench import INSTRUCTION, build_model_dir

from bot.answer.rerankers import CPU_BATCH
from bot.answer.retrieval import Retriever
from config.settings import Settings
from indexer.chunking import Chunk
from indexer.milvus_connect import connect
from indexer.openvino_runtime import openvino_installed
from indexer.store import MilvusStore

QUESTIONS = [
    "How do I choose the index type and search parameters to get good recall in Milvus?",
    "Why does my collection need to be loaded before I can search it?",
    "What consistency level should I use to see the latest inserts in a search?",
    "How are growing segments sealed and flushed to object storage?",
    "Which metric type should I pick for normalised embeddings?",
    "Can I run Milvus without a separate server process?",
    "How does compaction deal with deleted entities?",
    "What is the difference between HNSW and IVF_FLAT in memory use?",
    "How do I add a scalar field filter to a vector search?",
    "Why would a search return fewer results than the limit I asked for?",
]
RERANK = 8
CANDIDATES = 20
CHUNK_TOKENS = 300


def build_index(root: Path, dim: int, count: int, texts: list[str]) -> MilvusStore:
    settings = Settings(milvus_uri=str(root / "milvus.db"))
    store = MilvusStore(connect(settings), "bench_chunks", "bench-model", dim)
    store.create()
    rng = np.random.default_rng(0)
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        vectors = rng.standard_normal((size, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = [
            Chunk(
                id=f"c{i}",
                source_key="bench",
                path=f"doc{i // 8}.md",
                ordinal=i % 8,
                title=f"Page {i // 8}",
                heading=f"Section {i % 8}",
                url=f"https://example.com/doc{i // 8}#s{i % 8}",
                text=texts[i % len(texts)],
                content=texts[i % len(texts)],
            )
            for i in range(start, start + size)
        ]
        store.upsert(chunks, vectors)
    store.load()
    return store


def backends(
    embed_path: Path, rerank_path: Path, exact_shapes: bool = False
) -> dict[str, tuple[Any, Any, float]]:
    """name -> (embedder, reranker, MiB of RSS they added when loaded)."""
    from bot.answer.rerankers.qwen3 import Qwen3Reranker
    from indexer.embedding import LocalEmbedder

    out: dict[str, tuple[Any, Any, float]] = {}
    malloc_trim()
    before = rss_bytes()
    embedder = LocalEmbedder(str(embed_path))
    reranker = Qwen3Reranker.load(str(rerank_path), instruction=INSTRUCTION, batch_size=CPU_BATCH)
    out[f"torch {embedder.precision}"] = (embedder, reranker, (rss_bytes() - before) / MIB)
    if not openvino_installed():
        log('openvino: skipped, the extra is not installed (pip install "docsbot[openvino]")')
        return out
    from bot.answer.rerankers.openvino import OpenVINOReranker
    from indexer.openvino_embedder import OpenVINOEmbedder

    for quantization in ("int8", "int8-static"):
        malloc_trim()
        before = rss_bytes()
        started = Stopwatch()
        cache = CACHE / "models"
        ov_embedder = OpenVINOEmbedder(str(embed_path), cache_dir=cache, quantization=quantization)
        ov_reranker = OpenVINOReranker.open(
            str(rerank_path),
            cache_dir=cache,
            instruction=INSTRUCTION,
            quantization=quantization,
            batch_size=CPU_BATCH,
        )
        log(f"openvino {quantization}: ready in {started():.1f} s (exports included if new)")
        ov_embedder.fixed_shapes = ov_reranker.fixed_shapes = not exact_shapes
        name = f"openvino {quantization}" + (" exact" if exact_shapes else "")
        out[name] = (ov_embedder, ov_reranker, (rss_bytes() - before) / MIB)
    return out


def main(argv: list[str] | None = None) -> int:
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=5000, help="chunks in the index")
    parser.add_argument(
        "--questions", type=int, default=3, help=f"questions (1-{len(QUESTIONS)}), all new"
    )
    parser.add_argument(
        "--exact-shapes", action="store_true", help="OpenVINO unpadded, as before fixed shapes"
    )
    args = parser.parse_args(argv)
    clock = Stopwatch()
    threads = set_threads()
    log(f"answer_bench: torch {torch.__version__}, {threads} threads, load avg {loadavg()}")

    with tempfile.TemporaryDirectory(prefix="docsbot-bench-") as tmp:
        build_tokenizer_dir(Path(tmp) / "tok")
        tokenizer = AutoTokenizer.from_pretrained(str(Path(tmp) / "tok"))
        embed_path, _ = build_embedding_model(CACHE)
        rerank_path, _ = build_model_dir(tokenizer)
        texts, source = texts_of_lengths(tokenizer, [CHUNK_TOKENS] * 64)
        started = Stopwatch()
        loaded = backends(embed_path, rerank_path, args.exact_shapes)
        dim = next(iter(loaded.values()))[0].dim
        store = build_index(Path(tmp), dim, args.chunks, texts)
        log(
            f"index: {store.count()} chunks ({source}, {CHUNK_TOKENS} tokens each), models "
            f"and index ready in {started():.1f} s"
        )
        stages = ("embed", "search", "rerank")
        results: dict[str, dict[str, float]] = {}
        for name, (embedder, reranker, _) in loaded.items():
            retriever = Retriever(
                embedder, store, reranker, candidates=CANDIDATES, rerank_limit=RERANK
            )
            retriever.retrieve("warm-up question about Milvus", top_k=5)
            timings: dict[str, list[float]] = {stage: [] for stage in stages}
            for question in QUESTIONS[: args.questions]:
                retrieval = retriever.retrieve(question, top_k=5)
                for stage in stages:
                    timings[stage].append(retrieval.timings[stage])
            results[name] = {stage: median(values) for stage, values in timings.items()}
            results[name]["total"] = sum(results[name][s] for s in stages)
            log(f"{name}: " + ", ".join(f"{k} {v:.3f} s" for k, v in results[name].items()))
            log(f"{name}: rerank s per question " + " ".join(f"{v:.2f}" for v in timings["rerank"]))
        store.client.close()

    log("")
    log(
        f"| {'backend':20s} | {'embed s':>7s} | {'search s':>8s} | {'rerank 8 s':>10s} | "
        f"{'total s':>7s} | {'models MiB':>10s} |"
    )
    log("|" + "|".join("-" * w for w in (22, 9, 10, 12, 9, 12)) + "|")
    for name, r in results.items():
        log(
            f"| {name:20s} | {r['embed']:7.3f} | {r['search']:8.3f} | {r['rerank']:10.2f} | "
            f"{r['total']:7.2f} | {loaded[name][2]:10.0f} |"
        )
    log(f"load avg {loadavg()}; total runtime {clock():.1f} s")
    emit_json(
        {
            "bench": "answer",
            "threads": threads,
            "chunks": args.chunks,
            "questions": len(QUESTIONS[: args.questions]),
            "exact_shapes": args.exact_shapes,
            "rerank": RERANK,
            "median_s": {k: {s: round(v, 4) for s, v in r.items()} for k, r in results.items()},
            "models_rss_mib": {k: round(v[2]) for k, v in loaded.items()},
            "loadavg_end": loadavg(),
            "total_runtime_s": round(clock(), 1),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
