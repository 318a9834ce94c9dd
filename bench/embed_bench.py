"""Embedding throughput: the seeds' loop, docsbot's torch path and its OpenVINO path, one run.

The model is a sentence-transformers directory with the Qwen3-Embedding-0.6B architecture
(Qwen3Model, published 0.6B configuration, random weights from torch.manual_seed(0), saved in
bf16 like the published checkpoint) + last-token pooling + Normalize. It is built once and
cached under /tmp (DOCSBOT_BENCH_CACHE overrides the folder); every method loads it from there.

- seeds: `SentenceTransformer(path)` in fp32, then `for doc in docs: model.encode([doc])`; its
  vectors are the fp32 reference the others are compared with.
- torch: `indexer.embedding.LocalEmbedder(path)` as configured by default (length-sorted
  batches; bf16 where indexer.hardware.pick_dtype says so).
- openvino: `indexer.openvino_embedder.OpenVINOEmbedder` with int8 weights (the default) and
  with int8-static (weights and activations); the exports are cached under the same folder,
  `models/`, and a first build is timed. Skipped, saying so, without the `openvino` extra.

Inputs: 64 chunks (32 with --quick) of milvus-docs prose, 80-350 tokens each. After a warm-up,
3 interleaved repetitions; printed: median seconds, tokens/s, the ratios to torch and to the
seeds, the lowest cosine to fp32, the RSS each model added when loaded (an export in this
process counts too) and the peak RSS above the pre-call RSS while embedding. The last line is
one JSON object of the results.

    .venv/bin/python bench/embed_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (
    MIB,
    QWEN3_0P6B,
    Stopwatch,
    build_tokenizer_dir,
    describe,
    emit_json,
    loadavg,
    log,
    malloc_trim,
    measure,
    median,
    qwen3_config,
    rss_bytes,
    set_threads,
    texts_of_lengths,
    token_count,
    varied_lengths,
)

from indexer.embedding import LocalEmbedder
from indexer.hardware import pick_dtype
from indexer.openvino_runtime import openvino_installed
from tests.fakes.tiny_qwen import write_sentence_transformers_files

CACHE = Path(os.environ.get("DOCSBOT_BENCH_CACHE", "/tmp/docsbot-bench-cache"))
MODEL_NAME = "qwen3-embedding-0.6b-random-seed0"
T = TypeVar("T")
MIN_TOKENS, MAX_TOKENS = 80, 350


def build_embedding_model(cache: Path, layers: int | None = None) -> tuple[Path, bool]:
    """The sentence-transformers model directory; (path, built now?). Reused when complete.

    Written in the layout Qwen/Qwen3-Embedding-0.6B publishes (the legacy sentence-transformers
    files, written by tests/fakes/tiny_qwen.py): `SentenceTransformer.save()` of version 6
    would record a chat-message input format, and every text would then be wrapped in the chat
    template, which the published model does not do.
    """
    from transformers import AutoTokenizer, Qwen3Model

    spec = {**QWEN3_0P6B, "num_hidden_layers": layers or QWEN3_0P6B["num_hidden_layers"]}
    spec_json = json.dumps(
        {"seed": 0, "dtype": "bfloat16", "layout": "published", **spec}, sort_keys=True
    )
    target = cache / (MODEL_NAME + (f"-{layers}l" if layers else ""))
    marker = target / "bench_spec.json"
    if marker.is_file() and marker.read_text() == spec_json:
        return target, False

    shutil.rmtree(target, ignore_errors=True)
    build_tokenizer_dir(target)
    tokenizer = AutoTokenizer.from_pretrained(str(target))
    # Qwen3-Embedding pads on the left, so the last position is always the last real token.
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 32768
    tokenizer.save_pretrained(str(target))
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(0)
    config = qwen3_config(num_hidden_layers=spec["num_hidden_layers"], pad_token_id=pad)
    Qwen3Model(config).eval().to(torch.bfloat16).save_pretrained(str(target))
    write_sentence_transformers_files(target, int(spec["hidden_size"]), max_seq_length=8192)
    marker.write_text(spec_json)
    return target, True


def seeds_embed(model: Any, docs: list[str]) -> np.ndarray:
    """The recipe: one `encode([doc])` call per document, in a Python loop."""
    vectors = []
    for doc in docs:
        vectors.append(model.encode([doc])[0])
    return np.asarray(vectors, dtype=np.float32)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.sum(a * b, axis=1).min())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 chunks instead of 64")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument(
        "--layers", type=int, default=None, help="debug only: fewer than the 28 layers"
    )
    return parser.parse_args(argv)


def loaded(build: Callable[[], T]) -> tuple[T, float, float]:
    """(object, seconds, MiB of RSS it added)."""
    malloc_trim()
    before, started = rss_bytes(), time.perf_counter()
    value = build()
    return value, time.perf_counter() - started, (rss_bytes() - before) / MIB


def main(argv: list[str] | None = None) -> int:
    from sentence_transformers import SentenceTransformer

    args = parse_args(argv)
    clock = Stopwatch()
    threads = set_threads()
    log(f"embed_bench: torch {torch.__version__}, {threads} threads, load avg {loadavg()}")

    built = Stopwatch()
    path, fresh = build_embedding_model(CACHE, args.layers)
    log(f"model dir {path} ({'built' if fresh else 'cached'}, {built():.1f} s)")

    models: dict[str, Any] = {}
    load_s: dict[str, float] = {}
    load_mib: dict[str, float] = {}
    models["seeds"], load_s["seeds"], load_mib["seeds"] = loaded(
        lambda: SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.float32})
    )
    models["seeds"].eval()
    models["torch"], load_s["torch"], load_mib["torch"] = loaded(lambda: LocalEmbedder(str(path)))
    if openvino_installed():
        from indexer.openvino_embedder import OpenVINOEmbedder

        for key, quantization in (("openvino", "int8"), ("static", "int8-static")):
            models[key], load_s[key], load_mib[key] = loaded(
                lambda q=quantization: OpenVINOEmbedder(
                    str(path), cache_dir=CACHE / "models", quantization=q
                )
            )
            log(f"openvino {quantization}: ready in {load_s[key]:.1f} s (export included if new)")
    else:
        log('openvino: skipped, the extra is not installed (pip install "docsbot[openvino]")')
    ours = models["torch"]
    if ours.torch_dtype != pick_dtype("auto", "cpu"):
        log(f"note: LocalEmbedder loaded {ours.torch_dtype}, pick_dtype says otherwise")
    labels = {
        "seeds": "seeds fp32 loop",
        "torch": f"torch {ours.describe().split()[-1]} (LocalEmbedder)",
        "openvino": "openvino int8 (weights)",
        "static": "openvino int8-static",
    }

    tokenizer = models["seeds"].tokenizer
    count = 32 if args.quick else 64
    texts, source = texts_of_lengths(tokenizer, varied_lengths(count, MIN_TOKENS, MAX_TOKENS))
    lengths = [token_count(tokenizer, t) for t in texts]
    total = sum(lengths)
    log(
        f"text: {source}; {count} chunks, tokens min/median/max "
        f"{min(lengths)}/{int(np.median(lengths))}/{max(lengths)}, total {total}"
    )
    methods: dict[str, Callable[[list[str]], np.ndarray]] = {
        "seeds": lambda docs: seeds_embed(models["seeds"], docs),
        **{k: models[k].embed_documents for k in ("torch", "openvino", "static") if k in models},
    }
    warm = {k: measure(lambda fn=fn: fn(texts[:4])).seconds for k, fn in methods.items()}
    log("warm-up (4 chunks): " + ", ".join(f"{k} {v:.2f} s" for k, v in warm.items()))

    times: dict[str, list[float]] = {k: [] for k in methods}
    cpu: dict[str, list[float]] = {k: [] for k in methods}
    contention: dict[str, list[float]] = {k: [] for k in methods}
    peaks: dict[str, list[float]] = {k: [] for k in methods}
    vectors: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        for label, fn in methods.items():
            m = measure(lambda fn=fn: fn(texts))
            vectors.setdefault(label, m.value)
            times[label].append(m.seconds)
            cpu[label].append(m.cpu_s)
            contention[label].append(m.other_cpu_s)
            peaks[label].append(m.peak_mib)
            log(
                f"rep {rep + 1}/{args.reps} {label:8s} {total / m.seconds:7.1f} tok/s {describe(m)}"
            )

    med = {k: median(v) for k, v in times.items()}
    rate = {k: total / v for k, v in med.items()}
    vs_torch = {k: rate[k] / rate["torch"] for k in methods}
    vs_seeds = {k: rate[k] / rate["seeds"] for k in methods}
    best = {k: min(v) for k, v in times.items()}
    best_vs_torch = {k: best["torch"] / best[k] for k in methods}
    cosine = {k: min_cosine(vectors[k], vectors["seeds"]) for k in methods}
    peak = {k: max(v) for k, v in peaks.items()}

    log("")
    log(
        f"| {'method':28s} | {'median s':>8s} | {'tok/s':>7s} | {'vs torch':>8s} | "
        f"{'vs seeds':>8s} | {'min cos vs fp32':>15s} | {'load MiB':>8s} | {'peak MiB':>8s} |"
    )
    log("|" + "|".join("-" * w for w in (30, 10, 9, 10, 10, 17, 10, 10)) + "|")
    for k in methods:
        log(
            f"| {labels[k]:28s} | {med[k]:8.2f} | {rate[k]:7.1f} | {vs_torch[k]:7.2f}x | "
            f"{vs_seeds[k]:7.2f}x | {cosine[k]:15.5f} | {load_mib[k]:8.0f} | {peak[k]:8.0f} |"
        )
    log(
        "fastest rep (least disturbed by other load), speed vs torch: "
        + ", ".join(f"{k} {v:.2f}x" for k, v in best_vs_torch.items())
    )
    log(f"load avg {loadavg()}; total runtime {clock():.1f} s")

    emit_json(
        {
            "bench": "embed",
            "quick": bool(args.quick),
            "layers": args.layers or QWEN3_0P6B["num_hidden_layers"],
            "reps": args.reps,
            "threads": threads,
            "torch": torch.__version__,
            "methods": labels,
            "text_source": source,
            "chunks": count,
            "tokens_total": total,
            "tokens_min_median_max": [min(lengths), int(np.median(lengths)), max(lengths)],
            "load_s": {k: round(v, 1) for k, v in load_s.items()},
            "load_rss_mib": {k: round(v) for k, v in load_mib.items()},
            "times_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "tokens_per_s": {k: round(v, 1) for k, v in rate.items()},
            "ratio_vs_torch": {k: round(v, 3) for k, v in vs_torch.items()},
            "ratio_vs_seeds": {k: round(v, 3) for k, v in vs_seeds.items()},
            "ratio_vs_torch_on_min": {k: round(v, 3) for k, v in best_vs_torch.items()},
            "min_cosine_vs_fp32": {k: round(v, 6) for k, v in cosine.items()},
            "cpu_s": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "other_processes_cpu_s": {k: [round(x, 1) for x in v] for k, v in contention.items()},
            "peak_rss_mib": {k: round(v, 1) for k, v in peak.items()},
            "loadavg_end": loadavg(),
            "total_runtime_s": round(clock(), 1),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
