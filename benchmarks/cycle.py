"""One check cycle over N pages, against the floor of the same GETs.

Usage: python benchmarks/cycle.py [--pages 2000] [--cycles 3] [--edit 0.10]
                                  [--concurrency 32] [--seed 1] [--db sqlite|postgresql]
                                  [--claims seeds/claims.yaml [--no-semantic]]
                                  [--select CSS] [--shape chrome|in-article]

A loopback server (asyncio, HTTP/1.1 keep-alive) serves N generated news
pages with realistic chrome: navigation, a most-read box, scripts, a footer.
Every response carries volatile boilerplate (a clock and a live reader count
that change on every request), so no page is ever byte-identical twice. With
``--shape in-article`` the article element itself changes on every request too:
an "Updated N minutes ago" line under the headline, an inline ad between the
paragraphs and a "related" aside whose contents rotate, and a comment count in
the article's footer. Before
each cycle a fraction of the pages (``--edit``, default 10%) get a real edit
to their article text.

Cycle 0 archives every page; cycles 1..C are the steady state. Each cycle runs
the real ``claimwatch check --all --json`` in a subprocess and reports its wall
time, pages per second, CPU seconds (the process and its extraction workers),
peak RSS (the main process, and the whole process tree), the tree's peak PSS
(proportional set size: a page shared by n processes counts 1/n in each, so
the sum is what the tree really holds; RSS counts shared pages once per
process), versions created
(which must equal the true edits) and store growth. The raw floor is a minimal
async httpx loop, in its own process, making the same GETs at the same
concurrency; the server's own rate is measured by the same loop.

With ``--claims`` the store gets that story's claims and examples after cycle 0,
so every edit from cycle 1 on is matched as a real run matches it (the learned
matcher by default; with ``--no-semantic``, the rule matcher): the cost of
matching is the difference from a run without ``--claims``. Cycle 1 also embeds
the claims and examples once; cycle 2 on is the steady state. (Matching the
first version of every page as new coverage is measured separately: see
docs/benchmarks.md.) With ``--select`` every source watches those elements (e.g.
``article``) instead of the extracted article: the selector re-check path.

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from sqlalchemy import func, select, update

from archiver.app.claimsfile import load_story
from archiver.claims.rules import claim_to_dict
from store.repo import Store
from store.schema import blobs, sources, versions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.crash import bulk_sources, database

WORDS = (
    "Meta said its open model strategy would change as spending on data centres rose "
    "again this year while analysts questioned whether Llama could keep pace with rivals "
    "and regulators in Brussels asked how the licence treats developers building products "
    "on top of the weights the company released in April after months of internal debate"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(9, 22))]
    return " ".join(words).capitalize() + "."


def article(page: int, revision: int) -> str:
    """The article body of one page at one revision (deterministic)."""
    return "".join(article_parts(page, revision))


def article_parts(page: int, revision: int) -> list[str]:
    """The article's paragraphs at one revision, in three runs (for the in-article slots)."""
    rng = random.Random(page * 7919)
    paragraphs = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 4))) for _ in range(8)]
    if revision:
        edit = random.Random(page * 104729 + revision)
        k = edit.randrange(len(paragraphs))
        paragraphs[k] += f" Updated figures put the total at {revision * 7 + 3} billion dollars."
    html = [f"<p>{p}</p>\n" for p in paragraphs]
    return ["".join(html[:3]), "".join(html[3:6]), "".join(html[6:])]


ADS = [
    "Cloud storage for teams, now 20% off for the first year",
    "The standing desk that engineers keep recommending",
    "Learn to build with language models in six weeks, online and part time",
    "Fly to Lisbon from 89 euros this winter",
]
RELATED = [f"What the chip shortage means for story {i}" for i in range(40)]


