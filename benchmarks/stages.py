"""Where a full check's time goes, per page and per stage, in one process.

Usage: python benchmarks/stages.py [--pages 200] [--shape chrome|in-article]

Runs each stage of a first archive over the pages benchmarks/cycle.py serves
(no network: the fetch is measured by cycle.py against its raw floor) and
prints the mean milliseconds per page: decoding, trafilatura's parse, htmldate,
the page's metadata (claimwatch's fields, and trafilatura's whole set),
trafilatura's extraction, normalization, the fingerprint's locate and re-check,
the diff against the next revision, and the zstd compression of the raw page at
several levels (with the compressed size), as the store writes it.

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import trafilatura
from htmldate import find_date
from trafilatura.metadata import extract_metadata

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from archiver.app.worker import extract_text
from archiver.text.diff import diff
from archiver.text.extract import _CONFIG, ExtractOptions, decode, metadata
from archiver.text.fingerprint import locate, same_article
from archiver.text.normalize import normalize
from benchmarks.cycle import Site
from store import blobs


def compress_at(body: bytes, level: int) -> bytes:
    return blobs.compress(body, None, level)


def timed(
    label: str, items: list[Any], fn: Callable[[Any], Any], out: dict[str, float]
) -> list[Any]:
    started = time.process_time()
    results = [fn(x) for x in items]
    out[label] = 1000 * (time.process_time() - started) / len(items)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--shape", choices=["chrome", "in-article"], default="chrome")
    args = parser.parse_args()
    site = Site(args.pages, args.shape)
    bodies = [site.body(i) for i in range(args.pages)]
    for i in range(args.pages):
        site.revision[i] = 1
    edited = [site.body(i) for i in range(args.pages)]
    ms: dict[str, float] = {}
    texts = timed("decode", bodies, lambda b: decode(b, "utf-8")[0], ms)
    trees = timed("trafilatura.load_html", texts, trafilatura.load_html, ms)
    timed("htmldate.find_date", trees, lambda t: find_date(t, extensive_search=False), ms)
    timed("metadata (title, author, date, site name)", trees, metadata, ms)
    timed(
        "trafilatura.extract_metadata (as above, with categories, tags, licence)",
        trees,
        extract_metadata,
        ms,
    )
    timed(
        "trafilatura.bare_extraction (the text)",
        trees,
        lambda t: trafilatura.bare_extraction(t, with_metadata=False, config=_CONFIG),
        ms,
    )
    opts = ExtractOptions()
    whole = timed(
        "extract_text (all of the above + normalize)",
        bodies,
        lambda b: extract_text(b, "text/html", "utf-8", "http://t/", opts, ())[1],
        ms,
    )
    timed("normalize", whole, normalize, ms)
    hints = timed(
        "fingerprint.locate", list(zip(bodies, whole, strict=True)), lambda p: locate(*p), ms
    )
    timed(
        "fingerprint.same_article (a re-check)",
        list(zip(bodies, hints, strict=True)),
        lambda p: p[1] is not None and same_article(*p),
        ms,
    )
    new = [extract_text(b, "text/html", "utf-8", "http://t/", opts, ())[1] for b in edited]
    timed("diff (one edited paragraph)", list(zip(whole, new, strict=True)), lambda p: diff(*p), ms)
    timed("sha256 of the raw page", bodies, lambda b: hashlib.sha256(b).digest(), ms)
    sizes: dict[int, float] = {}
    for level in (3, 9, 15, 19):
        packed = timed(
            f"zstd level {level}, raw page",
            bodies,
            partial(compress_at, level=level),
            ms,
        )
        sizes[level] = sum(map(len, packed)) / sum(map(len, bodies))
    print(
        f"{args.pages} pages ({args.shape}), mean {sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB"
    )
    print("| stage | CPU ms per page |\n|---|---:|")
    for label, value in ms.items():
        extra = ""
        if label.startswith("zstd level"):
            extra = f" (ratio {sizes[int(label.split()[2].rstrip(','))]:.3f})"
        print(f"| {label}{extra} | {value:.2f} |")


if __name__ == "__main__":
    main()
