"""The diff engine: two texts in, a ``Change`` (plain data) out.

Sentences are aligned with diff-match-patch over sentence tokens (each
distinct sentence encoded as one character, the linesToChars technique); a
deleted run next to an inserted run is paired sentence by sentence into
``modified`` units when they share most words, and each pair gets a
word-level diff with semantic cleanup. A sentence removed in one place and
added unchanged in another is one ``moved`` unit.

``diff(a, b)`` does not depend on direction: the pair is aligned in a
canonical order, mirrored when needed, then scored in the asked direction, so
``diff(b, a)`` lists the same words as ``diff(a, b)``, mirrored.
``apply(a, diff(a, b)) == b`` for every pair.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from diff_match_patch import diff_match_patch

from archiver.text.segment import Sentence, sentences, tokens, words
from archiver.text.significance import score_change, score_unit

Op = Literal["equal", "insert", "delete"]
Kind = Literal["added", "removed", "modified", "moved"]
_OPS: dict[int, Op] = {0: "equal", 1: "insert", -1: "delete"}
_MIRROR_OP: dict[Op, Op] = {"equal": "equal", "insert": "delete", "delete": "insert"}
_MIRROR_KIND: dict[Kind, Kind] = {
    "added": "removed",
    "removed": "added",
    "modified": "modified",
    "moved": "moved",
}


@dataclass(frozen=True)
class DiffOptions:
    # diff-match-patch's Diff_Timeout for aligning sentences, seconds (0: no limit). It only
    # ever binds on pathological input, where a less minimal (still correct) diff is fine.
    timeout: float = 5.0
    pair_threshold: float = 0.5  # share of words two sentences need in common to be "modified"
    # Deterministic bounds on the rest (work counted, not time, so results never vary):
    pair_window: int = 32  # inserted sentences a deleted one is compared with, at most
    # Sentences between two anchors aligned by diff-match-patch, at most (old x new); a
    # larger stretch with nothing in common is all removed and all added, then paired.
    align_cells: int = 250_000
    word_budget: int = 100_000  # characters of modified sentences diffed word by word; past
    # it, a modified sentence's edit is the whole old sentence out, the whole new one in


@dataclass(frozen=True)
class Edit:
    op: Op
    text: str


@dataclass(frozen=True)
class Unit:
    kind: Kind
    old: str | None  # exact old sentence span (None for added)
    new: str | None  # exact new sentence span (None for removed)
    old_at: int | None  # 0-based sentence index in the old text
    new_at: int | None  # 0-based sentence index in the new text
    old_pos: tuple[int, int] | None  # (paragraph, sentence), 1-based
    new_pos: tuple[int, int] | None
    old_anchor: int  # where the unit sits in the old text: old_at, or the insertion point
    new_anchor: int  # where the unit sits in the new text: new_at, or the removal point
    edits: tuple[Edit, ...] = ()  # word-level edits of a modified unit
    significance: float = 0.0
    reasons: tuple[str, ...] = ()

    @property
    def layout_only(self) -> bool:
        """Only whitespace differs: a sentence was appended after this one, a blank
        line came or went, spaces were doubled.

        Such units are kept so that ``apply`` stays exact, but they are not
        counted, scored or shown as changes.
        """
        return self.kind != "moved" and (self.old or "").split() == (self.new or "").split()


@dataclass(frozen=True)
class Stats:
    sentences_added: int = 0
    sentences_removed: int = 0
    sentences_modified: int = 0
    sentences_moved: int = 0
    words_added: int = 0
    words_removed: int = 0
    words_old: int = 0
    words_new: int = 0

    @property
    def share_changed(self) -> float:
        return min(
            1.0, (self.words_added + self.words_removed) / max(1, self.words_old + self.words_new)
        )


@dataclass(frozen=True)
class Change:
    units: tuple[Unit, ...]
    stats: Stats
    significance: float = 0.0
    reasons: tuple[str, ...] = ()
    old_title: str | None = None
    new_title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        s = self.stats
        parts = [
            f"{n} {what}"
            for n, what in (
                (s.sentences_added, "added"),
                (s.sentences_removed, "removed"),
                (s.sentences_modified, "modified"),
                (s.sentences_moved, "moved"),
            )
            if n
        ]
        head = "headline changed; " if self.old_title != self.new_title else ""
        return head + ("sentences " + ", ".join(parts) if parts else "no text change")


def diff(
    old: str,
    new: str,
    options: DiffOptions | None = None,
    old_title: str | None = None,
    new_title: str | None = None,
) -> Change:
    """The change from ``old`` to ``new``, with significance scored."""
    options = options or DiffOptions()
    budget = [options.word_budget]
    if (old, old_title or "") > (new, new_title or ""):
        units = [_mirror_unit(u) for u in _align(sentences(new), sentences(old), options, budget)]
    else:
        units = _align(sentences(old), sentences(new), options, budget)
    units = sorted(_moves(units), key=_order)
    return _scored_change(units, _stats(units, old, new), old_title, new_title)


def _scored_change(
    units: list[Unit], stats: Stats, old_title: str | None, new_title: str | None
) -> Change:
    scored = []
    for u in units:
        unit_score, unit_reasons = score_unit(u)
        scored.append(replace(u, significance=unit_score, reasons=unit_reasons))
    significance, reasons = score_change(scored, stats.share_changed, old_title, new_title)
    return Change(tuple(scored), stats, significance, tuple(reasons), old_title, new_title)


def _mirror_unit(u: Unit) -> Unit:
    return replace(
        u,
        kind=_MIRROR_KIND[u.kind],
        old=u.new,
        new=u.old,
        old_at=u.new_at,
        new_at=u.old_at,
        old_pos=u.new_pos,
        new_pos=u.old_pos,
        old_anchor=u.new_anchor,
        new_anchor=u.old_anchor,
        edits=tuple(Edit(_MIRROR_OP[e.op], e.text) for e in u.edits),
    )


def apply(old: str, change: Change) -> str:
    """Rebuild the new text from the old text and the change."""
    a = sentences(old)
    taken = {u.old_at for u in change.units if u.old_at is not None}
    placed = {u.new_at: u.new for u in change.units if u.new_at is not None and u.new is not None}
    kept = iter(s.text for s in a if s.index not in taken)
    total = len(a) - len(taken) + len(placed)
    return "".join(placed[i] if i in placed else next(kept) for i in range(total))


# -- alignment ------------------------------------------------------------------


def _encode(*seqs: Sequence[str]) -> tuple[list[str], Callable[[str], list[str]]]:
    """linesToChars for any tokens: each distinct token becomes one character."""
    table: dict[str, str] = {}
    back: list[str] = []
    encoded = []
    for seq in seqs:
        chars = []
        for tok in seq:
            ch = table.get(tok)
            if ch is None:
                ch = chr(0x100 + len(back))
                table[tok] = ch
                back.append(tok)
            chars.append(ch)
        encoded.append("".join(chars))
    return encoded, lambda s: [back[ord(c) - 0x100] for c in s]


def _dmp(options: DiffOptions) -> diff_match_patch:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = options.timeout
    return dmp


def _anchored_ops(ea: str, eb: str, dmp: diff_match_patch, cells: int) -> list[tuple[int, str]]:
    """diff-match-patch between anchors: tokens that occur once in each string,
    in the longest order-preserving chain (as patience diff does). Scattered
    edits become many tiny diffs instead of one large bisection."""
    count_a, count_b = Counter(ea), Counter(eb)
    where_b = {ch: j for j, ch in enumerate(eb) if count_b[ch] == 1}
    pairs = [(i, where_b[ch]) for i, ch in enumerate(ea) if count_a[ch] == 1 and ch in where_b]
    ops: list[tuple[int, str]] = []
    pi = pj = 0
    for i, j in _longest_chain(pairs):
        if i > pi or j > pj:
            ops += _between(ea[pi:i], eb[pj:j], dmp, cells)
        ops.append((0, ea[i]))
        pi, pj = i + 1, j + 1
    if pi < len(ea) or pj < len(eb):
        ops += _between(ea[pi:], eb[pj:], dmp, cells)
    return ops


def _between(a: str, b: str, dmp: diff_match_patch, cells: int) -> list[tuple[int, str]]:
    """The diff of a stretch between anchors: diff-match-patch if the stretch is small
    enough (its bisection is O(n*d) in pure Python), else its common ends kept and the
    rest removed and added."""
    if len(a) * len(b) <= cells:
        return list(dmp.diff_main(a, b, False))
    head = dmp.diff_commonPrefix(a, b)
    tail = dmp.diff_commonSuffix(a[head:], b[head:])
    ops = [(0, a[:head])] if head else []
    ops += [(-1, a[head : len(a) - tail]), (1, b[head : len(b) - tail])]
    ops += [(0, a[len(a) - tail :])] if tail else []
    return [(op, text) for op, text in ops if text]


def _longest_chain(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of ``pairs`` (sorted by i) whose j also increases."""
    tails: list[int] = []  # tails[k]: index in pairs of the smallest j ending a chain of k+1
    tail_js: list[int] = []  # the j of each tail, for bisection
    back: list[int] = []
    for n, (_i, j) in enumerate(pairs):
        k = bisect_left(tail_js, j)
        back.append(tails[k - 1] if k else -1)
        if k == len(tails):
            tails.append(n)
            tail_js.append(j)
        else:
            tails[k] = n
            tail_js[k] = j
    chain, n = [], tails[-1] if tails else -1
    while n != -1:
        chain.append(pairs[n])
        n = back[n]
    return chain[::-1]


