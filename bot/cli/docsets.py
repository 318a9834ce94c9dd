"""`docsbot sets`: the doc sets in force, where each may be searched, and what is indexed."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.shared import emit_json, out, settings_of


def sets(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sets as JSON")] = False,
) -> None:
    """The doc sets: sources, the channels and people who may search each, owners, and the
    documents and chunks indexed for it."""
    from bot.wiring import open_database
    from config.db import make_session_factory
    from indexer.jobs import size_by_set

    settings = settings_of(ctx)
    found = settings.sets
    engine = open_database(settings)
    try:
        sizes = size_by_set(make_session_factory(engine), found)
    finally:
        engine.dispose()
    rows = [
        {
            "name": s.name,
            "description": s.description,
            "sources": [src.key if src.is_git else src.location for src in s.sources],
            "channels": s.channels,
            "users": s.users,
            "owners": s.owners,
            "external": s.external,
            "implicit": s.implicit,
            "documents": sizes[s.name][0],
            "chunks": sizes[s.name][1],
        }
        for s in found
    ]
    if as_json:
        emit_json(rows)
        return
    for s in found:
        docs, chunks = sizes[s.name]
        where = "every channel and DM" if s.everywhere else ", ".join(s.channels)
        people = f"; DMs of {', '.join(s.users)}" if s.users else ""
        shared = "; shared channels too" if s.external else "; not in shared channels"
        sources = [src.key if src.is_git else src.location for src in s.sources]
        out.print(f"[bold]{s.name}[/]  {s.description}")
        out.print(f"  searched in: {where}{people}{shared}")
        none_here = "none here: set DOCSBOT_SOURCES, or doc_sets in docsbot.toml"
        out.print(f"  sources:     {', '.join(sources) or none_here}")
        out.print(f"  owners:      {', '.join(s.owners) or '-'}")
        out.print(f"  indexed:     {docs} documents, {chunks} chunks")


def register(app: typer.Typer) -> None:
    app.command()(sets)
