"""Embedding throughput: the seeds' one-document-at-a-time loop against our LocalEmbedder.

The model is a sentence-transformers directory with the Qwen3-Embedding-0.6B architecture
(Qwen3Model, published 0.6B configuration, random weights from torch.manual_seed(0), saved in
bf16 like the published checkpoint) + last-token pooling + Normalize. It is built once and
cached under /tmp (DOCSBOT_BENCH_CACHE overrides the folder); both methods load it from there.

- seeds: `SentenceTransformer(path)` in fp32, then `for doc in docs: model.encode([doc])`.
- ours: `indexer.embedding.LocalEmbedder(path).embed_documents(texts)` in its default
  configuration (length-sorted batches; bf16 where indexer.hardware.pick_dtype says so).

Inputs: 64 chunks (32 with --quick) of milvus-docs prose, 80-350 tokens each. After a warm-up,
3 interleaved repetitions; printed: median seconds, chunks/s, the throughput ratio ours / seeds,
peak RSS above the pre-call RSS, and the largest cosine difference between the two methods'
vectors (informational: bf16 against fp32). The last line is one JSON object of the results.

    .venv/bin/python bench/embed_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (
    QWEN3_0P6B,
    Stopwatch,
    build_tokenizer_dir,
    describe,
    emit_json,
    loadavg,
    log,
    measure,
    median,
    qwen3_config,
    set_threads,
    texts_of_lengths,
    token_count,
    varied_lengths,
)

from indexer.embedding import LocalEmbedder
from indexer.hardware import pick_dtype

CACHE = Path(os.environ.get("DOCSBOT_BENCH_CACHE", "/tmp/docsbot-bench-cache"))
MODEL_NAME = "qwen3-embedding-0.6b-random-seed0"
MIN_TOKENS, MAX_TOKENS = 80, 350
# Qwen/Qwen3-Embedding-0.6B's config_sentence_transformers.json prompts.
PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the "
    "query\nQuery:",
    "document": "",
}


def build_embedding_model(cache: Path, layers: int | None = None) -> tuple[Path, bool]:
    """The sentence-transformers model directory; (path, built now?). Reused when complete."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import AutoTokenizer, Qwen3Model

    spec = {**QWEN3_0P6B, "num_hidden_layers": layers or QWEN3_0P6B["num_hidden_layers"]}
    spec_json = json.dumps({"seed": 0, "dtype": "bfloat16", **spec}, sort_keys=True)
    suffix = f"-{layers}l" if layers else ""
    target = cache / (MODEL_NAME + suffix)
    marker = target / "bench_spec.json"
    if marker.is_file() and marker.read_text() == spec_json:
        return target, False

    raw = cache / (MODEL_NAME + suffix + ".raw")
    shutil.rmtree(raw, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    build_tokenizer_dir(raw)
    tokenizer = AutoTokenizer.from_pretrained(str(raw))
    # Qwen3-Embedding pads on the left, so the last position is always the last real token.
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 32768
    tokenizer.save_pretrained(str(raw))
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(0)
    config = qwen3_config(num_hidden_layers=spec["num_hidden_layers"], pad_token_id=pad)
    Qwen3Model(config).eval().to(torch.bfloat16).save_pretrained(str(raw))

    transformer = Transformer(str(raw), max_seq_length=8192, model_kwargs={"dtype": torch.bfloat16})
    pooling = Pooling(int(spec["hidden_size"]), pooling_mode="lasttoken")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()], prompts=PROMPTS, device="cpu"
    )
    model.save(str(target))
    shutil.rmtree(raw, ignore_errors=True)
    marker.write_text(spec_json)
    return target, True


def seeds_embed(model: Any, docs: list[str]) -> np.ndarray:
    """The recipe: one `encode([doc])` call per document, in a Python loop."""
    vectors = []
    for doc in docs:
        vectors.append(model.encode([doc])[0])
    return np.asarray(vectors, dtype=np.float32)


