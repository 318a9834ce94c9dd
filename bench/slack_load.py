"""Load: a burst of Slack mentions against `docsbot serve`, while each answer takes ~1 s.

`docsbot serve` runs as its own process, configured through the environment only, on the
fixture docs indexed with the packaged all-MiniLM-L6-v2. Slack's Web API and OpenAI are the
test fakes on loopback; the fake model waits DELAY seconds before answering, standing in for
GPT-4o. N signed `app_mention` events are posted at once from N threads, then R of them again
with `X-Slack-Retry-Num` (Slack's retry after a slow ack).

The fake Slack keeps Slack's rate tiers (429 with Retry-After past them), so the run also
shows what the bot asks of Slack: the most calls of each method in any minute against its
tier, and how many 429s it met. `--storm S` rate-limits every chat.update for S seconds
(a 429 run): answers must still arrive, once each.

Printed: the ack latency of every request (p50, p99, max; Slack's limit is 3 s), how many
questions were answered, whether any was answered twice, and the Slack calls per method per
minute. The last line is one JSON object. Nothing asserts on time; the exit code is 1 only if
an answer is missing or doubled.

    .venv/bin/python bench/slack_load.py [--mentions 50] [--retries 10] [--delay 1.0]
        [--channels 10] [--storm 0]
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from servelib import free_port, quantile, wait_healthy  # noqa: E402

from bot.slack import blocks as kit  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack, SlackSender, action_ids, mention  # noqa: E402

DOCS = ROOT / "tests" / "fixtures" / "milvus-docs"
SECRET = "bench-secret"
QUESTIONS = [
    "How do I install Milvus on Windows?",
    "What is a partition key?",
    "Which index types does Milvus support?",
    "How do I load a collection?",
    "What is the maximum vector dimension?",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=50)
    parser.add_argument("--retries", type=int, default=10)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per LLM answer")
    parser.add_argument("--workers", type=int, default=8, help="DOCSBOT_WORKERS for serve")
    parser.add_argument("--channels", type=int, default=10, help="channels the mentions span")
    parser.add_argument("--storm", type=float, default=0.0, help="seconds of 429 on chat.update")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="docsbot-load-"))
    shutil.copytree(DOCS, work / "docs", ignore=shutil.ignore_patterns("LICENSE"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCSBOT_", "SLACK_"))}
    base.update(
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        DOCSBOT_SOURCES="docs=https://milvus.io/docs/{stem}.md",
        DOCSBOT_EMBEDDING_MODEL="sentence-transformers/all-MiniLM-L6-v2",
        DOCSBOT_RERANKER_MODEL="none",
    )
    docsbot = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*docsbot, "index"], cwd=work, env=base, check=True, capture_output=True)

    port = free_port()
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.chat_reply = "Here is what the docs say [1]."
        openai.delay_s = args.delay
        env = {
            **base,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "DOCSBOT_SLACK_API_URL": slack.api_url,
            "OPENAI_BASE_URL": f"{openai.url}/v1",
            "OPENAI_API_KEY": "bench",
            "DOCSBOT_PORT": str(port),
            "DOCSBOT_WORKERS": str(args.workers),
            "DOCSBOT_LOG_LEVEL": "WARNING",
        }
        serve = subprocess.Popen([*docsbot, "serve"], cwd=work, env=env)
        try:
            wait_healthy(port, serve, 180)
            url = f"http://127.0.0.1:{port}/slack/events"
            events = [
                (
                    f"EvLoad{i:04d}",
                    mention(
                        QUESTIONS[i % len(QUESTIONS)],
                        channel=f"C{i % args.channels}",
                        user=f"U{i}",
                        ts=f"1700000000.{i:06d}",
                    ),
                )
                for i in range(args.mentions)
            ]

            def post(item: tuple[str, dict[str, object], int | None]) -> tuple[int, float]:
                event_id, event, retry = item
                sender = SlackSender(url, SECRET)  # one connection per caller, as from Slack
                started = time.perf_counter()
                response = sender.event(event, event_id=event_id, retry=retry)
                return response.status_code, time.perf_counter() - started

            if args.storm:
                slack.fail("chat.update", status=429, retry_after=5, for_s=args.storm)
            burst = [(eid, ev, None) for eid, ev in events]
            burst += [(eid, ev, 1) for eid, ev in events[: args.retries]]
            started = time.perf_counter()
            with ThreadPoolExecutor(len(burst)) as pool:
                results = list(pool.map(post, burst))
            burst_s = time.perf_counter() - started

            def answers_now() -> list[list[dict[str, object]]]:
                """Answer messages as Slack holds them now (posted or updated in place)."""
                return [
                    m.blocks
                    for channel in list(slack.workspace.messages)
                    for m in slack.posted(channel)
                    if kit.FEEDBACK_UP in action_ids(m.blocks)
                ]

            deadline = time.monotonic() + 600
            while len(answers_now()) < args.mentions and time.monotonic() < deadline:
                time.sleep(0.5)
            answered_s = time.perf_counter() - started
            time.sleep(2 * args.delay)  # a doubled answer would arrive within this
            answers = [{"blocks": blocks} for blocks in answers_now()]
            methods = sorted({c.method for c in slack.calls} | {c.method for c in slack.refused})
            slack_calls = {
                method: {
                    "calls": len(slack.calls_to(method)),
                    "most_in_a_minute": slack.most_in_a_minute(method),
                    "http_429": len(slack.refusals(method, status=429)),
                }
                for method in methods
            }
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
    shutil.rmtree(work, ignore_errors=True)

    acks = [seconds for _, seconds in results]
    statuses = collections.Counter(status for status, _ in results)
    per_question = collections.Counter(a["blocks"][-1]["elements"][0]["value"] for a in answers)
    doubled = sum(1 for n in per_question.values() if n > 1)
    figures = {
        "requests": len(results),
        "statuses": dict(statuses),
        "ack_p50_s": round(statistics.median(acks), 4),
        "ack_p99_s": round(quantile(acks, 0.99), 4),
        "ack_max_s": round(max(acks), 4),
        "acked_under_3s": sum(1 for a in acks if a < 3.0),
        "burst_s": round(burst_s, 2),
        "answered": len(per_question),
        "answered_twice": doubled,
        "all_answered_s": round(answered_s, 1),
        "llm_delay_s": args.delay,
        "workers": args.workers,
        "channels": args.channels,
        "storm_s": args.storm,
        "slack": slack_calls,
    }
    print(
        f"{len(results)} requests ({args.mentions} mentions + {args.retries} retries) "
        f"posted at once; statuses {dict(statuses)}"
    )
    print(
        f"ack latency: p50 {figures['ack_p50_s'] * 1000:.0f} ms, "
        f"p99 {figures['ack_p99_s'] * 1000:.0f} ms, max {figures['ack_max_s'] * 1000:.0f} ms; "
        f"{figures['acked_under_3s']}/{len(results)} under 3 s"
    )
    print(
        f"answered {len(per_question)}/{args.mentions} in {answered_s:.1f} s "
        f"({args.workers} workers, {args.delay:.1f} s per LLM answer); "
        f"answered twice: {doubled}"
    )
    print("Slack calls: method, accepted, most in any minute, 429s")
    for method, seen in slack_calls.items():
        print(f"  {method:38} {seen['calls']:5} {seen['most_in_a_minute']:5} {seen['http_429']:5}")
    print(json.dumps(figures))
    return 0 if len(per_question) == args.mentions and not doubled else 1


if __name__ == "__main__":
    raise SystemExit(main())
