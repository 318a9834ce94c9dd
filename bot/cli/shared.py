"""What the `docsbot` commands share: consoles, settings from the context, the opened backends,
machine output and indexing with a progress bar."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from config.logger import get_logger

if TYPE_CHECKING:
    from rich.progress import Progress

    from bot.wiring import Backends
    from config.settings import Settings

out = Console()
err = Console(stderr=True)
log = get_logger("bot.cli")


def emit_json(value: object) -> None:
    """Machine output: one JSON document on stdout, never wrapped or coloured."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def settings_of(ctx: typer.Context) -> Settings:
    from config.settings import Settings

    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


class RichIndexProgress:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def embedding_started(self, total_chunks: int | None) -> None:
        # Documents stream through the run: the chunk count grows as they are read.
        self.task = self.progress.add_task("Embedding new chunks", total=total_chunks)

    def embedded(self, n: int) -> None:
        self.progress.advance(self.task, n)


def require_sources(settings: Settings) -> None:
    from config.settings import SettingsError

    if not settings.index_sources:
        raise SettingsError(
            "Nothing to index: set DOCSBOT_SOURCES to a docs folder or URL, e.g. "
            "DOCSBOT_SOURCES=./docs or DOCSBOT_SOURCES='./docs=https://example.com/docs/'."
        )


@contextmanager
def opened(settings: Settings) -> Iterator[Backends]:
    """The backends on the models available here (swapped defaults are warned about)."""
    from bot.wiring import available_models, open_backends

    backends = open_backends(available_models(settings))
    try:
        yield backends
    finally:
        backends.close()


def run_index(
    backends: Backends,
    *,
    rebuild: bool,
    as_json: bool,
    wait: bool = True,
    confirm_deletions: bool = False,
    only_set: str | None = None,
) -> dict[str, object]:
    """One recorded run under the indexing lease, waiting (and saying so) while another
    process holds it."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from bot.wiring import make_indexer
    from indexer.jobs import IndexJobs
    from indexer.lease import LeaseInfo

    def waiting(held: LeaseInfo | None) -> None:
        what = held.describe() if held else "finishing"
        err.print(
            f"[yellow]Another indexing run is in progress[/] ({what}).\n"
            "Waiting for it to finish; Ctrl-C to stop waiting, or use --no-wait to exit at once."
        )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} chunks"),
        TimeElapsedColumn(),
    )
    jobs = IndexJobs(
        make_indexer(backends), backends.sessions, lease_s=backends.settings.index_lease_s
    )
    if not as_json:
        err.print(f"[dim]Embedding with {backends.embedder.name}[/]")
    log.info("indexing with the embedding model %s", backends.embedder.name)
    with Progress(*columns, console=err, disable=as_json, transient=False) as bar:
        outcome = jobs.run(
            "manual",
            wait=wait,
            rebuild=rebuild,
            progress=RichIndexProgress(bar),
            on_wait=waiting,
            confirm_deletions=confirm_deletions,
            only_set=only_set,
        )
    assert outcome is not None  # manual runs are never skipped, only scheduled slots
    if outcome.report is None:
        raise typer.Exit(_stopped(outcome.errors))
    result = {"run_id": outcome.run_id, "status": outcome.status, **outcome.report.as_json()}
    if as_json:
        emit_json(result)
    else:
        colour = "green" if outcome.status == "succeeded" else "yellow"
        out.print(
            f"[bold {colour}]Indexed (run #{outcome.run_id}, {outcome.status}):[/] "
            f"{outcome.report.summary()}"
        )
        for failure in outcome.report.failed_sources:
            err.print(f"[yellow]source failed, its chunks were kept:[/] {failure}")
        if outcome.report.deletions_held:
            err.print(
                f"[yellow]Nothing was deleted:[/] {outcome.report.deletions_held} indexed "
                "document(s) were not found, more than DOCSBOT_INDEX_DELETE_GUARD allows. "
                "If DOCSBOT_SOURCES is right, run `docsbot index --confirm-deletions`."
            )
    return result


def _stopped(errors: list[str]) -> int:
    err.print(f"[red]The indexing run stopped:[/] {'; '.join(errors)}")
    return 1
