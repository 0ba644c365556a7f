"""CPU to read a PDF's text (``archiver.text.pdf.pdf_text``) at 10, 100 and 500 pages,
written by tests/support/pdfs.py (about 40 lines a page), and for any PDF files named.

Usage: python benchmarks/pdf_pages.py [--pages 10 100 500] [FILE.pdf ...]

Prints pages, paragraphs, CPU seconds and milliseconds a page. The check's own bound
is CheckOptions.max_cpu_seconds (TooSlow) and MAX_PAGES.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from archiver.text.pdf import pdf_text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.pdfs import pdf_document

WORDS = (
    "licence model weights distribute licensee products users month release notice terms "
    "attribution conditions licensor copy modify worldwide royalty agreement"
).split()


def document(pages: int) -> bytes:
    rng = random.Random(pages)
    paragraph = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 90))) + "."  # noqa: E731
    return pdf_document([[paragraph() for _ in range(8)] for _ in range(pages)], title="Bench")


def measure(name: str, body: bytes) -> str:
    start = time.process_time()
    read = pdf_text(body)
    cpu = time.process_time() - start
    paragraphs = read.text.count("\n") + 1
    return (
        f"{name:<40} {read.pages:>5} pages {paragraphs:>6} paragraphs "
        f"{cpu:>7.2f} s CPU {1000 * cpu / read.pages:>6.1f} ms/page"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="*", default=[10, 100, 500])
    parser.add_argument("files", type=Path, nargs="*")
    args = parser.parse_args()
    for n in args.pages:
        print(measure(f"generated, {n} pages", document(n)))
    for path in args.files:
        print(measure(path.name, path.read_bytes()))


if __name__ == "__main__":
    main()
