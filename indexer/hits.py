"""A chunk as a search returns it: plain data, so everything that reads results (the answering
pipeline, Block Kit, reports) can hold one without importing Milvus."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    source_key: str
    path: str
    title: str
    heading: str
    url: str
    text: str
    doc_set: str = "docs"  # config.docsets.IMPLICIT: the set the chunk belongs to
