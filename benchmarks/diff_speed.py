"""Diff a 50 KB article against a revision with ~200 scattered word edits.

Usage: python benchmarks/diff_speed.py [--kb 50] [--edits 200] [--repeat 5]

Times claimwatch's diff (sentence alignment, word-level edits, significance)
against diff-match-patch's character diff of the same pair (with no time limit,
so both do the whole job), and prints the median of each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from diff_match_patch import diff_match_patch

from archiver.text.diff import DiffOptions, apply, diff

WORDS = (
    "meta llama model open weights licence investors billion spending data centres chips lab "
    "researchers hired company said would release closed frontier analysts quarter revenue "
    "advertising developers policy safety military tool critics source users platform growth"
).split()


def article(rng: random.Random, size: int) -> str:
    paragraphs, total = [], 0
    while total < size:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
            sentences.append(" ".join(words).capitalize() + ".")
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        total += len(paragraph) + 1
    return "\n".join(paragraphs)[:size]


def revise(text: str, rng: random.Random, edits: int) -> str:
    words = text.split(" ")
    plain = [i for i, w in enumerate(words) if w.isalpha() and w.islower()]  # inside sentences
    for i in rng.sample(plain, edits):
        words[i] = rng.choice(["reportedly", "nearly", "72", "not", "OpenAI", "quietly"])
    return " ".join(words)


def median_ms(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=50)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(42)
    old = article(rng, args.kb * 1024)
    new = revise(old, rng, args.edits)
    change = diff(old, new)
    assert apply(old, change) == new

    dmp = diff_match_patch()
    dmp.Diff_Timeout = 0
    ours = median_ms(lambda: diff(old, new, DiffOptions()), args.repeat)
    chars = median_ms(lambda: dmp.diff_main(old, new, False), max(1, min(args.repeat, 3)))
    s = change.stats
    print(f"text: {len(old.encode())} bytes, {s.words_old} words; {args.edits} word edits")
    print(
        f"units: {len(change.units)} (modified {s.sentences_modified}, added {s.sentences_added}, "
        f"removed {s.sentences_removed}); significance {change.significance:.2f}"
    )
    print(
        f"claimwatch diff (sentences + words + significance): {ours:.1f} ms (median of {args.repeat})"
    )
    print(f"diff-match-patch character diff, no timeout:        {chars:.1f} ms")
    print(f"speed-up: {chars / ours:.1f}x")


if __name__ == "__main__":
    main()
