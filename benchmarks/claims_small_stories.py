"""A new user's first story may have one claim, or two: how the matcher does then.

Usage: python benchmarks/claims_small_stories.py [--claims FILE] [--data FILE.jsonl]
           [--model PATH] [--seed 7] [--lang LANG] [--bank]

The claims of a story (default: the door plug story, which the model was never
trained or tuned on), reduced to their statements, are dealt into small stories:
every claim alone, then shuffled (``--seed``) into stories of two and of three
claims. Each small story is matched, with no examples, against every labelled
passage, as `claims eval` would with a claims file holding only those claims: a
passage labelled only with claims outside the story should raise no flag. F1 is
pooled over the stories of each size (micro-averaged over passage x claim pairs),
next to the whole story's. With ``--lang``, each claim keeps only its statement in
that language, as a user who writes in one language would give it. With
``--bank``, each story has examples: the claims file's labelled passages, with
their evidence of claims outside the story as near misses (``labelled_for``).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from pathlib import Path

from archiver.app.claimsfile import load_story
from archiver.claims.labelled import Counts, evaluate, read_labelled
from archiver.claims.matcher import Matcher
from archiver.claims.model import load_model
from archiver.claims.rules import Claim
from archiver.claims.semantic import E5Embedder
from archiver.claims.training import bank_of, in_language, labelled_for, statements_only

ROOT = Path(__file__).resolve().parent.parent
DOOR_PLUG = ROOT / "tests" / "data" / "stories" / "door-plug"


def deal(claims: list[Claim], size: int, seed: int) -> list[list[Claim]]:
    """The claims shuffled into stories of ``size`` (the last one may be smaller)."""
    order = list(claims)
    random.Random(seed).shuffle(order)
    return [order[n : n + size] for n in range(0, len(order), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=DOOR_PLUG / "claims.yaml")
    parser.add_argument("--data", type=Path, default=DOOR_PLUG / "eval.jsonl")
    parser.add_argument("--model", type=str, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lang", default=None, help="Keep only the statements in LANG.")
    parser.add_argument("--bank", action="store_true", help="Give each story its examples.")
    args = parser.parse_args()
    story = load_story(args.claims)
    claims = [statements_only(c) for c in story.claims]
    if args.lang:
        claims = [in_language(c, args.lang) for c in claims]
        if missing := [c.id for c in claims if not c.statements]:
            raise SystemExit(f"no statement in {args.lang!r}: {', '.join(missing)}")
    rows = read_labelled(args.data, story.claims)
    matcher = Matcher(embedder=E5Embedder(), model=load_model(args.model))
    stories = {
        "1 claim": [[c] for c in claims],
        "2 claims": deal(claims, 2, args.seed),
        "3 claims": deal(claims, 3, args.seed),
        f"all {len(claims)}": [claims],
    }
    language = f" in {args.lang} only" if args.lang else ""
    if args.bank and not story.examples:
        raise SystemExit(f"{args.claims} has no examples for --bank")
    print(
        f"{args.data.name}: {len(rows)} passages, {len(claims)} claims as statements"
        f"{language}, {'with their examples' if args.bank else 'no examples'}"
    )
    print(f"{'stories of':12} {'stories':>7} {'precision':>9} {'recall':>7} {'F1':>6}")
    for name, groups in stories.items():
        pooled = Counts()
        for group in groups:
            if args.bank:
                matcher = replace(matcher, bank=bank_of(labelled_for(story.labelled(), group)))
            counts = evaluate(rows, group, matcher).overall
            pooled.tp, pooled.fp, pooled.fn = (
                pooled.tp + counts.tp,
                pooled.fp + counts.fp,
                pooled.fn + counts.fn,
            )
        s = pooled.scores()
        print(f"{name:12} {len(groups):7} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f}")


if __name__ == "__main__":
    main()
