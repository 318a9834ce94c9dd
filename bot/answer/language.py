"""Which language a text is in, cheaply, and how much of a question BM25 can read.

BM25 matches the question's words against the documentation's: a question asked in Chinese
over English docs shares only its English words (an error string, a config key) with them,
while a multilingual embedder still matches its meaning. So the fusion leans on dense in
proportion to the part of the question written in the docs' language
(`Retriever.fuse`); `language_mismatch` lets the answering side see the same thing (to write
BM25's query and the answer in the right language).

No model, no dictionary: scripts by Unicode ranges (Han, kana, Hangul, Cyrillic, ...), and
for Latin-script text the stop words of a few languages. Good enough to tell "not the docs'
language"; not a general language identifier. The docs' language is read from the chunks a
search returned, so nothing about it has to be stored in the index, and a corpus with pages
in several languages is judged by the pages the question actually reaches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

# Script of a run of letters. Han counts per character: a Chinese word is ~1.5 characters
# and a question of 8 characters carries as much as an English one of 5 words.
SCRIPTS: dict[str, str] = {
    "latin": r"[A-Za-z\u00c0-\u024f]+",
    "han": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]",
    "kana": r"[\u3040-\u30ff]+",
    "hangul": r"[\uac00-\ud7af\u1100-\u11ff]+",
    "cyrillic": r"[\u0400-\u04ff]+",
    "greek": r"[\u0370-\u03ff]+",
    "arabic": r"[\u0600-\u06ff]+",
    "hebrew": r"[\u0590-\u05ff]+",
    "devanagari": r"[\u0900-\u097f]+",
    "thai": r"[\u0e00-\u0e7f]+",
}
TOKEN = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in SCRIPTS.items()))
HAN_WORD = 0.6  # one Han character, in words
# Words written like code: snake_case, dotted.names, camelCase, CONSTANTS, --flags, paths.
# They are in the docs' language whatever language the question is in.
CODE = re.compile(
    r"`[^`]+`|[\w.-]*[_./][\w./-]+|(?<!\S)--?[a-z][\w-]*|\b[a-z]+[A-Z]\w*|\b[A-Z]{2,}\w*",
    re.ASCII,
)
# The most frequent function words of the Latin-script languages people write docs in.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the a an is are was be to of and in on for with how do does what why can i my it "
        "this that not when where which from by should"
    ),
    "de": _words(
        "der die das ist und nicht ein eine ich wie was warum wird mit auf für den dem "
        "des kann es zu im wo welche oder"
    ),
    "fr": _words(
        "le la les est et un une des du de je comment pourquoi quoi dans pour avec sur ne "
        "pas qui que ce mon ma mes il"
    ),
    "es": _words(
        "el la los las es y un una de del que en por para con como cómo qué porque no se "
        "mi mis lo al"
    ),
    "pt": _words(
        "o a os as é e um uma de do da dos das que em para com como por não se meu minha no na"
    ),
    "it": _words(
        "il lo la gli le è e un una di del della che in per con come perché non si mio mia nel"
    ),
    "nl": _words(
        "de het een is en van in op voor met hoe wat waarom niet ik mijn dat die kan er te"
    ),
}
MIN_STOP_WORDS = 2  # fewer votes than this: a Latin-script text's language stays unknown


def _units(text: str) -> defaultdict[str, float]:
    """Words per script, code-like words apart (as "code")."""
    counts: defaultdict[str, float] = defaultdict(float)
    counts["code"] = len(CODE.findall(text))
    for match in TOKEN.finditer(CODE.sub(" ", text)):
        script = match.lastgroup or "latin"
        counts[script] += HAN_WORD if script == "han" else 1
    return counts


def _latin_language(text: str) -> str | None:
    words = re.findall(r"[a-zà-ÿ]+", CODE.sub(" ", text).lower())
    votes = {lang: sum(1 for w in words if w in stops) for lang, stops in STOP_WORDS.items()}
    best = max(votes, key=lambda lang: votes[lang])
    ranked = sorted(votes.values(), reverse=True)
    if ranked[0] < MIN_STOP_WORDS or ranked[0] == ranked[1]:
        return None
    return best


def detect_language(text: str) -> str | None:
    """`en`, `de`, `fr`, `es`, `pt`, `it`, `nl` for Latin-script text with enough function
    words; `zh`, `ja`, `ko`, `ru` (Cyrillic), `el`, `ar`, `he`, `hi`, `th` by script; None
    when there is too little prose to tell (a bare config key, an error code)."""
    counts = _units(text)
    prose = {script: n for script, n in counts.items() if script != "code" and n > 0}
    if not prose:
        return None
    script = max(prose, key=lambda s: prose[s])
    if script == "latin":
        latin = _latin_language(text)
        others = {s: n for s, n in prose.items() if s != "latin"}
        if latin is not None or not others:
            return latin
        # English words quoted in another language's sentence ("为什么报错 Working outside of
        # application context"): the asker writes the other script.
        script = max(others, key=lambda s: others[s])
    if script == "han" and counts["kana"] > 0:
        return "ja"
    return {
        "han": "zh",
        "kana": "ja",
        "hangul": "ko",
        "cyrillic": "ru",
        "greek": "el",
        "arabic": "ar",
        "hebrew": "he",
        "devanagari": "hi",
        "thai": "th",
    }[script]


def _script_of(language: str) -> str:
    return {
        "zh": "han",
        "ja": "kana",
        "ko": "hangul",
        "ru": "cyrillic",
        "el": "greek",
        "ar": "arabic",
        "he": "hebrew",
        "hi": "devanagari",
        "th": "thai",
    }.get(language, "latin")


def docs_language(texts: Iterable[str]) -> str | None:
    """The language of documentation passages (e.g. the chunks a search returned)."""
    return detect_language("\n".join(texts))


def language_mismatch(question: str, docs: Iterable[str] | str) -> bool:
    """Whether `question` is written in another language than `docs` (passages, or a language
    code such as "en"). False when either cannot be told: only a clear mismatch counts."""
    asked = detect_language(question)
    written = docs if isinstance(docs, str) else docs_language(docs)
    return asked is not None and written is not None and asked != written


def lexical_share(question: str, docs: Iterable[str] | str) -> float:
    """The share of the question that BM25 can match against docs in their language: 1.0 when
    the question is in the docs' language (or either is unknown); otherwise the share of its
    words written in the docs' script, code-like words always counting (a Chinese question
    quoting `SESSION_COOKIE_SAMESITE`), or only the code-like words when both languages share
    a script (German over English: BM25 would match German words against English ones)."""
    asked = detect_language(question)
    written = docs if isinstance(docs, str) else docs_language(docs)
    if asked is None or written is None or asked == written:
        return 1.0
    counts = _units(question)
    total = sum(counts.values())
    if total == 0:
        return 1.0
    readable = counts["code"]
    if _script_of(asked) != _script_of(written):
        readable += counts[_script_of(written)]
    return readable / total
