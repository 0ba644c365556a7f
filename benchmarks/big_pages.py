"""CPU per stage for one large page and its revision: extraction, locate (the
fingerprint hint) and the diff, at 1, 3 and 5 MB.

Usage: python benchmarks/big_pages.py [--mb 1 3 5] [--every 1 50]

``--every N`` rewrites every Nth paragraph of the revision (1: the whole text
changed, the diff's worst case; 50: a few scattered rewrites). Prints CPU
seconds per stage. The limits that keep these linear are DiffOptions'
``pair_window``, ``align_cells`` and ``word_budget``; the check's own CPU bound is
CheckOptions.max_cpu_seconds (TooSlow).
"""

from __future__ import annotations

import argparse
import random
import time

from archiver.app.worker import extract_text
from archiver.text.diff import DiffOptions, diff
from archiver.text.extract import ExtractOptions
from archiver.text.fingerprint import locate

WORDS = (
    "meta llama model open weights licence spending billion researchers lab superintelligence "
    "data centre power investors quarter revenue growth analysts"
).split()


def paragraph(rng: random.Random, i: int) -> str:
    return f"Paragraph {i}: " + " ".join(rng.choice(WORDS) for _ in range(40)) + "."


def page(paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<html><head><title>Big</title></head><body><article>{body}</article></body></html>".encode()


def run(mb: float, every: int) -> str:
    rng = random.Random(1)
    paragraphs: list[str] = []
    while sum(len(p) + 7 for p in paragraphs) < mb * 1e6:
        paragraphs.append(paragraph(rng, len(paragraphs)))
    revised = [paragraph(rng, 10**6 + i) if i % every == 0 else p for i, p in enumerate(paragraphs)]
    old, new = page(paragraphs), page(revised)
    options = ExtractOptions(max_html_bytes=50_000_000)
    t0 = time.process_time()
    _, old_text = extract_text(old, "text/html", "utf-8", "http://bench/", options, ())
    t1 = time.process_time()
    _, new_text = extract_text(new, "text/html", "utf-8", "http://bench/", options, ())
    t2 = time.process_time()
    hint = locate(new, new_text)
    t3 = time.process_time()
    change = diff(old_text, new_text, DiffOptions())
    t4 = time.process_time()
    return (
        f"| {mb:g} MB | 1/{every} | {len(new):,} | {t1 - t0:.2f} | {t3 - t2:.2f} | "
        f"{t4 - t3:.2f} | {len(change.units):,} | {'yes' if hint else 'no'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[1, 3, 5])
    parser.add_argument("--every", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    print("| page | rewritten | HTML bytes | extract s | locate s | diff s | units | hint |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for mb in args.mb:
        for every in args.every:
            print(run(mb, every), flush=True)


if __name__ == "__main__":
    main()
