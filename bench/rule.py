"""The rule hybrid must keep on every question set, and how likely it keeps it on another.

The rule: hybrid's recall@1 and recall@5 are each at least its best single retriever's
(dense or BM25) minus 0.02. On 24 to 98 questions that can hang on one question, so a set's
`yes` or `NO` says little by itself. Drawing the set's questions again with replacement (as
many as it has), many times, and checking the rule on each draw estimates the chance that it
holds on another set of the same size and kind of questions (Efron's bootstrap). Every fusion
is judged on the same draws of a set: two fusions' chances differ by how they rank, not by
the luck of the draw.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from bot.answer.evaluation import Fuse, Searched, mode_ranks, score_modes, summarise
from bot.answer.fusion import Fusion
from bot.answer.retrieval import DEFAULT_FUSION, hybrid

TOLERANCE = 0.02  # hybrid may trail its best single retriever by this much, no more
CUTOFFS = (1, 5)  # the rule is on recall@1 and recall@5
METRICS = ("recall@1", "recall@5", "mrr@10")
BEFORE = Fusion(method="rrf", k=60, bm25_weight=1.0, per_section=False)  # the fusion before
ROUNDS = 2000
SEED = 0
Results = dict[str, dict[str, float]]
SLACK = 1e-9  # a tie must not fail on float rounding
MODES = ("dense", "bm25", "hybrid")


def within(
    hybrid: float | np.ndarray, best: float | np.ndarray, tolerance: float = TOLERANCE
) -> bool | np.ndarray:
    """The rule's comparison, on one set's recalls or on arrays of resampled ones."""
    return hybrid >= best - tolerance - SLACK


def holds(results: Results, mode: str = "hybrid") -> bool:
    return all(
        within(
            results[mode][f"recall@{k}"],
            max(results["dense"][f"recall@{k}"], results["bm25"][f"recall@{k}"]),
        )
        for k in CUTOFFS
    )


def hold_chance(
    ranks: Mapping[str, Sequence[int | None]],
    tolerance: float = TOLERANCE,
    rounds: int = ROUNDS,
    seed: int = SEED,
) -> float:
    """Share of `rounds` resamples of the questions on which the rule holds. `ranks`: per mode
    (dense, bm25, hybrid), each question's first relevant rank (None: not found)."""
    n = len(ranks["hybrid"])
    if n == 0:
        return 0.0
    draws = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    held = np.ones(rounds, dtype=bool)
    for cutoff in CUTOFFS:
        found = np.array(
            [[r is not None and r <= cutoff for r in ranks[mode]] for mode in MODES], dtype=float
        )
        recall = found[:, draws].mean(axis=2)  # mode x round
        held &= within(recall[2], np.maximum(recall[0], recall[1]), tolerance)
    return float(held.mean())


def fuser(fusion: Fusion) -> Fuse:
    """The bot's hybrid (language weighting included) with another fusion, offline."""
    return functools.partial(hybrid, fusion=fusion)


def modes(searched: Sequence[Searched], fusion: Fusion = DEFAULT_FUSION) -> Results:
    """Dense, BM25 and hybrid (`fusion`) metrics, and under `resampled` the chance that the
    rule holds on another set like this one."""
    ranks = mode_ranks(searched, fuser(fusion))
    results = {mode: summarise(values) for mode, values in ranks.items()}
    results["resampled"] = {"holds": round(hold_chance(ranks), 3)}
    return results


def with_before(searched: Sequence[Searched]) -> Results:
    """`modes`, and the fusion before (RRF per chunk) as `chunk-rrf`."""
    results = modes(searched)
    results["chunk-rrf"] = score_modes(searched, fuser(BEFORE))["hybrid"]
    return results
