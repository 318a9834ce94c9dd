"""`docsbot`: index documentation, ask it questions, measure retrieval, run the demo."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot.answering import Answer
from bot.evaluation import EvalFileError, evaluate, load_questions
from bot.llm import LLMError
from bot.services import (
    Core,
    make_answerer,
    make_indexer,
    make_retriever,
    open_core,
    with_available_models,
)
from config.settings import Settings, SettingsError, SourceSpec, load_settings
from indexer.hardware import ModelUnavailable
from indexer.store import IndexMismatch, IndexMissing

out = Console()
err = Console(stderr=True)
app = typer.Typer(
    help=(
        "docsbot answers questions about your documentation, with citations.\n\n"
        "Typical use: set DOCSBOT_SOURCES to your docs folder, run `docsbot index`, then "
        '`docsbot ask "How do I ...?"`. Settings come from DOCSBOT_* environment variables, '
        "a .env file or docsbot.toml; `docsbot config` shows what is in effect."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
USER_ERRORS = (SettingsError, ModelUnavailable, IndexMismatch, IndexMissing, EvalFileError)


def setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    noisy_loggers = (
        "httpx",
        "httpcore",
        "sentence_transformers",
        "transformers",
        "urllib3",
        "milvus_lite",
        "faiss",
        "alembic",
        "grpc",
        "waitress.queue",  # "Task queue depth is N" on every request of a burst
    )
    if level != "DEBUG":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every model load
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # pymilvus logs every failed RPC with a traceback, including ones Milvus Lite answers with
    # "not implemented" and pymilvus then works around; docsbot reports real failures itself.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    # Milvus Lite's in-process gRPC server logs those same "not implemented" calls as errors.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)


def emit_json(value: object) -> None:
    """Machine output: one JSON document on stdout, never wrapped or coloured."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


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
    setup_logging(settings.log_level if explicit else "WARNING")
    ctx.obj = settings


class RichIndexProgress:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def embedding_started(self, total_chunks: int) -> None:
        self.task = self.progress.add_task("Embedding chunks", total=total_chunks)

    def embedded(self, n: int) -> None:
        self.progress.advance(self.task, n)


def require_sources(settings: Settings) -> None:
    if not settings.sources:
        raise SettingsError(
            "Nothing to index: set DOCSBOT_SOURCES to a docs folder or URL, e.g. "
            "DOCSBOT_SOURCES=./docs or DOCSBOT_SOURCES='./docs=https://example.com/docs/'."
        )


@contextmanager
def opened(settings: Settings) -> Iterator[Core]:
    settings, notices = with_available_models(settings)
    for notice in notices:
        logging.getLogger("docsbot").warning(notice)
    core = open_core(settings)
    try:
        yield core
    finally:
        core.close()


def run_index(core: Core, *, rebuild: bool, as_json: bool) -> dict[str, object]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, disable=as_json, transient=False) as bar:
        report = make_indexer(core).run(rebuild=rebuild, progress=RichIndexProgress(bar))
    if as_json:
        emit_json(report.as_json())
    else:
        out.print(f"[bold green]Indexed:[/] {report.summary()}")
        for failure in report.failed_sources:
            err.print(f"[yellow]source failed:[/] {failure}")
    return report.as_json()


@app.command()
def index(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON")] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the index and embed everything again")
    ] = False,
) -> None:
    """Index the sources in DOCSBOT_SOURCES; unchanged documents cost nothing."""
    settings = settings_of(ctx)
    require_sources(settings)
    with opened(settings) as core:
        report = run_index(core, rebuild=rebuild, as_json=as_json)
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
) -> None:
    """Run the Slack bot: answers mentions, DMs, /ask and the assistant pane.

    Needs SLACK_BOT_TOKEN, and SLACK_SIGNING_SECRET (HTTP mode: Slack posts to
    http://HOST:PORT/slack/events) or SLACK_APP_TOKEN (Socket Mode: no public URL needed).
    Index first with `docsbot index`. GET /healthz answers load balancers and probes.
    """
    from bot.questions import QuestionStore
    from bot.server import build_server, check_slack_settings, slack_client

    settings = settings_of(ctx)
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    setup_logging(settings.log_level)  # a service: on-call people read these lines
    check_slack_settings(settings)
    client = slack_client(settings)
    log = logging.getLogger("docsbot")
    with opened(settings) as core:
        settings = core.settings
        answerer = make_answerer(core)
        store = QuestionStore(core.sessions, max_queued=settings.max_queued)
        server = build_server(settings, answerer, store, client)
        server.start()
        where = (
            "Socket Mode"
            if server.socket_mode
            else f"http://{settings.host}:{server.port}/slack/events"
        )
        log.info(
            "docsbot is up: %s; %d workers; %s chunks indexed; LLM: %s",
            where,
            settings.workers,
            core.store.count(),
            settings.llm_model if answerer.llm else "none (extractive answers)",
        )
        server.run_forever()


@app.command()
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
    since: Annotated[
        str | None, typer.Option(help="Only questions asked in this window, e.g. 7d, 12h")
    ] = None,
) -> None:
    """Questions asked, answered, abstained and failed; 👍/👎; latency per stage."""
    from bot.stats import collect, describe, parse_since
    from config.db import make_engine, make_session_factory, upgrade

    settings = settings_of(ctx)
    try:
        moment = parse_since(since) if since else None
    except ValueError as error:
        raise SettingsError(str(error)) from None
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        figures = collect(make_session_factory(engine), moment)
    finally:
        engine.dispose()
    if as_json:
        emit_json(figures)
        return
    for line in describe(figures, since):
        out.print(line)


@app.command()
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


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Show the settings in effect (secrets masked) and where the index lives."""
    settings = settings_of(ctx)
    for name, value in settings.model_dump().items():
        if name == "sources":
            value = [SourceSpec.model_validate(s).location for s in value] or "(none)"
        out.print(f"{name:22} {value}")


def main() -> None:
    try:
        app()
    except USER_ERRORS as error:
        err.print(f"[red]error:[/] {error}")
        sys.exit(2)


if __name__ == "__main__":
    main()