def _align(
    a: list[Sentence], b: list[Sentence], options: DiffOptions, budget: list[int]
) -> list[Unit]:
    (ea, eb), _ = _encode([s.text for s in a], [s.text for s in b])
    ops = _anchored_ops(ea, eb, _dmp(options), options.align_cells)
    units: list[Unit] = []
    i = j = 0
    deleted: list[Sentence] = []
    inserted: list[Sentence] = []

    def flush() -> None:
        units.extend(_pair(deleted, inserted, i, j, options, budget))
        deleted.clear()
        inserted.clear()

    for op, chunk in ops:
        n = len(chunk)
        if op == 0:
            flush()
            i += n
            j += n
        elif op == -1:
            deleted.extend(a[i : i + n])
            i += n
        else:
            inserted.extend(b[j : j + n])
            j += n
    flush()
    return units


def _pair(
    dels: list[Sentence],
    ins: list[Sentence],
    old_end: int,
    new_end: int,
    options: DiffOptions,
    budget: list[int],
) -> list[Unit]:
    """Pair a deleted run with the inserted run beside it, in order, each deleted
    sentence looking at most ``pair_window`` inserted ones ahead (linear, not dels x ins)."""
    units: list[Unit] = []
    k = 0  # next unpaired inserted sentence
    for d in dels:
        match = next(
            (
                m
                for m in range(k, min(len(ins), k + options.pair_window))
                if _similar(d.text, ins[m].text) >= options.pair_threshold
            ),
            None,
        )
        if match is None:
            units.append(_removed(d, ins[k].index if k < len(ins) else new_end))
            continue
        units.extend(_added(s, d.index) for s in ins[k:match])
        units.append(_modified(d, ins[match], options, budget))
        k = match + 1
    units.extend(_added(s, old_end) for s in ins[k:])
    return units


