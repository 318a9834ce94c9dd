"""Reranker speed: the seeds' Qwen3-Reranker recipe against our Qwen3Reranker, same inputs.

A Qwen3 causal LM with the published Qwen3-Reranker-0.6B configuration and random weights
(torch.manual_seed(0), built in memory) scores 1 query against 10 documents of ~350 tokens.

- recipe: the model-card steps copied one for one (pairs tokenised without padding, truncated
  to 8192 - prefix - suffix, wrapped, `tokenizer.pad` on the left, full `model(**inputs).logits`,
  the no/yes columns at the last position, log_softmax, exp) in fp32, all 10 in one batch.
- ours: bot.answer.rerankers.Qwen3Reranker in its default configuration on this machine (bf16 where
  indexer.hardware.pick_dtype("auto", "cpu") says so, on a bf16 copy of the same weights), and
  the same class in fp32 on the recipe's own model object, to separate the algorithmic gain from
  the precision gain.

Each is warmed up once, then the repetitions are interleaved. Printed: median seconds, the
speed ratio recipe / ours, peak RSS above the pre-call RSS while scoring, and the largest
|score difference| against the recipe. The last line is one JSON object of the results.

    .venv/bin/python bench/rerank_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import functools
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

from bot.answer.rerankers.qwen3 import Qwen3Reranker
from indexer.hardware import pick_dtype
from tests.fakes.seeds_recipe import RecipeReranker

N_DOCS = 10
DOC_TOKENS = 350
QUERY = "How do I choose the index type and search parameters to get good recall in Milvus?"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

# The recipe lives in tests/fakes/seeds_recipe.py, shared with the exactness test; it keeps
# its own copy of the prompt strings, so a drift from bot.answer.rerankers.qwen3 shows up as a
# token mismatch.


def build_model(vocab_size: int, layers: int | None = None) -> Any:
    from transformers import Qwen3ForCausalLM

    config = qwen3_config(**({"num_hidden_layers": layers} if layers else {}))
    if vocab_size > config.vocab_size:
        raise RuntimeError("tokenizer larger than the model vocabulary")
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config).eval()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 5")
    parser.add_argument("--reps", type=int, default=None, help="override the repetitions")
    parser.add_argument(
        "--layers", type=int, default=None, help="debug only: fewer than the 28 layers"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The recipe passes max_length to tokenizer.pad(padding=True); transformers warns each call.
    warnings.filterwarnings("ignore", message="`max_length` is ignored when `padding`")
    reps = args.reps or (2 if args.quick else 5)
    clock = Stopwatch()
    threads = set_threads()
    log(f"rerank_bench: torch {torch.__version__}, {threads} threads, load avg {loadavg()}")

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="docsbot-bench-tok-") as tmp:
        tokenizer_source = build_tokenizer_dir(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(tmp, padding_side="left")
    tokenizer.model_max_length = 40960
    docs, text_source = texts_of_lengths(tokenizer, [DOC_TOKENS] * N_DOCS)

    built = Stopwatch()
    model_fp32 = build_model(len(tokenizer), args.layers)
    ours_dtype = pick_dtype("auto", "cpu")
    model_ours = (
        model_fp32 if ours_dtype == torch.float32 else copy.deepcopy(model_fp32).to(ours_dtype)
    )
    n_params = sum(p.numel() for p in model_fp32.parameters())
    attn = model_fp32.config._attn_implementation
    log(
        f"model: Qwen3ForCausalLM, 0.6B config, {n_params / 1e6:.1f}M parameters, random "
        f"(seed 0), attention {attn}; built in {built():.1f} s; ours runs in "
        f"{str(ours_dtype).removeprefix('torch.')}"
    )

    recipe = RecipeReranker(model_fp32, tokenizer, INSTRUCTION)

    def ours_on(model: Any) -> Qwen3Reranker:
        return Qwen3Reranker(model, tokenizer, name="bench", instruction=INSTRUCTION)

    ours_label = f"ours_{str(ours_dtype).removeprefix('torch.')}"
    rerankers: dict[str, Any] = {"recipe_fp32": recipe, ours_label: ours_on(model_ours)}
    if ours_dtype != torch.float32:
        rerankers["ours_fp32"] = ours_on(model_fp32)
    methods: dict[str, Callable[[], list[float]]] = {
        name: functools.partial(r.score, QUERY, docs) for name, r in rerankers.items()
    }

    recipe_ids = recipe.token_ids(QUERY, docs)
    ours_ids = rerankers[ours_label].encode(QUERY, docs)
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
        log(f"warm-up {label:13s} {describe(m)}")

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
            log(f"rep {rep + 1}/{reps} {label:13s} {describe(m)}")

    med = {label: median(values) for label, values in times.items()}
    med_cpu = {label: median(values) for label, values in cpu.items()}
    peak = {label: max(values) for label, values in peaks.items()}
    others = [label for label in methods if label != "recipe_fp32"]
    diffs = {
        label: max(abs(a - b) for a, b in zip(scores[label], scores["recipe_fp32"], strict=True))
        for label in others
    }
    ratios = {label: med["recipe_fp32"] / med[label] for label in others}
    cpu_ratios = {label: med_cpu["recipe_fp32"] / med_cpu[label] for label in others}
    best = {label: min(values) for label, values in times.items()}
    best_ratios = {label: best["recipe_fp32"] / best[label] for label in others}

    log("")
    header = ("method", "median s", "recipe/ours", "median cpu s", "cpu ratio", "peak MiB")
    log("{:14s} {:>9s} {:>12s} {:>13s} {:>10s} {:>9s} {:>10s}".format(*header, "max|diff|"))
    for label in methods:
        ratio = f"{ratios[label]:.2f}x" if label in ratios else "-"
        cpu_ratio = f"{cpu_ratios[label]:.2f}x" if label in cpu_ratios else "-"
        diff = f"{diffs[label]:.2e}" if label in diffs else "-"
        log(
            f"{label:14s} {med[label]:9.2f} {ratio:>12s} {med_cpu[label]:13.1f} {cpu_ratio:>10s} "
            f"{peak[label]:9.1f} {diff:>10s}"
        )
    log(
        "fastest rep (least disturbed by other load): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in best.items())
        + "; recipe/ours on those: "
        + ", ".join(f"{k} {v:.2f}x" for k, v in best_ratios.items())
    )
    log(f"recipe scores: {[round(s, 4) for s in scores['recipe_fp32']]}")
    log(f"{ours_label} scores: {[round(s, 4) for s in scores[ours_label]]}")
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
            "ours_dtype": ours_dtype,
            "ours_batch_size": rerankers[ours_label].batch_size,
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
            "speedup_recipe_over": {k: round(v, 3) for k, v in ratios.items()},
            "min_s": {k: round(v, 3) for k, v in best.items()},
            "speedup_recipe_over_on_min": {k: round(v, 3) for k, v in best_ratios.items()},
            "cpu_s": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "other_processes_cpu_s": {k: [round(x, 1) for x in v] for k, v in contention.items()},
            "median_cpu_s": {k: round(v, 2) for k, v in med_cpu.items()},
            "cpu_speedup_recipe_over": {k: round(v, 3) for k, v in cpu_ratios.items()},
            "peak_rss_mib": {k: round(v, 1) for k, v in peak.items()},
            "max_abs_score_diff_vs_recipe": {k: float(f"{v:.3e}") for k, v in diffs.items()},
            "loadavg_end": loadavg(),
            "total_runtime_s": round(clock(), 1),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
