"""Evaluate the claims matcher on the labelled development set.

Usage: python benchmarks/claims_eval.py [--claims seeds/claims.yaml]
           [--data tests/data/claims/dev.jsonl] [--semantic] [--errors]

For "bears on claim X" it prints precision, recall and F1 per claim and
overall (micro-averaged), by language too; stance accuracy is measured on the
passages where the matcher found a claim the label also has. --semantic adds
the multilingual embedding layer (needs the 'semantic' extra).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from archiver.claims import MatchOptions, match
from archiver.claimsfile import load_claims

ROOT = Path(__file__).resolve().parent.parent


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    parser.add_argument(
        "--data", type=Path, default=ROOT / "tests" / "data" / "claims" / "dev.jsonl"
    )
    parser.add_argument("--semantic", action="store_true")
    parser.add_argument("--errors", action="store_true", help="List every wrong decision.")
    args = parser.parse_args()
    claims = load_claims(args.claims)
    options = MatchOptions()
    if args.semantic:
        from archiver.semantic import E5Similarity

        options = MatchOptions(semantic=E5Similarity())
    rows = [
        json.loads(line)
        for line in args.data.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    counts: Counter[tuple[str, str]] = Counter()
    stance_ok = stance_all = 0
    t0 = time.perf_counter()
    for row in rows:
        flags = {f.claim: f for f in match(row["text"], claims, options)}
        labels: dict[str, str] = row["labels"]
        for c in claims:
            got, want = c.id in flags, c.id in labels
            kind = "tp" if got and want else "fp" if got else "fn" if want else "tn"
            for scope in (c.id, "all", f"lang:{row['lang']}"):
                counts[(scope, kind)] += 1
            if kind == "tp":
                stance_all += 1
                stance_ok += flags[c.id].stance == labels[c.id]
                if args.errors and flags[c.id].stance != labels[c.id]:
                    print(
                        f"STANCE {row['id']} {c.id}: want {labels[c.id]}, got {flags[c.id].stance}: {row['text']}"
                    )
            elif args.errors and kind in ("fp", "fn"):
                print(f"{kind.upper()} {row['id']} {c.id}: {row['text']}")
    elapsed = time.perf_counter() - t0
    print(
        f"{len(rows)} passages, {len(claims)} claims, matcher: {'lexical + semantic' if args.semantic else 'lexical'}"
    )
    print(f"{'claim':34} {'P':>5} {'R':>5} {'F1':>5}  tp fp fn")
    for scope in [c.id for c in claims] + ["lang:en", "lang:ar", "all"]:
        tp, fp, fn = (counts[(scope, k)] for k in ("tp", "fp", "fn"))
        p, r, f = f1(tp, fp, fn)
        print(f"{scope:34} {p:5.2f} {r:5.2f} {f:5.2f}  {tp:2} {fp:2} {fn:2}")
    print(f"stance accuracy: {stance_ok}/{stance_all} = {stance_ok / max(1, stance_all):.2f}")
    print(f"time: {elapsed:.2f} s ({1000 * elapsed / len(rows):.1f} ms per passage)")


if __name__ == "__main__":
    main()
