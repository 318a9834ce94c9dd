"""The offline-friendly demo: the configured models if they can be had, else the packaged ones.

Only the demo falls back. `index` and `serve` fail with a message instead, because an index
built by a stand-in model would quietly answer worse than the one the team chose.
"""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings, SourceSpec
from indexer.hardware import ModelUnavailable, ensure_loadable, packaged_minilm_path

FALLBACK_EMBEDDING = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_DIR = Path("data/demo")


def demo_settings(settings: Settings, docs: Path) -> tuple[Settings, str | None]:
    """Settings for the demo run, and a one-line notice when models were swapped."""
    update: dict[str, object] = {
        "sources": [SourceSpec(location=str(docs))],
        "milvus_uri": str(DEMO_DIR / "milvus.db"),
        "database_url": f"sqlite:///{DEMO_DIR / 'docsbot.db'}",
    }
    notice = None
    try:
        if not settings.embedding_url:
            ensure_loadable(settings.embedding_model, "embedding", "DOCSBOT_EMBEDDING_MODEL")
        if settings.reranker_model and not settings.reranker_url:
            ensure_loadable(settings.reranker_model, "reranker", "DOCSBOT_RERANKER_MODEL")
    except ModelUnavailable:
        if packaged_minilm_path() is None:
            raise
        update.update(
            embedding_model=FALLBACK_EMBEDDING,
            embedding_dim=None,
            embedding_url=None,
            reranker_model=None,
        )
        notice = (
            f"{settings.embedding_model} / {settings.reranker_model} are not available offline "
            "here, so the demo uses the packaged all-MiniLM-L6-v2 and no reranker; to use the "
            "Qwen3 models, run once with access to huggingface.co (or set "
            "DOCSBOT_EMBEDDING_MODEL / DOCSBOT_RERANKER_MODEL to local copies)."
        )
    return settings.model_copy(update=update), notice
