"""``history`` and ``diff`` on a source with 1,000 versions.

Usage: python benchmarks/history_speed.py [--versions 1000] [--repeat 5]

Stores N revisions of an article (a small edit each, raw HTML kept) through
``Store.add_version`` in SQLite, then times, as a user runs them:

* ``claimwatch history SOURCE`` and ``claimwatch diff SOURCE`` (the last two
  versions) and ``claimwatch diff SOURCE 1 N`` (the far ends), whole commands
  in a subprocess, best of ``--repeat``;
* ``claimwatch --version``, the interpreter and import cost every command pays;
* the same work in-process (the command's own time, without start-up).

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from archiver.cli import cli
from store.models import NewVersion, SourceSpec
from store.repo import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.store_size import revisions
from tests.support.records import capture, schedule


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/history.db"
        store = Store(url)
        store.migrate()
        sid = store.add_source(
            SourceSpec(url="http://127.0.0.1/long", label="long"), capture(0).started_at
        )
        t = time.perf_counter()
        for i, (text, raw) in enumerate(revisions(args.versions, 1)):
            store.add_version(NewVersion(text=text, raw=raw), capture(sid, i), schedule(i))
        print(f"stored {args.versions} versions in {time.perf_counter() - t:.1f} s")
        store.close()
        env = {**os.environ, "CLAIMWATCH_DB": url, "NO_COLOR": "1"}
        n = str(args.versions)
        commands = {
            "claimwatch --version": ["--version"],
            "claimwatch history long": ["history", "long"],
            "claimwatch diff long (last two)": ["diff", "long"],
            f"claimwatch diff long 1 {n}": ["diff", "long", "1", n],
        }
        runner = CliRunner()
        print(f"{'command':34} {'whole command':>14} {'in-process':>11}")
        for name, argv in commands.items():
            whole = best(
                lambda argv=argv: subprocess.run(
                    [sys.executable, "-m", "archiver.cli", *argv],
                    env=env,
                    check=True,
                    capture_output=True,
                ),
                args.repeat,
            )
            inner = best(
                lambda argv=argv: runner.invoke(cli, ["--db", url, *argv], catch_exceptions=False),
                args.repeat,
            )
            print(f"{name:34} {whole * 1000:11.0f} ms {inner * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
