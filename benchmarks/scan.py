"""``flags scan`` over an archive of N pages: how long meeting a new claim takes.

Usage: python benchmarks/scan.py [--pages 200] [--paragraphs 6] [--workers N]

Builds an SQLite store of N pages, each one version of ``--paragraphs`` paragraphs
taken in turn from the texts of ``seeds/corpus/extra.jsonl`` (real coverage in 17
languages; its labels are not read), with the seed story's claims and examples. Then
runs the real ``claimwatch flags scan`` in a subprocess, three times. The first, a dry
run, also embeds the claims and examples and fits the probes (kept in the store, as
``check`` keeps them). The second stores its flags and the pages' sentence vectors, as
a scan after a new claim does; the third, as a scan after the claims change again,
reads those vectors. Prints wall time, CPU seconds of the process tree, and
paragraphs per second.

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from archiver.app.claimsfile import load_story
from archiver.claims.rules import claim_to_dict
from store.models import NewVersion, SourceSpec
from store.repo import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.records import capture, schedule

ROOT = Path(__file__).resolve().parent.parent


def build(url: str, pages: int, paragraphs: int) -> int:
    """The store: N pages of real paragraphs, the seed story's claims and examples."""
    texts = [
        json.loads(line)["text"]
        for line in (ROOT / "seeds" / "corpus" / "extra.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    store = Store(url)
    store.migrate()
    story = load_story(ROOT / "seeds" / "claims.yaml")
    now = capture(0).started_at
    store.load_claims([claim_to_dict(c) for c in story.claims], now, story.summary)
    store.load_examples([(e.claim, e.stance, e.text) for e in story.bank().examples], now)
    n = 0
    for page in range(pages):
        sid = store.add_source(SourceSpec(url=f"http://127.0.0.1/p{page}.html"), now)
        body = "\n".join(texts[(n + i) % len(texts)] for i in range(paragraphs))
        n += paragraphs
        store.add_version(NewVersion(text=body, raw=None), capture(sid, page), schedule(page))
    store.close()
    return n


def run(url: str, workers: int | None, dry: bool) -> tuple[float, float, str]:
    """One ``flags scan``: wall seconds, CPU seconds of the tree, its last line."""
    env = {**os.environ, "CLAIMWATCH_DB": url}
    env.pop("CLAIMWATCH_SEMANTIC", None)
    argv = [sys.executable, "-m", "archiver.cli", "flags", "scan"] + (["--dry-run"] if dry else [])
    if workers is not None:
        argv += ["--workers", str(workers)]
    start = time.perf_counter()
    proc = psutil.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"flags scan failed: {err}")
    return wall, sum(cpu.values()), err.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--paragraphs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/scan.db"
        paragraphs = build(url, args.pages, args.paragraphs)
        print(f"{args.pages} pages, {paragraphs} paragraphs, {os.cpu_count()} cores")
        for name, dry in (
            ("dry run (embeds the story once)", True),
            ("scan (embeds the pages' sentences)", False),
            ("scan again (their vectors kept)", False),
        ):
            wall, cpu, said = run(url, args.workers, dry)
            print(
                f"{name:36} {wall:6.1f} s wall  {cpu:6.1f} s CPU  "
                f"{paragraphs / wall:5.1f} paragraphs/s   ({said})"
            )


if __name__ == "__main__":
    main()
