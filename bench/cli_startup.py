"""How long `docsbot --help` takes, median of 5 runs (the house rule: at most 1.5 s here).

.venv/bin/python bench/cli_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

DOCSBOT = Path(sys.executable).with_name("docsbot")


def main(runs: int = 5) -> None:
    for args in (["--help"], ["index", "--help"], ["manifest"]):
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([str(DOCSBOT), *args], capture_output=True, check=True)
            seconds.append(time.perf_counter() - started)
        print(
            f"docsbot {' '.join(args):14} median {statistics.median(seconds):.2f} s "
            f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {runs} runs)"
        )


if __name__ == "__main__":
    main()
