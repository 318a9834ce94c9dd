"""Fusing the dense and BM25 rankings into one, per section.

Two retrievers often find the right section through different chunks of it: dense the chunk
that paraphrases the question, BM25 the one that names its config key. Fused per chunk, each
of those chunks gets one retriever's vote and both lose to a chunk that only one retriever
liked a little more. Fused per section (document + heading path), the section gets both votes;
the chunk shown for it is its best-ranked one. Measured on four documentation sets, this is
what makes hybrid at least as good as its best single retriever (docs/evaluation.md).

Pure functions over `Hit`s: no Milvus, no model, so they are tested and tuned offline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from indexer.hits import Hit

FusionMethod = Literal["rrf", "minmax", "dbsf", "zscore", "gap"]
RRF_K = 60
GAP_AT = 5
# A ranking's scores (best first, higher better) -> (each put on the common scale, the value
# of a group that ranking did not return).
Scale = Callable[[list[float]], tuple[list[float], float]]


def chunk_key(hit: Hit) -> Hashable:
    return hit.id


def section_key(hit: Hit) -> Hashable:
    """Chunks never span two sections (indexer.chunking), so this groups a section's chunks."""
    return (hit.source_key, hit.path, hit.heading)


@dataclass(frozen=True)
class Fusion:
    """How two rankings (dense first, then BM25) become one.

    `rrf`: sum of weight / (k + rank). The others sum weight * the score put on a common
    scale within its ranking: `minmax` rescaled to [0, 1]; `dbsf` mean -/+ 3 standard
    deviations to 0/1, clipped; `zscore` standard scores; `gap` min-max times the ranking's
    confidence for this question (the share of its range between its first and `gap_at`-th
    hit). `bm25_method`, when set, scales BM25's ranking differently from dense's (not with
    rrf): cosines are bounded and comparable across questions, BM25 scores are neither. The
    dense weight is 1; `bm25_weight` is BM25's. The defaults are the choice of
    cross-validation over several corpora (bench/quality.py --tune, docs/evaluation.md).
    """

    method: FusionMethod = "minmax"
    k: int = RRF_K  # rrf only
    bm25_weight: float = 1.0
    per_section: bool = True
    gap_at: int = GAP_AT  # gap only
    bm25_method: FusionMethod | None = None  # None: as `method`

    def weighted(self, bm25_share: float) -> Fusion:
        """This fusion with BM25's weight scaled by `bm25_share` (0: dense alone)."""
        return replace(self, bm25_weight=self.bm25_weight * max(0.0, min(1.0, bm25_share)))

    def fuse(self, dense: Sequence[Hit], bm25: Sequence[Hit], limit: int) -> list[Hit]:
        key = section_key if self.per_section else chunk_key
        weights = (1.0, self.bm25_weight)
        if self.method == "rrf":
            return rrf_fuse([dense, bm25], limit, k=self.k, weights=weights, key=key)
        scales = [self.scale(self.method), self.scale(self.bm25_method or self.method)]
        return score_fuse([dense, bm25], limit, scales, weights=weights, key=key)

    def scale(self, method: FusionMethod) -> Scale:
        if method == "gap":
            return gap_scale(self.gap_at)
        return {"minmax": minmax_scale, "dbsf": dbsf_scale, "zscore": zscore_scale}[method]


def _grouped(
    ranking: Sequence[Hit], key: Callable[[Hit], Hashable]
) -> list[tuple[Hashable, int, Hit]]:
    """(key, rank among keys, best hit) per group, in ranking order: a group's rank is its
    best chunk's, and the groups below move up, so a section found by three chunks does not
    push the next section three places down."""
    seen: dict[Hashable, tuple[Hashable, int, Hit]] = {}
    for hit in ranking:
        group = key(hit)
        if group not in seen:
            seen[group] = (group, len(seen) + 1, hit)
    return list(seen.values())


def _fused(
    scored: dict[Hashable, float],
    best: dict[Hashable, tuple[int, int, Hit]],
    limit: int,
) -> list[Hit]:
    """Best score first; ties go to the earlier ranking (dense), then to the better rank.

    The tie rule is measured, not cosmetic: a group found by one retriever at rank r scores
    the same whichever found it, so exact ties are common at the top under RRF, and sending
    them to the semantic match was worth 0.08 recall@1 on the Milvus dev set (all-MiniLM-L6-v2).
    """
    order = sorted(scored, key=lambda g: (-scored[g], best[g][0], best[g][1]))
    return [replace(best[g][2], score=round(scored[g], 6)) for g in order[:limit]]


def _first_seen(
    rankings: Sequence[Sequence[tuple[Hashable, int, Hit]]],
) -> dict[Hashable, tuple[int, int, Hit]]:
    """Per group: (which ranking found it first, its rank there, the chunk to show). The
    chunk shown is the group's best-ranked chunk in any ranking, dense winning a tie."""
    first: dict[Hashable, tuple[int, int]] = {}
    shown: dict[Hashable, tuple[int, int, Hit]] = {}
    for which, ranking in enumerate(rankings):
        for group, rank, hit in ranking:
            first.setdefault(group, (which, rank))
            if group not in shown or (rank, which) < shown[group][:2]:
                shown[group] = (rank, which, hit)
    return {g: (first[g][0], first[g][1], shown[g][2]) for g in first}


