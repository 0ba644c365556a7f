"""How much a reviewer's verdicts teach the matcher a new story, without retraining.

Usage: python benchmarks/claims_review.py
           [--claims tests/data/stories/door-plug/claims.yaml]
           [--data tests/data/stories/door-plug/eval.jsonl] [--budgets 25 50 100 0]

A new user writes claims as plain statements and starts reviewing flags. Each
verdict becomes a labelled example at once (``flags confirm`` / ``flags reject``:
the flag's evidence sentence, as a confirmed example of its claim with the right
stance, or as a near miss), and the next match compares new text with them.

The labelled passages are split by page into two halves (a hash of the page, so
the same split every run). The reviewer works through the first half in file
order: every flag the matcher raises there (with the examples reviewed so far)
is confirmed when the passage is labelled with that claim, with the labelled
stance, and rejected otherwise, up to a budget of verdicts (0: no limit). Misses
are never seen, as in the product. The other half is then matched with the
verdicts as the story's examples, and scored as `claims eval` scores. The
shipped model is never retrained; nothing is tuned on either half.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import replace
from pathlib import Path

from archiver.app.claimsfile import load_story
from archiver.claims.bank import Bank, Example, with_background
from archiver.claims.labelled import Labelled, evaluate, read_labelled
from archiver.claims.matcher import Matcher, match
from archiver.claims.model import load_model
from archiver.claims.rules import Claim
from archiver.claims.semantic import E5Embedder
from archiver.claims.training import statements_only

ROOT = Path(__file__).resolve().parent.parent
STORY = ROOT / "tests" / "data" / "stories" / "door-plug"


def half(group: str) -> int:
    return hashlib.sha256(group.encode("utf-8")).digest()[0] % 2


def review(
    rows: list[Labelled], claims: tuple[Claim, ...], matcher: Matcher, budget: int
) -> tuple[Example, ...]:
    """The verdicts a reviewer gives on the flags raised in ``rows``, in order."""
    examples: list[Example] = []
    current = replace(matcher, bank=Bank(()))
    for row in rows:
        for flag in match(row.text, claims, current):
            if budget and len(examples) >= budget:
                return tuple(examples)
            stance = row.labels.get(flag.claim)
            examples.append(
                Example(flag.claim if stance else None, stance, flag.evidence, row.group)
            )
        if current.bank is None or len(examples) > len(current.bank.examples):
            # a new bank only when verdicts were added: its probes are fitted again
            current = replace(matcher, bank=with_background(Bank(tuple(examples))))
    return tuple(examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=STORY / "claims.yaml")
    parser.add_argument("--data", type=Path, default=STORY / "eval.jsonl")
    parser.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 0])
    parser.add_argument(
        "--bare", action="store_true", help="The claims as statements only (no cues, terms)."
    )
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = read_labelled(args.data, story.claims)
    claims = tuple(statements_only(c) for c in story.claims) if args.bare else story.claims
    reviewed = [r for r in rows if half(r.group) == 0]
    measured = [r for r in rows if half(r.group) == 1]
    base = Matcher(embedder=E5Embedder(), model=load_model())
    print(
        f"{len(reviewed)} passages to review ({len({r.group for r in reviewed})} pages), "
        f"{len(measured)} measured ({len({r.group for r in measured})} pages)"
    )
    print("| verdicts | confirmed | rejected | precision | recall | F1 | stance |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    _line(measured, claims, base, ())
    for budget in args.budgets:
        examples = review(reviewed, claims, base, budget)
        taught = replace(base, bank=with_background(Bank(examples)))
        _line(measured, claims, taught, examples)


def _line(
    rows: list[Labelled], claims: tuple[Claim, ...], matcher: Matcher, examples: tuple[Example, ...]
) -> None:
    report = evaluate(rows, claims, matcher)
    o = report.overall.scores()
    confirmed = sum(1 for e in examples if e.claim)
    print(
        f"| {len(examples)} | {confirmed} | {len(examples) - confirmed} | {o['precision']:.3f} "
        f"| {o['recall']:.3f} | {o['f1']:.3f} | {report.stance_accuracy():.3f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
