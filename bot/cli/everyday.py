"""The everyday commands: index documentation, ask it questions, measure retrieval, run the
demo, serve the Slack bot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.shared import emit_json, err, opened, out, require_sources, run_index, settings_of

if TYPE_CHECKING:
    from bot.answer.types import Answer
    from bot.wiring import Backends
    from config.settings import Settings

DEMO_DIR = Path("data/demo")


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
    confirm_deletions: Annotated[
        bool,
        typer.Option(
            "--confirm-deletions",
            help="Delete indexed documents the sources no longer have, even more than "
            "DOCSBOT_INDEX_DELETE_GUARD allows (a held run says how many)",
        ),
    ] = False,
    doc_set: Annotated[
        str | None,
        typer.Option("--set", help="Re-index this doc set only (`docsbot sets` lists them)"),
    ] = None,
) -> None:
    """Index the sources in DOCSBOT_SOURCES; unchanged documents cost nothing.

    One run at a time across every process and host sharing the database; each run is
    recorded (`docsbot runs`). A source that cannot be read keeps its indexed chunks, and a
    run in which one failed deletes nothing; a run that would delete more than
    DOCSBOT_INDEX_DELETE_GUARD of the documents holds instead. Both exit with status 1.
    """
    settings = settings_of(ctx)
    require_sources(settings)
    with opened(settings) as backends:
        report = run_index(
            backends,
            rebuild=rebuild,
            as_json=as_json,
            wait=wait,
            confirm_deletions=confirm_deletions,
            only_set=doc_set,
        )
    if report["failed_sources"] or report["deletions_held"]:
        raise typer.Exit(1)


def print_answer(answer: Answer) -> None:
    from rich.markdown import Markdown

    out.print(Markdown(answer.text))
    if answer.citations:
        out.print("\n[bold]Sources[/]")
        for c in answer.citations:
            out.print(f"  [{c.n}] {c.place}  [dim]{c.url}  (score {c.score:.3f})[/]")
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in answer.timings.items())
    out.print(f"[dim]{answer.mode}; {stages}[/]")


def ask_and_print(
    backends: Backends, question: str, as_json: bool, sets: list[str] | None = None
) -> int:
    from rich.live import Live
    from rich.markdown import Markdown

    from bot.answer.llm import LLMError
    from bot.wiring import make_answerer

    answerer = make_answerer(backends)
    try:
        if as_json or answerer.llm is None or not out.is_terminal:
            answer = answerer.answer(question, sets=sets)
        else:
            streamed: list[str] = []
            with Live(console=out, refresh_per_second=8, transient=True) as live:

                def show(delta: str) -> None:
                    streamed.append(delta)
                    live.update(Markdown("".join(streamed)))

                answer = answerer.answer(question, on_delta=show, sets=sets)
    except LLMError as error:
        logging.getLogger("docsbot.cli").error("LLM call failed: %s", error)
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


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in quotes")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
    channel: Annotated[
        str | None,
        typer.Option(help="Answer as if asked in this Slack channel (its doc sets only)"),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(help="...by this person (a DM, when no channel is given)"),
    ] = None,
    shared: Annotated[
        bool,
        typer.Option(
            "--shared",
            help="The channel is shared with another organisation (Slack Connect); without "
            "it, Slack is asked when SLACK_BOT_TOKEN is set",
        ),
    ] = False,
) -> None:
    """Answer one question from the index, citing the sections used.

    With --channel and/or --user, only the doc sets searchable in that place are searched,
    by the same rules as in Slack; without them, every set is.
    """
    settings = settings_of(ctx)
    sets = scope_of(settings, channel, user, shared) if channel or user else None
    with opened(settings) as backends:
        code = ask_and_print(backends, question, as_json, sets)
    raise typer.Exit(code)


def scope_of(settings: Settings, channel: str | None, user: str | None, shared: bool) -> list[str]:
    """The doc sets Slack would search for `user` in `channel`: exactly the bot's rules."""
    from bot.queue.tables import Question
    from bot.slack.scope import Scopes
    from config.docsets import Place, allowed_sets

    if channel is None:  # a DM with the bot, or its assistant pane
        found = allowed_sets(settings.sets, Place("", user or "", private=True))
    elif shared:
        found = allowed_sets(
            settings.sets, Place(channel, user or "", private=False, external=True)
        )
    else:
        gate = _gate(settings)
        kind = "dm" if channel.startswith("D") else "mention"
        asked = Question(kind=kind, channel_id=channel, user_id=user or "", team_id="", text="")
        found = Scopes(settings, gate).sets_for(asked)
    err.print(f"[dim]searching the doc sets {', '.join(found) or '(none)'}[/]")
    return found


def _gate(settings: Settings) -> Any:
    """Slack, when a token is configured, to ask whether a channel is shared."""
    if settings.slack_bot_token is None:
        return None
    from bot.slack.budget import SlackBudget
    from bot.slack.gate import SlackGate
    from bot.slack.server import slack_client

    return SlackGate(slack_client(settings), SlackBudget(), patience_s=10)


