"""The App Home tab: how the bot is doing, for everyone in the workspace, and a re-index
button for the admins in DOCSBOT_ADMIN_USERS. `home_view` is a pure builder; `HomeTab` reads
the figures and publishes the view after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack
from sqlalchemy.orm import Session, sessionmaker

from bot.ops.reindex import IndexControl
from bot.ops.stats import collect, parse_since
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.budget import Priority
from bot.slack.gate import SlackGate, error_code
from bot.slack.mrkdwn import escape, link_label, safe_url
from config.docsets import private_sets
from config.logger import get_logger
from config.settings import Settings
from indexer.jobs import RunSummary, index_size, last_success, size_by_set

log = get_logger(__name__)
REINDEX_ACTION = "home_reindex"
WINDOW = "7d"
Block = dict[str, Any]


def _doc_link(entry: dict[str, Any]) -> str:
    label = link_label(entry["title"] or entry["url"])
    url = safe_url(entry["url"])  # None for file:// pages (a folder without a base URL)
    return f"<{url}|{label}>" if url else label


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _run_line(run: RunSummary) -> str:
    when = f"{run.started_at:%Y-%m-%d %H:%M} UTC"
    icon = {"succeeded": ":white_check_mark:", "running": ":hourglass_flowing_sand:"}.get(
        run.status, ":warning:"
    )
    text = f"{icon} run #{run.id} ({run.trigger}) {run.status}, started {when}"
    if run.status != "running":
        text += f": {run.docs_seen} docs seen, {run.chunks_embedded} chunks embedded"
    if run.errors:
        # Cut before escaping: a cut after it could split an entity (`&am`) in two.
        text += "\n> " + escape(shorten("; ".join(run.errors), 500))
    return text


def home_view(
    figures: dict[str, Any],
    index: tuple[int, int],
    runs: list[RunSummary],
    *,
    schedule: str,
    is_admin: bool,
    admins: list[str],
    note: str | None = None,
    models: dict[str, str] | None = None,
    sets: list[tuple[str, str, int]] | None = None,
    last_indexed: str | None = None,
) -> dict[str, Any]:
    """`sets`: (name, description, documents) of the doc sets the viewer may search."""
    rate = figures["helpful_rate"]
    helpful = f"{rate:.0%} helpful" if rate is not None else "no votes yet"
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "docsbot"}},
        kit.section(
            f"*Last {WINDOW}:* {_count(figures['questions'], 'question')} · {figures['answered']} "
            f"answered · {figures['abstained']} not covered by the docs · "
            f"{figures['failed']} failed\n"
            f":thumbsup: {figures['feedback_up']}  :thumbsdown: {figures['feedback_down']} "
            f"({helpful})"
        ),
    ]
    latency = figures["latency_s"].get("total")
    if latency:
        blocks.append(
            kit.section(
                f"*Time to answer:* {latency['p50']:.1f} s typical, {latency['p95']:.1f} s slow"
            )
        )
    if figures["top_cited"]:
        lines = [f"• {_doc_link(e)} ({e['n']})" for e in figures["top_cited"][:5]]
        blocks.append(kit.section("*Most cited docs:*\n" + "\n".join(lines)))
    docs, chunks = index
    index_text = f"*Index:* {docs} documents, {chunks} chunks; re-indexing {schedule}."
    if runs:
        index_text += "\n" + "\n".join(_run_line(r) for r in runs[:3])
    blocks += [{"type": "divider"}, kit.section(index_text)]
    if sets:
        lines = [
            f"• *{escape(name)}*: {_count(docs, 'document')}"
            + (f" · {escape(about)}" if about else "")
            for name, about, docs in sets
        ]
        since = f" Last successful index: {last_indexed}." if last_indexed else ""
        blocks.append(kit.section("*Docs you can ask about:*\n" + "\n".join(lines) + since))
    if models:
        used = " · ".join(f"{role}: {escape(name)}" for role, name in models.items())
        blocks.append(kit.context(f"Answering with {used}"))
    if note:
        blocks.append(kit.section(f":information_source: {escape(note)}"))
    if is_admin:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": REINDEX_ACTION,
                        "text": {"type": "plain_text", "text": "Re-index now"},
                        "style": "primary",
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Re-index the docs?"},
                            "text": {
                                "type": "mrkdwn",
                                "text": "Reads every source again and embeds what changed. "
                                "Answers keep working meanwhile.",
                            },
                            "confirm": {"type": "plain_text", "text": "Re-index"},
                            "deny": {"type": "plain_text", "text": "Cancel"},
                        },
                    }
                ],
            }
        )
    else:
        who = ", ".join(f"<@{a}>" for a in admins) or "nobody yet (DOCSBOT_ADMIN_USERS)"
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"Admins who can re-index: {who}"}],
            }
        )
    return {"type": "home", "blocks": blocks}


class HomeTab:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        gate: SlackGate,
        control: IndexControl | None,
        models: dict[str, str] | None = None,
    ) -> None:
        """`models`: what answers are made with (embedding, reranker, LLM), as serve runs."""
        self.models = models
        self.settings = settings
        self.sessions = sessions
        self.gate = gate
        self.control = control

    def view(self, user_id: str, note: str | None = None) -> dict[str, Any]:
        visible = private_sets(self.settings.sets, user_id)  # what this person may read
        figures = collect(self.sessions, parse_since(WINDOW), visible=visible)
        sizes = size_by_set(self.sessions, self.settings.sets)
        good = last_success(self.sessions)
        runs = self.control.runs() if self.control else []
        shown = self.control.schedule_text if self.control else "by another process"
        return home_view(
            figures,
            index_size(self.sessions),
            runs,
            schedule=shown,
            is_admin=user_id in self.settings.admin_users,
            admins=self.settings.admin_users,
            note=note,
            models=self.models,
            sets=[
                (s.name, s.description, sizes[s.name][0])
                for s in self.settings.sets
                if s.name in visible
            ],
            last_indexed=f"{good.finished_at:%Y-%m-%d %H:%M} UTC"
            if good and good.finished_at
            else None,
        )

    def publish(self, user_id: str, note: str | None = None) -> None:
        try:
            view = self.view(user_id, note)
        except Exception:
            log.exception("could not build App Home for %s", user_id)
            return
        try:
            self.gate.call(
                "views.publish",
                lambda: self.gate.client.views_publish(user_id=user_id, view=view),
                priority=Priority.NOTICE,
            )
        except Exception as error:
            log.warning("could not publish App Home: %s", error_code(error))

    # Bolt lazy listeners: they run after the ack, on Bolt's listener executor.

    def on_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab") == "home" and event.get("user"):
            self.publish(event["user"])

    def on_reindex(self, body: dict[str, Any]) -> None:
        user = (body.get("user") or {}).get("id", "")
        if user not in self.settings.admin_users:
            log.warning("re-index refused: %s is not in DOCSBOT_ADMIN_USERS", user)
            note = words.REINDEX_ADMINS_ONLY
        elif self.control is None:
            note = words.REINDEX_UNAVAILABLE
        else:
            note = self.control.reindex_now(user)
        self.publish(user, note)


def acknowledge(ack: Ack) -> None:
    ack()


def register(app: Any, home: HomeTab) -> None:
    app.event("app_home_opened")(ack=acknowledge, lazy=[home.on_opened])
    app.action(REINDEX_ACTION)(ack=acknowledge, lazy=[home.on_reindex])
