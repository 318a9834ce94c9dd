"""What the docs failed to answer, for the people who write them: the questions that got a 👎,
an abstention or a weak match, grouped by meaning so that ten phrasings of one missing page
read as one gap; and the raw feedback as CSV for a spreadsheet."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import numpy as np
from rich.markup import escape
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from bot.answer.types import place
from bot.ops.stats import questions_searching
from bot.queue.tables import Feedback, Question, as_utc
from config.docsets import IMPLICIT
from indexer.vectors import normalise

TAGS = ("downvoted", "abstained", "low_score")
Embed = Callable[[list[str]], np.ndarray]

# Measured with all-MiniLM-L6-v2 (tests' `minilm`, embed_query) on 8 topics x 3-4 phrasings of
# a question (27 paraphrase pairs) against the 273 cross-topic pairs:
#   paraphrases        min 0.41  p10 0.55  median 0.84  max 0.96
#   unrelated          min -0.13 median 0.03  p90 0.15  max 0.51
#   same words, other question ("rotate" vs "revoke an API key", "back up" vs "restore"):
#                      min 0.42  median 0.64  max 0.84
# Clustering those 27 questions in 20 random orders: at 0.50 6% of groups mix topics (index
# types with Kubernetes deployment, 0.51); at 0.55 none do and 78% of topics stay in one group;
# at 0.60 69%, at 0.65 57%. A split topic costs the reader a second look, a mixed group hides a
# gap, so 0.55. Same-word questions mostly merge at 0.55 (they stay apart only from ~0.65,
# where paraphrases split); that suits a gap report: "rotate" and "revoke" a key tend to lack
# the same page, and the group lists its phrasings. Cosine scales differ between models and
# Qwen3-Embedding was not measured (no weights on this machine): re-measure before trusting
# 0.55 there.
DEFAULT_SIMILARITY = 0.55


class ClosestDoc(NamedTuple):
    """A section the answer cited or, for an abstention, came nearest to."""

    title: str
    heading: str
    url: str
    score: float


@dataclass
class GapQuestion:
    id: int
    created_at: datetime
    text: str
    search_query: str | None  # what retrieval looked for: a follow-up rewritten to stand alone
    why: list[str]
    reasons: list[str]
    best_score: float | None
    closest: list[ClosestDoc]
    channel_id: str
    user_id: str

    @property
    def grouping_text(self) -> str:
        # "and for the staging one?" means nothing alone; its rewrite names the topic.
        return self.search_query or self.text


class DocHit(NamedTuple):
    title: str
    heading: str
    url: str
    questions: int
    best_score: float


@dataclass
class GapGroup:
    questions: list[GapQuestion]
    representative: GapQuestion
    counts: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    closest_docs: list[DocHit] = field(default_factory=list)


class QueryEmbedder(Protocol):
    def embed_query(self, text: str) -> list[float]: ...


def embed_all(embedder: QueryEmbedder, texts: list[str]) -> np.ndarray:
    """Questions embedded as queries, the way retrieval sees them: for Qwen3-Embedding both
    sides of a comparison then carry the same instruction. `group_similar` takes
    `lambda texts: embed_all(embedder, texts)`."""
    return np.array([embedder.embed_query(t) for t in texts], dtype=np.float32)


# -- which questions ---------------------------------------------------------------------------


def closest(citations: list[dict[str, Any]] | None, doc_set: str | None = None) -> list[ClosestDoc]:
    if doc_set is not None:
        citations = [c for c in citations or [] if c.get("doc_set", IMPLICIT) == doc_set]
    return [
        ClosestDoc(
            str(c.get("title") or ""),
            str(c.get("heading") or ""),
            str(c.get("url") or ""),
            float(c.get("score") or 0.0),
        )
        for c in citations or []
    ]


def gap_questions(
    sessions: sessionmaker[Session],
    since: datetime | None,
    low_score: float,
    doc_set: str | None = None,
) -> list[GapQuestion]:
    """Answered questions the docs did not serve, oldest first. Failed and waiting ones are
    left out: an LLM outage or a full queue says nothing about the docs. `doc_set`: only the
    questions that searched that set, and only its docs among the closest (a set's owner
    sees nothing of the sets they do not own)."""
    downvoted = exists().where(Feedback.question_id == Question.id, Feedback.rating == "down")
    weak = or_(Question.answer_mode == "abstained", Question.best_score < low_score, downvoted)
    where: list[ColumnElement[bool]] = [Question.status == "answered", weak]
    if since is not None:
        where.append(Question.created_at >= since)
    with sessions() as session:
        if doc_set is not None:
            where.append(Question.id.in_(questions_searching(session, doc_set, since)))
        rows = session.scalars(
            select(Question)
            .where(*where)
            .options(selectinload(Question.feedback))
            .order_by(Question.created_at, Question.id)
        ).all()
        found = []
        for row in rows:
            downs = sorted(
                (f for f in row.feedback if f.rating == "down"), key=lambda f: (f.updated_at, f.id)
            )
            abstained = row.answer_mode == "abstained"
            weak_score = row.best_score is not None and row.best_score < low_score
            # An abstention is a low score by definition: tagging it low_score too would count
            # one failure twice.
            flags = {"downvoted": bool(downs), "abstained": abstained, "low_score": weak_score}
            flags["low_score"] &= not abstained
            why = [tag for tag in TAGS if flags[tag]]
            found.append(
                GapQuestion(
                    id=row.id,
                    created_at=as_utc(row.created_at),
                    text=row.text,
                    search_query=row.search_query,
                    why=why,
                    # Only 👎 reasons: the form is offered after a 👎, and a reason submitted
                    # after the vote flipped to 👍 is not a complaint about the docs.
                    reasons=[f.reason for f in downs if f.reason],
                    best_score=row.best_score,
                    closest=closest(row.citations, doc_set),
                    channel_id=row.channel_id,
                    user_id=row.user_id,
                )
            )
    return found


# -- grouping ----------------------------------------------------------------------------------


def _cluster(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Greedy average-link in input order: each item joins the group whose members it is most
    similar to on average, if that average reaches the threshold. With unit vectors the mean
    cosine to a group is the dot product with the group's vector sum, so no pair matrix."""
    groups: list[list[int]] = []
    sums = np.zeros((0, vectors.shape[1]))
    for i, vector in enumerate(vectors):
        if groups:
            means = (sums @ vector) / np.array([len(g) for g in groups])
            best = int(np.argmax(means))  # first maximum: the earlier group wins a tie
            if means[best] >= threshold:
                groups[best].append(i)
                sums[best] += vector
                continue
        groups.append([i])
        sums = np.vstack([sums, vector])
    return groups


