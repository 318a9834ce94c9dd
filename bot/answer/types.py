"""What the answering core hands out: plain data, standard library only, so Slack, the queue
and the reports can hold answers without importing a model or a database driver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from indexer.hits import Hit

Mode = Literal["llm", "extractive", "abstained"]


def place(title: str, heading: str) -> str:
    """Where a section sits, as people read it: "Page title › Heading › Sub-heading"."""
    return " › ".join(part for part in (title, heading) if part)


@dataclass(frozen=True)
class Turn:
    """One message of a conversation the model sees."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class Candidate:
    """A retrieved section with the reranker's verdict, when one judged it."""

    hit: Hit
    rerank_score: float | None = None

    @property
    def score(self) -> float:
        return self.rerank_score if self.rerank_score is not None else self.hit.score

    @property
    def place(self) -> str:
        return place(self.hit.title, self.hit.heading)


@dataclass
class Retrieval:
    candidates: list[Candidate]
    timings: dict[str, float] = field(default_factory=dict)
    vector: list[float] | None = None  # the query's embedding, for a second search
    lexical_query: str | None = None  # what BM25 searched for (a translation, perhaps)

    @property
    def best_rerank_score(self) -> float | None:
        scores = [c.rerank_score for c in self.candidates if c.rerank_score is not None]
        return max(scores) if scores else None


@dataclass(frozen=True)
class Citation:
    n: int
    title: str
    heading: str
    source: str  # path relative to the indexed folder (or the page URL for web sources)
    url: str
    score: float
    doc_set: str = "docs"  # the doc set it came from (config.docsets.IMPLICIT by default)

    @property
    def place(self) -> str:
        return place(self.title, self.heading)


@dataclass
class Answer:
    question: str
    text: str
    mode: Mode
    citations: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    best_score: float | None = None

    @property
    def abstained(self) -> bool:
        return self.mode == "abstained"

    def as_json(self) -> dict[str, object]:
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "mode": self.mode,
            "citations": [asdict(c) for c in self.citations],
            "timings": {stage: round(s, 4) for stage, s in self.timings.items()},
            "best_score": self.best_score,
        }

    @classmethod
    def from_json(cls, question: str, data: Mapping[str, Any]) -> Answer:
        """An answer kept as `as_json()` wrote it (one waiting to be delivered)."""
        return cls(
            question,
            str(data["answer"]),
            data["mode"],
            [Citation(**c) for c in data.get("citations") or []],  # doc_set: older rows lack it
            {str(k): float(v) for k, v in (data.get("timings") or {}).items()},
            data.get("best_score"),
        )
