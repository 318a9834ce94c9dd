"""One logger tree for all of docsbot, `docsbot.*`, whatever package a module lives in: an
operator raises or silences docsbot's logs with one name (`docsbot.indexer` for indexing,
`docsbot.slack` for Slack, `docsbot` for everything)."""

from __future__ import annotations

import logging

ROOT = "docsbot"


def get_logger(module: str) -> logging.Logger:
    """`bot.answer.pipeline` → `docsbot.answer.pipeline`; `indexer.runner` →
    `docsbot.indexer.runner`; `config.db` → `docsbot.config.db`."""
    name = module.removeprefix("bot.") if module.startswith("bot.") else module
    return logging.getLogger(f"{ROOT}.{name}")
