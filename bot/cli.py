"""`docsbot`: index documentation, ask it questions, measure retrieval, run the demo."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markdown import Markdown
from rich.progress import Progress

from bot.answering import Answer
from bot.cli_ops import register as register_ops
from bot.cli_shared import (
    emit_json,
    err,
    opened,
    out,
    require_sources,
    run_index,
    settings_of,
)
from bot.evaluation import EvalFileError, evaluate, load_questions
from bot.llm import LLMError
from bot.logs import setup_logging
from bot.services import Core, make_answerer, make_retriever
from config.db import SchemaBehind
from config.settings import SettingsError, load_settings
from indexer.hardware import ModelUnavailable
from indexer.jobs import IndexBusy
from indexer.runner import NoSources
from indexer.store import IndexMismatch, IndexMissing, IndexUnreachable

app = typer.Typer(
    help=(
        "docsbot answers questions about your documentation, with citations.\n\n"
        "Typical use: set DOCSBOT_SOURCES to your docs folder, run `docsbot index`, then "
        '`docsbot ask "How do I ...?"`; `docsbot serve` runs the Slack bot, which re-indexes '
        "on a schedule. Settings come from DOCSBOT_* environment variables, a .env file or "
        "docsbot.toml; `docsbot config` shows what is in effect."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
USER_ERRORS = (
    SettingsError,
    ModelUnavailable,
    IndexMismatch,
    IndexMissing,
    IndexUnreachable,
    IndexBusy,
    NoSources,
    SchemaBehind,
    EvalFileError,
)


@app.callback()
def _root(
    ctx: typer.Context,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    ] = None,
) -> None:
    overrides: dict[str, Any] = {"log_level": log_level} if log_level else {}
    settings = load_settings(**overrides)
    # At a terminal the command's own output says what happened; INFO logs would repeat it.
    # Asked for explicitly (flag or DOCSBOT_LOG_LEVEL), the level is honoured as given.
    explicit = "log_level" in settings.model_fields_set
    setup_logging(settings.log_level if explicit else "WARNING", settings.log_format)
    ctx.obj = settings


@app.command()
def index(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON")] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the index and embed everything again")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="When another run (the schedule, another host) is indexing: wait for it, or "
            "exit at once with status 2",
        ),
    ] = True,
) -> None:
    """Index the sources in DOCSBOT_SOURCES; unchanged documents cost nothing.

    One run at a time across every process and host sharing the database; each run is
    recorded (`docsbot runs`). A source that cannot be read keeps its indexed chunks and
    makes the command exit with status 1.
    """
    settings = settings_of(ctx)
    require_sources(settings)
    with opened(settings) as core:
        report = run_index(core, rebuild=rebuild, as_json=as_json, wait=wait)
    if report["failed_sources"]:
        raise typer.Exit(1)


def print_answer(answer: Answer) -> None:
    out.print(Markdown(answer.text))
    if answer.citations:
        out.print("\n[bold]Sources[/]")
        for c in answer.citations:
            where = " › ".join(p for p in (c.title, c.heading) if p)
            out.print(f"  [{c.n}] {where}  [dim]{c.url}  (score {c.score:.3f})[/]")
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in answer.timings.items())
    out.print(f"[dim]{answer.mode}; {stages}[/]")


def ask_and_print(core: Core, question: str, as_json: bool) -> int:
    answerer = make_answerer(core)
    try:
        if as_json or answerer.llm is None or not out.is_terminal:
            answer = answerer.answer(question)
        else:
            streamed: list[str] = []
            with Live(console=out, refresh_per_second=8, transient=True) as live:

                def show(delta: str) -> None:
                    streamed.append(delta)
                    live.update(Markdown("".join(streamed)))

                answer = answerer.answer(question, on_delta=show)
    except LLMError as error:
        logging.getLogger(__name__).error("LLM call failed: %s", error)
        err.print(
            "[red]Sorry, the language model could not be reached, so there is no answer.[/] "
            "Check OPENAI_BASE_URL / OPENAI_API_KEY and try again."
        )
        return 1
    if as_json:
        emit_json(answer.as_json())
    else:
        print_answer(answer)
    return 0


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in quotes")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
) -> None:
    """Answer one question from the index, citing the sections used."""
    with opened(settings_of(ctx)) as core:
        code = ask_and_print(core, question, as_json)
    raise typer.Exit(code)


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    questions: Annotated[Path, typer.Argument(help='JSONL: {"q": ..., "sources": [...]}')],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Measure recall@1/3/5/10 and MRR@10 for dense, BM25, hybrid and hybrid+rerank."""
    from bot.reranker import build_reranker

    settings = settings_of(ctx)
    items = load_questions(questions)
    with opened(settings) as core:
        retriever = make_retriever(core, build_reranker(core.settings))
        with Progress(console=err, disable=as_json, transient=True) as bar:
            task = bar.add_task("Evaluating", total=len(items))
            results = evaluate(retriever, items, lambda: bar.advance(task))
    if as_json:
        emit_json(results)
        return
    from rich.table import Table

    table = Table(title=f"Retrieval on {len(items)} questions ({questions.name})")
    table.add_column("mode")
    metrics = list(next(iter(results.values())))
    for metric in metrics:
        table.add_column(metric, justify="right")
    for mode, values in results.items():
        table.add_row(mode, *(f"{values[m]:.3f}" for m in metrics))
    out.print(table)


