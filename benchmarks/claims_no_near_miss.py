"""A bank with no near misses: what a story's examples do when none of them is a
passage without a label (a claims file of labelled passages only, a new story's first
confirmed flags), and what the shipped background near misses change.

The training split's pages are cut in two by a hash of their URL. The first half's
passages are the bank, in several forms; the second half is scored, with the shipped
model and the seed story's claims. The held-out split is not read. Command (2 cores,
about three minutes)::

    .venv/bin/python benchmarks/claims_no_near_miss.py
"""

from __future__ import annotations

import argparse
import hashlib
import random
from pathlib import Path

from archiver.app.claimsfile import load_story
from archiver.claims.bank import Bank, Example, with_background
from archiver.claims.labelled import evaluate, read_labelled
from archiver.claims.matcher import Matcher
from archiver.claims.model import load_model
from archiver.claims.semantic import E5Embedder
from archiver.claims.training import bank_of

ROOT = Path(__file__).resolve().parent.parent


def half(url: str) -> int:
    return int(hashlib.sha256(url.encode("utf-8")).hexdigest(), 16) % 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    parser.add_argument("--data", type=Path, default=ROOT / "seeds" / "corpus" / "train.jsonl")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = read_labelled(args.data, story.claims)
    bank_rows = [r for r in rows if half(r.group) == 0]
    scored = [r for r in rows if half(r.group) == 1]
    everything = bank_of(bank_rows)
    positives = Bank(tuple(e for e in everything.examples if e.claim))
    misses = [e for e in everything.examples if e.claim is None]
    rng = random.Random(args.seed)
    banks: list[tuple[str, Bank]] = [
        ("every passage of the first half (with its near misses)", everything),
        ("its labelled passages only, as they were used before", positives),
        ("the same, with the background near misses (shipped)", with_background(positives)),
        *(
            (
                f"labelled passages and {k} of the half's near misses",
                _plus(positives, misses, k, rng),
            )
            for k in (1, 10)
        ),
        ("no bank at all", Bank(())),
    ]
    embedder, model = E5Embedder(), load_model()
    print(
        f"bank: {len(bank_rows)} passages ({len(misses)} without a label); "
        f"scored: {len(scored)} passages"
    )
    print("| bank | precision | recall | F1 | stance |")
    print("|---|---:|---:|---:|---:|")
    for name, bank in banks:
        report = evaluate(scored, story.claims, Matcher(embedder=embedder, model=model, bank=bank))
        d = report.to_dict()
        o = d["overall"]
        print(
            f"| {name} | {o['precision']:.3f} | {o['recall']:.3f} | {o['f1']:.3f} "
            f"| {d['stance_accuracy']:.3f} |"
        )


def _plus(bank: Bank, misses: list[Example], k: int, rng: random.Random) -> Bank:
    return Bank((*bank.examples, *rng.sample(misses, k)))


if __name__ == "__main__":
    main()
