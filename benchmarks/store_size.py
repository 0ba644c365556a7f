"""Store 100 successive revisions of an article and compare the bytes with git.

Usage: python benchmarks/store_size.py [--revisions 100] [--seed 1]

Each revision makes a small edit (a changed word or figure, an inserted or
dropped sentence) to a ~9 KB article, wrapped in page chrome that also changes
(a timestamp, a view counter). The revisions go through claimwatch's real
store (``Store.add_version``) into SQLite; the text blobs' stored bytes are
summed. The same files are committed to a git repository and packed with
``git gc --aggressive``; we report the whole pack and the part of it that
holds the blobs (from ``git verify-pack``), the fairer comparison.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from store.models import CaptureRecord, NewVersion, SourceSpec, SourceUpdate
from store.repo import Store
from store.schema import blobs, versions

SENTENCES = [
    "Meta told investors it expects capital spending of between {a} and {b} billion dollars this year.",
    "Most of that money goes to data centres, custom chips and the power contracts that feed them.",
    "The company has released several generations of its Llama models with downloadable weights.",
    "Critics argue that the licence terms attached to those weights fall short of open source.",
    "A usage threshold in the licence requires the largest platforms to ask Meta for permission.",
    "Executives have said openness helps the company recruit researchers and set industry standards.",
    "Zuckerberg has also said the company would not release a model if doing so became irresponsible.",
    "The new lab, led by a former start-up chief executive, has been hiring from rival companies.",
    "Pay packages for some of those hires were reported to run into the hundreds of millions.",
    "Analysts on the last earnings call asked when the spending would show up in revenue.",
    "Advertising still provides nearly all of the company's income, as it has for a decade.",
    "Researchers have shown that safety training in open models can be removed cheaply.",
    "A military-linked team in China adapted an earlier Llama model for an intelligence tool.",
    "Meta said that use violated its acceptable use policy, which forbids military applications.",
    "Developers have built thousands of derivative models on top of the released weights.",
    "Some of those developers say they would switch to other open models if Meta stopped releasing.",
]


def article(rng: random.Random, paragraphs: int = 22) -> list[list[str]]:
    out = []
    for p in range(paragraphs):
        picks = rng.sample(SENTENCES, 4)
        out.append([s.format(a=60 + p, b=65 + p) for s in picks])
    return out


def edit(doc: list[list[str]], rng: random.Random, i: int) -> None:
    para = rng.choice(doc)
    kind = rng.choice(["word", "number", "insert", "drop"])
    j = rng.randrange(len(para))
    if kind == "word":
        words = para[j].split()
        words[rng.randrange(len(words))] = rng.choice(["reportedly", "about", "nearly", "roughly"])
        para[j] = " ".join(words)
    elif kind == "number":
        para[j] = para[j].replace("billion", f"billion (revised {i})", 1)
    elif kind == "insert":
        para.insert(j, f"Update {i}: the company confirmed the figure in a filing on day {i}.")
    elif len(para) > 2:
        para.pop(j)


def render(doc: list[list[str]], i: int) -> tuple[str, bytes]:
    text = "\n".join(" ".join(p) for p in doc)
    body = "".join(f"<p>{' '.join(p)}</p>\n" for p in doc)
    html = (
        "<!doctype html><html lang='en'><head><title>Meta's AI spending</title>"
        "<script src='/static/app.js'></script></head><body><nav><a href='/'>Home</a>"
        "<a href='/tech'>Tech</a></nav><div class='ad'>Advertisement</div>"
        f"<p class='stamp'>Last updated {i * 7} minutes ago - {1000 + i * 37} views</p>"
        f"<article><h1>Meta's AI spending</h1>\n{body}</article>"
        "<footer>All rights reserved.</footer></body></html>"
    )
    return text, html.encode()


def git_sizes(files: list[tuple[str, bytes]], workdir: Path) -> tuple[int, int, int, int]:
    repo = workdir / "git"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    for i, (text, raw) in enumerate(files):
        (repo / "article.txt").write_text(text, encoding="utf-8")
        (repo / "page.html").write_bytes(raw)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"revision {i}"], check=True)
    subprocess.run([*git, "gc", "-q", "--aggressive", "--prune=now"], check=True)
    [pack] = (repo / ".git" / "objects" / "pack").glob("*.pack")
    [idx] = (repo / ".git" / "objects" / "pack").glob("*.idx")
    listing = subprocess.run(
        ["git", "-C", str(repo), "verify-pack", "-v", str(idx)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sizes: dict[str, int] = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[3])  # size in the pack
    text_ids = _blob_ids(repo, "article.txt")
    raw_ids = _blob_ids(repo, "page.html")
    text_bytes = sum(sizes[x] for x in text_ids if x in sizes)
    raw_bytes = sum(sizes[x] for x in raw_ids if x in sizes)
    return pack.stat().st_size, sum(sizes.values()), text_bytes, raw_bytes


def _blob_ids(repo: Path, path: str) -> set[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=", "--raw", "--no-abbrev", "--", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = {line.split()[3] for line in out.splitlines() if line.startswith(":")}
    return ids


def revisions(n: int, seed: int) -> list[tuple[str, bytes]]:
    """n successive (text, page) pairs of one article, one small edit apart."""
    rng = random.Random(seed)
    doc, out = article(rng), []
    for i in range(n):
        if i:
            edit(doc, rng, i)
        out.append(render(doc, i))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    files = revisions(args.revisions, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = Store(f"sqlite:///{work / 'bench.db'}")
        store.migrate()
        now = datetime(2025, 7, 14, tzinfo=UTC)
        sid = store.add_source(SourceSpec(url="http://127.0.0.1/bench"), now)
        t0 = time.perf_counter()
        for i, (text, raw) in enumerate(files):
            at = now + timedelta(minutes=i)
            store.add_version(
                NewVersion(text=text, raw=raw),
                CaptureRecord(source_id=sid, started_at=at, duration_ms=0, outcome="new_version"),
                SourceUpdate(next_check_at=at, last_checked_at=at, consecutive_failures=0),
            )
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for v in store.versions(sid):
            assert store.read_text(v) == files[v.number - 1][0]
            assert store.read_raw(v) == files[v.number - 1][1]
        read_s = time.perf_counter() - t0
        with store.engine.connect() as conn:

            def stored(col):  # type: ignore[no-untyped-def]
                ids = select(col).where(versions.c.source_id == sid)
                return conn.execute(
                    select(func.sum(blobs.c.stored_size)).where(blobs.c.digest.in_(ids))
                ).scalar_one()

            text_store, raw_store = stored(versions.c.text_digest), stored(versions.c.raw_digest)
        store.close()
        pack, pack_blobs, git_text, git_raw = git_sizes(files, work)
    text_in = sum(len(t.encode()) for t, _ in files)
    raw_in = sum(len(r) for _, r in files)
    print(f"revisions: {args.revisions}  (seed {args.seed})")
    print(f"input bytes: text {text_in}, raw html {raw_in}")
    print(f"claimwatch store: text blobs {text_store} B, raw blobs {raw_store} B")
    print(
        f"git gc --aggressive: whole pack {pack} B, blobs in pack {pack_blobs} B "
        f"(text {git_text} B, html {git_raw} B)"
    )
    print(
        f"ratio text: {text_store / git_text:.2f}x git   raw html: {raw_store / git_raw:.2f}x git"
    )
    n = args.revisions
    print(
        f"bytes per version: text {text_store / n:.1f} (git {git_text / n:.1f}), "
        f"raw html {raw_store / n:.1f} (git {git_raw / n:.1f})"
    )
    print(
        f"store write {write_s * 1000:.0f} ms for {args.revisions} versions; "
        f"read-back of every version verified in {read_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
