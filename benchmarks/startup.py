"""Start-up: ``claimwatch --version`` and ``sources add`` against ``python -c pass``.

Usage: python benchmarks/startup.py [--runs 8]

Issue 17's target is under 0.25 s for both commands, measured in one run against
``python -c pass`` (and ``import sqlalchemy``, the floor of any command that opens
the store). The commands run interleaved, so a busy moment slows each of them
alike, in a fresh temporary directory with an SQLite store made by ``init``. Each
``sources add`` adds a new URL. The wall time of each run is printed, sorted.

Each command runs once first, unmeasured, so the file cache is warm and Python has
written its bytecode caches, as it has on a user's machine after the first run
(PYTHONDONTWRITEBYTECODE is cleared for the benchmark's commands).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def commands(claimwatch: str) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import sqlalchemy"': [sys.executable, "-c", "import sqlalchemy"],
        "claimwatch --version": [claimwatch, "--version"],
        "claimwatch sources add URL": [claimwatch, "sources", "add"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    claimwatch = str(Path(sys.executable).with_name("claimwatch"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    table = commands(claimwatch)
    times: dict[str, list[float]] = {name: [] for name in table}
    with tempfile.TemporaryDirectory() as tmp:
        env["CLAIMWATCH_DB"] = f"sqlite:///{Path(tmp) / 'startup.db'}"

        def run(name: str, n: int) -> float:
            argv = table[name] + ([f"https://example.org/page-{n}"] if "add" in name else [])
            start = time.perf_counter()
            subprocess.run(argv, env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        init = [claimwatch, "init", "--no-seeds"]
        subprocess.run(init, env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        for name in table:  # warm the file cache and write the bytecode caches
            run(name, -1)
        for n in range(args.runs):
            for name in table:
                times[name].append(run(name, n))
    print(f"{args.runs} interleaved runs each, wall seconds, sorted\n")
    print("| command | seconds |\n|---|---|")
    for name, values in times.items():
        print(f"| `{name}` | {' '.join(f'{v:.2f}' for v in sorted(values))} |")


if __name__ == "__main__":
    main()
