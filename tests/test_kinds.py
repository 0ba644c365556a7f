"""Source kinds are declared once (store/kinds.py), and nothing else compares a kind's name.

The rules table in store/kinds.py's docstring is what these tests hold the kinds to;
the scan below fails on any ``x.kind == "feed"`` (or ``!=``, ``in``) outside that
module. (Outcomes and origins are ``Literal`` types: mypy checks every one.)"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from store.errors import UsageError
from store.kinds import (
    FEED_TYPES,
    KINDS,
    NOT_FETCHED,
    PAGE_TYPES,
    USER_KINDS,
    KindName,
    kind_of,
)

ROOT = Path(__file__).resolve().parent.parent

# kind: (fetched, user adds, fingerprint, renders, coverage, entries), as documented
RULES = {
    "page": (True, True, True, True, False, False),
    "article": (True, True, True, True, True, False),
    "feed": (True, True, False, False, False, True),
    "seed": (False, False, False, False, False, False),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_kind_has_the_documented_rules(name: str) -> None:
    k = kind_of(name)
    assert (k.fetched, k.user_adds, k.fingerprint, k.renders, k.coverage, k.entries) == RULES[name]
    assert k.accepts == (FEED_TYPES if k.entries else PAGE_TYPES)


def test_the_registry_is_the_literal_type() -> None:
    assert sorted(KINDS) == sorted(get_args(KindName)) == sorted(RULES)
    assert USER_KINDS == ("article", "page", "feed") and NOT_FETCHED == ("seed",)
    with pytest.raises(UsageError, match="unknown source kind 'blog': use article, page, feed"):
        kind_of("blog")


def _kind_comparisons(path: Path) -> list[str]:
    """Comparisons of something named ``kind`` with a kind's name as a literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set(KINDS)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literals = {
            c.value
            for side in sides
            for c in ([side] if not isinstance(side, ast.Tuple | ast.List) else side.elts)
            if isinstance(c, ast.Constant) and isinstance(c.value, str)
        }
        about_kind = any(
            (isinstance(s, ast.Attribute) and s.attr == "kind")
            or (isinstance(s, ast.Name) and s.id == "kind")
            for s in sides
        )
        if about_kind and literals & names:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_kind_name_is_compared_outside_the_kinds_module() -> None:
    paths = [
        p
        for top in ("archiver", "store", "jobs")
        for p in (ROOT / top).rglob("*.py")
        if p != ROOT / "store" / "kinds.py" and "migrations" not in p.parts
    ]
    assert [hit for p in paths for hit in _kind_comparisons(p)] == []


def test_the_scan_sees_a_planted_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    planted = tmp_path / "x.py"
    planted.write_text(
        'if source.kind == "feed": pass\nif kind in ("seed", "page"): pass\n'
        'if unit.kind == "moved": pass\nif other == "feed": pass\n',
        encoding="utf-8",
    )
    assert [h.split(": ", 1)[1] for h in _kind_comparisons(planted)] == [
        "source.kind == 'feed'",
        "kind in ('seed', 'page')",
    ]
