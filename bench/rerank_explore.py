"""What would make our reranker faster? Variants of bot.reranker.Qwen3Reranker, same inputs.

Companion to rerank_bench.py (same model, tokenizer, query and documents). It does not change
bot/reranker.py: the variants are subclasses or configuration changes made here.

- `ours_bf16_bs{N}`: Qwen3Reranker(batch_size=N) on the bf16 copy (8 is the default).
- `ours_bf16_eager`: the same on a bf16 copy using eager attention instead of sdpa.
- `prefixkv_bf16_bs{N}`: PrefixSharingReranker, which runs the tokens every sequence shares
  (system prompt + instruction + query: their longest common prefix of token ids) once, and
  feeds each batch only its own remainder on top of a copy of that KV cache.
- `--profile`: torch.profiler table of the default variant, and a time split of a call into
  tokenisation, the transformer body and the two-row head.

Each variant is warmed up once, then the repetitions run round-robin (recipe first when
--with-recipe). Printed: medians, ratios against the recipe, largest |score difference|
against the recipe (fp32); the last line is one JSON object.

    .venv/bin/python bench/rerank_explore.py [--reps 2] [--with-recipe] [--profile]
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
import time
import warnings
from collections.abc import Callable, Sequence
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
    set_threads,
    texts_of_lengths,
)
from rerank_bench import DOC_TOKENS, INSTRUCTION, N_DOCS, QUERY, RecipeReranker, build_model

from bot.reranker import Qwen3Reranker


class PrefixSharingReranker(Qwen3Reranker):
    """Qwen3Reranker that computes the shared prompt prefix once per query (KV cache).

    Every sequence starts with the same tokens (system prompt, instruction, query, and the
    `<Document>:` tag); causal attention means their keys and values do not depend on what
    follows, so they are computed once (batch 1) and expanded to each batch. The remainders are
    right-padded: positions continue from the prefix, and the score is read at each row's own
    last real token. Same p(yes) as the full computation up to float rounding.
    """

    @staticmethod
    def _common_prefix(sequences: list[list[int]]) -> int:
        first = sequences[0]
        shortest = min(len(s) for s in sequences)
        n = 0
        while n < shortest - 1 and all(s[n] == first[n] for s in sequences):
            n += 1
        return n  # at least one token of every sequence is left to run

    @torch.inference_mode()
    def _prefix_cache(self, prefix: list[int]) -> Any:
        ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
        return self.body(input_ids=ids, use_cache=True).past_key_values

    @torch.inference_mode()
    def _score_rest(self, cache: Any, shared: int, rests: list[list[int]]) -> torch.Tensor:
        from transformers import DynamicCache

        batch, width = len(rests), max(len(r) for r in rests)
        ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for row, rest in enumerate(rests):
            ids[row, : len(rest)] = torch.tensor(rest)
            mask[row, shared : shared + len(rest)] = 1
        expanded = DynamicCache(config=self.body.config)
        for index, layer in enumerate(cache.layers):
            keys = layer.keys.expand(batch, -1, -1, -1)
            values = layer.values.expand(batch, -1, -1, -1)
            expanded.update(keys, values, index)
        positions = torch.arange(shared, shared + width, device=self.device).expand(batch, -1)
        out = self.body(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions,
            past_key_values=expanded,
            use_cache=True,
        )
        last_index = torch.tensor([len(r) - 1 for r in rests], device=self.device)
        last = out.last_hidden_state[torch.arange(batch), last_index].float()
        logits = last @ self.yes_no_rows.T
        return torch.log_softmax(logits, dim=-1)[:, 1].exp().cpu()

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        sequences = self.encode(query, documents)
        shared = self._common_prefix(sequences)
        cache = self._prefix_cache(sequences[0][:shared])
        rests = [s[shared:] for s in sequences]
        scores = [0.0] * len(sequences)
        for batch in self._batches([len(r) for r in rests]):
            values = self._score_rest(cache, shared, [rests[i] for i in batch]).tolist()
            for i, value in zip(batch, values, strict=True):
                scores[i] = float(value)
        return scores


def profile(reranker: Qwen3Reranker, docs: list[str]) -> dict[str, Any]:
    """Time split of one call, and the profiler's top operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    start = time.perf_counter()
    sequences = reranker.encode(QUERY, docs)
    encode_s = time.perf_counter() - start
    batches = reranker._batches([len(s) for s in sequences])
    body_s = head_s = 0.0
    for batch in batches:
        rows = [sequences[i] for i in batch]
        width = max(len(s) for s in rows)
        ids = torch.full((len(rows), width), reranker.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, seq in enumerate(rows):
            ids[r, width - len(seq) :] = torch.tensor(seq)
            mask[r, width - len(seq) :] = 1
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = reranker.body(input_ids=ids, attention_mask=mask, use_cache=False)
            t1 = time.perf_counter()
            last = out.last_hidden_state[:, -1, :].float()
            torch.log_softmax(last @ reranker.yes_no_rows.T, dim=-1)[:, 1].exp()
            t2 = time.perf_counter()
        body_s += t1 - t0
        head_s += t2 - t1
    log(
        f"time split: tokenise {encode_s * 1000:.1f} ms, body {body_s:.2f} s, "
        f"two-row head {head_s * 1000:.2f} ms; batches {[len(b) for b in batches]}"
    )
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        reranker.score(QUERY, docs)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    log(table)
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        totals[event.key] = event.self_cpu_time_total / 1e6
    whole = sum(totals.values())
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:10]
    return {
        "tokenise_ms": round(encode_s * 1000, 1),
        "body_s": round(body_s, 3),
        "head_ms": round(head_s * 1000, 2),
        "batches": [len(b) for b in batches],
        "top_self_cpu_share": {k: round(v / whole, 3) for k, v in top},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--with-recipe", action="store_true", help="time the recipe too")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--variants",
        default="bs8,bs10,bs1,eager,prefixkv8,prefixkv10",
        help="comma-separated subset of: bs<N>, eager, prefixkv<N>",
    )
    parser.add_argument(
        "--layers", type=int, default=None, help="debug only: fewer than the 28 layers"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from transformers import AutoTokenizer

    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="`max_length` is ignored when `padding`")
    clock = Stopwatch()
    threads = set_threads()
    log(f"rerank_explore: torch {torch.__version__}, {threads} threads, load avg {loadavg()}")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="docsbot-bench-tok-") as tmp:
        build_tokenizer_dir(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(tmp, padding_side="left")
    tokenizer.model_max_length = 40960
    docs, _ = texts_of_lengths(tokenizer, [DOC_TOKENS] * N_DOCS)

    model_fp32 = build_model(len(tokenizer), args.layers)
    model_bf16 = copy.deepcopy(model_fp32).to(torch.bfloat16)
    recipe = RecipeReranker(model_fp32, tokenizer)

    rerankers: dict[str, Any] = {}
    for spec in args.variants.split(","):
        spec = spec.strip()
        if spec.startswith("bs"):
            rerankers[f"ours_bf16_{spec}"] = Qwen3Reranker(
                model_bf16, tokenizer, name="b", instruction=INSTRUCTION, batch_size=int(spec[2:])
            )
        elif spec == "eager":
            eager = copy.deepcopy(model_bf16)
            eager.set_attn_implementation("eager")
            rerankers["ours_bf16_eager"] = Qwen3Reranker(
                eager, tokenizer, name="b", instruction=INSTRUCTION
            )
        elif spec.startswith("prefixkv"):
            rerankers[f"prefixkv_bf16_bs{spec[8:]}"] = PrefixSharingReranker(
                model_bf16, tokenizer, name="b", instruction=INSTRUCTION, batch_size=int(spec[8:])
            )
        else:
            raise SystemExit(f"unknown variant {spec!r}")

    sequences = Qwen3Reranker(model_bf16, tokenizer, name="b", instruction=INSTRUCTION).encode(
        QUERY, docs
    )
    shared = PrefixSharingReranker._common_prefix(sequences)
    log(
        f"sequences {[len(s) for s in sequences]}; shared prefix {shared} tokens "
        f"({shared / len(sequences[0]):.0%} of a sequence)"
    )

    # Correctness in fp32: prefix sharing against the recipe, and the plain fp32 path.
    reference = recipe.score(QUERY, docs) if args.with_recipe else None
    fp32_diff: dict[str, float] = {}
    if reference is not None:
        for label, reranker in (
            ("ours_fp32", Qwen3Reranker(model_fp32, tokenizer, name="b", instruction=INSTRUCTION)),
            (
                "prefixkv_fp32",
                PrefixSharingReranker(model_fp32, tokenizer, name="b", instruction=INSTRUCTION),
            ),
        ):
            got = reranker.score(QUERY, docs)
            fp32_diff[label] = max(abs(a - b) for a, b in zip(got, reference, strict=True))
            log(f"max |{label} - recipe| = {fp32_diff[label]:.2e}")

    methods: dict[str, Callable[[], list[float]]] = {}
    if args.with_recipe:
        methods["recipe_fp32"] = lambda: recipe.score(QUERY, docs)
    for label, reranker in rerankers.items():
        methods[label] = functools.partial(reranker.score, QUERY, docs)

    scores: dict[str, list[float]] = {}
    for label, fn in methods.items():
        m = measure(fn)
        scores[label] = m.value
        log(f"warm-up {label:22s} {describe(m)}")
    times: dict[str, list[float]] = {label: [] for label in methods}
    cpu: dict[str, list[float]] = {label: [] for label in methods}
    peaks: dict[str, list[float]] = {label: [] for label in methods}
    for rep in range(args.reps):
        for label, fn in methods.items():
            m = measure(fn)
            times[label].append(m.seconds)
            cpu[label].append(m.cpu_s)
            peaks[label].append(m.peak_mib)
            log(f"rep {rep + 1}/{args.reps} {label:22s} {describe(m)}")

    med = {k: median(v) for k, v in times.items()}
    base = scores.get("recipe_fp32") or reference
    log("")
    log(
        f"{'variant':24s} {'median s':>9s} {'recipe/this':>12s} {'peak MiB':>9s} {'max|diff|':>10s}"
    )
    diffs: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for label in methods:
        ratio = "-"
        if "recipe_fp32" in med and label != "recipe_fp32":
            ratios[label] = med["recipe_fp32"] / med[label]
            ratio = f"{ratios[label]:.2f}x"
        diff = "-"
        if base is not None and label != "recipe_fp32":
            diffs[label] = max(abs(a - b) for a, b in zip(scores[label], base, strict=True))
            diff = f"{diffs[label]:.2e}"
        log(f"{label:24s} {med[label]:9.2f} {ratio:>12s} {max(peaks[label]):9.1f} {diff:>10s}")

    profiled: dict[str, Any] = {}
    if args.profile:
        default = Qwen3Reranker(model_bf16, tokenizer, name="b", instruction=INSTRUCTION)
        profiled = profile(default, docs)
    log(f"load avg {loadavg()}; total runtime {clock():.1f} s")
    emit_json(
        {
            "bench": "rerank_explore",
            "reps": args.reps,
            "threads": threads,
            "shared_prefix_tokens": shared,
            "sequence_tokens": [len(s) for s in sequences],
            "times_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "cpu_s": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "speedup_recipe_over": {k: round(v, 3) for k, v in ratios.items()},
            "peak_rss_mib": {k: round(max(v), 1) for k, v in peaks.items()},
            "max_abs_score_diff_vs_recipe": {k: float(f"{v:.3e}") for k, v in diffs.items()},
            "fp32_max_abs_score_diff_vs_recipe": {
                k: float(f"{v:.3e}") for k, v in fp32_diff.items()
            },
            "profile": profiled,
            "loadavg_end": loadavg(),
            "total_runtime_s": round(clock(), 1),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
