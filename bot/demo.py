"""The offline-friendly demo: the configured models if they can be had, else the packaged ones."""

from __future__ import annotations

from pathlib import Path

from bot.services import with_available_models
from config.settings import Settings, SourceSpec

DEMO_DIR = Path("data/demo")


def demo_settings(settings: Settings, docs: Path) -> tuple[Settings, str | None]:
    """Settings for the demo run, and a notice when models were swapped."""
    settings, notices = with_available_models(settings, force=True)
    update: dict[str, object] = {
        "sources": [SourceSpec(location=str(docs))],
        "milvus_uri": str(DEMO_DIR / "milvus.db"),
        "database_url": f"sqlite:///{DEMO_DIR / 'docsbot.db'}",
    }
    return settings.model_copy(update=update), " ".join(notices) or None
