"""Cross-validating the fusion over the tuning sets (bench/quality.py --tune).

For every split of the tuning sets into two halves, a fusion is chosen on one half and reported
on the other, then the halves swap; the grid whose held-out reports keep the rule most often
gives the fusion, the one the same criterion chooses on all the tuning sets
(docs/evaluation.md says why, and what it chose).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from typing import Literal

from bench.rule import METRICS, Results, holds, modes
from bot.answer.evaluation import Searched
from bot.answer.fusion import Fusion

# Two grids: the normalisation alone, both retrievers weighing the same (RRF's k; min-max,
# DBSF, z-score, or min-max times each ranking's confidence at 2, 5 or 10, for both rankings
# or for BM25's alone: bot.answer.fusion);
# and the same with BM25's weight tuned too. The first run's fusions come first: a tie keeps them.
EQUAL = (
    [Fusion(method="rrf", k=k) for k in (60, 2, 5, 10, 20)]
    + [Fusion(method="minmax"), Fusion(method="dbsf"), Fusion(method="zscore")]
    + [Fusion(method="gap", gap_at=at) for at in (2, 5, 10)]
    # Added later: dense min-max, BM25 judged by how far its first hit stands out (the gap at
    # 2, 5, 10; DBSF; z-score), since only BM25's scores say nothing across questions.
    + [Fusion(method="minmax", bm25_method="gap", gap_at=at) for at in (2, 5, 10)]
    + [Fusion(method="minmax", bm25_method=m) for m in ("dbsf", "zscore")]
)
WEIGHTED = EQUAL + [
    dataclasses.replace(f, bm25_weight=w) for f in EQUAL for w in (0.5, 0.75, 1.25, 1.5)
]


_TUNING: dict[str, list[Searched]] = {}  # the sets being cross-validated


# How a half's fusion is chosen: first the rule, then the mean. `holds` counts the sets where
# hybrid keeps the rule; `resampled` sums each set's chance of keeping it on a resample of its
# questions (bench/rule.py), which does not hang on one question per set.
Criterion = Literal["holds", "resampled"]
Score = tuple[float, float]


@functools.cache
def _scored(name: str, fusion: Fusion) -> Results:
    """`modes` with `fusion` on the tuning set `name` (each pair scored once)."""
    return modes(_TUNING[name], fusion)


def objective(by_set: dict[str, Results], criterion: Criterion = "holds") -> Score:
    """The rule first (a floor on every set), then the mean of recall@1, recall@5 and MRR@10
    over the sets."""
    if criterion == "resampled":
        kept: float = round(sum(r["resampled"]["holds"] for r in by_set.values()), 3)
    else:
        kept = sum(holds(results) for results in by_set.values())
    mean = sum(r["hybrid"][m] for r in by_set.values() for m in METRICS) / (3 * len(by_set))
    return kept, round(mean, 4)


def choose(
    names: Sequence[str], grid: Sequence[Fusion], criterion: Criterion = "holds"
) -> tuple[Fusion, Score]:
    """The grid's best fusion on `names` (of `_TUNING`); a tie keeps the earlier one."""
    best: tuple[Fusion, Score] | None = None
    for fusion in grid:
        score = objective({n: _scored(n, fusion) for n in names}, criterion)
        if best is None or score > best[1]:
            best = (fusion, score)
    assert best is not None
    return best


def cross_validate(
    grid: Sequence[Fusion], criterion: Criterion = "holds"
) -> tuple[str, Score, Fusion]:
    """Every split of the sets into two halves: choose on one half, report on the other, then
    swap. With an odd number of sets the halves are n // 2 and the rest (five sets: ten
    splits of two and three, twenty choices, fifty held-out reports); with an even number each
    split is taken once, not again as its complement. Returns the report, the held-out score
    (reports where the rule holds, their mean) and the choice the same procedure makes on all
    the sets. Whatever the criterion, a held-out report counts where the rule holds on it."""
    names = sorted(_TUNING)
    if len(names) < 2:
        raise SystemExit("--tune needs at least two tuning sets")
    lines = []
    held_out: dict[str, Results] = {}
    seen: set[tuple[str, ...]] = set()
    for tuned in itertools.combinations(names, len(names) // 2):
        held = tuple(n for n in names if n not in tuned)
        if held in seen:  # only when both halves have the same size
            continue
        seen.add(tuned)
        for on, report in ((tuned, held), (held, tuned)):
            fusion, score = choose(on, grid, criterion)
            lines.append(f"tuned on {'+'.join(on)}: {fusion} (held {score[0]}, mean {score[1]})")
            for name in report:
                results = _scored(name, fusion)
                held_out[f"{'+'.join(on)}->{name}"] = results
                cells = "  ".join(f"{m} {results['hybrid'][m]:.3f}" for m in METRICS)
                best = {m: max(results["dense"][m], results["bm25"][m]) for m in METRICS}
                bests = "  ".join(f"{m} {best[m]:.3f}" for m in METRICS)
                mark = "holds" if holds(results) else "FAILS"
                lines.append(f"    held-out {name}: hybrid {cells} | best single {bests} {mark}")
    score = objective(held_out)
    lines.append(
        f"held-out reports where the rule holds: {score[0]} of {len(held_out)}, mean {score[1]}"
    )
    fusion, on_all = choose(names, grid, criterion)
    lines.append(
        f"chosen on all of {'+'.join(names)}: {fusion} (held {on_all[0]}, mean {on_all[1]})"
    )
    return "\n".join(lines), score, fusion


def candidates(grid: Sequence[Fusion]) -> str:
    """Each fusion on all the tuning sets: where the rule holds, its chance summed over the
    sets, the mean, and where it fails."""
    names = sorted(_TUNING)
    lines = [f"every fusion on {'+'.join(names)}: holds (of {len(names)}), expected on resamples"]
    for fusion in grid:
        by_set = {n: _scored(n, fusion) for n in names}
        (kept, mean), chance = objective(by_set), objective(by_set, "resampled")[0]
        fails = ",".join(n for n in names if not holds(by_set[n])) or "-"
        lines.append(f"    {kept}  {chance:.2f}  mean {mean:.4f}  fails {fails:24}  {fusion}")
    return "\n".join(lines)


def tune(searched: dict[str, list[Searched]], criterion: Criterion = "holds") -> str:
    """Cross-validate each grid; the grid whose held-out reports hold most often (then the best
    held-out mean; then the smaller grid) gives the fusion, the one it chooses on all sets.
    The criterion is fixed before any set that is not tuned on is looked at."""
    _TUNING.clear()
    _TUNING.update(searched)
    _scored.cache_clear()
    out, best = [candidates(EQUAL) + "\n"], None
    for title, grid in (("equal weights", EQUAL), ("BM25 weight tuned too", WEIGHTED)):
        report, score, fusion = cross_validate(grid, criterion)
        out.append(f"== {title}: {len(grid)} fusions\n{report}\n")
        if best is None or score > best[0]:
            best = (score, fusion, title)
    assert best is not None
    out.append(f"CHOSEN ({best[2]}, held-out {best[0]}): {best[1]}")
    return "\n".join(out)