def in_article(requests: int) -> tuple[bytes, bytes, bytes, bytes]:
    """The volatile parts inside the article element for one request: an updated line,
    an inline ad, a related aside and a comment count."""
    updated = f"<p class='dateline'>Updated {requests % 59 + 1} minutes ago</p>\n"
    ad = (
        f"<div class='ad-inline'><span>Advertisement</span> <a href='/ad/{requests % 97}'>"
        f"{ADS[requests % len(ADS)]}</a></div>\n"
    )
    links = "".join(
        f"<li><a href='/story/{(requests + i) % 40}'>{RELATED[(requests + i) % 40]}</a></li>"
        for i in range(3)
    )
    related = f"<aside class='related'><h3>Related</h3><ul>{links}</ul></aside>\n"
    foot = (
        f"<footer class='article-footer'><a href='#comments'>{requests % 400 + 3} comments"
        "</a></footer>\n"
    )
    return updated.encode(), ad.encode(), related.encode(), foot.encode()


CHROME_HEAD = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Story {page} | The "
    "Loopback Ledger</title><meta name='author' content='Rana Haddad'><meta property="
    "'article:published_time' content='2025-07-15T08:00:00Z'>{config}<link rel='stylesheet' "
    "href='/s.css'><script>window.dataLayer=[];var t={stamp};</script></head><body><header>"
    "<div class='clock'>{clock}</div><nav>{nav}</nav></header><div class='ad-slot'>"
    "Advertisement</div><main><article><h1>Story {page}: Meta and the cost of open models</h1>"
    "<p class='byline'>By Rana Haddad</p>\n"
)
CHROME_TAIL = (
    "</article></main><aside><h2>Most read</h2><ul>{most}</ul><p class='live'>{readers} "
    "people are reading this now</p></aside><footer><p>Loopback Ledger, all rights "
    "reserved.</p><nav>{nav}</nav></footer><script>trackView({stamp});</script></body></html>"
)
NAV = (
    "<ul class='menu'>"
    + "".join(
        f"<li class='menu-item'><a class='menu-link' href='/section/{i}'>Section {i}</a><ul>"
        + "".join(f"<li><a href='/section/{i}/{j}'>Topic {i}.{j}</a></li>" for j in range(6))
        + "</ul></li>"
        for i in range(24)
    )
    + "</ul>"
)
MOST = "".join(
    f"<li class='card'><a href='/story/{i}'><img src='/img/{i}.jpg' alt='' width='120' "
    f"height='80'><span class='kicker'>Markets</span><span class='headline'>A popular "
    f"story number {i} about chips, power and the price of training runs</span></a></li>"
    for i in range(20)
)
CONFIG = "<script>window.__CONFIG__=" + repr({f"k{i}": "x" * 40 for i in range(300)}) + "</script>"


class Site:
    """Page bytes: chrome with volatile parts around the article's current revision.

    The chrome is split once around its volatile slots, so serving a page is a join
    of a few byte strings: the server must not be what limits the rate.
    """

    def __init__(self, pages: int, shape: str = "chrome"):
        self.shape = shape
        self.revision = [0] * pages
        self.requests = 0
        self._cache: dict[int, tuple[int, bytes, list[bytes]]] = {}
        mark = "\x00"
        head = CHROME_HEAD.format(page=mark, stamp=mark, clock=mark, nav=NAV, config=CONFIG)
        tail = CHROME_TAIL.format(most=MOST, readers=mark, nav=NAV, stamp=mark)
        self._head = [part.encode() for part in head.split(mark)]
        self._tail = [part.encode() for part in tail.split(mark)]

    def body(self, page: int) -> bytes:
        self.requests += 1
        revision = self.revision[page]
        cached = self._cache.get(page)
        if cached is None or cached[0] != revision:
            parts = [part.encode() for part in article_parts(page, revision)]
            cached = (revision, str(page).encode(), parts)
            self._cache[page] = cached
        _, name, parts = cached
        if self.shape == "in-article":
            updated, ad, related, foot = in_article(self.requests)
            text = b"".join((updated, parts[0], ad, parts[1], related, parts[2], foot))
        else:
            text = b"".join(parts)
        stamp = str(self.requests).encode()
        clock = f"{time.time():.6f}".encode()
        h, t = self._head, self._tail
        readers = str(1000 + self.requests % 977).encode()
        return b"".join(
            (
                h[0],
                name,
                h[1],
                stamp,
                h[2],
                clock,
                h[3],
                name,
                h[4],
                text,
                t[0],
                readers,
                t[1],
                stamp,
                t[2],
            )
        )


