"""Shared by the benches that drive `docsbot serve` as its own process (slack_load,
hostile_load): a free port, waiting for /healthz, quantiles. No torch, unlike benchlib."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(port: int, serve: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until serve answers /healthz; SystemExit if it exits or takes longer than timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("serve did not start") from None
            time.sleep(0.3)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
