"""Finding the sections that answer a question: dense and BM25 search in Milvus, fused here
per section (bot.answer.fusion), then the reranker."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from bot.answer.fusion import RRF_K, Fusion, rrf_fuse
from bot.answer.language import detect_language, docs_language, lexical_share
from bot.answer.types import Candidate, Retrieval, place
from indexer.hits import Hit

if TYPE_CHECKING:
    from bot.answer.rerankers import Reranker
    from indexer.embedding import Embedder
    from indexer.store import MilvusStore

__all__ = [
    "DEFAULT_FUSION",
    "RRF_K",
    "Retriever",
    "SearchMode",
    "hybrid",
    "rerank_text",
    "rrf_fuse",
]

SearchMode = Literal["dense", "bm25", "hybrid"]
# (query, docs' language code) -> the query in that language, for BM25 (an LLM call).
Translate = Callable[[str, str], str]
# Per section, scores rescaled to [0, 1] in each ranking, both retrievers weighing the same:
# chosen by cross-validation over five documentation sets (docs/evaluation.md), again when the
# fifth (httpx, questions in the asker's words) was added. Tuning BM25's weight too fitted the
# sets it was tuned on and lost on the others.
DEFAULT_FUSION = Fusion()
# Each retriever is asked for this many times the chunks wanted: fused per section, several
# chunks of one section count once, and `limit` sections must remain.
FETCH_FACTOR = 2
# The docs' language is read from this many dense hits (see bot.answer.language).
LANGUAGE_SAMPLE = 5


def hybrid(
    query: str,
    dense: Sequence[Hit],
    bm25: Sequence[Hit],
    limit: int,
    fusion: Fusion = DEFAULT_FUSION,
) -> list[Hit]:
    """Hybrid results from the two rankings. BM25 weighs in proportion to the part of the
    question written in the docs' language (judged from the best dense hits): a question in
    Chinese over English docs leans on dense, which matches meaning across languages, while
    the English error string it quotes still counts for BM25."""
    share = lexical_share(query, [hit.text for hit in dense[:LANGUAGE_SAMPLE]])
    return fusion.weighted(share).fuse(dense, bm25, limit)


def rerank_text(hit: Hit) -> str:
    """The reranker judges a section as a reader sees it: where it sits, then what it says."""
    where = place(hit.title, hit.heading)
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
        fusion: Fusion = DEFAULT_FUSION,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.reranker = reranker
        self.candidates = candidates
        self.rerank_limit = rerank_limit
        self.fusion = fusion

    def search(
        self,
        query: str,
        mode: SearchMode,
        limit: int,
        vector: list[float] | None = None,
        sets: Sequence[str] | None = None,
    ) -> list[Hit]:
        """`sets`: the doc sets searchable where the question was asked (None: all); no
        chunk of another set is ever returned."""
        if mode == "bm25":
            return self.store.search_bm25(query, limit, sets)
        vector = vector if vector is not None else self.embedder.embed_query(query)
        if mode == "dense":
            return self.store.search_dense(vector, limit, sets)
        depth = limit * FETCH_FACTOR
        dense = self.store.search_dense(vector, depth, sets)
        return self.fuse(query, dense, self.store.search_bm25(query, depth, sets), limit)

    def fuse(self, query: str, dense: Sequence[Hit], bm25: Sequence[Hit], limit: int) -> list[Hit]:
        return hybrid(query, dense, bm25, limit, self.fusion)

    def rerank(self, query: str, hits: list[Hit]) -> list[Candidate]:
        """Rerank the best `rerank_limit` hits; any beyond keep their fused order after them."""
        if self.reranker is None or not hits:
            return [Candidate(hit) for hit in hits]
        judged, rest = hits[: self.rerank_limit], hits[self.rerank_limit or len(hits) :]
        scores = self.reranker.score(query, [rerank_text(h) for h in judged])
        ranked = sorted(zip(judged, scores, strict=True), key=lambda pair: -pair[1])
        return [Candidate(hit, score) for hit, score in ranked] + [Candidate(h) for h in rest]

    def retrieve(
        self,
        query: str,
        top_k: int,
        sets: Sequence[str] | None = None,
        vector: list[float] | None = None,
        translate: Translate | None = None,
    ) -> Retrieval:
        """`translate`: when the question is not in the docs' language (judged from the best
        dense hits), BM25 searches for its translation instead, at full weight; dense and the
        reranker keep the question as asked (both read meaning across languages)."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        vector = vector if vector is not None else self.embedder.embed_query(query)
        timings["embed"] = time.perf_counter() - started
        started = time.perf_counter()
        depth = self.candidates * FETCH_FACTOR
        dense = self.store.search_dense(vector, depth, sets)
        timings["search"] = time.perf_counter() - started
        lexical_query = query
        written = docs_language(hit.text for hit in dense[:LANGUAGE_SAMPLE])
        asked = detect_language(query)
        if translate is not None and written and asked and asked != written:
            started = time.perf_counter()
            lexical_query = translate(query, written)
            timings["translate"] = time.perf_counter() - started
        started = time.perf_counter()
        bm25 = self.store.search_bm25(lexical_query, depth, sets)
        hits = self.fuse(lexical_query, dense, bm25, self.candidates)
        timings["search"] += time.perf_counter() - started
        started = time.perf_counter()
        ranked = self.rerank(query, hits)
        timings["rerank"] = time.perf_counter() - started
        return Retrieval(ranked[:top_k], timings, vector, lexical_query)
