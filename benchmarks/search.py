"""claimwatch search on an archive of N sources with 3 versions each (about 8 KB of
text a version; one source in a hundred said the phrase in its second version only).

Usage: python benchmarks/search.py [--sources 2000] [--db /tmp/search-bench.db]

Builds the SQLite store once (kept for the next run), then times the real command,
current texts and --history, in wall seconds with its peak RSS (/usr/bin/time).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from store.models import NewVersion, SourceSpec  # noqa: E402
from store.repo import Store  # noqa: E402
from tests.support import NOW  # noqa: E402
from tests.support.records import capture, schedule  # noqa: E402

WORDS = "meta llama model open weights licence spending billion researchers lab data".split()


def build(path: Path, sources: int) -> None:
    store = Store(f"sqlite:///{path}")
    store.migrate()
    rng = random.Random(1)
    for i in range(sources):
        sid = store.add_source(SourceSpec(url=f"http://127.0.0.1:9/{i}"), NOW)
        for n in range(3):
            lines = [" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(20)]
            if i % 100 == 0 and n == 1:
                lines.append("The threshold is 700 million users.")
            store.add_version(NewVersion("\n".join(lines), None), capture(sid, n), schedule(n))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/search-bench.db"))
    args = parser.parse_args()
    if not args.db.exists():
        build(args.db, args.sources)
    program = Path(sys.executable).parent / "claimwatch"
    for extra in ([], ["--history"]):
        command = [str(program), "--db", f"sqlite:///{args.db}", "search", "700 million", *extra]
        timed = subprocess.run(
            ["/usr/bin/time", "-f", "%e s, %M KB", *command], capture_output=True, text=True
        )
        found = sum(1 for line in timed.stdout.splitlines() if not line.startswith(" "))
        print(
            f"search{' --history' if extra else ''}: {found} sources, {timed.stderr.splitlines()[-1]}"
        )


if __name__ == "__main__":
    main()
