"""Heading-aware Markdown chunking to a token budget.

Each chunk stays inside one section, so its heading path and section link are exact; code
blocks and tables are kept whole when they fit, and split on line boundaries when they don't.
A heading's `{#id}` is its section's anchor. A short note (`**Tip:** ...`) stays with the
block it comments on and a lead-in ending in ':' with the block it introduces, when they fit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from config.docsets import IMPLICIT
from indexer.markup import ATX, FENCE, Fences, split_heading_id
from indexer.sources import Document

# Counts tokens of many texts at once (a fast tokenizer is much quicker batched).
TokenCounter = Callable[[Sequence[str]], list[int]]
CHUNKER_VERSION = "3"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
# An admonition or tab as the parsers write it: `**Tip:** text`. Alone it says little; it
# belongs with the example it comments on.
NOTE = re.compile(r"^\*\*[^*\n]{1,120}?[.:?!]\*\*[ \t]+\S")


def approx_token_counter(texts: Sequence[str]) -> list[int]:
    """Used when no tokenizer is at hand: ~4 characters a token in English prose."""
    return [max(1, len(t) // 4) for t in texts]


@dataclass(frozen=True)
class Chunk:
    id: str
    source_key: str
    path: str
    ordinal: int
    title: str
    heading: str  # heading path, " › "-joined
    url: str  # page URL with the section anchor
    text: str  # the section text shown to people and to the LLM
    content: str  # what is embedded and BM25-indexed: title, heading path, text
    doc_set: str = IMPLICIT  # searches are filtered by it (config/docsets.py)


@dataclass
class Section:
    path: list[str]
    anchor: str
    lines: list[str] = field(default_factory=list)


def slugify(heading: str) -> str:
    """GitHub / MkDocs style anchors: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*?|(?<!\w)_+|_+(?!\w)", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return re.sub(r"\s", "-", text)


def split_sections(markdown: str) -> list[Section]:
    sections = [Section(path=[], anchor="")]
    stack: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    fences = Fences()
    for line in markdown.splitlines():
        heading = ATX.match(line) if fences.feed(line) == "text" else None
        if not heading:
            sections[-1].lines.append(line)
            continue
        level = len(heading.group(1))
        title, custom = split_heading_id(heading.group(2))
        anchor = custom or slugify(title)
        if anchor in seen:
            seen[anchor] += 1
            anchor = f"{anchor}-{seen[anchor]}"
        else:
            seen[anchor] = 0
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        sections.append(Section(path=[t for _, t in stack], anchor=anchor))
    return sections


def split_blocks(lines: list[str]) -> list[tuple[str, str]]:
    """Blocks as (kind, text): 'code' fences and 'table's are atomic units, 'prose' is not."""
    blocks: list[tuple[str, str]] = []
    current: list[str] = []
    kind = "prose"

    def flush() -> None:
        nonlocal current
        text = "\n".join(current).strip("\n")
        if text.strip():
            blocks.append((kind, text))
        current = []

    fences = Fences()
    for line in lines:
        state = fences.feed(line)
        if state in ("code", "close"):
            current.append(line)
            if state == "close":
                flush()
                kind = "prose"
            continue
        if state == "open":
            flush()
            kind = "code"
            current.append(line)
        elif line.lstrip().startswith("|"):
            if kind != "table":
                flush()
                kind = "table"
            current.append(line)
        elif not line.strip():
            flush()
            kind = "prose"
        else:
            if kind == "table":
                flush()
                kind = "prose"
            current.append(line)
    flush()
    return blocks