def rrf_fuse(
    rankings: Sequence[Sequence[Hit]],
    limit: int,
    k: int = RRF_K,
    *,
    weights: Sequence[float] | None = None,
    key: Callable[[Hit], Hashable] = chunk_key,
) -> list[Hit]:
    """Weighted reciprocal rank fusion over groups of hits (chunks by default).

    Fused here rather than with Milvus' RRFRanker, which fuses chunks and breaks ties
    arbitrarily (see `_fused`).
    """
    grouped = [_grouped(ranking, key) for ranking in rankings]
    weights = weights or [1.0] * len(rankings)
    scores: dict[Hashable, float] = {}
    for weight, ranking in zip(weights, grouped, strict=True):
        for group, rank, _hit in ranking:
            scores[group] = scores.get(group, 0.0) + weight / (k + rank)
    return _fused(scores, _first_seen(grouped), limit)


def score_fuse(
    rankings: Sequence[Sequence[Hit]],
    limit: int,
    scale: Scale | Sequence[Scale],
    *,
    weights: Sequence[float] | None = None,
    key: Callable[[Hit], Hashable] = chunk_key,
) -> list[Hit]:
    """Weighted sum of each ranking's scores put on a common scale by `scale` (one for all, or
    one per ranking; a group's score is its best chunk's): cosine similarities and BM25 scores
    live on different scales. A group a ranking did not return gets that ranking's `missing`
    value."""
    grouped = [_grouped(ranking, key) for ranking in rankings]
    weights = weights or [1.0] * len(rankings)
    scales = [scale] * len(rankings) if callable(scale) else list(scale)
    scaled = [
        each(_oriented([hit.score for _g, _r, hit in ranking]))
        for each, ranking in zip(scales, grouped, strict=True)
    ]
    first = _first_seen(grouped)
    scores = dict.fromkeys(first, 0.0)
    for weight, ranking, (normalised, missing) in zip(weights, grouped, scaled, strict=True):
        found = {group: value for (group, _r, _h), value in zip(ranking, normalised, strict=True)}
        for group in scores:
            scores[group] += weight * found.get(group, missing)
    return _fused(scores, first, limit)


def minmax_fuse(
    rankings: Sequence[Sequence[Hit]],
    limit: int,
    *,
    weights: Sequence[float] | None = None,
    key: Callable[[Hit], Hashable] = chunk_key,
) -> list[Hit]:
    """`score_fuse` with scores rescaled to [0, 1] within each ranking (best 1, last 0)."""
    return score_fuse(rankings, limit, minmax_scale, weights=weights, key=key)


# --- scales ------------------------------------------------------------------------------------


def _oriented(scores: list[float]) -> list[float]:
    """Higher is better, judged from the ranking's own ends rather than assumed: Milvus Lite
    returns BM25 scores negated (best most negative), a server positive; either way the first
    hit is the best."""
    return [-s for s in scores] if scores and scores[0] < scores[-1] else scores


def minmax_scale(scores: list[float]) -> tuple[list[float], float]:
    """Best 1, last 0; a ranking whose scores are all equal says nothing about order: full
    marks. Not returned: 0, as the last."""
    if not scores or scores[0] == scores[-1]:
        return [1.0] * len(scores), 0.0
    best, worst = scores[0], scores[-1]
    return [(s - worst) / (best - worst) for s in scores], 0.0


def _mean_std(scores: list[float]) -> tuple[float, float]:
    mean = sum(scores) / len(scores)
    return mean, math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))


def dbsf_scale(scores: list[float]) -> tuple[list[float], float]:
    """Distribution-based score fusion (Qdrant's): mean - 3 std is 0, mean + 3 std is 1,
    clipped. Unlike min-max, the first hit does not get full marks for being first, only for
    standing far above the ranking's spread. All equal: 0.5. Not returned: 0."""
    if not scores:
        return [], 0.0
    mean, std = _mean_std(scores)
    if std == 0:
        return [0.5] * len(scores), 0.0
    low = mean - 3 * std
    return [min(1.0, max(0.0, (s - low) / (6 * std))) for s in scores], 0.0


def zscore_scale(scores: list[float]) -> tuple[list[float], float]:
    """Standard scores, (score - mean) / std, unclipped. Not returned: the ranking's lowest
    (it ranks below the last hit returned). All equal: 0."""
    if not scores:
        return [], 0.0
    mean, std = _mean_std(scores)
    z = [(s - mean) / std if std else 0.0 for s in scores]
    return z, z[-1]


def gap_scale(at: int) -> Scale:
    """Min-max, scaled by the ranking's confidence for this question: the share of its score
    range that lies between its first and its `at`-th hit. A first hit towering over the next
    ones: nearly 1; near-equal first hits: nearly 0, however many points they have."""

    def scale(scores: list[float]) -> tuple[list[float], float]:
        if not scores or scores[0] == scores[-1]:
            return [0.0] * len(scores), 0.0
        normalised, missing = minmax_scale(scores)
        confidence = 1.0 - normalised[min(at, len(scores)) - 1]
        return [confidence * n for n in normalised], missing

    return scale
