"""``claimwatch demo``: the whole story, offline, in under a minute.

A replay server on 127.0.0.1 serves the timeline in ``seeds/demo/`` one step at
a time, with page chrome and noise. The real service code (``Service.dispatch``)
checks it under a simulated clock (no sleeping), into a fresh SQLite store, and
the digest preview is written beside it. Nothing here is demo-only logic but
the replay server and the summary.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader

from archiver import pipeline
from archiver.app.claimsfile import load_story
from archiver.app.seeds import load_seed_articles
from archiver.app.story import Seeds, import_seeds
from archiver.app.words import counted
from archiver.net.fetch import FetchOptions
from archiver.net.mailer import SmtpSettings
from archiver.text.direction import direction
from jobs import digest as digest_job
from jobs.service import Service, ServiceOptions
from store.errors import ConfigError
from store.kinds import kind_of
from store.models import SourceSpec
from store.repo import Store

_ENV = Environment(loader=PackageLoader("archiver", "templates"), autoescape=True)
_RELATED = [
    "Ten gadgets for the summer",
    "How to pick a laptop",
    "The week in markets",
    "Five books on AI",
    "A guide to home networking",
    "What to watch this weekend",
    "Phones compared",
    "Travel tips for July",
]


@dataclass
class Timeline:
    start: datetime
    step_hours: int
    steps: int
    pages: dict[str, dict[str, Any]]
    feed: dict[str, Any]
    watch: list[dict[str, Any]]

    def state(self, page: str, step: int) -> dict[str, Any] | None:
        """The page's content at ``step`` (None before it first appears)."""
        states = self.pages[page]["states"]
        listed = [s for s in sorted(states) if s <= step]
        return states[listed[-1]] if listed else None


def load_timeline(path: Path) -> Timeline:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        start = data["start"]
        if isinstance(start, str):
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        return Timeline(
            start,
            int(data["step_hours"]),
            int(data["steps"]),
            data["pages"],
            data["feed"],
            data["watch"],
        )
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"not a demo timeline: {exc}") from None


@dataclass
class Replay:
    """What the replay server shows: the timeline at the current step."""

    timeline: Timeline
    step: int = 0
    base: str = ""

    def page(self, path: str) -> tuple[int, str, str]:
        tl = self.timeline
        if path == tl.feed["path"]:
            entries = []
            for e in tl.feed["entries"]:
                state = tl.state(e["page"], self.step) if e["step"] <= self.step else None
                if state is not None:
                    when = tl.start + timedelta(hours=tl.step_hours * e["step"])
                    entries.append(
                        {
                            "title": state["title"],
                            "path": tl.pages[e["page"]]["path"],
                            "summary": e["summary"],
                            "date": format_datetime(when),
                        }
                    )
            body = _ENV.get_template("demo_feed.xml.j2").render(
                title=tl.feed["title"], base=self.base, entries=entries
            )
            return 200, "application/rss+xml; charset=utf-8", body
        for name, page in tl.pages.items():
            if page["path"] == path:
                state = tl.state(name, self.step)
                if state is None:
                    break
                n = self.step * 7 + len(path)  # the noise: different at every step and page
                html = _ENV.get_template("demo_page.html.j2").render(
                    lang=page.get("lang", "en"),
                    direction=direction(page.get("lang", "en")),
                    site=page["site"],
                    path=path,
                    title=state["title"],
                    paragraphs=state["paragraphs"],
                    author="Demo Desk",
                    published=tl.start.date().isoformat(),
                    minutes=3 + n % 50,
                    views=1200 + 37 * n,
                    build=f"{n:04x}",
                    ad=n % 9,
                    related=[_RELATED[(n + i) % len(_RELATED)] for i in range(4)],
                )
                return 200, "text/html; charset=utf-8", html
        return 404, "text/plain", "not found"


def _server(replay: Replay) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            status, ctype, body = (
                replay.page(path) if path != "/robots.txt" else (404, "text/plain", "")
            )
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@dataclass(frozen=True)
class DemoResult:
    store_url: str
    digest_files: tuple[Path, ...]
    versions: dict[str, int]  # source label -> versions archived
    changes: int
    reverts: int
    flags: dict[str, Counter[str]]  # claim -> stance counts ("removed": by an edit)
    sources: int


def run(directory: Path, seeds_dir: Path, say: Any = print, semantic: bool = False) -> DemoResult:
    """Play the timeline into a fresh store under ``directory``."""
    timeline = load_timeline(seeds_dir / "demo" / "timeline.yaml")
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "claimwatch.db"
    for old in directory.glob("claimwatch.db*"):
        old.unlink()
    store = Store(f"sqlite:///{db}")
    store.migrate()
    replay = Replay(timeline)
    server = _server(replay)
    replay.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clock = {"now": timeline.start}
    try:
        articles = [(a, a.version()) for a in load_seed_articles(seeds_dir)]
        story = load_story(seeds_dir / "claims.yaml")
        seeds = Seeds(articles, [], story.claims, story.bank().examples, story.summary)
        import_seeds(store, seeds, clock["now"])
        every = {"6h": 6 * 3600}
        for w in timeline.watch:
            page = timeline.pages[w["page"]]
            store.add_source(
                SourceSpec(
                    url=replay.base + page["path"],
                    kind=page["kind"],
                    label=w["label"],
                    interval_seconds=every.get(w["every"], 6 * 3600),
                ),
                clock["now"],
            )
        store.add_source(
            SourceSpec(
                url=replay.base + timeline.feed["path"],
                kind="feed",
                label="news-search",
                interval_seconds=6 * 3600,
                topic=timeline.feed["topic"],
            ),
            clock["now"],
        )
        service = Service(
            store,
            ServiceOptions(worker_id="demo", jitter=0, digest_cron=None),
            pipeline.CheckOptions(
                fetch=FetchOptions(
                    allow_private=True, host_delay=0, per_host=16, concurrency=16, max_attempts=1
                ),
                processes=0,
                semantic=semantic,
            ),
            clock=lambda: clock["now"],
        )
        for step in range(timeline.steps):
            replay.step = step
            clock["now"] = timeline.start + timedelta(hours=timeline.step_hours * step)
            results = service.dispatch()
            new = sum(r.outcome == "new_version" for r in results)
            when = f"{clock['now']:%Y-%m-%d %H:%M} UTC"
            say(
                f"step {step} ({when}): {counted(len(results), 'check')}, "
                f"{counted(new, 'new version')}"
            )
        digest = digest_job.run(
            store,
            SmtpSettings(recipients=("you@example.org",)),
            clock["now"],
            send_mail=False,
            out_dir=directory,
        )
    finally:
        server.shutdown()
        server.server_close()
    versions = {
        s.name: len(store.versions(s.id))
        for s in store.list_sources()
        if not kind_of(s.kind).entries
    }
    changes = store.changes()
    flags: dict[str, Counter[str]] = {}
    for f in store.flags():
        flags.setdefault(f.claim_id, Counter())["removed" if f.removed else f.stance] += 1
    result = DemoResult(
        store.url,
        digest.files,
        versions,
        sum(c.kind == "edit" for c in changes),
        sum(c.kind == "revert" for c in changes),
        flags,
        len(store.list_sources()),
    )
    store.close()
    return result
