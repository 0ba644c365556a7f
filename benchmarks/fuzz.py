"""Fuzz the pure stages with hypothesis (and extraction with atheris), recording failures.

Usage: python benchmarks/fuzz.py [--minutes 5] [--atheris-seconds 60] [--out DIR]

Each target is a property over hostile input; it must hold for every input:

* extract: any bytes, or HTML-shaped garbage, give an ``Extracted`` or an
  ``ExtractionError``, never another exception;
* normalize: idempotent, and leaves no control or bidi-override characters;
* diff: ``apply(a, diff(a, b)) == b`` for any two Unicode texts;
* render: terminal output of any change carries no escape character from the text;
* claims: any passage gives flags with a known stance and a score in [0, 1];
* feeds: any bytes give a ``Feed`` or a ``FeedError``;
* yaml: any text as sources.yaml or claims.yaml gives specs or a ``ConfigError``.

The hypothesis targets run in turns until the time is up, each turn with fresh
random inputs. A failing input (shrunk by hypothesis) is written to ``--out``
(default benchmarks/fuzz-failures/) and the run exits 1. With atheris installed,
extraction is also fuzzed coverage-guided for ``--atheris-seconds``; its crash
inputs land in the same directory. tests/test_fuzz.py runs every target briefly in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.app.claimsfile import load_claims
from archiver.app.seeds import load_sources
from archiver.claims.rules import STANCES, match
from archiver.net.feeds import parse_feed
from archiver.text.diff import apply, diff
from archiver.text.extract import ExtractOptions, extract
from archiver.text.normalize import normalize
from archiver.text.render import Header, RenderOptions, render_terminal
from store.errors import ConfigError, ExtractionError, FeedError

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = load_claims(ROOT / "seeds" / "claims.yaml")
HEADER = Header("fuzz", "old", "new")

# Text with what pages really carry: Arabic, bidi marks, escapes, odd spaces.
ALPHABET = st.characters(codec="utf-8", exclude_categories=["Cs"])
HOSTILE = st.sampled_from(
    [
        "\x1b[31m",
        "\x1b]8;;http://x\x07",
        "\u202e",
        "\u200f",
        "\ufeff",
        "\x00",
        "\r\n",
        "\u2028",
        "ميتا",
        "لن تطلق",
        "Meta",
        "Llama",
        "open weights",
        "$65 billion",
        ". ",
        "\n\n",
        "<",
        "&amp;",
    ]
)
TEXT = st.lists(st.one_of(st.text(ALPHABET, max_size=30), HOSTILE), max_size=40).map("".join)
TAGS = st.sampled_from(
    ["<p>", "</p>", "<div>", "</div>", "<article>", "<script>", "<!--", "-->", "<br/>", "<h1>"]
)
HTML = st.lists(st.one_of(TAGS, TEXT), max_size=60).map("".join)
YAML = st.lists(
    st.one_of(
        st.sampled_from(
            ["sources:\n", "claims:\n", "- url: ", "  every: ", "  kind: ", "  id: ", ": ", "- "]
        ),
        st.sampled_from(["http://127.0.0.1/a", "1h", "feed", "x", "[", "{", "&a", "*a", "\t"]),
        TEXT,
        st.just("\n"),
    ),
    max_size=30,
).map("".join)


def prop_extract(body: bytes) -> None:
    with contextlib.suppress(ExtractionError):
        extract(body, "text/html", None, "http://fuzz.test/", ExtractOptions())


def prop_normalize(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once, "normalize is not idempotent"
    bad = [c for c in once if (ord(c) < 32 and c != "\n") or c in "\u202a\u202b\u202d\u202e"]
    assert not bad, f"control characters survive: {bad!r}"


def prop_diff(ab: tuple[str, str]) -> None:
    a, b = (normalize(t) for t in ab)
    change = diff(a, b)
    assert apply(a, change) == b, "apply(a, diff(a, b)) != b"


def prop_render(ab: tuple[str, str]) -> None:
    a, b = ab
    if a == b:
        return
    out = render_terminal(diff(a, b), b, HEADER, RenderOptions(color=False))
    assert "\x1b" not in str(out), "an escape character reached the terminal"


def prop_claims(passage: str) -> None:
    for flag in match(passage, CLAIMS):
        assert flag.stance in STANCES, flag.stance
        assert 0.0 <= flag.score <= 1.0, flag.score


def prop_feeds(body: bytes) -> None:
    with contextlib.suppress(FeedError):
        parse_feed(body, "http://fuzz.test/feed")


def prop_yaml(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, loader in (("sources.yaml", load_sources), ("claims.yaml", load_claims)):
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            try:
                loader(path)
            except ConfigError as exc:
                assert str(exc).startswith(str(path)), f"error does not name the file: {exc}"


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


TARGETS = [
    Target("extract", st.one_of(st.binary(max_size=3000), HTML.map(str.encode)), prop_extract),
    Target("normalize", TEXT, prop_normalize),
    Target("diff", st.tuples(TEXT, TEXT), prop_diff),
    Target("render", st.tuples(TEXT, TEXT), prop_render),
    Target("claims", TEXT, prop_claims),
    Target("feeds", st.one_of(st.binary(max_size=2000), HTML.map(str.encode)), prop_feeds),
    Target("yaml", YAML, prop_yaml),
]


def run_target(target: Target, examples: int) -> Any | None:
    """Run ``examples`` fresh inputs; return the (shrunk) failing input, or None."""
    failing: list[Any] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def prop(value: Any) -> None:
        try:
            target.check(value)
        except Exception:
            failing.append(value)
            raise

    try:
        prop()
    except Exception:
        return failing[-1] if failing else "(failed outside the property)"
    return None


def record(out: Path, name: str, value: Any, error: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text = f"# target: {name}\n# error: {error}\n{value!r}\n"
    path = out / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _error_of(target: Target, value: Any) -> str:
    try:
        target.check(value)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "(flaky: passed on replay)"


def atheris_child(seconds: int, out: Path) -> None:  # pragma: no cover (runs under libFuzzer)
    import atheris

    def one(data: bytes) -> None:
        prop_extract(data)

    out.mkdir(parents=True, exist_ok=True)
    atheris.instrument_all()
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={seconds}", f"-artifact_prefix={out}/atheris-extract-"],
        one,
    )
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--examples", type=int, default=200, help="inputs per target per turn")
    parser.add_argument("--atheris-seconds", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fuzz-failures")
    parser.add_argument("--atheris-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.atheris_child:
        atheris_child(args.atheris_seconds, args.out)
        return
    deadline = time.monotonic() + args.minutes * 60
    runs = {t.name: 0 for t in TARGETS}
    failures = 0
    while time.monotonic() < deadline:
        for target in TARGETS:
            bad = run_target(target, args.examples)
            runs[target.name] += args.examples
            if bad is not None:
                failures += 1
                path = record(args.out, target.name, bad, _error_of(target, bad))
                print(f"{target.name}: FAILED, input saved to {path}")
    for name, n in runs.items():
        print(f"{name}: {n} inputs")
    if args.atheris_seconds > 0:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris: not installed, skipped (pip install atheris)")
        else:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--atheris-child",
                    "--out",
                    str(args.out),
                    "--atheris-seconds",
                    str(args.atheris_seconds),
                ],
                capture_output=True,
                text=True,
            )
            done = [line for line in child.stderr.splitlines() if line.startswith("Done ")]
            stats = [line for line in child.stderr.splitlines() if line.startswith("#")]
            summary = done[-1] if done else (stats[-1] if stats else "")
            print(f"atheris extract: exit {child.returncode}; {summary}")
            failures += child.returncode != 0
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
