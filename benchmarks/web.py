"""The web view's server time on a store of 2,000 sources and 20,000 versions.

Usage: python benchmarks/web.py [--sources 2000] [--versions-each 10] [--repeat 20]

Builds the store through ``Store.add_version`` (SQLite), then requests each page
in-process through Starlette's test client (no network): the figure is the
median and worst time of ``--repeat`` requests, from request to full body.
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from starlette.testclient import TestClient

from archiver.app.worker import change_record
from archiver.text.diff import diff
from archiver.web import create_app
from benchmarks.store_size import revisions
from store.models import NewVersion, SourceSpec
from store.repo import Store
from tests.support.records import capture, schedule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--versions-each", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/web.db")
        store.migrate()
        revs = revisions(args.versions_each, 1)
        # The same revisions for every source: each change is computed once.
        records = [None] + [
            change_record(diff(revs[i - 1][0], revs[i][0])) for i in range(1, len(revs))
        ]
        t = time.perf_counter()
        for n in range(args.sources):
            spec = SourceSpec(url=f"http://example.org/{n}", label=f"s{n}")
            sid = store.add_source(spec, capture(0).started_at)
            previous = None
            for i, (text, raw) in enumerate(revs):
                version = store.add_version(
                    NewVersion(text=text, raw=raw),
                    capture(sid, i),
                    schedule(i),
                    (previous, revs[i - 1][0]) if previous else None,
                    records[i],
                )
                previous = version
        total = args.sources * args.versions_each
        print(f"stored {args.sources} sources, {total} versions in {time.perf_counter() - t:.0f} s")
        client = TestClient(create_app(store))
        pages = {
            "story": "/",
            "sources (page 1)": "/sources",
            "sources (page 40)": "/sources?page=40",
            "sources filtered": "/sources?q=s199",
            "source, two versions side by side": "/sources/1000?a=1&b=10",
            "changes": "/changes",
            "changes >= 0.5": "/changes?min=0.5",
            "flags": "/flags",
            "feed: every change": "/feeds/changes.atom",
            "api: sources": "/api/v1/sources",
        }
        print(f"{'page':36} {'median':>8} {'worst':>8} {'bytes':>8}")
        for name, path in pages.items():
            times, size = [], 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                r = client.get(path)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, (path, r.status_code)
                size = len(r.content)
            print(
                f"{name:36} {1000 * statistics.median(times):6.1f} ms "
                f"{1000 * max(times):6.1f} ms {size:8}"
            )
        store.close()


if __name__ == "__main__":
    main()
