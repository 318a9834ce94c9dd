"""Doc sets: named bodies of documentation, each saying where it may be searched.

A set lists its sources and who may search it: channels (`"*"` for every channel and DM),
people (their DMs and assistant pane), whether channels shared with other organisations
(Slack Connect) may, and who owns it (its gap report). Without `doc_sets`, one implicit set
built from DOCSBOT_SOURCES is searchable everywhere, as docsbot always was.

A document in two sets is indexed once per set: each copy carries its set, so a search is one
filter, and re-indexing, deleting or dropping one set never touches the other's copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from config.specs import SourceSpec

IMPLICIT = "docs"  # the set an install without doc_sets has
EVERYWHERE = "*"


class DocSet(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    sources: list[SourceSpec] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=lambda: [EVERYWHERE])
    users: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)
    external: bool = False
    implicit: bool = False  # built from DOCSBOT_SOURCES: its sources keep their old keys

    @field_validator("sources", mode="before")
    @classmethod
    def _parse_sources(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [SourceSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _configured_sets_have_sources(self) -> DocSet:
        if not self.implicit and not self.sources:
            raise ValueError(f"doc set {self.name!r} has no sources: give it at least one")
        return self

    def model_post_init(self, context: Any) -> None:
        if not self.implicit:
            # Each source's key carries the set: the same folder in two sets is two sources.
            self.sources = [s.model_copy(update={"doc_set": self.name}) for s in self.sources]

    @property
    def everywhere(self) -> bool:
        return EVERYWHERE in self.channels


def parse_doc_sets(value: Any) -> Any:
    """TOML gives a list of tables; DOCSBOT_DOC_SETS a JSON array of the same objects."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else []
    return value


def check_doc_sets(sets: Sequence[DocSet], sources: Sequence[SourceSpec]) -> list[DocSet]:
    names = [s.name for s in sets]
    if doubled := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"doc set names must be unique; {', '.join(doubled)} appear twice")
    if sets and sources:
        raise ValueError(
            "set either DOCSBOT_SOURCES (one set, searchable everywhere) or doc_sets with their "
            "own sources, not both"
        )
    return list(sets)


def effective_sets(doc_sets: Sequence[DocSet], sources: Sequence[SourceSpec]) -> list[DocSet]:
    """The sets in force: the configured ones, or the implicit one from DOCSBOT_SOURCES.
    The implicit set exists without sources too: `docsbot serve` may run beside an indexer
    that has them, and must still search everything."""
    if doc_sets:
        return list(doc_sets)
    return [
        DocSet(
            name=IMPLICIT,
            description="The documentation in DOCSBOT_SOURCES",
            sources=list(sources),
            channels=[EVERYWHERE],
            external=True,
            implicit=True,
        )
    ]


@dataclass(frozen=True)
class Place:
    """Where a question is asked, as the scope rules see it."""

    channel_id: str
    user_id: str
    private: bool  # a DM with the bot, or its assistant pane
    external: bool = False  # a channel shared with another organisation (Slack Connect)

    @classmethod
    def of(cls, channel_id: str, user_id: str, *, external: bool = False) -> Place:
        return cls(channel_id, user_id, private=channel_id.startswith("D"), external=external)


def allowed_sets(sets: Iterable[DocSet], place: Place) -> list[str]:
    """The sets searchable at `place`: in a channel, those listing it or `"*"` (only the
    `external` ones where the channel is shared with another organisation); in a DM or the
    assistant pane, the `"*"` sets and those listing the asker."""
    allowed = []
    for doc_set in sets:
        if place.private:
            ok = doc_set.everywhere or place.user_id in doc_set.users
        else:
            ok = doc_set.everywhere or place.channel_id in doc_set.channels
            ok = ok and (doc_set.external or not place.external)
        if ok:
            allowed.append(doc_set.name)
    return allowed


def private_sets(sets: Iterable[DocSet], user_id: str) -> list[str]:
    """The sets a person may search in a DM with the bot."""
    return allowed_sets(sets, Place("", user_id, private=True))
