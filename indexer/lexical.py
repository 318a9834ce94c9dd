"""The text BM25 sees: lowercased, stop words out, stemmed, with title and headings weighted.

Normalising here rather than in a Milvus analyzer makes keyword search behave the same on
Milvus Lite (whose BM25 applies no stemming filters) and on a Milvus server, and lets questions
("How do I start ...?") meet statements ("Milvus started ...").
"""

from __future__ import annotations

import re
from functools import cache

import snowballstemmer

WORD = re.compile(r"[a-z0-9_]+")
# Short function words that carry no topic; questions are full of them.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "done",
        "how",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "where",
        "when",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "you",
        "your",
        "we",
        "our",
        "us",
        "they",
        "them",
        "their",
        "he",
        "she",
        "his",
        "her",
        "it",
        "its",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "with",
        "by",
        "about",
        "into",
        "onto",
        "over",
        "and",
        "or",
        "nor",
        "not",
        "no",
        "there",
        "this",
        "that",
        "these",
        "those",
        "as",
        "if",
        "than",
        "then",
        "so",
        "too",
        "very",
        "just",
        "also",
        "any",
        "some",
        "such",
    ]
)
# Repeating the title and heading path is BM25F's field weighting in its simplest form: a
# section titled with the words of the question is a better match than a passing mention.
HEADING_WEIGHT = 2


@cache
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def normalise(text: str) -> str:
    words = [w for w in WORD.findall(text.lower()) if w not in STOP_WORDS]
    return " ".join(_stemmer().stemWords(words))


def document_text(title: str, heading: str, text: str) -> str:
    head = f"{title} {heading}"
    return normalise(" ".join([head] * (HEADING_WEIGHT + 1) + [text]))