async def _serve(site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path.startswith("/p"):
                body, status = site.body(int(path[2:])), b"200 OK"
            else:
                body, status = b"", b"404 Not Found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def start_server(site: Site) -> str:
    """Run the server on its own event loop thread; returns its base URL."""
    ready: dict[str, str] = {}
    event = threading.Event()

    def run() -> None:
        async def main() -> None:
            server = await asyncio.start_server(
                lambda r, w: _serve(site, r, w), "127.0.0.1", 0, backlog=1024
            )
            ready["url"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            event.set()
            await server.serve_forever()

        asyncio.run(main())

    threading.Thread(target=run, daemon=True).start()
    event.wait()
    return ready["url"]


FLOOR = """
import asyncio, sys, time, httpx
base, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    sem = asyncio.Semaphore(conc)
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(limits=limits) as client:
        async def one(i):
            async with sem:
                r = await client.get(f"{base}/p{i}")
                return len(r.content)
        t = time.perf_counter()
        sizes = await asyncio.gather(*(one(i) for i in range(n)))
        print(time.perf_counter() - t, sum(sizes))
asyncio.run(main())
"""


@dataclass
class Measured:
    wall: float
    cpu: float
    peak_main_mb: float
    peak_tree_mb: float
    peak_tree_pss_mb: float
    out: str
    main_cpu: float = 0.0  # the command's own process, without its workers


def measure(cmd: list[str], env: dict[str, str]) -> Measured:
    """Run a command; sample the RSS (and PSS) of it and its children every 20 ms."""
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    peak_main = peak_tree = peak_pss = 0
    main_cpu = 0.0
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    while proc.poll() is None:
        try:
            tree_ps = [ps, *ps.children(recursive=True)]
            full = [p.memory_full_info() for p in tree_ps]
            times = ps.cpu_times()
        except psutil.Error:
            continue
        main_cpu = times.user + times.system  # its last reading before it exits
        main, tree = full[0].rss, sum(m.rss for m in full)
        pss = sum(m.pss for m in full)
        peak_main, peak_tree = max(peak_main, main), max(peak_tree, tree)
        peak_pss = max(peak_pss, pss)
        time.sleep(0.02)
    reader.join()
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Measured(
        wall,
        cpu,
        peak_main / 2**20,
        peak_tree / 2**20,
        peak_pss / 2**20,
        b"".join(chunks).decode(),
        main_cpu,
    )


def store_bytes(url: str) -> int:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # count pages, not the log
        return path.stat().st_size
    store = Store(url)
    with store.engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
    store.close()
    return int(size)


def run(
    pages: int,
    cycles: int,
    edit: float,
    concurrency: int,
    seed: int,
    db: str,
    claims: Path | None = None,
    semantic: bool = True,
    selector: str | None = None,
    shape: str = "chrome",
) -> None:
    site = Site(pages, shape)
    base = start_server(site)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        if db == "sqlite":
            url = f"sqlite:///{tmp}/cycle.db"
            context = None
        else:
            context = database("postgresql", Path(tmp))
            url = context.__enter__()
        store = Store(url)
        store.migrate()
        now = datetime.now(UTC)
        urls = [f"{base}/p{i}" for i in range(pages)]
        bulk_sources(store, urls, "article", [3600] * pages, now)
        if selector:
            with store.engine.begin() as conn:
                options = {"ignore": [], "robots": True, "select": selector, "exclude": []}
                conn.execute(update(sources).values(options=options))
        config = Path(tmp) / "claimwatch.toml"
        config.write_text(
            f"[service]\nconcurrency = {concurrency}\nper_host = {concurrency}\nhost_delay = 0\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "CLAIMWATCH_DB": url,
            "CLAIMWATCH_CONFIG": str(config),
            "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "1",
            "CLAIMWATCH_SEMANTIC": "1" if semantic else "0",
        }
        env.pop("CLAIMWATCH_SEEDS", None)
        floor_cmd = [sys.executable, "-c", FLOOR, base, str(pages), str(concurrency)]
        matching = (
            "no claims"
            if claims is None
            else f"claims {claims.name}, " + ("learned matcher" if semantic else "rule matcher")
        )
        print(
            f"{pages} pages ({shape} volatility), {concurrency} at once, {os.cpu_count()} "
            f"cores, {db}, {matching}"
        )
        for cycle in range(cycles + 1):
            if claims is not None and cycle == 1:
                # After the first archive: cycle 1 pays for embedding the claims and the
                # examples once (then kept in the store); later cycles show the steady state.
                story = load_story(claims)
                store.load_claims([claim_to_dict(c) for c in story.claims], now)
                examples = [(e.claim, e.stance, e.text) for e in story.bank().examples]
                store.load_examples(examples, now)
            edited = rng.sample(range(pages), int(pages * edit)) if cycle else []
            for i in edited:
                site.revision[i] += 1
            with store.engine.connect() as conn:
                v0 = conn.execute(select(func.count()).select_from(versions)).scalar_one()
            size0 = store_bytes(url)
            cmd = [sys.executable, "-m", "archiver.cli", "check", "--all", "--json"]
            if os.environ.get("CYCLE_PROFILE") and cycle == cycles:  # the last cycle, profiled
                cmd[1:1] = ["-m", "cProfile", "-o", os.environ["CYCLE_PROFILE"]]
            m = measure(cmd, env)
            with store.engine.connect() as conn:
                v1 = conn.execute(select(func.count()).select_from(versions)).scalar_one()
                blob_bytes = conn.execute(select(func.sum(blobs.c.stored_size))).scalar_one()
            outcomes: dict[str, int] = {}
            for line in m.out.splitlines():
                o = json.loads(line)["outcome"]
                outcomes[o] = outcomes.get(o, 0) + 1
            floor = measure(floor_cmd, env)
            floor_wall = float(floor.out.split()[0])
            expected = pages if cycle == 0 else len(edited)
            print(
                f"cycle {cycle}: {m.wall:.2f} s wall, {pages / m.wall:.0f} pages/s, "
                f"cpu {m.cpu:.1f} s ({m.main_cpu:.1f} s main), peak RSS {m.peak_main_mb:.0f} MB main / "
                f"{m.peak_tree_mb:.0f} MB with workers (PSS {m.peak_tree_pss_mb:.0f} MB), "
                f"versions {v1 - v0} "
                f"(true edits {expected}), store +{(store_bytes(url) - size0) / 1024:.0f} KiB "
                f"(blobs {int(blob_bytes or 0) / 1024:.0f} KiB total); outcomes {outcomes}; "
                f"raw floor {floor_wall:.2f} s = {pages / floor_wall:.0f} pages/s "
                f"-> {100 * floor_wall / m.wall:.0f}% of the floor"
            )
        store.close()
        if context is not None:
            context.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--edit", type=float, default=0.10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--claims", type=Path, default=None, help="Match against this story.")
    parser.add_argument("--no-semantic", action="store_true", help="The rule matcher only.")
    parser.add_argument("--select", default=None, help="A CSS selector for every source.")
    parser.add_argument(
        "--shape",
        choices=["chrome", "in-article"],
        default="chrome",
        help="Where pages change on every request: the chrome only, or inside the article too.",
    )
    args = parser.parse_args()
    run(
        args.pages,
        args.cycles,
        args.edit,
        args.concurrency,
        args.seed,
        args.db,
        args.claims,
        not args.no_semantic,
        args.select,
        args.shape,
    )


if __name__ == "__main__":
    main()