def _similar(x: str, y: str) -> float:
    wx, wy = Counter(w.lower() for w in words(x)), Counter(w.lower() for w in words(y))
    total = sum(wx.values()) + sum(wy.values())
    if total == 0:  # punctuation or whitespace only on both sides
        return 1.0
    return 2 * sum((wx & wy).values()) / total


def _word_edits(old: str, new: str, options: DiffOptions, budget: list[int]) -> tuple[Edit, ...]:
    """Word-level edits of a sentence pair; trailing whitespace is an edit of its own.
    Once the diff's ``word_budget`` is spent, the whole sentence is one replacement."""
    budget[0] -= len(old) + len(new)
    if budget[0] < 0:
        return tuple(e for e in (Edit("delete", old), Edit("insert", new)) if e.text)
    old_core, new_core = old.rstrip(), new.rstrip()
    (eo, en), decode = _encode(tokens(old_core), tokens(new_core))
    dmp = _dmp(options)
    ops = dmp.diff_main(eo, en, False)
    dmp.diff_cleanupSemantic(ops)
    edits = [Edit(_OPS[op], "".join(decode(chunk))) for op, chunk in ops]
    old_tail, new_tail = old[len(old_core) :], new[len(new_core) :]
    if old_tail == new_tail:
        edits.append(Edit("equal", old_tail))
    else:
        edits += [Edit("delete", old_tail), Edit("insert", new_tail)]
    return tuple(e for e in edits if e.text)


def _added(s: Sentence, old_anchor: int) -> Unit:
    pos = (s.paragraph, s.number)
    return Unit("added", None, s.text, None, s.index, None, pos, old_anchor, s.index)


def _removed(s: Sentence, new_anchor: int) -> Unit:
    pos = (s.paragraph, s.number)
    return Unit("removed", s.text, None, s.index, None, pos, None, s.index, new_anchor)


