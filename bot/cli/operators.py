"""`docsbot` commands for the people who run the bot and own the docs: the scheduler process,
schema upgrades, index runs, stats, gaps in the docs, feedback export, the Slack manifest."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.shared import emit_json, err, opened, out, require_sources, settings_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from config.settings import Settings

db_app = typer.Typer(help="The SQL database: schema upgrades.", no_args_is_help=True)
report_app = typer.Typer(help="Reports for the people who own the docs.", no_args_is_help=True)
feedback_app = typer.Typer(help="The 👍/👎 people gave, for a spreadsheet.", no_args_is_help=True)

SinceOption = Annotated[
    str | None, typer.Option(help="Only questions asked in this window, e.g. 7d, 12h, 30d")
]
SetOption = Annotated[
    str | None, typer.Option("--set", help="Only questions that searched this doc set")
]


def _known_set(settings: Settings, name: str | None) -> str | None:
    from config.settings import SettingsError

    if name is not None and name not in {s.name for s in settings.sets}:
        known = ", ".join(s.name for s in settings.sets) or "none"
        raise SettingsError(f"There is no doc set {name!r} (the sets: {known}).")
    return name


def _since(text: str | None) -> datetime | None:
    from bot.ops.stats import parse_since
    from config.settings import SettingsError

    try:
        return parse_since(text) if text else None
    except ValueError as error:
        raise SettingsError(str(error)) from None


@contextmanager
def _database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the upgraded database, its connections closed on the way out."""
    from bot.wiring import open_database
    from config.db import make_session_factory

    engine = open_database(settings)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
    since: SinceOption = None,
    doc_set: SetOption = None,
) -> None:
    """Questions asked, answered, abstained and failed; 👍/👎; latency per stage; top docs."""
    from bot.ops.stats import collect, describe

    moment = _since(since)
    settings = settings_of(ctx)
    chosen = _known_set(settings, doc_set)
    with _database(settings) as sessions:
        figures = collect(sessions, moment, doc_set=chosen, visible=[chosen] if chosen else None)
    if as_json:
        emit_json(figures)
        return
    for line in describe(figures, since):
        out.print(line)


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the newest runs")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON")] = False,
) -> None:
    """The newest indexing runs: who started them, how they ended, what they did."""
    from indexer.jobs import recent_runs

    with _database(settings_of(ctx)) as sessions:
        recorded = recent_runs(sessions, limit)
    if as_json:
        emit_json(
            [
                {
                    **run.__dict__,
                    "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                }
                for run in recorded
            ]
        )
        return
    if not recorded:
        out.print("No index runs yet: run `docsbot index`, or start `docsbot serve`.")
    for run in recorded:
        colour = {"succeeded": "green", "running": "cyan", "held": "yellow"}.get(run.status, "red")
        out.print(
            f"#{run.id:<5} {run.started_at:%Y-%m-%d %H:%M:%S} UTC  {run.trigger:9} "
            f"[{colour}]{run.status:9}[/]  {run.docs_seen} docs, "
            f"{run.chunks_embedded} chunks embedded"
        )
        for error in run.errors:
            out.print(f"        [dim]{error}[/]")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the schema to this version's (back the database up first). Safe to run from
    several processes at once, and a no-op when there is nothing to do."""
    from config.db import current_revision, explained, head_revision, make_engine, upgrade

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url, connect_timeout_s=settings.db_connect_timeout_s)
    try:
        with explained(engine):
            before = current_revision(engine)
            changed = upgrade(engine)
            head = head_revision(engine)
    finally:
        engine.dispose()
    if changed:
        out.print(f"Upgraded the schema from {before or 'empty'} to {head}.")
    else:
        out.print(f"The schema is up to date ({head}).")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the one this docsbot needs."""
    from config.db import current_revision, explained, head_revision, make_engine

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url, connect_timeout_s=settings.db_connect_timeout_s)
    try:
        with explained(engine):
            current, head = current_revision(engine), head_revision(engine)
    finally:
        engine.dispose()
    out.print(f"database: {current or 'empty'}; this docsbot: {head}")
    if current != head:
        out.print("Run `docsbot db upgrade` to bring it up to date.")
        raise typer.Exit(1)


@report_app.command("gaps")
def report_gaps(
    ctx: typer.Context,
    since: SinceOption = "30d",
    as_csv: Annotated[bool, typer.Option("--csv", help="One row per question, as CSV")] = False,
    low_score: Annotated[
        float,
        typer.Option(help="Answers whose best rerank score is below this count as weak"),
    ] = 0.3,
    similarity: Annotated[
        float | None,
        typer.Option(help="How alike two questions must be to share a group (cosine)"),
    ] = None,
    doc_set: Annotated[
        str | None,
        typer.Option(
            "--set", help="Only this doc set: the questions that searched it and its own docs"
        ),
    ] = None,
) -> None:
    """The questions the docs failed (👎 with reasons, abstentions, low rerank scores), grouped
    by similar question, with the docs that came closest: what a doc owner acts on."""
    from bot.ops import reports
    from bot.wiring import available_models
    from indexer.embedding import build_embedder

    settings = available_models(settings_of(ctx))
    chosen = _known_set(settings, doc_set)
    moment = _since(since)
    # SQL and the bot's embedder only, not Milvus: this works while `serve` holds the index.
    with _database(settings) as sessions:
        items = reports.gap_questions(sessions, moment, low_score, chosen)
    groups = []
    if items:  # no gaps, no model to load
        embedder = build_embedder(settings)
        groups = reports.group_similar(
            items,
            lambda texts: reports.embed_all(embedder, texts),
            similarity if similarity is not None else reports.DEFAULT_SIMILARITY,
        )
    if as_csv:
        from bot.ops.exports import gaps_csv

        gaps_csv(groups, sys.stdout)
        return
    if chosen is not None:
        [owned] = [s for s in settings.sets if s.name == chosen]
        owners = ", ".join(owned.owners) or "nobody yet (set `owners` in its doc set)"
        out.print(f"[bold]Doc set {chosen}[/]; owners: {owners}")
    for line in reports.describe_gaps(groups):
        out.print(line)


