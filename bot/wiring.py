"""Building the long-lived pieces from Settings, in one place, so every entry point agrees:
the models actually available, the opened backends (SQL, embedder, Milvus), the indexer and
the answering pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.answer.llm import build_llm
from bot.answer.pipeline import Answerer
from bot.answer.rerankers import Reranker, build_reranker
from bot.answer.retrieval import Retriever
from config.db import make_engine, make_session_factory, prepare
from config.logger import get_logger
from config.settings import DEFAULT_EMBEDDING_MODEL, DEFAULT_RERANKER_MODEL, Settings
from indexer.embedding import Embedder, build_embedder
from indexer.hardware import ModelUnavailable, ensure_loadable, packaged_minilm_path
from indexer.milvus_connect import connect
from indexer.runner import Indexer
from indexer.store import IndexMissing, MilvusStore

log = get_logger(__name__)
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


def available_models(settings: Settings) -> Settings:
    """`with_available_models`, each notice logged as a warning: what every command but the
    demo (which prints them) does before loading a model."""
    settings, notices = with_available_models(settings)
    for notice in notices:
        log.warning(notice)
    return settings


@dataclass
class Backends:
    """What every command opens from Settings: the SQL database (engine and sessions), the
    embedding model and the Milvus collection of chunks."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    embedder: Embedder
    store: MilvusStore

    def close(self) -> None:
        self.store.client.close()
        self.engine.dispose()


def described(model: object) -> str:
    """`Qwen/Qwen3-Reranker-0.6B (openvino int8)`: the name, and what runs it where known
    (local models; a remote one is its name)."""
    name = str(getattr(model, "name", "none"))
    describe = getattr(model, "describe", None)
    return f"{name} ({describe()})" if callable(describe) else name


def open_database(settings: Settings) -> Engine:
    engine = make_engine(
        settings.database_url, settings.db_pool_size, settings.db_connect_timeout_s
    )
    try:
        prepare(engine, auto_upgrade=settings.db_auto_upgrade)
    except Exception:
        engine.dispose()
        raise
    return engine


def open_backends(settings: Settings, embedder: Embedder | None = None) -> Backends:
    """Cheapest first: a wrong database URL or Milvus path is said in a second, not after a
    model has loaded. Whatever was opened is closed again when a later step fails."""
    engine = open_database(settings)
    try:
        if embedder is None and not settings.embedding_url:
            # A model that cannot be had is said before anything is created on disk.
            ensure_loadable(settings.embedding_model, "embedding", "DOCSBOT_EMBEDDING_MODEL")
        client = connect(settings)
    except Exception:
        engine.dispose()
        raise
    try:
        chosen = embedder or build_embedder(settings)
    except Exception:
        client.close()
        engine.dispose()
        raise
    store = MilvusStore(
        client,
        settings.milvus_collection,
        settings.embedding_model,
        lambda: chosen.dim,
        named_sets=bool(settings.doc_sets),
    )
    return Backends(settings, engine, make_session_factory(engine), chosen, store)


def make_indexer(backends: Backends) -> Indexer:
    return Indexer(backends.settings, backends.embedder, backends.store, backends.sessions)


CPU_RERANK_CANDIDATES = 8


def rerank_limit(settings: Settings, reranker: Reranker | None) -> int | None:
    """A local reranker on a CPU reads ~250 tokens/s: 20 candidates would take half a minute."""
    if settings.rerank_candidates is not None:
        return settings.rerank_candidates
    device = getattr(reranker, "device", None)  # local rerankers only: remote ones have none
    if device is not None and device.type == "cpu":
        return min(CPU_RERANK_CANDIDATES, settings.candidates)
    return None


def make_retriever(
    backends: Backends, reranker: Reranker | None, *, index_coming: bool = False
) -> Retriever:
    """`index_coming`: this process is about to build the index (serve with its scheduler on a
    fresh install), so an index that does not exist yet is not an error."""
    try:
        backends.store.check_model()
    except IndexMissing:
        if not index_coming:
            raise
        log.warning("nothing is indexed yet: questions get an apology until the first run ends")
    return Retriever(
        backends.embedder,
        backends.store,
        reranker,
        candidates=backends.settings.candidates,
        rerank_limit=rerank_limit(backends.settings, reranker),
    )


def make_answerer(
    backends: Backends,
    reranker: Reranker | None = None,
    *,
    load: bool = True,
    index_coming: bool = False,
) -> Answerer:
    """`load=False` keeps a caller-supplied reranker (or none) instead of loading the setting's."""
    if load and reranker is None:
        reranker = build_reranker(backends.settings)
    return Answerer(
        make_retriever(backends, reranker, index_coming=index_coming),
        build_llm(backends.settings),
        top_k=backends.settings.top_k,
        threshold=backends.settings.rerank_threshold,
    )