def cosine_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max, mean) of 1 - cos between matching rows."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    gap = 1.0 - np.sum(a * b, axis=1)
    return float(gap.max()), float(gap.mean())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 chunks instead of 64")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument(
        "--layers", type=int, default=None, help="debug only: fewer than the 28 layers"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from sentence_transformers import SentenceTransformer

    args = parse_args(argv)
    clock = Stopwatch()
    threads = set_threads()
    log(f"embed_bench: torch {torch.__version__}, {threads} threads, load avg {loadavg()}")

    built = Stopwatch()
    path, fresh = build_embedding_model(CACHE, args.layers)
    log(f"model dir {path} ({'built' if fresh else 'cached'}, {built():.1f} s)")

    seeds_model = SentenceTransformer(
        str(path), device="cpu", model_kwargs={"dtype": torch.float32}
    )
    seeds_model.eval()
    ours = LocalEmbedder(str(path))
    seeds_dtype = next(seeds_model.parameters()).dtype
    ours_dtype = next(ours.model.parameters()).dtype
    if ours_dtype != pick_dtype("auto", "cpu"):
        log(f"note: LocalEmbedder loaded {ours_dtype}, pick_dtype says otherwise")

    tokenizer = seeds_model.tokenizer
    count = 32 if args.quick else 64
    texts, source = texts_of_lengths(tokenizer, varied_lengths(count, MIN_TOKENS, MAX_TOKENS))
    lengths = [token_count(tokenizer, t) for t in texts]
    log(
        f"seeds: SentenceTransformer fp32 loop ({seeds_dtype}); ours: LocalEmbedder "
        f"({ours_dtype}, batch_size {ours.batch_size})"
    )
    log(
        f"text: {source}; {count} chunks, tokens min/median/max "
        f"{min(lengths)}/{int(np.median(lengths))}/{max(lengths)}, total {sum(lengths)}"
    )

    warm = texts[:4]
    warm_seeds = measure(lambda: seeds_embed(seeds_model, warm)).seconds
    warm_ours = measure(lambda: ours.embed_documents(warm)).seconds
    log(f"warm-up (4 chunks): seeds {warm_seeds:.2f} s, ours {warm_ours:.2f} s")

    times: dict[str, list[float]] = {"seeds": [], "ours": []}
    cpu: dict[str, list[float]] = {"seeds": [], "ours": []}
    contention: dict[str, list[float]] = {"seeds": [], "ours": []}
    peaks: dict[str, list[float]] = {"seeds": [], "ours": []}
    vectors: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        for label, fn in (
            ("seeds", lambda: seeds_embed(seeds_model, texts)),
            ("ours", lambda: ours.embed_documents(texts)),
        ):
            m = measure(fn)
            vectors.setdefault(label, m.value)
            times[label].append(m.seconds)
            cpu[label].append(m.cpu_s)
            contention[label].append(m.other_cpu_s)
            peaks[label].append(m.peak_mib)
            log(
                f"rep {rep + 1}/{args.reps} {label:5s} {count / m.seconds:6.2f} chunks/s "
                f"{describe(m)}"
            )

    med = {k: median(v) for k, v in times.items()}
    rate = {k: count / v for k, v in med.items()}
    ratio = rate["ours"] / rate["seeds"]
    med_cpu = {k: median(v) for k, v in cpu.items()}
    cpu_ratio = med_cpu["seeds"] / med_cpu["ours"]
    best = {k: min(v) for k, v in times.items()}
    best_ratio = best["seeds"] / best["ours"]
    gap_max, gap_mean = cosine_gap(vectors["ours"], vectors["seeds"])
    peak = {k: max(v) for k, v in peaks.items()}

    log("")
    log(f"{'method':8s} {'median s':>9s} {'chunks/s':>9s} {'median cpu s':>13s} {'peak MiB':>9s}")
    for label in ("seeds", "ours"):
        log(
            f"{label:8s} {med[label]:9.2f} {rate[label]:9.2f} {med_cpu[label]:13.1f} "
            f"{peak[label]:9.1f}"
        )
    log(f"throughput ours / seeds: {ratio:.2f}x (on CPU time: {cpu_ratio:.2f}x)")
    log(
        f"fastest rep (least disturbed by other load): seeds {best['seeds']:.2f} s, "
        f"ours {best['ours']:.2f} s; ratio on those {best_ratio:.2f}x"
    )
    log(f"1 - cosine(ours, seeds): max {gap_max:.2e}, mean {gap_mean:.2e} (bf16 vs fp32)")
    log(f"load avg {loadavg()}; total runtime {clock():.1f} s")

    emit_json(
        {
            "bench": "embed",
            "quick": bool(args.quick),
            "layers": args.layers or QWEN3_0P6B["num_hidden_layers"],
            "reps": args.reps,
            "threads": threads,
            "torch": torch.__version__,
            "seeds_dtype": seeds_dtype,
            "ours_dtype": ours_dtype,
            "ours_batch_size": ours.batch_size,
            "text_source": source,
            "chunks": count,
            "tokens_total": sum(lengths),
            "tokens_min_median_max": [min(lengths), int(np.median(lengths)), max(lengths)],
            "times_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "chunks_per_s": {k: round(v, 3) for k, v in rate.items()},
            "throughput_ratio_ours_over_seeds": round(ratio, 3),
            "min_s": {k: round(v, 3) for k, v in best.items()},
            "throughput_ratio_on_min": round(best_ratio, 3),
            "cpu_s": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "other_processes_cpu_s": {k: [round(x, 1) for x in v] for k, v in contention.items()},
            "median_cpu_s": {k: round(v, 2) for k, v in med_cpu.items()},
            "cpu_ratio_seeds_over_ours": round(cpu_ratio, 3),
            "peak_rss_mib": {k: round(v, 1) for k, v in peak.items()},
            "cosine_gap_max": float(f"{gap_max:.3e}"),
            "cosine_gap_mean": float(f"{gap_mean:.3e}"),
            "loadavg_end": loadavg(),
            "total_runtime_s": round(clock(), 1),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
