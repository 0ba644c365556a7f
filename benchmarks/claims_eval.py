"""Measure the claims matcher: quality on labelled passages, and its speed.

Usage: python benchmarks/claims_eval.py [--claims seeds/claims.yaml]
           [--data seeds/corpus/heldout.jsonl] [--model PATH] [--lexical]
           [--limit N] [--workers N]

Quality is what `claimwatch claims eval` reports (bears-on-claim precision,
recall and F1, micro-averaged over passage x claim pairs; stance accuracy on
the pairs both the label and the matcher have), printed per language too.
Speed is measured from a cold start, as a `claims match` run pays it: every
passage sentence is embedded once (the claims, cues and example bank are
embedded first and reported separately), and the figure given is sentences
matched per second of wall time, with the CPU time of this process and its
workers, the peak RSS of this process and (with workers) the peak of its RSS
plus theirs. As `claims match` does, passages are matched in one worker process
per core (``archiver.app.matching``; `--workers 0`: in
this process), and the time from the first passage to the last includes
starting them.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path
from resource import RUSAGE_CHILDREN, RUSAGE_SELF

import psutil

from archiver.app.claimsfile import load_story
from archiver.app.matching import Parallel, default_workers, match_stream
from archiver.claims.bank import with_background
from archiver.claims.labelled import read_labelled, tally
from archiver.claims.matcher import Matcher, match, write_spec
from archiver.claims.model import load_model
from archiver.text.segment import sentences

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    parser.add_argument("--data", type=Path, default=ROOT / "seeds" / "corpus" / "heldout.jsonl")
    parser.add_argument("--model", type=str, default=None)
    parser.add_argument("--lexical", action="store_true", help="The rule matcher only.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N passages.")
    parser.add_argument(
        "--workers", type=int, default=None, help="As `claims match --workers` [one per core]."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    story = load_story(args.claims)
    rows = read_labelled(args.data, story.claims)
    if args.limit:
        rows = rows[: args.limit]
    cpu0, t0 = time.process_time(), time.perf_counter()
    parallel = None
    if args.lexical:
        matcher = Matcher()
    else:
        from archiver.claims.semantic import E5Embedder

        embedder = E5Embedder()
        matcher = Matcher(
            embedder=embedder, model=load_model(args.model), bank=with_background(story.bank())
        )
        # Warm: the claims, their cues and the example bank, as a run does once.
        match("warm-up.", story.claims, matcher)
        workers = default_workers() if args.workers is None else args.workers
        if workers:  # as `claims match` does: the bank file its workers read
            spec = write_spec(
                with_background(story.bank()), story.claims, embedder, tmp / "bank.npz", args.model
            )
            parallel = Parallel(spec, workers)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    sampler = TreeMemory()
    sampler.start()
    found = match_stream(((r.id, r.text) for r in rows), story.claims, parallel or matcher)
    report = tally(rows, story.claims, (flags for _id, flags in found))
    wall = time.perf_counter() - t1
    sampler.stop()
    own, children = (resource.getrusage(who) for who in (RUSAGE_SELF, RUSAGE_CHILDREN))
    cpu = time.process_time() - cpu0 + children.ru_utime + children.ru_stime
    n_sentences = sum(len(sentences(r.text)) or 1 for r in rows)
    peak_mb = own.ru_maxrss / 1024
    how = (
        f"{parallel.workers} worker processes, their start included" if parallel else "this process"
    )
    d = report.to_dict()
    o = d["overall"]
    kind = "lexical rules" if args.lexical else "learned (e5 features + logistic model)"
    print(f"{args.data.name}: {d['passages']} passages, {len(story.claims)} claims, {kind}")
    print(
        f"bears on claim: precision {o['precision']:.2f}, recall {o['recall']:.2f}, "
        f"F1 {o['f1']:.2f}; stance accuracy {d['stance_accuracy']:.2f}"
    )
    ci = d["intervals"]
    if ci:
        print(
            f"95% intervals: F1 {ci['f1'][0]:.2f}-{ci['f1'][1]:.2f}, stance "
            f"{ci['stance_accuracy'][0]:.2f}-{ci['stance_accuracy'][1]:.2f} ({ci['method']})"
        )
    print(f"{'language':10} {'P':>5} {'R':>5} {'F1':>5}  tp  fp  fn")
    for lang, r in sorted(d["by_language"].items(), key=lambda kv: -(kv[1]["tp"] + kv[1]["fn"])):
        print(
            f"{lang:10} {r['precision']:5.2f} {r['recall']:5.2f} {r['f1']:5.2f} "
            f"{r['tp']:3} {r['fp']:3} {r['fn']:3}"
        )
    print(
        f"speed: {n_sentences} sentences in {wall:.1f} s = {n_sentences / wall:.1f} sentences/s "
        f"({d['passages'] / wall:.1f} passages/s) in {how}; set-up "
        f"{setup:.1f} s; CPU {cpu:.1f} s; peak RSS {peak_mb:.0f} MB"
        + (f", with its workers {sampler.peak_mb:.0f} MB" if parallel else "")
    )


class TreeMemory(threading.Thread):
    """The peak of this process's RSS plus its children's, sampled every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._done.wait(0.05):
            try:
                tree = [me, *me.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:  # a worker that ended between the two calls
                continue
            self.peak_mb = max(self.peak_mb, rss / 2**20)

    def stop(self) -> None:
        self._done.set()
        self.join()


if __name__ == "__main__":
    main()
