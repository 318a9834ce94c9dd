"""Retrieval quality on a question set: recall@k and MRR@10 per retrieval mode.

A question is a JSON line `{"q": ..., "sources": [paths relative to the indexed folder]}`; a
retrieved chunk is a hit when its document is one of the listed sources.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answer.retrieval import Retriever
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


def evaluate(
    retriever: Retriever,
    cases: Sequence[EvalCase],
    progress: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    modes = ["dense", "bm25", "hybrid"] + (["hybrid+rerank"] if retriever.reranker else [])
    ranks: dict[str, list[int | None]] = {mode: [] for mode in modes}
    depth = max(DEPTH, retriever.candidates)
    for case in cases:
        vector = retriever.embedder.embed_query(case.q)
        ranks["dense"].append(
            first_relevant_rank(retriever.search(case.q, "dense", DEPTH, vector), case.sources)
        )
        ranks["bm25"].append(
            first_relevant_rank(retriever.search(case.q, "bm25", DEPTH), case.sources)
        )
        hybrid = retriever.search(case.q, "hybrid", depth, vector)
        ranks["hybrid"].append(first_relevant_rank(hybrid[:DEPTH], case.sources))
        if retriever.reranker:
            reranked = [c.hit for c in retriever.rerank(case.q, hybrid[: retriever.candidates])]
            ranks["hybrid+rerank"].append(first_relevant_rank(reranked, case.sources))
        if progress:
            progress()
    return {mode: summarise(values) for mode, values in ranks.items()}
