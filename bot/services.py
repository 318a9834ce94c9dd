"""Building the long-lived pieces from Settings, in one place, so every entry point agrees."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.answering import Answerer
from bot.llm import build_llm
from bot.reranker import Qwen3Reranker, Reranker, build_reranker
from bot.retrieval import Retriever
from config.db import make_engine, make_session_factory, upgrade
from config.settings import Settings
from indexer.embedding import Embedder, build_embedder
from indexer.runner import Indexer
from indexer.store import MilvusStore, connect


@dataclass
class Core:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    embedder: Embedder
    store: MilvusStore

    def close(self) -> None:
        self.store.client.close()
        self.engine.dispose()


def open_core(settings: Settings, embedder: Embedder | None = None) -> Core:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    embedder = embedder or build_embedder(settings)
    store = MilvusStore(
        connect(settings), settings.milvus_collection, settings.embedding_model, embedder.dim
    )
    return Core(settings, engine, make_session_factory(engine), embedder, store)


def make_indexer(core: Core) -> Indexer:
    return Indexer(core.settings, core.embedder, core.store, core.sessions)


CPU_RERANK_CANDIDATES = 8


def rerank_limit(settings: Settings, reranker: Reranker | None) -> int | None:
    """A local reranker on a CPU reads ~250 tokens/s: 20 candidates would take half a minute."""
    if settings.rerank_candidates is not None:
        return settings.rerank_candidates
    if isinstance(reranker, Qwen3Reranker) and reranker.device.type == "cpu":
        return min(CPU_RERANK_CANDIDATES, settings.candidates)
    return None


def make_retriever(core: Core, reranker: Reranker | None) -> Retriever:
    core.store.check_model()
    return Retriever(
        core.embedder,
        core.store,
        reranker,
        candidates=core.settings.candidates,
        rerank_limit=rerank_limit(core.settings, reranker),
    )


def make_answerer(core: Core, reranker: Reranker | None = None, *, load: bool = True) -> Answerer:
    """`load=False` keeps a caller-supplied reranker (or none) instead of loading the setting's."""
    if load and reranker is None:
        reranker = build_reranker(core.settings)
    return Answerer(
        make_retriever(core, reranker),
        build_llm(core.settings),
        top_k=core.settings.top_k,
        threshold=core.settings.rerank_threshold,
    )