def _closest_docs(questions: Sequence[GapQuestion], limit: int = 5) -> list[DocHit]:
    # Keyed by url and heading: one page's sections are different places to fix.
    hits: dict[tuple[str, str], tuple[str, set[int], float]] = {}
    for question in questions:
        for doc in question.closest:
            key = (doc.url, doc.heading)
            title, who, best = hits.get(key, (doc.title, set(), float("-inf")))
            who.add(question.id)
            hits[key] = (title, who, max(best, doc.score))
    ranked = sorted(
        hits.items(), key=lambda item: (-len(item[1][1]), -item[1][2], item[0][0], item[0][1])
    )
    return [
        DocHit(title, heading, url, len(who), best)
        for (url, heading), (title, who, best) in ranked[:limit]
    ]


def group_similar(
    items: Iterable[GapQuestion], embed: Embed, threshold: float = DEFAULT_SIMILARITY
) -> list[GapGroup]:
    """Questions that ask the same thing, biggest groups first (then most 👎)."""
    ordered = sorted(items, key=lambda q: (q.created_at, q.id))
    if not ordered:
        return []
    # The callable may be a remote embedder or a test double: do not trust it to normalise.
    vectors = normalise(embed([q.grouping_text for q in ordered]))
    if vectors.shape[0] != len(ordered):
        raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(ordered)} texts")
    groups = []
    for members in _cluster(vectors, threshold):
        centroid = vectors[members].mean(axis=0)
        representative = members[int(np.argmax(vectors[members] @ centroid))]
        questions = [ordered[i] for i in members]
        groups.append(
            GapGroup(
                questions=questions,
                representative=ordered[representative],
                counts={tag: sum(tag in q.why for q in questions) for tag in TAGS},
                reasons=[reason for q in questions for reason in q.reasons],
                closest_docs=_closest_docs(questions),
            )
        )
    groups.sort(
        key=lambda g: (-len(g.questions), -g.counts["downvoted"], g.questions[0].created_at)
    )
    return groups


def _quoted(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return "“" + escape(flat if len(flat) <= limit else flat[: limit - 1] + "…") + "”"


def describe_gaps(groups: Sequence[GapGroup], others: int = 3) -> list[str]:
    """The groups as lines for a terminal (rich markup; everything people typed is escaped)."""
    if not groups:
        return [
            "No gaps in this window: no 👎, no abstentions and no low-scoring answers. "
            "Widen it with --since, or check with `docsbot stats` that questions are coming in."
        ]
    lines: list[str] = []
    for n, group in enumerate(groups, start=1):
        counts = group.counts
        size = len(group.questions)
        lines.append(
            f"[bold]{n}. {size} question{'s' if size != 1 else ''}[/] "
            f"(👎 {counts['downvoted']}, abstained {counts['abstained']}, "
            f"low score {counts['low_score']})"
        )
        lines.append(f"   {_quoted(group.representative.text)}")
        rest = [q for q in group.questions if q is not group.representative]
        phrasings = list(dict.fromkeys(q.text for q in rest))
        for text in phrasings[:others]:
            lines.append(f"   [dim]also:[/] {_quoted(text)}")
        if len(phrasings) > others:
            lines.append(f"   [dim]… and {len(phrasings) - others} more[/]")
        for reason in group.reasons:
            lines.append(f"   [yellow]reason:[/] {_quoted(reason)}")
        if group.closest_docs:
            lines.append("   closest docs:")
            for doc in group.closest_docs:
                where = escape(place(doc.title, doc.heading))
                lines.append(
                    f"     - {where}  {escape(doc.url)}  "
                    f"[dim]({doc.questions} q, best {doc.best_score:.2f})[/]"
                )
        else:
            lines.append("   closest docs: none (nothing in the index matched)")
    return lines