@app.command()
def demo(
    ctx: typer.Context,
    docs: Annotated[Path, typer.Option(help="Folder to index")] = Path("docs"),
    question: Annotated[str, typer.Option(help="What to ask once indexed")] = (
        "How do I use PostgreSQL instead of SQLite?"
    ),
) -> None:
    """Index the given folder into ./data/demo and answer one question (works offline)."""
    from bot.demo import demo_settings

    settings, notice = demo_settings(settings_of(ctx), docs)
    if notice:
        err.print(f"[yellow]{notice}[/]", soft_wrap=True)
    with opened(settings) as core:
        run_index(core, rebuild=False, as_json=False)
        out.print(f"\n[bold]Q:[/] {question}\n")
        code = ask_and_print(core, question, as_json=False)
    raise typer.Exit(code)


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="HTTP port (default DOCSBOT_PORT, 3000)")] = None,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler",
            help="Answer only; leave re-indexing to a `docsbot scheduler` process (bot "
            "replicas sharing a Milvus server)",
        ),
    ] = False,
) -> None:
    """Run the Slack bot: answers mentions, DMs, /ask and the assistant pane.

    Needs SLACK_BOT_TOKEN, and SLACK_SIGNING_SECRET (HTTP mode: Slack posts to
    http://HOST:PORT/slack/events) or SLACK_APP_TOKEN (Socket Mode: no public URL needed).
    Re-indexes on DOCSBOT_INDEX_SCHEDULE (default every hour; the first run starts at once
    if nothing was indexed yet). GET /healthz answers probes, GET /metrics Prometheus.
    """
    from bot.indexing import IndexControl
    from bot.questions import QuestionStore
    from bot.server import build_server, check_slack_settings, slack_client

    settings = settings_of(ctx)
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    setup_logging(settings.log_level, settings.log_format)  # a service: on-call reads these
    check_slack_settings(settings)
    client = slack_client(settings)
    log = logging.getLogger("docsbot")
    with opened(settings) as core:
        settings = core.settings
        control = IndexControl(core, schedule=not no_scheduler)
        answerer = make_answerer(core, index_coming=control.scheduler is not None)
        store = QuestionStore(core.sessions, max_queued=settings.max_queued)
        server = build_server(settings, answerer, store, client, control)
        server.start()
        where = (
            "Socket Mode"
            if server.socket_mode
            else f"http://{settings.host}:{server.port}/slack/events"
        )
        log.info(
            "docsbot is up: %s; %d workers; %s chunks indexed; LLM: %s; re-indexing: %s",
            where,
            settings.workers,
            core.store.count(),
            settings.llm_model if answerer.llm else "none (extractive answers)",
            "another process" if no_scheduler else settings.index_schedule,
        )
        server.run_forever()


register_ops(app)  # the operators' commands, listed after these in --help


def main() -> None:
    try:
        app()
    except USER_ERRORS as error:
        err.print(f"[red]error:[/] {error}")
        sys.exit(2)
    except KeyboardInterrupt:
        # Ctrl-C while waiting for another run's lease, or mid-run: what was written stays
        # consistent, and the next run finishes the work.
        err.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
