"""The answering pipeline, free of any UI: question in, cited answer (or abstention) out.

retrieve (embed, hybrid search, rerank) -> confidence gate -> LLM with numbered sources, or an
extractive answer when no LLM is configured. Every answer carries its per-stage timings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.answer.condense import language_name, query_in_language
from bot.answer.language import detect_language, docs_language
from bot.answer.llm import ChatLLM, Delta, NumberedSource, build_messages, renumber_citations
from bot.answer.retrieval import Retriever
from bot.answer.types import Answer, Candidate, Citation, Turn
from indexer.chunking import split_blocks

EXTRACT_WORDS = 70


def _citation(n: int, candidate: Candidate) -> Citation:
    hit = candidate.hit
    return Citation(
        n, hit.title, hit.heading, hit.path, hit.url, round(candidate.score, 4), hit.doc_set
    )


def trim_passage(text: str, words: int = EXTRACT_WORDS, code_lines: int = 12) -> str:
    """The opening of a section as a reader would quote it: prose cut near a sentence end,
    short code blocks kept whole (a command is often the answer), tables left to the link."""
    parts: list[str] = []
    budget = words
    for kind, block in split_blocks(text.splitlines()):
        if budget <= 0:
            break
        if kind == "table":
            continue
        if kind == "code":
            if block.count("\n") + 1 <= code_lines:
                parts.append(block)
            budget -= 10
            continue
        tokens = block.split()
        if len(tokens) <= budget:
            parts.append(block)
            budget -= len(tokens)
            continue
        cut = " ".join(tokens[:budget])
        end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        parts.append(cut[: end + 1] if end > len(cut) // 2 else cut + " …")
        break
    if parts:
        return "\n\n".join(parts)
    return "\n".join(text.strip().splitlines()[:code_lines])  # a section that is all table


def _reply_language(question: str, candidates: Sequence[Candidate]) -> str | None:
    """The asker's language, named to the model when the sources are in another: models
    tend to answer in the language of the bulk of their context."""
    asked = detect_language(question)
    written = docs_language(c.hit.text for c in candidates)
    return language_name(asked) if asked and written and asked != written else None


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        llm: ChatLLM | None,
        *,
        top_k: int = 5,
        threshold: float = 0.15,
        extract_count: int = 3,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.top_k = top_k
        self.threshold = threshold
        self.extract_count = extract_count

    def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        on_delta: Delta | None = None,
        *,
        search_query: str | None = None,
        deadline: float | None = None,
        sets: Sequence[str] | None = None,
    ) -> Answer:
        """Raises LLMError when the model fails: callers decide what the user sees.

        `search_query` is what retrieval looks for when it differs from what was asked (a
        follow-up rewritten to stand alone); the LLM still answers `question` in context.
        `sets`: the doc sets searchable where it was asked (None: all); nothing else reaches
        the answer, its sources or the prompt."""
        llm = self.llm
        translate = None
        if llm is not None:

            def translate(query: str, language: str) -> str:
                return query_in_language(llm, query, language, deadline=deadline)

        retrieval = self.retriever.retrieve(
            search_query or question, self.top_k, sets, translate=translate
        )
        timings = dict(retrieval.timings)
        best = retrieval.best_rerank_score
        candidates = retrieval.candidates
        if not candidates:
            return Answer(
                question,
                "I couldn't find anything about this in the indexed documentation.",
                "abstained",
                timings=timings,
            )
        if best is not None and best < self.threshold:
            return self._abstain(question, candidates, best, timings)
        if self.llm is None:
            return self._extractive(question, candidates, best, timings)

        sources = [
            NumberedSource(i, c.hit.title, c.hit.heading, c.hit.url, c.hit.text)
            for i, c in enumerate(candidates, start=1)
        ]
        started = time.perf_counter()
        messages = build_messages(
            question, sources, history, reply_language=_reply_language(question, candidates)
        )
        raw = self.llm.complete(messages, on_delta, deadline=deadline)
        timings["generate"] = time.perf_counter() - started
        text, cited = renumber_citations(raw, len(sources))
        citations = [_citation(k, candidates[n - 1]) for k, n in enumerate(cited, start=1)]
        return Answer(question, text.strip(), "llm", citations, timings, best)

    def _abstain(
        self, question: str, candidates: list[Candidate], best: float, timings: dict[str, float]
    ) -> Answer:
        closest = candidates[: self.extract_count]
        lines = [
            "The documentation doesn't seem to cover this (the best match scored "
            f"{best:.2f}, below the {self.threshold:.2f} confidence threshold). "
            "The closest sections are:"
        ]
        lines += [f"[{i}] {c.place}" for i, c in enumerate(closest, start=1)]
        citations = [_citation(i, c) for i, c in enumerate(closest, start=1)]
        return Answer(question, "\n".join(lines), "abstained", citations, timings, best)

    def _extractive(
        self,
        question: str,
        candidates: list[Candidate],
        best: float | None,
        timings: dict[str, float],
    ) -> Answer:
        chosen = candidates[: self.extract_count]
        lines = [
            "No LLM is configured (set OPENAI_API_KEY), so here are the passages that best "
            "match your question:",
            "",
        ]
        for i, candidate in enumerate(chosen, start=1):
            lines.append(f"[{i}] **{candidate.place}**\n\n{trim_passage(candidate.hit.text)}\n")
        citations = [_citation(i, c) for i, c in enumerate(chosen, start=1)]
        return Answer(question, "\n".join(lines), "extractive", citations, timings, best)
