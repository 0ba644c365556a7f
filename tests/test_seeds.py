"""Seeds files: validation errors name file, line and field, and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.app.seeds import load_seed_articles, load_sources
from store.errors import ConfigError

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


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
