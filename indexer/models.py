"""Per-document index state: what was indexed, under which hash, as which chunks."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class IndexedDocument(Base):
    __tablename__ = "indexed_documents"
    __table_args__ = (UniqueConstraint("source_key", "path", name="uq_document_source_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str] = mapped_column(String(1024))
    content_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    chunks: Mapped[list[IndexedChunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="IndexedChunk.ordinal"
    )


class IndexedChunk(Base):
    __tablename__ = "indexed_chunks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("indexed_documents.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    document: Mapped[IndexedDocument] = relationship(back_populates="chunks")
