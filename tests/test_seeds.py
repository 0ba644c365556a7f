"""Seeds files: validation errors name file, line and field, and change nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.app.seeds import (
    httpx_url_problem,
    is_plain_url,
    load_seed_articles,
    load_sources,
    url_problem,
)
from store.errors import ConfigError
from tests.support import claimwatch

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
README = SEEDS.parent / "README.md"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_seeds_load() -> None:
    specs = load_sources(SEEDS / "sources.yaml")
    assert len(specs) >= 5 and all(s.url.startswith("https://") for s in specs)
    [article] = load_seed_articles(SEEDS)
    assert article.language == "ar"
    assert "Llama" in article.version().text


@pytest.mark.parametrize(
    "text,line,field,message",
    [
        ("sources:\n  - url: http://a.example/\n    every: soon\n", 2, "every", "not understood"),
        ("sources:\n  - url: ftp://a.example/\n", 2, "url", "not an http"),
        ("sources:\n  - label: x\n", 2, "url", "needs a url"),
        ("sources:\n  - url: http://a.example/\n    kind: podcast\n", 2, "kind", "must be one of"),
        (
            "sources:\n  - url: http://a.example/\n    ignore: ['(']\n",
            2,
            "ignore",
            "not a valid regular",
        ),
        ("sources:\n  - url: http://a.example/\n    colour: red\n", 2, "colour", "unknown field"),
        (
            "sources:\n  - url: http://10.0.0.1/\n    allow_private: true\n",
            2,
            "allow_private",
            "cannot let a source reach private addresses; add it with .*--allow-private",
        ),
        (
            "sources:\n  - url: http://a.example/\n    robots: maybe\n",
            2,
            "robots",
            "must be a bool",
        ),
        (
            "sources:\n  - url: http://a.example/\n  - url: http://a.example/\n",
            3,
            "url",
            "listed twice",
        ),
    ],
)
def test_bad_sources_file_names_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_sources(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert str(info.value).startswith(f"{path}:{line}: field '{field}':")


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - url: http://a.example/\n   bad: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML") as info:
        load_sources(path)
    assert info.value.line is not None and info.value.line >= 2


def _load_model(path: Path) -> object:
    from archiver.claims.model import load_model

    return load_model(str(path))


def _load_config(path: Path) -> object:
    from archiver.config import load

    return load(path, env={})


def _read_labelled(path: Path) -> object:
    from archiver.claims.labelled import read_labelled

    return read_labelled(path)


DEEP = 5000  # brackets: far past Python's recursion limit, a few KB of file


@pytest.mark.parametrize(
    ("name", "text", "read"),
    [
        ("sources.yaml", "sources:\n  - " + "[" * DEEP + "]" * DEEP, load_sources),
        ("claimwatch.toml", "x = " + "[" * DEEP + "]" * DEEP, _load_config),
        ("model.json", "[" * DEEP + "]" * DEEP, _load_model),
        ("p.jsonl", '{"text": ' + "[" * DEEP + "]" * DEEP + "}", _read_labelled),
    ],
    ids=["yaml", "toml", "model", "jsonl"],
)
def test_a_deeply_nested_file_is_named_not_a_crash(
    tmp_path: Path, name: str, text: str, read: Any
) -> None:
    """Python's YAML, TOML and JSON readers recurse: 5,000 nested brackets ended the
    command with an internal RecursionError. Now it is the usual one-line error."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply to be read") as info:
        read(path)
    assert str(info.value).startswith(str(path))


# -- url_problem's fast path agrees with httpx -----------------------------------------

_LABELS = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_TAIL = st.text(
    alphabet=st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@/?#%[] \\\"<>^`{|}é\u0000\u202e")),
    max_size=30,
)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp"]))
    host = ".".join(draw(st.lists(_LABELS, min_size=1, max_size=4)))
    port = draw(st.one_of(st.none(), st.integers(0, 200_000)))
    tail = draw(st.one_of(st.just(""), _TAIL.map(lambda t: "/" + t), _TAIL.map(lambda t: "?" + t)))
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{tail}"


@settings(max_examples=600, deadline=None)
@given(st.one_of(_urls(), st.text(max_size=40)))
def test_a_url_the_fast_path_accepts_is_one_httpx_fetches_as_written(url: str) -> None:
    """``url_problem`` answers plain URLs without importing httpx: whatever it accepts
    that way, httpx's parser accepts too."""
    if is_plain_url(url):
        assert httpx_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://example.org/a?b=1#c", None),
        ("https://EXAMPLE.org:8443/", None),
        ("http://example.org:0/", "outside 1-65535"),
        ("http://example.org:99999/", "outside 1-65535"),
        ("http://exa mple.org/", "spaces or control characters"),
        ("http://[::1:8765/", "is not a valid URL"),
        ("http://:80/", "has no host"),
        ("http://0.0.0.00/", "Invalid IPv4 address"),  # found by the property test above
        ("http://1.2.3.4:8080/a", None),
        ("ftp://example.org/", "is not an http(s) URL"),
    ],
)
def test_url_problem_names_what_is_wrong(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert found == problem if problem is None else (found and problem in found)


def readme_story(into: Path) -> dict[str, str]:
    """The files of the README's "Your own story", each written where it says."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Your own story") : text.index("## Storage")]
    files: dict[str, str] = {}
    start = 0
    for block in re.finditer(r"```\w+\n(.*?)```", section, re.S):
        names = re.findall(r"`my-story/([\w.-]+)`", section[start : block.start()])
        assert names, f"a block with no file named before it: {block.group(1)[:40]!r}"
        files[names[0]] = block.group(1)
        start = block.end()
    into.mkdir()
    for name, body in files.items():
        (into / name).write_text(body, encoding="utf-8")
    return files


@pytest.mark.e2e
@pytest.mark.slow
def test_the_readmes_own_story_works_as_written(tmp_path: Path) -> None:
    """A new user's first step is to copy the README's example story: it must load,
    and claims list must show its summary and its claims in the file's order."""
    files = readme_story(tmp_path / "my-story")
    assert sorted(files) == ["article.meta.yaml", "article.txt", "claims.yaml", "sources.yaml"]
    r = claimwatch(tmp_path, "init", "--seeds", "my-story")
    assert r.returncode == 0, r.stderr
    listed = [
        json.loads(x) for x in claimwatch(tmp_path, "claims", "list", "--json").stdout.splitlines()
    ]
    assert [c["id"] for c in listed] == [
        "strike-this-week",
        "shorter-week-on-full-pay",
        "railway-refuses",
    ]
    assert set(listed[0]["statements"]) == {"de", "en"}
    text = claimwatch(tmp_path, "claims", "list").stdout.splitlines()
    assert " ".join(text[: text.index("")]).startswith("The GDL train drivers' union is striking")
    sources = [
        json.loads(x) for x in claimwatch(tmp_path, "sources", "list", "--json").stdout.splitlines()
    ]
    assert {(x["label"], x["kind"]) for x in sources} == {
        ("gdl-column", "seed"),
        ("gdl-home", "page"),
        ("search-gdl", "feed"),
    }
