"""Golden diffs: before/after texts (English and Arabic) with their expected change
units and renderings under tests/data/diff/CASE/. ``pytest --update-golden`` rewrites
the expected files; each case's case.yaml also states what must hold regardless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from archiver.text.diff import apply, change_to_dict, diff
from archiver.text.render import Header, RenderOptions, render_html, render_terminal, render_unified

CASES = sorted((Path(__file__).parent / "data" / "diff").iterdir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_diff(case: Path, golden) -> None:  # type: ignore[no-untyped-def]
    old = (case / "old.txt").read_text(encoding="utf-8")
    new = (case / "new.txt").read_text(encoding="utf-8")
    spec = yaml.safe_load((case / "case.yaml").read_text(encoding="utf-8"))
    change = diff(old, new, old_title=spec.get("old_title"), new_title=spec.get("new_title"))

    expect = spec["expect"]
    shown = [u for u in change.units if not u.layout_only]
    assert [u.kind for u in shown] == expect["kinds"]
    all_reasons = set(change.reasons) | {r for u in change.units for r in u.reasons}
    for reason in expect.get("reasons", []):
        assert reason in all_reasons, sorted(all_reasons)
    assert change.significance >= expect.get("min_significance", 0.0)
    assert change.significance <= expect.get("max_significance", 1.0)
    assert apply(old, change) == new

    header = Header(case.name, "old", "new")
    opts = RenderOptions(context=1, color=False)
    golden(
        case / "change.json",
        json.dumps(change_to_dict(change), ensure_ascii=False, indent=1) + "\n",
    )
    golden(case / "unified.txt", render_unified(change, new, header, opts))
    golden(case / "terminal.txt", render_terminal(change, new, header, opts).plain + "\n")  # type: ignore[union-attr]
    golden(case / "page.html", render_html(change, new, header, opts))


def test_renderers_never_pass_terminal_escapes() -> None:
    hostile = "Meta said \x1b]0;owned\x07yes.\x1b[2J\x1b[H Then \x9b31mno."
    change = diff("Meta said no.", hostile, old_title="a\x1b[31m", new_title="b\x07")
    header = Header("src\x1b[1m", "old", "new")
    for color in (True, False):
        opts = RenderOptions(color=color)
        from rich.console import Console

        console = Console(
            record=True, width=100, force_terminal=color, color_system="standard" if color else None
        )
        console.print(render_terminal(change, hostile, header, opts))
        out = console.export_text(styles=False)
        assert "\x1b]" not in out and "\x07" not in out and "\x9b" not in out and "[2J" not in out
    unified = render_unified(change, hostile, header, RenderOptions())
    assert "\x1b" not in unified and "\x07" not in unified and "\x9b" not in unified


def test_html_escapes_page_text() -> None:
    change = diff("Meta said no.", "Meta said <script>alert(1)</script> yes.")
    html = render_html(
        change, "Meta said <script>alert(1)</script> yes.", Header("s", "a", "b"), RenderOptions()
    )
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("digits", ["٦٥", "۶۵", "６５"])  # Arabic-Indic, Persian, full-width
def test_a_number_written_in_other_digits_is_the_same_number(digits: str) -> None:
    old = f"Meta will spend {digits} billion dollars on data centres this year."
    same = diff(old, "Meta will spend 65 billion dollars on data centres this year.")
    assert not [r for r in same.reasons if r.startswith("number changed")], same.reasons
    other = diff(old, "Meta will spend 72 billion dollars on data centres this year.")
    assert "number changed: 65 billion -> 72 billion" in other.reasons
