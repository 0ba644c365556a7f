"""The import rules of docs/architecture.md ("Layers"), checked over every module.

Each layer imports only the layers it is drawn above:

    interface  archiver.cli, archiver.web          everything below
    jobs       jobs                                 wiring and below
    wiring     archiver.pipeline, archiver.config   app, claims, net, text, store
    app        archiver.app                         claims, net, text, store
    claims     archiver.claims                      text, store
    net        archiver.net                         store
    text       archiver.text                        store
    store      store (models, errors, schema, the repository API)

The package root (``archiver``: its version) may be imported from any layer but store.
Imports inside functions count too: a lazy import is still a dependency. And no
test or benchmark imports a test module (tests.test_*, tests.conftest): what two
of them share lives in tests/support/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAY_IMPORT: dict[str, set[str]] = {
    "store": set(),
    "root": set(),
    "text": {"store"},
    "net": {"store"},
    "claims": {"text", "store"},
    "app": {"claims", "net", "text", "store"},
    "wiring": {"app", "claims", "net", "text", "store"},
    "jobs": {"wiring", "app", "claims", "net", "text", "store"},
    "interface": {"jobs", "wiring", "app", "claims", "net", "text", "store"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in ("store", "jobs"):
        return parts[0]
    if parts[0] != "archiver":
        return None  # the standard library or a dependency
    if module in ("archiver", "archiver.__version__"):
        return "root"
    if parts[1] in ("cli", "web"):
        return "interface"
    if parts[1] in ("text", "net", "claims", "app"):
        return parts[1]
    return "wiring"


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute names; relative ones resolved), with lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # "from archiver import pipeline" imports archiver.pipeline
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def sources(*tops: str) -> list[Path]:
    return sorted(
        p for top in tops for p in (ROOT / top).rglob("*.py") if "migrations" not in p.parts
    )


def violations(path: Path) -> list[str]:
    here = layer(module_name(path))
    assert here is not None
    out: dict[int, str] = {}  # one report per import statement
    for line, name in imports(path):
        there = layer(name)
        allowed = there is None or there == here or (there == "root" and here != "store")
        if not allowed and there not in MAY_IMPORT[here] and line not in out:
            out[line] = f"{path.relative_to(ROOT)}:{line}: {here} imports {name} ({there})"
    return list(out.values())


def test_each_layer_imports_only_the_layers_below() -> None:
    found = [v for path in sources("store", "archiver", "jobs") for v in violations(path)]
    assert found == []


def test_no_test_imports_a_test_module() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sources("tests", "benchmarks")
        for line, name in imports(path)
        if name.startswith(("tests.test_", "tests.conftest"))
    ]
    assert found == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("code", "where", "expected"),
    [
        (
            "from archiver.net.fetch import Fetcher\n",
            "store/x.py",
            ["store imports archiver.net.fetch"],
        ),
        ("def f():\n    from jobs import service\n", "archiver/x.py", ["wiring imports jobs"]),
        (
            "from archiver.claims.rules import Claim\n",
            "archiver/text/x.py",
            ["text imports archiver.claims.rules (claims)"],
        ),
        ("from archiver.app import seeds\n", "archiver/net/x.py", ["net imports archiver.app"]),
        ("from archiver import __version__\n", "archiver/net/x.py", []),
        ("from archiver import __version__\n", "store/x.py", ["store imports archiver (root)"]),
        ("from ..text import diff\n", "archiver/claims/x.py", []),
        ("from archiver.cli.base import main\n", "jobs/x.py", ["jobs imports archiver.cli"]),
        ("from . import web\n", "archiver/x.py", ["wiring imports archiver.web"]),
        ("from store.models import Source\nimport httpx\n", "archiver/x.py", []),
        ("from archiver import pipeline\n", "archiver/cli/x.py", []),
    ],
)
def test_the_rule_catches_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, where: str, expected: list[str]
) -> None:
    """The checker itself: a planted upward import (top-level, lazy or relative) is
    reported, and a downward or third-party one is not."""
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(code, encoding="utf-8")
    found = violations(path)
    assert len(found) == len(expected)
    for message, want in zip(found, expected, strict=True):
        assert want in message
