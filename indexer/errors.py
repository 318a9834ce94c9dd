"""Failures of the indexer's neighbours that callers must tell apart from a bug."""

from __future__ import annotations

from config.errors import UserError


class EmbedderUnavailable(UserError, RuntimeError):
    """The embedding server failed, its client's retries included. An index run fails with
    this message; a question gets an apology (`embedder_unavailable`)."""
