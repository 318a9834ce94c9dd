"""Retrieval quality on a question set: recall@k and MRR@10 per retrieval mode.

A question is a JSON line `{"q": ..., "sources": [paths relative to the indexed folder]}`; a
retrieved chunk is a hit when its document is one of the listed sources.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answer.retrieval import FETCH_FACTOR, Retriever
from config.errors import UserError
from indexer.hits import Hit

KS = (1, 3, 5, 10)
DEPTH = 10


class EvalFileError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class EvalCase:
    """One evaluation question and the documents that answer it."""

    q: str
    sources: frozenset[str]


def load_cases(path: Path) -> list[EvalCase]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            sources = item["sources"]
            if not isinstance(item["q"], str) or not isinstance(sources, list) or not sources:
                raise TypeError("q must be a string and sources a non-empty list")
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise EvalFileError(
                f'{path}:{number}: expected {{"q": str, "sources": [paths]}} ({error})'
            ) from None
        cases.append(EvalCase(item["q"], frozenset(str(s) for s in sources)))
    if not cases:
        raise EvalFileError(f"{path} holds no questions")
    return cases


def first_relevant_rank(hits: Sequence[Hit], sources: frozenset[str]) -> int | None:
    for rank, hit in enumerate(hits[:DEPTH], start=1):
        if hit.path in sources:
            return rank
    return None


def summarise(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    metrics = {f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    metrics["mrr@10"] = sum(1.0 / r for r in ranks if r is not None) / n
    return {name: round(value, 4) for name, value in metrics.items()}


@dataclass(frozen=True)
class Searched:
    """One question's two rankings, deep enough to fuse: what every mode is scored from, so
    a fusion can be re-scored offline without searching again (bench/quality.py --tune)."""

    case: EvalCase
    dense: list[Hit]
    bm25: list[Hit]


Fuse = Callable[[str, Sequence[Hit], Sequence[Hit], int], list[Hit]]


def search_cases(
    retriever: Retriever,
    cases: Sequence[EvalCase],
    progress: Callable[[], None] | None = None,
    depth: int | None = None,
) -> list[Searched]:
    """Both rankings per question, as deep as `Retriever.search` fetches for hybrid."""
    depth = depth or max(DEPTH, retriever.candidates) * FETCH_FACTOR
    searched = []
    for case in cases:
        vector = retriever.embedder.embed_query(case.q)
        searched.append(
            Searched(
                case,
                retriever.store.search_dense(vector, depth),
                retriever.store.search_bm25(case.q, depth),
            )
        )
        if progress:
            progress()
    return searched


def mode_ranks(searched: Sequence[Searched], fuse: Fuse) -> dict[str, list[int | None]]:
    """Per mode (dense, BM25, hybrid `fuse`d), each question's first relevant rank."""
    ranks: dict[str, list[int | None]] = {"dense": [], "bm25": [], "hybrid": []}
    for item in searched:
        sources = item.case.sources
        ranks["dense"].append(first_relevant_rank(item.dense, sources))
        ranks["bm25"].append(first_relevant_rank(item.bm25, sources))
        hybrid = fuse(item.case.q, item.dense, item.bm25, DEPTH)
        ranks["hybrid"].append(first_relevant_rank(hybrid, sources))
    return ranks


def score_modes(searched: Sequence[Searched], fuse: Fuse) -> dict[str, dict[str, float]]:
    """Dense, BM25 and hybrid (`fuse`d) metrics of already searched questions."""
    return {mode: summarise(values) for mode, values in mode_ranks(searched, fuse).items()}


def evaluate(
    retriever: Retriever,
    cases: Sequence[EvalCase],
    progress: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per mode: dense, BM25, hybrid as `Retriever.search` fuses them, and hybrid
    then the reranker when one is configured."""
    searched = search_cases(retriever, cases, progress)
    results = score_modes(searched, retriever.fuse)
    if retriever.reranker:
        ranks = []
        for item in searched:
            hybrid = retriever.fuse(item.case.q, item.dense, item.bm25, retriever.candidates)
            reranked = [c.hit for c in retriever.rerank(item.case.q, hybrid)]
            ranks.append(first_relevant_rank(reranked, item.case.sources))
        results["hybrid+rerank"] = summarise(ranks)
    return results
