"""One incremental indexing pass: load, compare hashes, chunk, embed what changed, write.

Invariants: an unchanged document costs a hash comparison; a changed one embeds only chunks
whose content changed; new chunks are upserted before the stale ones are deleted, so a
question asked mid-run never finds a hole; a source that cannot be read keeps its chunks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from config.errors import UserError
from config.logger import get_logger
from config.settings import Settings, SourceSpec
from indexer.chunking import Chunk, Chunker
from indexer.embedding import Embedder
from indexer.sources import Document, LoadStats, SourceUnavailable, load_source
from indexer.store import MilvusStore
from indexer.tables import IndexedChunk, IndexedDocument, utcnow

log = get_logger(__name__)
FLUSH_CHUNKS = 256  # embed and write in groups this size: big batches, bounded memory


class NoSources(UserError, ValueError):
    """No sources configured: refusing to run rather than delete the whole index."""


class IndexProgress(Protocol):
    def embedding_started(self, total_chunks: int | None) -> None: ...

    def embedded(self, n: int) -> None: ...


@dataclass
class IndexReport:
    docs_seen: int = 0
    docs_added: int = 0
    docs_changed: int = 0
    docs_removed: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
    files_skipped: int = 0
    failed_sources: list[str] = field(default_factory=list)
    deletions_held: int = 0  # over the guard: waiting for `index --confirm-deletions`
    deletions_kept: int = 0  # not deleted because a source failed this run

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"{self.docs_seen} docs seen, {self.docs_added} added, {self.docs_changed} changed, "
            f"{self.docs_removed} removed; {self.chunks_embedded} chunks embedded, "
            f"{self.chunks_deleted} deleted; {self.files_skipped} files skipped; "
            f"{self.seconds:.1f} s"
        )
        if self.failed_sources:
            text += f"; {len(self.failed_sources)} source(s) failed and kept their old chunks"
        if self.deletions_kept:
            text += f"; {self.deletions_kept} missing document(s) kept (a source failed)"
        if self.deletions_held:
            text += (
                f"; deleting {self.deletions_held} document(s) is held: confirm with "
                "`docsbot index --confirm-deletions`"
            )
        return text


@dataclass
class _Pending:
    doc: Document
    doc_hash: str
    chunks: list[Chunk]
    new_chunks: list[Chunk]
    stale_ids: list[str]
    added: bool


def document_hash(doc: Document, chunker: Chunker) -> str:
    payload = "\0".join([chunker.signature, doc.title, doc.url, doc.markdown])
    return hashlib.sha256(payload.encode()).hexdigest()


def make_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    # The budget never exceeds what the embedder reads: a truncated chunk is half-indexed.
    budget = min(settings.chunk_tokens, max(32, embedder.max_tokens - 32))
    if budget < settings.chunk_tokens:
        log.info(
            "chunk budget %d tokens (the embedder reads at most %d)", budget, embedder.max_tokens
        )
    return Chunker(budget, min(settings.chunk_overlap, budget // 4), embedder.count_tokens)


class Indexer:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: MilvusStore,
        sessions: sessionmaker[Session],
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.sessions = sessions
        self.chunker = make_chunker(settings, embedder)

    def _forget_all(self) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(IndexedChunk))
            session.execute(delete(IndexedDocument))

    def run(
        self,
        sources: Sequence[SourceSpec] | None = None,
        *,
        rebuild: bool = False,
        progress: IndexProgress | None = None,
        check: Callable[[], None] | None = None,
        confirm_deletions: bool = False,
        only_set: str | None = None,
    ) -> IndexReport:
        """`check` runs between units of work and raises to stop the run there (the lease was
        lost, or the process is shutting down): whatever was written so far is consistent.
        `confirm_deletions`: delete even past the guard (a person asked for it). `only_set`:
        re-index that doc set alone; the others' documents are neither read nor deleted."""
        check = check or (lambda: None)
        started = time.perf_counter()
        report = IndexReport()
        responsible: Callable[[str], bool] = lambda _key: True  # noqa: E731
        if only_set is not None:
            chosen = [s for s in self.settings.sets if s.name == only_set]
            if not chosen:
                names = ", ".join(s.name for s in self.settings.sets) or "none"
                raise NoSources(f"There is no doc set {only_set!r} (the sets: {names}).")
            specs = list(chosen[0].sources)
            if not chosen[0].implicit:
                responsible = lambda key: key.startswith(f"{only_set}:")  # noqa: E731
        else:
            specs = list(sources if sources is not None else self.settings.index_sources)
        if not specs:
            # An empty source list would read as "every document was deleted" and empty the
            # index: a scheduler started without DOCSBOT_SOURCES must not do that.
            raise NoSources(
                "Nothing to index: no sources are configured (DOCSBOT_SOURCES, or the sources "
                "of doc_sets), so this run would remove every indexed document. Set them to "
                "the docs folder, git repository or URL."
            )
        if rebuild:
            log.info("rebuilding: dropping collection %s", self.store.collection)
            self.store.drop()
        if self.store.ensure() or rebuild:
            self._forget_all()  # the vectors are gone, so is any record of them

        with self.sessions() as session:
            known = {
                (d.source_key, d.path): (d.content_hash, [c.id for c in d.chunks])
                for d in session.scalars(
                    select(IndexedDocument).options(selectinload(IndexedDocument.chunks))
                )
            }

        stats = LoadStats()
        seen: set[tuple[str, str]] = set()
        kept: set[tuple[str, str]] = set()  # documents of sources that failed this run
        group: list[_Pending] = []
        if progress:
            progress.embedding_started(None)  # streamed: the total is known only at the end
        # Documents stream through compare -> chunk -> embed -> write in groups, so memory
        # holds one group, not the whole corpus (a first index of 20,000 pages included).
        for spec in specs:
            check()
            try:
                for doc in load_source(
                    spec,
                    self.settings.max_file_bytes,
                    stats,
                    git_cache_dir=Path(self.settings.git_cache_dir),
                ):
                    key = (doc.source_key, doc.path)
                    if key in seen:
                        continue
                    seen.add(key)
                    item = self._compare(doc, known.get(key))
                    if item is None:
                        continue
                    report.docs_added += item.added
                    report.docs_changed += not item.added
                    group.append(item)
                    if sum(len(p.new_chunks) for p in group) >= FLUSH_CHUNKS:
                        check()
                        self._flush(group, report, progress, check)
                        group = []
            except SourceUnavailable as error:
                where = spec.location if not spec.is_git else spec.key
                log.error("source %s failed, keeping its indexed chunks: %s", where, error)
                report.failed_sources.append(str(error) if spec.is_git else f"{where}: {error}")
                kept.update(k for k in known if k[0] == spec.key)
        check()
        self._flush(group, report, progress, check)
        kept.update(stats.unreachable)
        report.docs_seen = len(seen)
        report.files_skipped = len(stats.skipped)

        check()
        mine = [key for key in known if responsible(key[0])]
        removed = [key for key in mine if key not in seen and key not in kept]
        removed = self._deletable(removed, len(mine), report, confirm_deletions)
        if removed:
            self._remove(removed, known, report)
        report.seconds = round(time.perf_counter() - started, 3)
        log.debug("index run: %s", report.summary())
        return report

    def _deletable(
        self,
        removed: list[tuple[str, str]],
        indexed: int,
        report: IndexReport,
        confirmed: bool,
    ) -> list[tuple[str, str]]:
        """What this run may delete. A run in which any source failed deletes nothing (a
        mistyped path reads as "every document is gone"); a clean run deletes up to the guard
        (DOCSBOT_INDEX_DELETE_GUARD of the documents) and holds anything bigger until someone
        confirms it. The schedule never confirms."""
        if not removed:
            return []
        if report.failed_sources:
            log.warning(
                "%d document(s) not found this run are kept: a source failed, and only a run in "
                "which every source was read deletes anything",
                len(removed),
            )
            report.deletions_kept = len(removed)
            return []
        share = len(removed) / max(1, indexed)
        guard = self.settings.index_delete_guard
        if share > guard and not confirmed:
            log.warning(
                "holding the deletion of %d of %d documents (%.0f%%, over the %.0f%% guard): "
                "confirm with `docsbot index --confirm-deletions`",
                len(removed),
                indexed,
                share * 100,
                guard * 100,
            )
            report.deletions_held = len(removed)
            return []
        return removed

    def _compare(self, doc: Document, known: tuple[str, list[str]] | None) -> _Pending | None:
        doc_hash = document_hash(doc, self.chunker)
        if known is not None and known[0] == doc_hash:
            return None
        chunks = self.chunker.chunk(doc)
        old_ids = set(known[1]) if known else set()
        new_ids = {c.id for c in chunks}
        return _Pending(
            doc=doc,
            doc_hash=doc_hash,
            chunks=chunks,
            new_chunks=[c for c in chunks if c.id not in old_ids],
            stale_ids=sorted(old_ids - new_ids),
            added=known is None,
        )

    def _flush(
        self,
        group: list[_Pending],
        report: IndexReport,
        progress: IndexProgress | None,
        check: Callable[[], None],
    ) -> None:
        if not group:
            return
        new_chunks = [c for p in group for c in p.new_chunks]
        if new_chunks:

            def embedded(n: int) -> None:
                if progress:
                    progress.embedded(n)
                check()  # between batches: a shutdown does not wait for a whole group

            vectors = self.embedder.embed_documents([c.content for c in new_chunks], embedded)
            self.store.upsert(new_chunks, vectors)  # new first ...
        stale = [i for p in group for i in p.stale_ids]
        self.store.delete(stale)  # ... then stale: no moment without an answer
        report.chunks_embedded += len(new_chunks)
        report.chunks_deleted += len(stale)
        with self.sessions.begin() as session:
            for item in group:
                self._record(session, item)

    @staticmethod
    def _record(session: Session, item: _Pending) -> None:
        row = session.scalar(
            select(IndexedDocument).where(
                IndexedDocument.source_key == item.doc.source_key,
                IndexedDocument.path == item.doc.path,
            )
        )
        if row is None:
            row = IndexedDocument(source_key=item.doc.source_key, path=item.doc.path)
            session.add(row)
        row.content_hash = item.doc_hash
        row.title = item.doc.title
        row.url = item.doc.url
        row.indexed_at = utcnow()
        row.chunks = [IndexedChunk(id=c.id, ordinal=c.ordinal) for c in item.chunks]
        session.flush()

    def _remove(
        self,
        keys: list[tuple[str, str]],
        known: dict[tuple[str, str], tuple[str, list[str]]],
        report: IndexReport,
    ) -> None:
        ids = [i for key in keys for i in known[key][1]]
        self.store.delete(ids)
        with self.sessions.begin() as session:
            for source_key, path in keys:
                session.execute(
                    delete(IndexedDocument).where(
                        IndexedDocument.source_key == source_key, IndexedDocument.path == path
                    )
                )
        report.docs_removed += len(keys)
        report.chunks_deleted += len(ids)
        log.info("removed %d documents (%d chunks) no longer in the sources", len(keys), len(ids))