@feedback_app.command("export")
def feedback_export(
    ctx: typer.Context,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV (the only format, for now)")] = True,
    since: SinceOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout")
    ] = None,
) -> None:
    """Every 👍/👎 with its reason, the question and the cited docs, as CSV."""
    from bot.ops.exports import export_feedback_csv

    moment = _since(since)
    with _database(settings_of(ctx)) as sessions:
        if output is None:
            export_feedback_csv(sessions, sys.stdout, moment)
            return
        with output.open("w", newline="", encoding="utf-8") as handle:
            rows = export_feedback_csv(sessions, handle, moment)
    err.print(f"wrote {rows} rows to {output}")


def scheduler(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option(help="Serve /healthz and /metrics on this port (default: no HTTP)"),
    ] = None,
) -> None:
    """Re-index on DOCSBOT_INDEX_SCHEDULE as a process of its own.

    For setups where the bot runs as `docsbot serve --no-scheduler` replicas against a Milvus
    server or `milvus-lite server`. Several schedulers may run (one per host, say): each slot
    is indexed once, and one takes over when another dies mid-run.
    """
    from bot.ops.logs import setup_logging
    from bot.ops.metrics import Metrics
    from bot.ops.reindex import IndexControl
    from bot.slack.server import serve_probes, wait_for_signal
    from config.settings import SettingsError
    from config.specs import parse_schedule

    settings = settings_of(ctx)
    setup_logging(settings.log_level, settings.log_format)
    if parse_schedule(settings.index_schedule) is None:
        raise SettingsError(
            "DOCSBOT_INDEX_SCHEDULE is off: set an interval (1h) or a crontab line for the "
            "scheduler to follow, or run `docsbot index` from your own cron."
        )
    require_sources(settings)
    with opened(settings) as backends:
        control = IndexControl(backends, schedule=True)
        if port is not None:
            probes = serve_probes(backends.settings.host, port, Metrics(backends.sessions))
            logging.getLogger("docsbot").info(
                "probes on http://%s:%d/healthz and /metrics",
                backends.settings.host,
                probes.effective_port,
            )
        control.start()
        wait_for_signal("stopping the scheduler (a run in progress stops at its next step)")
        control.stop()


def manifest(
    url: Annotated[
        str | None,
        typer.Option(help="Public base URL of `docsbot serve`, e.g. https://bot.acme.io"),
    ] = None,
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="For Socket Mode: no request URLs at all")
    ] = False,
) -> None:
    """Print the Slack app manifest to paste into "Create New App → From a manifest"."""
    from config.slack import render_manifest

    sys.stdout.write(render_manifest(url, socket_mode=socket_mode))


def show_config(
    ctx: typer.Context,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="Print the reference of every setting (Markdown tables) instead"
        ),
    ] = False,
) -> None:
    """Show the settings in effect (secrets masked), where the index lives, and what the
    models will run on (torch or OpenVINO, and in which precision)."""
    from config.specs import SourceSpec

    if markdown:
        from config.reference import full_reference

        sys.stdout.write(full_reference())
        return
    settings = settings_of(ctx)
    for name, value in settings.model_dump().items():
        if name == "sources":
            specs = [SourceSpec.model_validate(s) for s in value]
            value = [spec.key if spec.is_git else spec.location for spec in specs] or "(none)"
        out.print(f"{name:22} {value}")
    embedding, reranker = planned_models(settings)
    out.print(f"{'embedding runs on':22} {embedding}")
    out.print(f"{'reranker runs on':22} {reranker}")


def planned_models(settings: Settings) -> tuple[str, str]:
    """What the embedder and the reranker will run on, from the settings alone (no model is
    loaded): `openvino int8 (auto)`, `torch auto`, `remote <url>`, `none`. Under `auto` a
    model OpenVINO cannot export still falls back to torch when loaded; `serve` logs what
    actually runs."""
    from config.errors import UserError
    from indexer.openvino_runtime import planned

    try:
        local = planned(settings)
    except UserError as error:  # DOCSBOT_BACKEND=openvino without the extra, say
        local = f"unavailable: {error}"
    embedding = f"remote {settings.embedding_url}" if settings.embedding_url else local
    if settings.reranker_model is None:
        reranker = "none"
    else:
        reranker = f"remote {settings.reranker_url}" if settings.reranker_url else local
    return embedding, reranker


def register(app: typer.Typer) -> None:
    app.command()(scheduler)
    app.command()(runs)
    app.command()(stats)
    app.add_typer(report_app, name="report")
    app.add_typer(feedback_app, name="feedback")
    app.add_typer(db_app, name="db")
    app.command()(manifest)
    app.command("config")(show_config)
