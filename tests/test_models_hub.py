"""Whether the Hugging Face hub can be reached decides whether the default models are swapped
for the packaged one: the check must follow huggingface_hub's own settings (offline mode, the
endpoint and its port) and go through the proxy the environment names, as downloads do."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import subprocess_environment

ROOT = Path(__file__).resolve().parents[1]
PROBE = "from indexer.hardware import hub_reachable; print(hub_reachable(timeout_s=3))"


@pytest.fixture
def answering_server() -> Iterator[tuple[str, list[str]]]:
    """Any HTTP server: a hub mirror, or a proxy (it records the request lines it gets)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            seen.append(self.requestline)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def reachable(**env: str) -> bool:
    values = {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "NO_PROXY": "", **env}
    environment = subprocess_environment(**values)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if not values.get(name):
            environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip() == "True"


def test_offline_mode_means_unreachable(answering_server: tuple[str, list[str]]) -> None:
    mirror, _ = answering_server
    assert not reachable(HF_HUB_OFFLINE="1", HF_ENDPOINT=mirror)
    assert not reachable(TRANSFORMERS_OFFLINE="1", HF_ENDPOINT=mirror)


def test_the_endpoint_and_its_port_are_the_hubs_own_setting(
    answering_server: tuple[str, list[str]],
) -> None:
    mirror, seen = answering_server
    assert reachable(HF_ENDPOINT=mirror)  # not port 443: the port HF_ENDPOINT names
    assert seen
    assert not reachable(HF_ENDPOINT="http://127.0.0.1:1")


def test_the_check_goes_through_the_environments_proxy(
    answering_server: tuple[str, list[str]],
) -> None:
    proxy, seen = answering_server
    assert reachable(HF_ENDPOINT="http://hub.invalid", HTTP_PROXY=proxy, http_proxy=proxy)
    assert any("hub.invalid" in line for line in seen)  # asked of the proxy, by full URL
