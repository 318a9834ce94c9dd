"""Reranker speed: the seeds' recipe, docsbot's Qwen3Reranker on torch and on OpenVINO, one run.

A Qwen3 causal LM with the published Qwen3-Reranker-0.6B configuration and random weights
(torch.manual_seed(0), rounded to bf16 like the published checkpoint and saved once under
/tmp, DOCSBOT_BENCH_CACHE overrides) scores 1 query against 10 documents of ~350 tokens.

- recipe: the model-card steps copied one for one (pairs tokenised without padding, truncated
  to 8192 - prefix - suffix, wrapped, `tokenizer.pad` on the left, full `model(**inputs).logits`,
  the no/yes columns at the last position, log_softmax, exp) in fp32, all 10 in one batch: the
  reference every other score is compared with.
- torch: bot.answer.rerankers.Qwen3Reranker in its default configuration on this machine (bf16
  where indexer.hardware.pick_dtype("auto", "cpu") says so; 4 pairs a batch, the CPU default),
  and the same class in fp32, to separate the algorithmic gain from the precision gain.
- openvino: bot.answer.rerankers.openvino.OpenVINOReranker (the same computation exported once)
  with int8 weights and int8-static (weights and activations, the default), 4 pairs a batch
  too; cached under the same folder, `models/`. Skipped without the extra.

Each is warmed up once, then the repetitions are interleaved. Printed: median seconds, the
speed ratios to torch (default dtype) and to the recipe, peak RSS above the pre-call RSS while
scoring, the largest |score difference| to the recipe and whether the ranking is the recipe's
(random weights put all scores within a few hundredths, so the order is informative only). The
last line is one JSON object of the results.

    .venv/bin/python bench/rerank_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (
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
)

from bot.answer.rerankers import CPU_BATCH
from bot.answer.rerankers.qwen3 import Qwen3Reranker
from indexer.hardware import pick_dtype
from indexer.openvino_runtime import openvino_installed
from tests.fakes.seeds_recipe import RecipeReranker

N_DOCS = 10
DOC_TOKENS = 350
QUERY = "How do I choose the index type and search parameters to get good recall in Milvus?"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
CACHE = Path(os.environ.get("DOCSBOT_BENCH_CACHE", "/tmp/docsbot-bench-cache"))
MODEL_NAME = "qwen3-reranker-0.6b-random-seed0"

# The recipe lives in tests/fakes/seeds_recipe.py, shared with the exactness test; it keeps
# its own copy of the prompt strings, so a drift from bot.answer.rerankers.qwen3 shows up as a
# token mismatch.


def build_model_dir(tokenizer: Any, layers: int | None = None) -> tuple[Path, bool]:
    """The reranker saved with its tokenizer (what OpenVINOReranker exports from); reused."""
    from transformers import Qwen3ForCausalLM

    config = qwen3_config(**({"num_hidden_layers": layers} if layers else {}))
    if len(tokenizer) > config.vocab_size:
        raise RuntimeError("tokenizer larger than the model vocabulary")
    spec = json.dumps({"seed": 0, "dtype": "bfloat16", **config.to_dict()}, sort_keys=True)
    target = CACHE / (MODEL_NAME + (f"-{layers}l" if layers else ""))
    marker = target / "bench_spec.json"
    if marker.is_file() and marker.read_text() == spec:
        return target, False
    shutil.rmtree(target, ignore_errors=True)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval().to(torch.bfloat16)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    marker.write_text(spec)
    return target, True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 3")
    parser.add_argument("--reps", type=int, default=None, help="override the repetitions")
    parser.add_argument(
        "--layers", type=int, default=None, help="debug only: fewer than the 28 layers"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = parse_args(argv)
    # The recipe passes max_length to tokenizer.pad(padding=True); transformers warns each call.
    warnings.filterwarnings("ignore", message="`max_length` is ignored when `padding`")
    reps = args.reps or (2 if args.quick else 3)
    clock = Stopwatch()
    threads = set_threads()
    log(f"rerank_bench: torch {torch.__version__}, {threads} threads, load avg {loadavg()}")

    with tempfile.TemporaryDirectory(prefix="docsbot-bench-tok-") as tmp:
        tokenizer_source = build_tokenizer_dir(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(tmp, padding_side="left")
    tokenizer.model_max_length = 40960
    docs, text_source = texts_of_lengths(tokenizer, [DOC_TOKENS] * N_DOCS)

    built = Stopwatch()
    path, fresh = build_model_dir(tokenizer, args.layers)
    model_fp32 = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    ours_dtype = pick_dtype("auto", "cpu")
    model_ours = (
        model_fp32 if ours_dtype == torch.float32 else copy.deepcopy(model_fp32).to(ours_dtype)
    )
    n_params = sum(p.numel() for p in model_fp32.parameters())
    attn = model_fp32.config._attn_implementation
    log(
        f"model: Qwen3ForCausalLM, 0.6B config, {n_params / 1e6:.1f}M parameters, random "
        f"(seed 0), attention {attn}; {'built' if fresh else 'cached'} in {built():.1f} s at "
        f"{path}; torch default runs in {str(ours_dtype).removeprefix('torch.')}"
    )

    def ours_on(model: Any) -> Qwen3Reranker:
        return Qwen3Reranker(
            model, tokenizer, name="bench", instruction=INSTRUCTION, batch_size=CPU_BATCH
        )

    torch_label = f"torch_{str(ours_dtype).removeprefix('torch.')}"
    rerankers: dict[str, Any] = {
        "recipe_fp32": RecipeReranker(model_fp32, tokenizer, INSTRUCTION),
        torch_label: ours_on(model_ours),
    }
    if ours_dtype != torch.float32:
        rerankers["torch_float32"] = ours_on(model_fp32)
    if openvino_installed():
        from bot.answer.rerankers.openvino import OpenVINOReranker

        for quantization in ("int8", "int8-static"):
            started = Stopwatch()
            rerankers[f"openvino_{quantization}"] = OpenVINOReranker.open(
                str(path),
                cache_dir=CACHE / "models",
                instruction=INSTRUCTION,
                quantization=quantization,
                batch_size=CPU_BATCH,
            )
            log(f"openvino {quantization}: ready in {started():.1f} s (export included if new)")
    else:
        log('openvino: skipped, the extra is not installed (pip install "docsbot[openvino]")')
    methods: dict[str, Callable[[], list[float]]] = {
        name: functools.partial(r.score, QUERY, docs) for name, r in rerankers.items()
    }

    recipe = rerankers["recipe_fp32"]
    recipe_ids = recipe.token_ids(QUERY, docs)
    ours_ids = rerankers[torch_label].encode(QUERY, docs)
    doc_tokens = [len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in docs]
    seq_tokens = [len(s) for s in recipe_ids]
    log(f"tokenizer: {tokenizer_source}, {len(tokenizer)} tokens; text: {text_source}")
    log(f"query: {QUERY!r}")
    log(f"tokens per document: {doc_tokens}")
    log(
        f"tokens per sequence (prefix + pair + suffix): {seq_tokens}; total {sum(seq_tokens)}, "
        f"padded batch {len(seq_tokens)} x {max(seq_tokens)} = {len(seq_tokens) * max(seq_tokens)}"
    )
    log(f"token ids identical (ours.encode vs recipe): {ours_ids == recipe_ids}")

    scores: dict[str, list[float]] = {}
    warm: dict[str, float] = {}
    for label, fn in methods.items():
        m = measure(fn)
        scores[label], warm[label] = m.value, m.seconds
        log(f"warm-up {label:14s} {describe(m)}")

    times: dict[str, list[float]] = {label: [] for label in methods}
    cpu: dict[str, list[float]] = {label: [] for label in methods}
    contention: dict[str, list[float]] = {label: [] for label in methods}
    peaks: dict[str, list[float]] = {label: [] for label in methods}
    drift: dict[str, float] = {label: 0.0 for label in methods}
    for rep in range(reps):
        for label, fn in methods.items():
            m = measure(fn)
            times[label].append(m.seconds)
            cpu[label].append(m.cpu_s)
            contention[label].append(m.other_cpu_s)
            peaks[label].append(m.peak_mib)
            drift[label] = max(
                drift[label], max(abs(a - b) for a, b in zip(m.value, scores[label], strict=True))
            )
            log(f"rep {rep + 1}/{reps} {label:14s} {describe(m)}")

    med = {label: median(values) for label, values in times.items()}
    peak = {label: max(values) for label, values in peaks.items()}
    reference = scores["recipe_fp32"]
    diffs = {
        label: max(abs(a - b) for a, b in zip(scores[label], reference, strict=True))
        for label in methods
    }
    order = {label: ranking(scores[label]) == ranking(reference) for label in methods}
    vs_torch = {label: med[torch_label] / med[label] for label in methods}
    vs_recipe = {label: med["recipe_fp32"] / med[label] for label in methods}
    best = {label: min(values) for label, values in times.items()}
    best_vs_torch = {label: best[torch_label] / best[label] for label in methods}

    log("")
    log(
        f"| {'method':16s} | {'median s':>8s} | {'vs torch':>8s} | {'vs recipe':>9s} | "
        f"{'max abs diff vs fp32':>20s} | {'fp32 order':>10s} | {'peak MiB':>8s} |"
    )
    log("|" + "|".join("-" * w for w in (18, 10, 10, 11, 22, 12, 10)) + "|")
    for label in methods:
        log(
            f"| {label:16s} | {med[label]:8.2f} | {vs_torch[label]:7.2f}x | "
            f"{vs_recipe[label]:8.2f}x | {diffs[label]:20.2e} | {order[label]!s:>10s} | "
            f"{peak[label]:8.0f} |"
        )
    log(
        "fastest rep (least disturbed by other load), speed vs torch: "
        + ", ".join(f"{k} {v:.2f}x" for k, v in best_vs_torch.items())
    )
    for label in methods:
        log(f"{label} scores: {[round(s, 4) for s in scores[label]]}")
    log(f"largest run-to-run score change: {max(drift.values()):.1e}")
    log(f"load avg {loadavg()}; total runtime {clock():.1f} s")

    emit_json(
        {
            "bench": "rerank",
            "quick": bool(args.quick),
            "layers": model_fp32.config.num_hidden_layers,
            "reps": reps,
            "threads": threads,
            "torch": torch.__version__,
            "attn_implementation": attn,
            "torch_default_dtype": ours_dtype,
            "tokenizer": tokenizer_source,
            "text_source": text_source,
            "docs": len(docs),
            "doc_tokens": doc_tokens,
            "sequence_tokens": seq_tokens,
            "total_tokens": sum(seq_tokens),
            "token_ids_identical": ours_ids == recipe_ids,
            "warmup_s": {k: round(v, 3) for k, v in warm.items()},
            "times_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "speed_vs_torch": {k: round(v, 3) for k, v in vs_torch.items()},
            "speed_vs_recipe": {k: round(v, 3) for k, v in vs_recipe.items()},
            "speed_vs_torch_on_min": {k: round(v, 3) for k, v in best_vs_torch.items()},
            "cpu_s": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "other_processes_cpu_s": {k: [round(x, 1) for x in v] for k, v in contention.items()},
            "peak_rss_mib": {k: round(v, 1) for k, v in peak.items()},
            "max_abs_score_diff_vs_recipe_fp32": {k: float(f"{v:.3e}") for k, v in diffs.items()},
            "same_order_as_recipe_fp32": order,
            "loadavg_end": loadavg(),
            "total_runtime_s": round(clock(), 1),
        }
    )
    return 0


def ranking(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


if __name__ == "__main__":
    raise SystemExit(main())
