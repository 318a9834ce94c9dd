"""Search queries the retrievers can use: follow-ups in a thread ("and how do I delete it?")
rewritten to stand alone, because retrieval sees one query and no conversation; and a question
asked in another language than the docs' put into theirs, because BM25 matches words."""

from __future__ import annotations

from collections.abc import Sequence

from bot.answer.llm import ChatLLM, LLMEmpty
from bot.answer.types import Turn

CONDENSE_PROMPT = """\
Rewrite the user's last message as one standalone question that can be understood without \
the conversation: resolve pronouns and references ("it", "that option", "the second one") \
using the earlier turns. If it already stands alone, return it unchanged. Reply with the \
question only, in the user's language, with no preamble."""


def _transcript(history: Sequence[Turn], limit: int = 1200) -> str:
    lines = []
    for turn in history:
        text = " ".join(turn.text.split())
        lines.append(f"{turn.role}: {text[:limit]}")
    return "\n".join(lines)


def heuristic_query(history: Sequence[Turn], question: str) -> str:
    """Without a model: the previous question carries the topic the follow-up refers to."""
    previous = [t.text for t in history if t.role == "user"]
    return f"{previous[-1]} {question}" if previous else question


def standalone_question(
    llm: ChatLLM | None,
    history: Sequence[Turn],
    question: str,
    *,
    deadline: float | None = None,
) -> str:
    if not history:
        return question
    if llm is None:
        return heuristic_query(history, question)
    messages = [
        {"role": "system", "content": CONDENSE_PROMPT},
        {
            "role": "user",
            "content": f"Conversation:\n{_transcript(history)}\n\nLast message: {question}",
        },
    ]
    # LLMError propagates: the answer call would meet the same outage a second time.
    rewritten = llm.complete(messages, deadline=deadline).strip().strip('"')
    return rewritten.splitlines()[0] if rewritten else question


TRANSLATE_PROMPT = """\
Translate the user's question into {language} as a search query over documentation written \
in {language}. Keep code, commands, option names, file names, product names and quoted error \
messages exactly as written. Reply with the translated query only, with no preamble."""

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "ru": "Russian",
    "el": "Greek",
    "ar": "Arabic",
    "he": "Hebrew",
    "hi": "Hindi",
    "th": "Thai",
}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def query_in_language(
    llm: ChatLLM, query: str, language: str, *, deadline: float | None = None
) -> str:
    """`query` written in `language` (a code from bot.answer.language), for BM25. A model
    that answers with nothing leaves the query as it was."""
    messages = [
        {"role": "system", "content": TRANSLATE_PROMPT.format(language=language_name(language))},
        {"role": "user", "content": query},
    ]
    try:
        translated = llm.complete(messages, deadline=deadline).strip().strip('"')
    except LLMEmpty:
        return query  # BM25 then reads what it can; the answer call will meet its own fate
    return translated.splitlines()[0].strip() if translated else query
