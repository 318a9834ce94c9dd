"""Acks under attack: valid mentions posted while forged 5 MB bodies flood /slack/events.

`docsbot serve` runs as its own process (the remote-model path against the test fakes, so it
starts in seconds; acks do not touch a model). ATTACKERS threads post forged 5 MB bodies
(bad signatures) as fast as they can, while one thread posts a signed, valid mention every
INTERVAL seconds. Slack allows 3 seconds for an ack.

Printed: the ack latency of the valid mentions (p50, p99, max), how many forged requests were
refused and with which status, and whether every valid mention was answered. The last line is
one JSON object. Nothing asserts on time.

    .venv/bin/python bench/hostile_load.py [--attackers 4] [--seconds 20] [--mentions 40]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servelib import free_port, quantile, wait_healthy  # noqa: E402

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack, SlackSender, mention  # noqa: E402

DOCS = ROOT / "tests" / "fixtures" / "milvus-docs"
SECRET = "bench-secret"
FORGED_BYTES = 5 * 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=4, help="threads posting 5 MB forgeries")
    parser.add_argument("--mentions", type=int, default=40, help="valid mentions to time")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between mentions")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="docsbot-hostile-"))
    shutil.copytree(DOCS, work / "docs", ignore=shutil.ignore_patterns("LICENSE"))
    port = free_port()
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.chat_reply = "Here is what the docs say [1]."
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCSBOT_", "SLACK_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            HF_HUB_OFFLINE="1",
            DOCSBOT_SOURCES="docs=https://milvus.io/docs/{stem}.md",
            DOCSBOT_EMBEDDING_MODEL="hash-embedding",
            DOCSBOT_EMBEDDING_URL=f"{openai.url}/v1",
            DOCSBOT_RERANKER_MODEL="none",
            OPENAI_BASE_URL=f"{openai.url}/v1",
            OPENAI_API_KEY="bench",
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=SECRET,
            DOCSBOT_SLACK_API_URL=slack.api_url,
            DOCSBOT_PORT=str(port),
            DOCSBOT_INDEX_SCHEDULE="off",
            DOCSBOT_LOG_LEVEL="WARNING",
        )
        docsbot = [sys.executable, "-m", "bot.cli"]
        subprocess.run([*docsbot, "index"], cwd=work, env=env, check=True, capture_output=True)
        log = (work / "serve.log").open("w")
        serve = subprocess.Popen([*docsbot, "serve"], cwd=work, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}/slack/events"
        try:
            wait_healthy(port, serve, 120)
            stop = threading.Event()
            refused: collections.Counter[str] = collections.Counter()
            forged = b"x" * FORGED_BYTES
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            }

            def attack() -> None:
                with httpx.Client(timeout=60) as client:
                    while not stop.is_set():
                        try:
                            status = client.post(url, content=forged, headers=headers).status_code
                            refused[str(status)] += 1
                        except httpx.HTTPError as error:  # refused before the body was sent
                            refused[type(error).__name__] += 1

            attackers = [
                threading.Thread(target=attack, daemon=True) for _ in range(args.attackers)
            ]
            for thread in attackers:
                thread.start()
            time.sleep(1.0)  # the flood is on before the first valid mention
            sender = SlackSender(url, SECRET)
            acks: list[float] = []
            statuses: collections.Counter[int] = collections.Counter()
            for n in range(args.mentions):
                started = time.perf_counter()
                response = sender.event(
                    mention(
                        "How do I install Milvus on Windows?",
                        channel=f"C{n % 5}",
                        user="U1",
                        ts=f"1700000000.{n:06d}",
                    )
                )
                acks.append(time.perf_counter() - started)
                statuses[response.status_code] += 1
                time.sleep(args.interval)
            stop.set()
            for thread in attackers:
                thread.join(60)
            answered_by = time.monotonic() + 120
            while time.monotonic() < answered_by:
                answered = sum(1 for c in slack.calls_to("chat.update") if c.params.get("blocks"))
                if answered >= args.mentions:
                    break
                time.sleep(0.5)
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
            log.close()
    log_bytes = (work / "serve.log").stat().st_size
    shutil.rmtree(work, ignore_errors=True)

    figures = {
        "valid_mentions": args.mentions,
        "statuses": dict(statuses),
        "ack_p50_s": round(statistics.median(acks), 4),
        "ack_p99_s": round(quantile(acks, 0.99), 4),
        "ack_max_s": round(max(acks), 4),
        "acked_under_3s": sum(1 for a in acks if a < 3.0),
        "forged_requests": dict(refused),
        "attackers": args.attackers,
        "forged_mb": FORGED_BYTES / 1024 / 1024,
        "log_bytes": log_bytes,
    }
    print(
        f"{args.mentions} valid mentions while {args.attackers} threads posted forged "
        f"{figures['forged_mb']:.0f} MB bodies ({sum(refused.values())} of them: {dict(refused)})"
    )
    print(
        f"ack latency: p50 {figures['ack_p50_s'] * 1000:.0f} ms, "
        f"p99 {figures['ack_p99_s'] * 1000:.0f} ms, max {figures['ack_max_s'] * 1000:.0f} ms; "
        f"{figures['acked_under_3s']}/{args.mentions} under 3 s; serve's log: {log_bytes} bytes"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
