"""Compare claimwatch's extraction with default trafilatura on a folder of real pages,
for several MIN_EXTRACTED_SIZE values (the size below which trafilatura tries its
fallback extractors).

Usage: python benchmarks/extract_settings.py DIR [--sizes 50 100 150 250]

DIR holds .html files, for example trafilatura's evaluation pages (tests/eval in
its repository; nothing of them is kept in this project). For each setting it
counts the pages where claimwatch keeps under half of the text that
``trafilatura.extract(include_comments=False)`` keeps, the pages with no text,
and the CPU of claimwatch's extraction.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import time
from pathlib import Path

import trafilatura

from archiver.text import extract as ex
from store.errors import ExtractionError

SIZES = (50, 100, 150, 250)


def one(path: Path, sizes: tuple[int, ...]) -> tuple[str, int, dict[int, tuple[int, float]]] | None:
    body = path.read_bytes()
    if len(body) > ex.ExtractOptions().max_html_bytes:
        return None
    try:
        reference = trafilatura.extract(body, include_comments=False) or ""
    except Exception:  # the reference failing is not ours to count
        reference = ""
    found: dict[int, tuple[int, float]] = {}
    for size in sizes:
        ex._CONFIG.set("DEFAULT", "MIN_EXTRACTED_SIZE", str(size))
        t0 = time.process_time()
        try:
            got = ex.extract(body, "text/html", None, None).text
        except ExtractionError:
            got = ""
        found[size] = (len(got), time.process_time() - t0)
    return path.name, len(reference), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    pages = sorted(args.pages.glob("*.html"))
    sizes = tuple(args.sizes)
    with cf.ProcessPoolExecutor(2) as pool:
        results = [r for r in pool.map(one, pages, [sizes] * len(pages), chunksize=8) if r]
    print("| MIN_EXTRACTED_SIZE | under half of trafilatura's text | empty | CPU s |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        short = [n for n, ref, o in results if ref and o[size][0] < 0.5 * ref]
        empty = sum(1 for _, _, o in results if o[size][0] == 0)
        cpu = sum(o[size][1] for _, _, o in results)
        print(f"| {size} | {len(short)} of {len(results)} | {empty} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
