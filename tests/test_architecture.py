"""The shape of the code (docs/architecture.md): what a light module may load, and how big a
module may grow. The import rules between rooms are import-linter's (`lint-imports`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_environment

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence_transformers", "pymilvus")
MAX_LINES = 400


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=subprocess_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import bot.slack.blocks",
        "import bot.slack.mrkdwn",
        "import bot.queue.store",
        "import bot.ops.stats",
        "import bot.ops.reports",
        # `docsbot --help`: the entry point, then click printing the help and exiting.
        "import sys\nfrom bot.cli.app import app\nsys.argv = ['docsbot', '--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass",
    ],
    ids=["blocks", "mrkdwn", "queue", "stats", "reports", "help"],
)
def test_light_modules_leave_the_ml_stack_and_milvus_unloaded(code: str) -> None:
    assert loaded_after(code).isdisjoint(HEAVY)


def test_every_module_stays_under_400_lines() -> None:
    sources = [p for folder in ("bot", "indexer", "config") for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 40
    long = {
        str(p.relative_to(ROOT)): n
        for p in sources
        if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