def _modified(d: Sentence, s: Sentence, options: DiffOptions, budget: list[int]) -> Unit:
    return Unit(
        "modified",
        d.text,
        s.text,
        d.index,
        s.index,
        (d.paragraph, d.number),
        (s.paragraph, s.number),
        d.index,
        s.index,
        _word_edits(d.text, s.text, options, budget),
    )


def _moves(units: list[Unit]) -> list[Unit]:
    """A removed sentence added unchanged elsewhere becomes one moved unit."""
    added: dict[str, list[int]] = {}
    for n, u in enumerate(units):
        if u.kind == "added":
            added.setdefault(_key(u.new), []).append(n)
    out: dict[int, Unit] = dict(enumerate(units))
    for n, u in enumerate(units):
        if u.kind != "removed" or not words(u.old or ""):
            continue
        candidates = added.get(_key(u.old))
        if not candidates:
            continue
        m = candidates.pop(0)
        target = out.pop(m)
        del out[n]
        out[m] = replace(
            target,
            kind="moved",
            old=u.old,
            old_at=u.old_at,
            old_pos=u.old_pos,
            old_anchor=u.old_anchor,
        )
    return list(out.values())


def _key(text: str | None) -> str:
    return " ".join((text or "").split())


def _order(u: Unit) -> tuple[int, int, int]:
    """Reading order in the new text; a removed sentence comes before the one it preceded."""
    return (u.new_anchor, 0 if u.new_at is None else 1, u.old_anchor)


def _stats(units: list[Unit], old: str, new: str) -> Stats:
    units = [u for u in units if not u.layout_only]
    counts = Counter(u.kind for u in units)
    added = removed = 0
    for u in units:
        if u.kind == "added":
            added += len(words(u.new or ""))
        elif u.kind == "removed":
            removed += len(words(u.old or ""))
        elif u.kind == "modified":
            added += sum(len(words(e.text)) for e in u.edits if e.op == "insert")
            removed += sum(len(words(e.text)) for e in u.edits if e.op == "delete")
    return Stats(
        sentences_added=counts["added"],
        sentences_removed=counts["removed"],
        sentences_modified=counts["modified"],
        sentences_moved=counts["moved"],
        words_added=added,
        words_removed=removed,
        words_old=len(words(old)),
        words_new=len(words(new)),
    )


# -- plain-data form (stored in the changes table, printed by --format json) ----


def unit_to_dict(u: Unit) -> dict[str, Any]:
    return {
        "kind": u.kind,
        "old": u.old,
        "new": u.new,
        "old_at": u.old_at,
        "new_at": u.new_at,
        "old_pos": list(u.old_pos) if u.old_pos else None,
        "new_pos": list(u.new_pos) if u.new_pos else None,
        "old_anchor": u.old_anchor,
        "new_anchor": u.new_anchor,
        "edits": [[e.op, e.text] for e in u.edits],
        "significance": u.significance,
        "reasons": list(u.reasons),
    }


def unit_from_dict(d: dict[str, Any]) -> Unit:
    return Unit(
        kind=d["kind"],
        old=d["old"],
        new=d["new"],
        old_at=d["old_at"],
        new_at=d["new_at"],
        old_pos=tuple(d["old_pos"]) if d["old_pos"] else None,
        new_pos=tuple(d["new_pos"]) if d["new_pos"] else None,
        old_anchor=d["old_anchor"],
        new_anchor=d["new_anchor"],
        edits=tuple(Edit(op, text) for op, text in d["edits"]),
        significance=d["significance"],
        reasons=tuple(d["reasons"]),
    )


def stats_to_dict(s: Stats) -> dict[str, Any]:
    return {**asdict(s), "share_changed": round(s.share_changed, 4)}


def change_to_dict(change: Change) -> dict[str, Any]:
    return {
        "significance": change.significance,
        "summary": change.summary(),
        "reasons": list(change.reasons),
        "old_title": change.old_title,
        "new_title": change.new_title,
        "stats": stats_to_dict(change.stats),
        "units": [unit_to_dict(u) for u in change.units],
    }


def change_from_dict(d: dict[str, Any]) -> Change:
    stats = {k: v for k, v in d["stats"].items() if k in Stats.__dataclass_fields__}
    return Change(
        units=tuple(unit_from_dict(u) for u in d["units"]),
        stats=Stats(**stats),
        significance=d["significance"],
        reasons=tuple(d["reasons"]),
        old_title=d.get("old_title"),
        new_title=d.get("new_title"),
    )
