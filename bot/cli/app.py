"""The `docsbot` Typer app: global options, the commands in --help order, and the one place
errors meant for people become a message and an exit status."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from bot.cli import docsets, everyday, operators
from bot.cli.shared import err
from config.errors import UserError

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


@app.callback()
def _root(
    ctx: typer.Context,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    ] = None,
) -> None:
    from bot.ops.logs import setup_logging
    from config.settings import load_settings

    overrides: dict[str, Any] = {"log_level": log_level} if log_level else {}
    settings = load_settings(**overrides)
    # At a terminal the command's own output says what happened; INFO logs would repeat it.
    # Asked for explicitly (flag or DOCSBOT_LOG_LEVEL), the level is honoured as given.
    explicit = "log_level" in settings.model_fields_set
    setup_logging(settings.log_level if explicit else "WARNING", settings.log_format)
    ctx.obj = settings


everyday.register(app)
docsets.register(app)
operators.register(app)  # listed after the everyday ones in --help


def main() -> None:
    try:
        app()
    except UserError as error:
        err.print(f"[red]error:[/] {error}")
        sys.exit(2)
    except KeyboardInterrupt:
        # Ctrl-C while waiting for another run's lease, or mid-run: what was written stays
        # consistent, and the next run finishes the work.
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