def eval_command(
    ctx: typer.Context,
    questions: Annotated[
        list[Path], typer.Argument(help='JSONL files, one set each: {"q": ..., "sources": [...]}')
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the metrics as JSON: mode -> metrics for one file, file -> mode -> "
            "metrics for several",
        ),
    ] = False,
) -> None:
    """Measure recall@1/3/5/10 and MRR@10 for dense, BM25, hybrid and hybrid+rerank, one table
    per question file, against the configured index."""
    from functools import partial

    from rich.progress import Progress
    from rich.table import Table

    from bot.answer.evaluation import evaluate, load_cases
    from bot.answer.rerankers import build_reranker
    from bot.wiring import make_retriever

    settings = settings_of(ctx)
    files = {path: load_cases(path) for path in questions}  # every file checked before any work
    results: dict[str, dict[str, dict[str, float]]] = {}
    with opened(settings) as backends:
        retriever = make_retriever(backends, build_reranker(backends.settings))
        with Progress(console=err, disable=as_json, transient=True) as bar:
            for path, cases in files.items():
                task = bar.add_task(f"Evaluating {path.name}", total=len(cases))
                results[str(path)] = evaluate(retriever, cases, partial(bar.advance, task))
    if as_json:
        emit_json(next(iter(results.values())) if len(results) == 1 else results)
        return
    for path, cases in files.items():
        table = Table(title=f"Retrieval on {len(cases)} questions ({path.name})")
        table.add_column("mode")
        by_mode = results[str(path)]
        metrics = list(next(iter(by_mode.values())))
        for metric in metrics:
            table.add_column(metric, justify="right")
        for mode, values in by_mode.items():
            table.add_row(mode, *(f"{values[m]:.3f}" for m in metrics))
        out.print(table)


def demo_settings(settings: Settings, docs: Path) -> tuple[Settings, str | None]:
    """Settings for the demo run (its own index under ./data/demo, the configured models if
    they can be had, else the packaged ones), and a notice when models were swapped."""
    from bot.wiring import with_available_models
    from config.specs import SourceSpec

    settings, notices = with_available_models(settings, force=True)
    update: dict[str, object] = {
        "sources": [SourceSpec(location=str(docs))],
        "milvus_uri": str(DEMO_DIR / "milvus.db"),
        "database_url": f"sqlite:///{DEMO_DIR / 'docsbot.db'}",
    }
    return settings.model_copy(update=update), " ".join(notices) or None


def demo(
    ctx: typer.Context,
    docs: Annotated[Path, typer.Option(help="Folder to index")] = Path("docs"),
    question: Annotated[str, typer.Option(help="What to ask once indexed")] = (
        "How do I use PostgreSQL instead of SQLite?"
    ),
) -> None:
    """Index the given folder into ./data/demo and answer one question (works offline)."""
    settings, notice = demo_settings(settings_of(ctx), docs)
    if notice:
        err.print(f"[yellow]{notice}[/]", soft_wrap=True)
    with opened(settings) as backends:
        run_index(backends, rebuild=False, as_json=False)
        out.print(f"\n[bold]Q:[/] {question}\n")
        code = ask_and_print(backends, question, as_json=False)
    raise typer.Exit(code)


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
    from bot.ops.logs import setup_logging
    from bot.ops.reindex import IndexControl
    from bot.queue.store import QuestionStore
    from bot.slack.server import build_server, check_slack_settings, slack_client
    from bot.wiring import described, make_answerer

    settings = settings_of(ctx)
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    setup_logging(settings.log_level, settings.log_format)  # a service: on-call reads these
    check_slack_settings(settings)
    client = slack_client(settings)
    log = logging.getLogger("docsbot")
    with opened(settings) as backends:
        settings = backends.settings
        control = IndexControl(backends, schedule=not no_scheduler)
        answerer = make_answerer(backends, index_coming=control.scheduler is not None)
        store = QuestionStore(backends.sessions, max_queued=settings.max_queued)
        server = build_server(settings, answerer, store, client, control)
        server.start()
        if server.gate is not None and any(not s.everywhere for s in settings.sets):
            import threading

            from bot.slack.scope import check_channels

            threading.Thread(
                target=check_channels, args=(settings, server.gate), name="check", daemon=True
            ).start()
        where = (
            "Socket Mode"
            if server.socket_mode
            else f"http://{settings.host}:{server.port}/slack/events"
        )
        reranker = answerer.retriever.reranker
        log.info(
            "docsbot is up: %s; %d workers; %s chunks indexed; embedding: %s; reranker: %s; "
            "LLM: %s; re-indexing: %s",
            where,
            settings.workers,
            backends.store.count(),
            described(backends.embedder),
            described(reranker) if reranker else "none",
            settings.llm_model if answerer.llm else "none (extractive answers)",
            "another process" if no_scheduler else settings.index_schedule,
        )
        server.run_forever()


def register(app: typer.Typer) -> None:
    app.command()(index)
    app.command()(ask)
    app.command("eval")(eval_command)
    app.command()(demo)
    app.command()(serve)
