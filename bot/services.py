"""Building the long-lived pieces from Settings, in one place, so every entry point agrees."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.answering import Answerer
from bot.llm import build_llm
from bot.reranker import Qwen3Reranker, Reranker, build_reranker
from bot.retrieval import Retriever
from config.db import make_engine, make_session_factory, prepare
from config.settings import DEFAULT_EMBEDDING_MODEL, DEFAULT_RERANKER_MODEL, Settings
from indexer.embedding import Embedder, build_embedder
from indexer.hardware import ModelUnavailable, ensure_loadable, packaged_minilm_path
from indexer.runner import Indexer
from indexer.store import IndexMissing, MilvusStore, connect

log = logging.getLogger(__name__)
FALLBACK_EMBEDDING = "sentence-transformers/all-MiniLM-L6-v2"


def _missing(name: str, role: str, setting: str) -> bool:
    try:
        ensure_loadable(name, role, setting)
    except ModelUnavailable:
        return True
    return False


def with_available_models(settings: Settings, *, force: bool = False) -> tuple[Settings, list[str]]:
    """Swap default models that cannot be loaded here for the packaged ones, saying so.

    Only defaults are swapped (a model someone chose fails loudly instead), only with
    DOCSBOT_MODEL_FALLBACK on, and only to the packaged all-MiniLM-L6-v2 and no reranker:
    enough for a trial on a machine without the hub. `index` and `serve` swap alike, so the
    index and the bot agree; once the Qwen3 weights are present, the bot says to rebuild.
    `force` (the demo) swaps chosen models too.
    """
    if not (settings.model_fallback or force):
        return settings, []
    chosen = settings.model_fields_set
    update: dict[str, object] = {}
    notices = []
    embedding_swappable = force or (
        settings.embedding_model == DEFAULT_EMBEDDING_MODEL and "embedding_model" not in chosen
    )
    if (
        embedding_swappable
        and not settings.embedding_url
        and _missing(settings.embedding_model, "embedding", "DOCSBOT_EMBEDDING_MODEL")
        and packaged_minilm_path() is not None
    ):
        update.update(embedding_model=FALLBACK_EMBEDDING, embedding_dim=None)
        notices.append(
            f"{settings.embedding_model} is not available here (no Hugging Face hub, not "
            f"cached): using the packaged all-MiniLM-L6-v2 instead."
        )
    reranker_swappable = force or (
        settings.reranker_model == DEFAULT_RERANKER_MODEL and "reranker_model" not in chosen
    )
    if (
        reranker_swappable
        and settings.reranker_model
        and not settings.reranker_url
        and _missing(settings.reranker_model, "reranker", "DOCSBOT_RERANKER_MODEL")
    ):
        update["reranker_model"] = None
        notices.append(f"{settings.reranker_model} is not available here: reranking is off.")
    if notices:
        notices.append(
            "To use the Qwen3 models, fetch them once where huggingface.co is reachable (or set "
            "DOCSBOT_EMBEDDING_MODEL / DOCSBOT_RERANKER_MODEL to local copies); set "
            "DOCSBOT_MODEL_FALLBACK=false to fail instead of falling back."
        )
    return settings.model_copy(update=update), notices


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


def open_database(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url, settings.db_pool_size)
    try:
        prepare(engine, auto_upgrade=settings.db_auto_upgrade)
    except Exception:
        engine.dispose()
        raise
    return engine


def open_core(settings: Settings, embedder: Embedder | None = None) -> Core:
    engine = open_database(settings)
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


def make_retriever(
    core: Core, reranker: Reranker | None, *, index_coming: bool = False
) -> Retriever:
    """`index_coming`: this process is about to build the index (serve with its scheduler on a
    fresh install), so an index that does not exist yet is not an error."""
    try:
        core.store.check_model()
    except IndexMissing:
        if not index_coming:
            raise
        log.warning("nothing is indexed yet: questions get an apology until the first run ends")
    return Retriever(
        core.embedder,
        core.store,
        reranker,
        candidates=core.settings.candidates,
        rerank_limit=rerank_limit(core.settings, reranker),
    )


def make_answerer(
    core: Core,
    reranker: Reranker | None = None,
    *,
    load: bool = True,
    index_coming: bool = False,
) -> Answerer:
    """`load=False` keeps a caller-supplied reranker (or none) instead of loading the setting's."""
    if load and reranker is None:
        reranker = build_reranker(core.settings)
    return Answerer(
        make_retriever(core, reranker, index_coming=index_coming),
        build_llm(core.settings),
        top_k=core.settings.top_k,
        threshold=core.settings.rerank_threshold,
    )
