"""Finding the sections that answer a question: hybrid search, then the reranker."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from bot.reranker import Reranker
from indexer.embedding import Embedder
from indexer.store import Hit, MilvusStore

SearchMode = Literal["dense", "bm25", "hybrid"]


@dataclass(frozen=True)
class Candidate:
    hit: Hit
    rerank_score: float | None = None

    @property
    def score(self) -> float:
        return self.rerank_score if self.rerank_score is not None else self.hit.score


@dataclass
class Retrieval:
    candidates: list[Candidate]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def best_rerank_score(self) -> float | None:
        scores = [c.rerank_score for c in self.candidates if c.rerank_score is not None]
        return max(scores) if scores else None


def rerank_text(hit: Hit) -> str:
    """The reranker judges a section as a reader sees it: where it sits, then what it says."""
    where = " › ".join(part for part in (hit.title, hit.heading) if part)
    return f"{where}\n{hit.text}" if where else hit.text


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        store: MilvusStore,
        reranker: Reranker | None,
        *,
        candidates: int = 20,
        rerank_limit: int | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.reranker = reranker
        self.candidates = candidates
        self.rerank_limit = rerank_limit

    def search(
        self, query: str, mode: SearchMode, limit: int, vector: list[float] | None = None
    ) -> list[Hit]:
        if mode == "bm25":
            return self.store.search_bm25(query, limit)
        vector = vector if vector is not None else self.embedder.embed_query(query)
        if mode == "dense":
            return self.store.search_dense(vector, limit)
        return self.store.search_hybrid(vector, query, limit)

    def rerank(self, query: str, hits: list[Hit]) -> list[Candidate]:
        """Rerank the best `rerank_limit` hits; any beyond keep their fused order after them."""
        if self.reranker is None or not hits:
            return [Candidate(hit) for hit in hits]
        judged, rest = hits[: self.rerank_limit], hits[self.rerank_limit or len(hits) :]
        scores = self.reranker.score(query, [rerank_text(h) for h in judged])
        ranked = sorted(zip(judged, scores, strict=True), key=lambda pair: -pair[1])
        return [Candidate(hit, score) for hit, score in ranked] + [Candidate(h) for h in rest]

    def retrieve(self, query: str, top_k: int) -> Retrieval:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        vector = self.embedder.embed_query(query)
        timings["embed"] = time.perf_counter() - started
        started = time.perf_counter()
        hits = self.search(query, "hybrid", self.candidates, vector)
        timings["search"] = time.perf_counter() - started
        started = time.perf_counter()
        ranked = self.rerank(query, hits)
        timings["rerank"] = time.perf_counter() - started
        return Retrieval(ranked[:top_k], timings)
