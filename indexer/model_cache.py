"""Exported models kept under the data dir: keyed, written whole, verified before every use.

An export takes minutes and gigabytes, so it happens once; but a half-written folder (a crash,
a full disk), a file changed on disk or a newer checkpoint must never be loaded as if it were
the model. So each entry is built in a temporary folder and renamed into place only when
complete, its manifest records the key it was built for and the sha256 of every file, and a
load re-checks both: anything that does not match is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from config.logger import get_logger
from config.settings import Settings

log = get_logger(__name__)
MANIFEST = "manifest.json"
# Hashing whole multi-GB checkpoints on every start would cost seconds: past this size a
# source file is known by its size, mtime and first and last MiB (hub files by their blob id).
SMALL_FILE = 16 * 1024 * 1024
EDGE = 1024 * 1024
CHUNK = 8 * 1024 * 1024


def models_dir(settings: Settings) -> Path:
    """`models/` beside the Milvus Lite file (./data/models by default), else beside the
    git cache, so an install keeps all it derives from its documents and models together."""
    if settings.milvus_is_lite:
        base = Path(settings.milvus_uri).expanduser().parent
    else:
        base = Path(settings.git_cache_dir).expanduser().parent
    return base / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(source: Path) -> str:
    """What identifies a model directory's content, cheaply: a different checkpoint, tokenizer
    or config gives a different fingerprint, so the cache key changes with the revision."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts):
            continue  # .cache/, .git*: download bookkeeping, not the model
        digest.update(str(rel).encode())
        if path.is_symlink():
            # Hugging Face snapshots link to blobs named by their content hash.
            digest.update(os.readlink(path).encode())
            continue
        stat = path.stat()
        digest.update(str(stat.st_size).encode())
        if stat.st_size <= SMALL_FILE:
            digest.update(sha256_file(path).encode())
            continue
        digest.update(str(stat.st_mtime_ns).encode())
        with path.open("rb") as fh:
            digest.update(fh.read(EDGE))
            fh.seek(-EDGE, os.SEEK_END)
            digest.update(fh.read(EDGE))
    return digest.hexdigest()


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def entry_name(key: dict[str, Any]) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", str(key.get("model", "model"))).strip("-.")[-80:]
    return f"{slug}.{key.get('kind', 'model')}.{key.get('quantization', '')}.{key_digest(key)[:16]}"


def problem(entry: Path, key: dict[str, Any]) -> str | None:
    """Why `entry` cannot be trusted for `key`, or None when it is complete and unchanged."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no manifest"
    except (OSError, ValueError) as error:
        return f"unreadable manifest ({error})"
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return "built for another model, revision or setting"
    if manifest.get("digest") != key_digest(key):
        return "manifest digest does not match its key"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "manifest lists no files"
    for rel, expected in files.items():
        path = entry / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != expected.get("size"):
            return f"{rel} has the wrong size"
        if sha256_file(path) != expected.get("sha256"):
            return f"{rel} is corrupt (sha256 differs)"
    return None


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """One exporter per entry across processes (`serve` and `index` may start together)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the rename below still keeps entries whole
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process exporting the same model (%s)", lock_path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def directory_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / (1024 * 1024)


class ModelCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def get_or_build(self, key: dict[str, Any], build: Callable[[Path], None], what: str) -> Path:
        """The verified entry for `key`, built by `build(folder)` first when there is none.

        `what` names the export in the one-time messages, e.g. "Qwen/Qwen3-Reranker-0.6B
        (reranker) to OpenVINO int8".
        """
        name = entry_name(key)
        entry = self.root / name
        with exclusive(self.root / f".{name}.lock"):
            reason = problem(entry, key) if entry.exists() else "not exported yet"
            if reason is None:
                log.debug("using the exported model in %s", entry)
                return entry
            if entry.exists():
                log.warning(
                    "the exported model in %s is unusable (%s): rebuilding it", entry, reason
                )
                shutil.rmtree(entry, ignore_errors=True)
            self._build(entry, key, build, what)
            self._prune(entry, key)
            return entry

    def _build(
        self, entry: Path, key: dict[str, Any], build: Callable[[Path], None], what: str
    ) -> None:
        tmp = self.root / f".{entry.name}.tmp-{os.getpid()}"
        for stale in self.root.glob(f".{entry.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # a crashed export; we hold the lock
        tmp.mkdir(parents=True)
        log.info(
            "exporting %s: a one-time step of a few minutes (up to ~6 GB of memory) into %s; "
            "later starts load it in seconds",
            what,
            entry,
        )
        started = time.monotonic()
        try:
            build(tmp)
            files = {
                str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
                for p in sorted(tmp.rglob("*"))
                if p.is_file()
            }
            manifest = {
                "key": key,
                "digest": key_digest(key),
                "files": files,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.monotonic() - started, 1),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            os.replace(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info(
            "exported %s in %.0f s (%.0f MiB in %s)",
            what,
            time.monotonic() - started,
            directory_mib(entry),
            entry,
        )

    def _prune(self, entry: Path, key: dict[str, Any]) -> None:
        """Drop older exports of the same model, kind and precision: a new revision or
        runtime replaced them, and each holds hundreds of MB."""
        prefix = entry.name.rsplit(".", 1)[0] + "."
        for other in self.root.glob(prefix + "*"):
            if other != entry and other.is_dir():
                log.info("removing the superseded export %s", other)
                shutil.rmtree(other, ignore_errors=True)
