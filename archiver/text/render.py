"""Rendering a ``Change`` for people: terminal, side by side, unified, HTML.

Every renderer works from the same rows: the change's units in reading order
of the new text, with ``context`` unchanged sentences around them, grouped
into hunks. Page text is made terminal-safe before it reaches a terminal;
HTML comes from a Jinja2 template with autoescape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from archiver.text.diff import Change, Edit, Unit
from archiver.text.segment import sentences
from archiver.text.terminal import terminal_safe

KINDS = ("added", "removed", "modified", "moved")
_ENV: Any = None


def _templates() -> Any:
    """The Jinja2 environment (autoescape on), made on first use: jinja2 is an import
    that commands which print no HTML should not pay."""
    global _ENV
    if _ENV is None:
        from jinja2 import Environment, PackageLoader

        from store.models import link_url

        _ENV = Environment(loader=PackageLoader("archiver", "templates"), autoescape=True)
        _ENV.filters["link"] = link_url
    return _ENV


@dataclass(frozen=True)
class RenderOptions:
    context: int = 1  # unchanged sentences shown around each change
    only: frozenset[str] = frozenset(KINDS)  # unit kinds to show
    color: bool = True


@dataclass(frozen=True)
class Header:
    source: str
    old_label: str  # e.g. "version 1, 2025-07-14 09:00 UTC"
    new_label: str
    url: str | None = None


@dataclass(frozen=True)
class Row:
    kind: str  # context | added | removed | modified | moved
    text: str  # the sentence shown (new text; old text for removed)
    unit: Unit | None = None
    paragraph: int = 0


@dataclass(frozen=True)
class Hunk:
    rows: list[Row] = field(default_factory=list)

    @property
    def paragraph(self) -> int:
        return min((r.paragraph for r in self.rows if r.paragraph), default=0)


def hunks(change: Change, new_text: str, options: RenderOptions) -> list[Hunk]:
    """Rows in reading order of the new text, with context, grouped into hunks."""
    units = [u for u in change.units if u.kind in options.only and not u.layout_only]
    shown = {u.new_at for u in units if u.new_at is not None}
    hidden = {u.new_at for u in change.units if u.new_at is not None and not u.layout_only} - shown
    removed: dict[int, list[Unit]] = {}
    for u in units:
        if u.new_at is None:
            removed.setdefault(u.new_anchor, []).append(u)
    by_new = {u.new_at: u for u in units if u.new_at is not None}
    rows: list[Row] = []
    new = sentences(new_text)
    for i in range(len(new) + 1):
        for u in removed.get(i, []):
            rows.append(Row("removed", u.old or "", u, u.old_pos[0] if u.old_pos else 0))
        if i == len(new) or i in hidden:
            continue
        s = new[i]
        unit = by_new.get(i)
        rows.append(Row(unit.kind if unit else "context", s.text, unit, s.paragraph))
    changed = [n for n, r in enumerate(rows) if r.kind != "context"]
    keep = {n for c in changed for n in range(c - options.context, c + options.context + 1)}
    out: list[Hunk] = []
    last = -2
    for n, row in enumerate(rows):
        if n not in keep:
            continue
        if n != last + 1:
            out.append(Hunk())
        out[-1].rows.append(row)
        last = n
    return out


def _marker(kind: str) -> str:
    return {"context": " ", "added": "+", "removed": "-", "modified": "~", "moved": ">"}[kind]


def _moved_note(row: Row) -> str:
    u = row.unit
    return f"  (moved from paragraph {u.old_pos[0]})" if u and u.old_pos else ""


def _visible(edits: Iterable[Edit]) -> list[Edit]:
    """Edits as shown on one line: newlines folded, whitespace-only end edits dropped."""
    out = [Edit(e.op, e.text.replace("\n", " ")) for e in edits]
    while out and out[-1].op != "equal" and not out[-1].text.strip():
        out.pop()
    return out


def _inline_plain(edits: Iterable[Edit]) -> str:
    parts = []
    for e in _visible(edits):
        text = terminal_safe(e.text)
        parts.append(
            text if e.op == "equal" else f"[-{text}-]" if e.op == "delete" else f"{{+{text}+}}"
        )
    return "".join(parts).rstrip()


def _inline_rich(edits: Iterable[Edit], keep: str = "both") -> Text:
    text = Text()
    for e in _visible(edits):
        chunk = terminal_safe(e.text)
        if e.op == "equal":
            text.append(chunk)
        elif e.op == "delete" and keep in ("both", "old"):
            text.append(chunk, style="bold red strike")
        elif e.op == "insert" and keep in ("both", "new"):
            text.append(chunk, style="bold green")
    text.rstrip()
    return text


def plain_line(row: Row) -> str:
    """One row as plain text, with [-removed-] and {+added+} words in modified rows."""
    if row.kind == "modified" and row.unit:
        body = _inline_plain(row.unit.edits)
    else:
        body = terminal_safe(row.text).rstrip()
    return f"{_marker(row.kind)} {body}{_moved_note(row) if row.kind == 'moved' else ''}"


def _title_line(change: Change) -> str | None:
    if change.old_title != change.new_title and change.old_title and change.new_title:
        return f"headline: {change.old_title} -> {change.new_title}"
    return None


def header_text(header: Header, change: Change) -> str:
    reasons = "; ".join(change.reasons[:3])
    line = (
        f"{header.source}: {header.old_label} -> {header.new_label}  "
        f"significance {change.significance:.2f}  {change.summary()}"
    )
    return terminal_safe(line + (f"\n  why: {reasons}" if reasons else ""))


def render_terminal(
    change: Change, new_text: str, header: Header, options: RenderOptions
) -> RenderableType:
    """Coloured (or, with ``color=False``, marked-up plain) text for a terminal."""
    lines: list[RenderableType] = []
    title = _title_line(change)
    if not options.color:
        out = [header_text(header, change)]
        if title:
            out.append(terminal_safe(title))
        for h in hunks(change, new_text, options):
            out.append(f"@@ paragraph {h.paragraph} @@")
            out.extend(plain_line(r) for r in h.rows)
        return Text("\n".join(out))
    lines.append(Text(header_text(header, change), style="bold"))
    if title:
        lines.append(Text(terminal_safe(title), style="bold yellow"))
    for h in hunks(change, new_text, options):
        lines.append(Text(f"@@ paragraph {h.paragraph} @@", style="cyan"))
        for r in h.rows:
            line = Text(_marker(r.kind) + " ")
            if r.kind == "modified" and r.unit:
                line.append_text(_inline_rich(r.unit.edits))
            else:
                style = {
                    "context": "dim",
                    "added": "green",
                    "removed": "red strike",
                    "moved": "blue",
                }[r.kind]
                line.append(terminal_safe(r.text).rstrip(), style=style)
                if r.kind == "moved":
                    line.append(_moved_note(r), style="dim")
            lines.append(line)
    return Group(*lines)


def render_side_by_side(
    change: Change, new_text: str, header: Header, options: RenderOptions
) -> RenderableType:
    table = Table(title=header_text(header, change), show_lines=False, expand=True)
    table.add_column(terminal_safe(header.old_label), ratio=1)
    table.add_column(terminal_safe(header.new_label), ratio=1)
    for n, h in enumerate(hunks(change, new_text, options)):
        if n:
            table.add_row(Text("…", style="dim"), Text("…", style="dim"))
        for r in h.rows:
            text = terminal_safe(r.text).rstrip()
            if r.kind == "context":
                table.add_row(Text(text, style="dim"), Text(text, style="dim"))
            elif r.kind == "added":
                table.add_row("", Text(text, style="green"))
            elif r.kind == "removed":
                table.add_row(Text(text, style="red"), "")
            elif r.kind == "moved" and r.unit:
                table.add_row(
                    Text(_moved_note(r).strip(), style="dim"),
                    Text(text, style="blue"),
                )
            elif r.unit:
                table.add_row(_inline_rich(r.unit.edits, "old"), _inline_rich(r.unit.edits, "new"))
    return table


def render_unified(change: Change, new_text: str, header: Header, options: RenderOptions) -> str:
    """Unified-diff style, one sentence a line; modified sentences as a -/+ pair."""
    out = [f"--- {header.source} {header.old_label}", f"+++ {header.source} {header.new_label}"]
    if _title_line(change):
        out += ["@@ headline @@", f"-{change.old_title}", f"+{change.new_title}"]
    for h in hunks(change, new_text, options):
        moved = sorted(
            {r.unit.old_pos[0] for r in h.rows if r.kind == "moved" and r.unit and r.unit.old_pos}
        )
        note = f" moved from paragraph {', '.join(map(str, moved))}" if moved else ""
        out.append(f"@@ paragraph {h.paragraph}{note} @@")
        for r in h.rows:
            if r.kind == "modified" and r.unit:
                out.append("-" + (r.unit.old or "").rstrip())
                out.append("+" + (r.unit.new or "").rstrip())
            else:
                sign = {"context": " ", "added": "+", "removed": "-", "moved": "+"}[r.kind]
                out.append(sign + r.text.rstrip())
    return terminal_safe("\n".join(out)) + "\n"


def render_html(
    change: Change,
    new_text: str,
    header: Header,
    options: RenderOptions,
    *,
    max_hunks: int | None = None,
) -> str:
    """A self-contained page (inline CSS only), also used inside the email digest."""
    all_hunks = hunks(change, new_text, options)
    shown = all_hunks if max_hunks is None else all_hunks[:max_hunks]
    return (
        _templates()
        .get_template("diff.html.j2")
        .render(
            header=header,
            change=change,
            hunks=shown,
            left_out=len(all_hunks) - len(shown),
            title_changed=_title_line(change) is not None,
        )
    )
