"""Does a bigger bank of examples help on the frozen held-out split?

Usage: python benchmarks/claims_heldout_curve.py [--fractions 0.25 0.5 0.75 1]
                                                  [--extra MORE.jsonl ...] [--model FILE]

``claims_learning_curve.py`` measures the learning curve by cross-validation on the
training split; this checks its forecast on the held-out split, which is only read
here, never tuned on. The model stays the same (the shipped one, or ``--model``,
a file written by ``claims train``); only the bank (the story's
labelled examples the matcher compares new text with, and the probes fitted from
them) changes: the training split's pages in ``training.page_folds`` order (seed 7),
cut to each fraction, then all of them plus each ``--extra`` file in turn. Every
line is ``claims eval`` on ``seeds/corpus/heldout.jsonl`` with that bank.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from archiver.app.claimsfile import load_story
from archiver.claims import labelled, training
from archiver.claims.matcher import Matcher
from archiver.claims.model import load_model
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    parser.add_argument("--heldout", type=Path, default=ROOT / "seeds/corpus/heldout.jsonl")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more examples")
    parser.add_argument("--model", help="a model file from claims train [default: shipped]")
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = story.labelled()
    heldout = labelled.read_labelled(args.heldout, story.claims)
    model, embedder = load_model(args.model), E5Embedder()
    settings = training.Settings()
    pages = list(training.page_folds([r.group for r in rows], settings.folds, settings.seed))
    banks = []
    for fraction in args.fractions:
        keep = set(pages[: round(len(pages) * fraction)])
        banks.append(
            (f"{fraction:.0%} of the training pages", [r for r in rows if r.group in keep])
        )
    more = list(rows)
    for path in args.extra:
        more += labelled.read_labelled(path, story.claims)
        banks.append((f"all + {path.name}", list(more)))
    print("| bank | examples | F1 (95% interval) | precision | recall | stance |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, examples in banks:
        start = time.perf_counter()
        matcher = Matcher(embedder=embedder, model=model, bank=training.bank_of(examples))
        report = labelled.evaluate(heldout, story.claims, matcher).to_dict()
        o, low_high = report["overall"], report["intervals"]["f1"]
        print(
            f"| {name} | {len(examples)} | {o['f1']:.3f} ({low_high[0]:.2f}-{low_high[1]:.2f}) "
            f"| {o['precision']:.3f} | {o['recall']:.3f} | {report['stance_accuracy']:.3f} |",
            flush=True,
        )
        print(f"<!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
