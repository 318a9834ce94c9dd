"""Opening the Milvus index, and saying exactly why when it cannot be opened.

Milvus Lite reports every failure to open as "Open local milvus failed"; what the operator
must do differs by cause, so the cause is found out here: a URI that is not a `.db` path, a
parent path that is a file, a file where Milvus Lite keeps a folder, no permission, or the
folder held by another process (Milvus Lite allows one per index: it flocks `<path>/LOCK`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from config.errors import UserError
from config.logger import get_logger
from config.settings import Settings

log = get_logger(__name__)
SHARE_HINT = (
    "Milvus Lite allows one process per index: `docsbot serve` re-indexes on its own "
    "schedule, and App Home has a re-index button. To run several processes, share the index "
    "through `milvus-lite server` and DOCSBOT_MILVUS_URI=http://127.0.0.1:19530 "
    "(docs/operations.md)."
)


class IndexUnreachable(UserError, RuntimeError):
    """Milvus could not be opened; the message says why and what to do."""


def connect(settings: Settings) -> MilvusClient:
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    uri = settings.milvus_uri
    if not settings.milvus_is_lite:
        try:
            return MilvusClient(uri=uri, token=token)
        except MilvusException as error:
            raise IndexUnreachable(
                f"Milvus at {uri} did not answer ({error.message}). Is it running, and are "
                "DOCSBOT_MILVUS_URI / DOCSBOT_MILVUS_TOKEN right?"
            ) from None
    path = Path(uri).expanduser()
    if problem := lite_problem(path):
        raise IndexUnreachable(f"DOCSBOT_MILVUS_URI={uri}: {problem}")
    try:
        return MilvusClient(uri=str(path), token=token)
    except MilvusException as error:
        cause = "it is open in another process" if held(path) else error.message
        raise IndexUnreachable(
            f"The Milvus Lite index {uri} could not be opened: {cause}. "
            + (SHARE_HINT if held(path) else "Check DOCSBOT_MILVUS_URI.")
        ) from None


def lite_problem(path: Path) -> str | None:
    """Why Milvus Lite could not open an index at `path`, found before trying."""
    if path.suffix != ".db":
        return (
            "a Milvus Lite index is a path ending in .db (e.g. ./data/milvus.db), or use "
            "http://host:19530 for a Milvus server"
        )
    for parent in [*reversed(path.parents)]:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder: choose another path for the index"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        return f"no permission to create the folder {path.parent}"
    if path.exists() and not path.is_dir():
        return (
            f"{path} is a file, not a Milvus Lite index (Milvus Lite keeps a folder there): "
            "move it away, or choose another path"
        )
    where = path if path.exists() else path.parent
    if not os.access(where, os.R_OK | os.W_OK | os.X_OK):
        return f"no permission to read and write {where}"
    if path.exists() and not _has_index_layout(path):
        return f"{path} is a folder, but not a Milvus Lite index: choose another path"
    return None


def _has_index_layout(path: Path) -> bool:
    """An empty folder is a new index; a non-empty one must look like Milvus Lite's."""
    entries = {p.name for p in path.iterdir()}
    return not entries or bool(entries & {"LOCK", "collections", "databases"})


def held(path: Path) -> bool:
    """Does another process hold the index (Milvus Lite's advisory lock on `<path>/LOCK`)?"""
    lock = path / "LOCK"
    if not lock.exists():
        return False
    try:
        import fcntl
    except ImportError:  # Windows: Milvus Lite locks another way; say the general thing
        return True
    try:
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False
