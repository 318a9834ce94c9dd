"""`docsbot serve`: the Bolt app, the worker pool and the HTTP endpoint (or a Socket Mode
connection) wired together from Settings, and taken down cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress import wasyncore
from waitress.server import create_server

from bot.answer.pipeline import Answerer
from bot.ops.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.ops.metrics import Metrics
from bot.ops.reindex import IndexControl
from bot.queue.store import QuestionStore
from bot.queue.workers import WorkerPool
from bot.slack.app import BotDeps, build_app
from bot.slack.budget import SlackBudget
from bot.slack.edge import SlackEdge
from bot.slack.gate import SlackGate, retry_handlers
from bot.slack.home import HomeTab
from bot.slack.responder import Responder
from bot.wiring import described
from config.logger import get_logger
from config.settings import Settings, SettingsError

log = get_logger(__name__)
EVENTS_PATH = "/slack/events"
HTTP_THREADS = 16  # acks are milliseconds of SQL; 16 threads absorb a burst of 50 events
HTTP_GRACE_S = 5.0  # how long a stopping server waits for requests in flight


def slack_client(settings: Settings) -> WebClient:
    if settings.slack_bot_token is None:
        raise SettingsError(
            "SLACK_BOT_TOKEN is not set: create the app from config/slack_manifest.yml, install "
            "it to your workspace and copy its Bot User OAuth Token (xoxb-…)."
        )
    # Server and connection errors are retried by the client on idempotent methods; 429s and
    # posts are the gate's (bot/slack/gate.py), which shares one budget across workers.
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=int(max(1, settings.slack_timeout_s)),
        retry_handlers=retry_handlers(),
    )


def check_slack_settings(settings: Settings) -> None:
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set. HTTP mode needs it to verify that requests come "
            "from Slack (Basic Information → App Credentials); or set SLACK_APP_TOKEN (xapp-…) "
            "to use Socket Mode, which needs no public URL."
        )


def model_names(settings: Settings, answerer: Answerer, *, runs_on: bool = False) -> dict[str, str]:
    """Each question's record keeps the models' names; `runs_on` adds what runs the local ones
    (`openvino int8`, `torch bfloat16`), for the Home tab."""
    reranker = answerer.retriever.reranker
    embedder = answerer.retriever.embedder
    return {
        "embedding": described(embedder) if runs_on else embedder.name,
        "reranker": (described(reranker) if runs_on else reranker.name) if reranker else "none",
        "llm": settings.llm_model if answerer.llm and settings.llm_model else "none",
    }


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_wsgi(
    app: App | None,
    health: Callable[[], tuple[int, dict[str, Any]]],
    metrics: Metrics | None = None,
    *,
    signing_secret: str = "",
    max_bytes: int = 1 << 20,
) -> Wsgi:
    """/slack/events for Slack (events, commands, interactivity), behind the edge that checks
    size and signature before anything parses the body; /healthz for probes, /metrics for
    Prometheus."""
    slack: Wsgi | None = None
    if app is not None:
        slack = SlackEdge(
            SlackRequestHandler(app, path=EVENTS_PATH), signing_secret, max_bytes=max_bytes
        )

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if metrics is not None and path == "/metrics" and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", METRICS_CONTENT_TYPE)])
            return [metrics.render()]
        if path == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            status, body = health()
            payload = json.dumps(body).encode()
            reason = "OK" if status == 200 else "Service Unavailable"
            start_response(f"{status} {reason}", [("Content-Type", "application/json")])
            return [payload]
        if slack is not None and path == EVENTS_PATH:
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [
            b"Not found. Slack posts to /slack/events; probes use /healthz; Prometheus /metrics.\n"
        ]

    return wsgi


@dataclass
class BotServer:
    """Everything `serve` runs. Tests build one on port 0 and drive it over real HTTP."""

    settings: Settings
    app: App
    pool: WorkerPool
    store: QuestionStore
    socket_mode: bool = False
    control: IndexControl | None = None
    metrics: Metrics | None = None
    gate: SlackGate | None = None
    http: Any = None
    socket_handler: Any = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.http.effective_port)

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            queued = self.store.queued()
        except Exception as error:  # the probe reports it; the logs carry the details
            log.error("health check: database unreachable: %s", error)
            return 503, {"status": "error", "database": "unreachable"}
        mode = "socket" if self.socket_mode else "http"
        return 200, {"status": "ok", "mode": mode, "queued": queued, "answering": self.pool.active}

    def start(self, *, host: str | None = None, port: int | None = None) -> None:
        """Start the HTTP server and the workers in the background (the server is bound first,
        so `port` is known when this returns, and a port in use stops the start before any
        worker claims a question)."""
        secret = self.settings.slack_signing_secret
        bind_host = host if host is not None else self.settings.host
        bind_port = port if port is not None else self.settings.port
        try:
            self.http = create_server(
                make_wsgi(
                    None if self.socket_mode else self.app,
                    self.health,
                    self.metrics,
                    signing_secret=secret.get_secret_value() if secret else "",
                    max_bytes=self.settings.max_request_bytes,
                ),
                host=bind_host,
                port=bind_port,
                threads=HTTP_THREADS,
                ident="docsbot",
                # waitress buffers a body before the app sees it: refuse big ones while reading.
                max_request_body_size=self.settings.max_request_bytes,
            )
        except OSError as error:
            raise SettingsError(
                f"Cannot listen on {bind_host}:{bind_port} ({error.strerror or error}): another "
                "process (another `docsbot serve`?) uses it. Stop it, or set DOCSBOT_PORT / "
                "--port to a free port."
            ) from None
        self.pool.start()
        if self.control is not None:
            self.control.start()
        thread = threading.Thread(target=self._serve_http, name="http", daemon=True)
        thread.start()
        self._threads.append(thread)
        if self.socket_mode:
            self._start_socket_mode()

    def _serve_http(self) -> None:
        try:
            self.http.run()
        except (OSError, ValueError):
            # close() from stop() pulls the socket out from under the select loop.
            if not self._stopping.is_set():
                raise

    def _start_socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert self.settings.slack_app_token is not None
        self.socket_handler = SocketModeHandler(
            self.app, self.settings.slack_app_token.get_secret_value()
        )
        self.socket_handler.connect()

    def stop(self) -> None:
        self._stopping.set()
        if self.socket_handler is not None:
            self.socket_handler.close()
        if self.http is not None:
            stop_http(self.http)
        if self.control is not None:
            self.control.stop()  # a run in progress stops at its next check, consistent
        self.pool.stop()
        self.app.listener_runner.listener_executor.shutdown(wait=True)  # lazy listeners
        for thread in self._threads:
            thread.join(HTTP_GRACE_S)

    def run_forever(self) -> None:
        """Block until SIGINT/SIGTERM, then let answers in flight finish."""
        wait_for_signal("finishing answers in flight")
        self.stop()


def stop_http(server: Any, grace_s: float = HTTP_GRACE_S) -> None:
    """Stop a waitress server now, keep-alive clients or not: stop accepting, let requests in
    flight finish (acks take milliseconds), then close every connection so the select loop,
    which runs while any socket is open, ends and its thread with it."""

    def in_loop(action: Callable[[], None]) -> None:
        # wasyncore is not thread-safe: sockets are closed by the loop's own thread.
        done = threading.Event()

        def thunk() -> None:
            try:
                action()
            finally:
                done.set()

        try:
            server.trigger.pull_trigger(thunk)
        except OSError:  # the loop has already ended
            return
        done.wait(grace_s)

    def close_listener() -> None:
        wasyncore.dispatcher.close(server)  # the listening socket only, not the trigger

    def close_connections() -> None:
        for channel in list(server._map.values()):
            if channel is not server.trigger:
                channel.close()
        server.trigger.close()

    in_loop(close_listener)
    dispatcher = server.task_dispatcher
    deadline = time.monotonic() + grace_s
    while (dispatcher.queue or dispatcher.active_count > 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    in_loop(close_connections)
    dispatcher.shutdown(timeout=grace_s)


def wait_for_signal(doing: str) -> None:
    """Block until SIGINT or SIGTERM (what `docker stop` and Kubernetes send)."""
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; %s", signal.Signals(signum).name, doing)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()


def serve_probes(host: str, port: int, metrics: Metrics | None) -> Any:
    """/healthz and /metrics for a process without Slack traffic (`docsbot scheduler`)."""
    server = create_server(
        make_wsgi(None, lambda: (200, {"status": "ok"}), metrics),
        host=host,
        port=port,
        threads=2,
        ident="docsbot",
    )
    threading.Thread(target=server.run, name="http", daemon=True).start()
    return server


def build_server(
    settings: Settings,
    answerer: Answerer,
    store: QuestionStore,
    client: WebClient,
    control: IndexControl | None = None,
) -> BotServer:
    """`control`: indexing in this process (the schedule, App Home's re-index button)."""
    socket_mode = settings.slack_app_token is not None
    check_slack_settings(settings)
    metrics = Metrics(store.sessions, store.queued) if settings.metrics else None
    gate = SlackGate(
        client, SlackBudget(settings.slack_rate_share), patience_s=settings.slack_patience_s
    )
    responder = Responder(settings, store, answerer, gate, model_names(settings, answerer), metrics)
    pool = WorkerPool(store, responder, workers=settings.workers)
    home = HomeTab(
        settings, store.sessions, gate, control, model_names(settings, answerer, runs_on=True)
    )
    deps = BotDeps(settings, store, gate, pool.wake, home)
    app = build_app(deps)
    return BotServer(settings, app, pool, store, socket_mode, control, metrics, gate)