class Chunker:
    def __init__(self, budget: int, overlap: int, count: TokenCounter) -> None:
        if overlap >= budget:
            raise ValueError("chunk overlap must be smaller than the chunk budget")
        self.budget = budget
        self.overlap = overlap
        self.count = count

    @property
    def signature(self) -> str:
        """Part of every document hash: changing chunk settings re-chunks everything."""
        return f"v{CHUNKER_VERSION}:{self.budget}:{self.overlap}"

    def _pieces(self, kind: str, text: str) -> list[tuple[str, int]]:
        """Split one oversized block into parts that fit (code re-fenced, tables keep header)."""
        sentences = SENTENCE_END.split(text) if kind == "prose" else []
        if len(sentences) > 1:
            units, joiner = sentences, " "
        else:
            units, joiner = text.split("\n"), "\n"
        head: list[str] = []
        tail: list[str] = []
        if kind == "code" and len(units) >= 2:
            head, units = [units[0]], units[1:]
            if FENCE.match(units[-1]):  # a code block opens with a fence; keep its closing one
                tail, units = [units[-1]], units[:-1]
        elif kind == "table" and len(units) > 2:
            head, units = units[:2], units[2:]
        # Prose pieces leave room for the overlap that will open the next chunk.
        limit = self.budget - (self.overlap if kind == "prose" else 0)
        sizes = self.count([*units, "\n".join(head + tail)])
        frame, sizes = sizes[-1], sizes[:-1]
        if frame > limit // 2:  # a header that big cannot ride along every piece
            units, sizes = head + units + tail, self.count(head + units + tail)
            head, tail, frame = [], [], 0
        pieces: list[tuple[str, int]] = []
        group: list[str] = []
        total = frame
        for unit, n in zip(units, sizes, strict=True):
            for part, part_size in self._fit(unit, n, limit - frame):
                if group and total + part_size > limit:
                    pieces.append(("\n".join([*head, joiner.join(group), *tail]), total))
                    group, total = [], frame
                group.append(part)
                total += part_size
        if group:
            pieces.append(("\n".join([*head, joiner.join(group), *tail]), total))
        return pieces

    def _fit(self, unit: str, size: int, room: int) -> list[tuple[str, int]]:
        """One line longer than the budget (minified JSON, a long URL list): cut at spaces."""
        if size <= room:
            return [(unit, size)]
        words = unit.split(" ")
        counts = self.count(words)
        parts: list[tuple[str, int]] = []
        group: list[str] = []
        total = 0
        for word, n in zip(words, counts, strict=True):
            if group and total + n > room:
                parts.append((" ".join(group), total))
                group, total = [], 0
            group.append(word)
            total += n
        if group:
            parts.append((" ".join(group), total))
        return parts

    def _tail(self, text: str) -> str:
        """The last sentences of a chunk, up to the overlap budget, to open the next one."""
        if self.overlap == 0:
            return ""
        sentences = SENTENCE_END.split(text)
        sizes = self.count(sentences)
        tail: list[str] = []
        total = 0
        for sentence, n in zip(reversed(sentences), reversed(sizes), strict=True):
            if total + n > self.overlap:
                break
            tail.insert(0, sentence)
            total += n
        return " ".join(tail)

    def _units(self, blocks: list[tuple[str, str]], sizes: list[int]) -> list[list[int]]:
        """Blocks that belong together, by index: a short note joins the block before it (or,
        when that would not fit, the one after), a lead-in ending in ':' the block it leads
        into. A unit is kept in one chunk whenever it fits the budget."""
        units: list[list[int]] = []
        unit_size = 0
        glue_next = False
        for i, (kind, text) in enumerate(blocks):
            note = kind == "prose" and bool(NOTE.match(text)) and sizes[i] <= self.budget // 4
            if units and (glue_next or note) and unit_size + sizes[i] <= self.budget:
                units[-1].append(i)
                unit_size += sizes[i]
                glue_next = kind == "prose" and text.rstrip().endswith(":")
                continue
            units.append([i])
            unit_size = sizes[i]
            glue_next = note or (kind == "prose" and text.rstrip().endswith(":"))
        return units

    def _pack(self, blocks: list[tuple[str, str]]) -> list[str]:
        """One section's blocks packed into chunk texts within the budget."""
        sizes = self.count([text for _, text in blocks])
        texts: list[str] = []
        current: list[str] = []
        last_kind = "prose"
        total = 0

        def make_room(size: int) -> None:
            """Close the current chunk if `size` more tokens would not fit in it."""
            nonlocal current, total
            if not current or total + size <= self.budget:
                return
            texts.append("\n\n".join(current))
            # Overlap only from prose, and only when it still leaves room.
            tail = self._tail(current[-1]) if last_kind == "prose" else ""
            tail_size = self.count([tail])[0] if tail else 0
            if tail and tail_size + size <= self.budget:
                current, total = [tail], tail_size
            else:
                current, total = [], 0

        for unit in self._units(blocks, sizes):
            unit_size = sum(sizes[i] for i in unit)
            if len(unit) > 1 and unit_size <= self.budget:
                make_room(unit_size)
                current += [blocks[i][1] for i in unit]
                total += unit_size
                last_kind = blocks[unit[-1]][0]
                continue
            for i in unit:
                kind, text = blocks[i]
                parts = [(text, sizes[i])] if sizes[i] <= self.budget else None
                for part, size in parts or self._pieces(kind, text):
                    make_room(size)
                    current.append(part)
                    total += size
                    last_kind = kind
        if current:
            texts.append("\n\n".join(current))
        return texts

    def chunk(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        used_ids: set[str] = set()
        for section in split_sections(doc.markdown):
            blocks = split_blocks(section.lines)
            for text in self._pack(blocks) if blocks else []:
                chunks.append(self._make(doc, section, text, len(chunks), used_ids))
        return chunks

    def _make(
        self, doc: Document, section: Section, text: str, ordinal: int, used: set[str]
    ) -> Chunk:
        path = section.path
        if path and path[0].strip().lower() == doc.title.strip().lower():
            path = path[1:]  # an H1 that repeats the title adds nothing
        heading = " › ".join(path)
        content = "\n".join(part for part in (doc.title, heading) if part) + "\n\n" + text
        digest = hashlib.sha256(f"{doc.source_key}\n{doc.path}\n{content}".encode()).hexdigest()
        chunk_id = digest[:32]
        n = 1
        while chunk_id in used:  # the same text twice in one document
            chunk_id = f"{digest[:29]}-{n:02d}"
            n += 1
        used.add(chunk_id)
        url = f"{doc.url}#{section.anchor}" if section.anchor else doc.url
        return Chunk(
            id=chunk_id,
            source_key=doc.source_key,
            path=doc.path,
            ordinal=ordinal,
            title=doc.title,
            heading=heading,
            url=url,
            text=text,
            content=content,
            doc_set=doc.doc_set,
        )
