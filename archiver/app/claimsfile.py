"""Reading a claims file (``claims.yaml``) into ``Claim`` objects, with validation.

A claim needs an id and at least one statement, in any languages. Entities,
topic terms and cue lists are optional hints for the lexical matcher.

Every error names the file, the line and the field. The format is documented
in docs/claims.md and in the comments of seeds/claims.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.app.seeds import LINE, load_yaml
from archiver.claims.rules import Claim, Entity
from store.errors import ConfigError

if TYPE_CHECKING:  # numpy loads only when the examples are read
    from archiver.claims.bank import Bank
    from archiver.claims.labelled import Labelled

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_CLAIM_FIELDS = {
    *("id", "statement", "statements", "en", "ar"),
    *("actors", "objects", "terms", "supports", "contradicts", "note"),
}
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _statements(
    item: dict[str, Any], path: str, cid: str, line: int | None
) -> tuple[tuple[str, str], ...]:
    """The claim's text in each of its languages: ``statements: {lang: text}``, one
    ``statement`` (language unknown: ``und``), or the older ``en``/``ar`` fields."""
    out: dict[str, str] = {}
    raw = item.get("statements")
    if raw is not None:
        if not isinstance(raw, dict):
            raise ConfigError(path, "must map language codes to texts", line, "statements")
        for lang, text in raw.items():
            if lang == LINE:
                continue
            if not isinstance(lang, str) or not _LANG.match(lang):
                raise ConfigError(
                    path, f"{lang!r} is not a language code such as en or de", line, "statements"
                )
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(path, "needs a text", line, f"statements.{lang}")
            out[lang] = text.strip()
    for lang in ("en", "ar"):
        if item.get(lang) is not None:
            if not isinstance(item[lang], str) or not item[lang].strip():
                raise ConfigError(path, "needs a text", line, lang)
            out.setdefault(lang, item[lang].strip())
    single = item.get("statement")
    if single is not None:
        if isinstance(single, dict):  # the two forms mixed up
            hint = "is one text; for texts by language write 'statements: {en: ..., de: ...}'"
            raise ConfigError(path, hint, line, "statement")
        if not isinstance(single, str) or not single.strip():
            raise ConfigError(path, "needs a text", line, "statement")
        out.setdefault("und", single.strip())
    if not out:
        raise ConfigError(
            path,
            f"claim {cid!r} needs at least one statement (statements: {{en: ...}})",
            line,
            "statements",
        )
    return tuple(out.items())


def _strings(value: Any, path: str, line: int | None, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(path, "must be a list of strings", line, field)
    out = tuple(str(v).strip() for v in value)
    if any(not v for v in out):
        raise ConfigError(path, "has an empty entry", line, field)
    return out


def _entities(raw: Any, path: str) -> dict[str, Entity]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be a mapping of names to aliases", None, "entities")
    line = raw.get(LINE)
    out = {}
    for name, spec in raw.items():
        if name == LINE:
            continue
        case = False
        if isinstance(spec, dict):
            unknown = set(spec) - {"aliases", "case_sensitive", LINE}
            if unknown:
                raise ConfigError(
                    path,
                    f"unknown field {sorted(unknown)[0]!r}",
                    spec.get(LINE),
                    f"entities.{name}",
                )
            case = spec.get("case_sensitive", False)
            if not isinstance(case, bool):
                raise ConfigError(
                    path, "must be true or false", spec.get(LINE), f"entities.{name}.case_sensitive"
                )
            spec = spec.get("aliases")
        aliases = _strings(spec, path, line, f"entities.{name}")
        if not aliases:
            raise ConfigError(path, "needs at least one alias", line, f"entities.{name}")
        out[str(name)] = Entity(str(name), (str(name), *aliases) if not case else aliases, case)
    return out


def _refs(
    item: dict[str, Any],
    field: str,
    entities: dict[str, Entity],
    path: str,
    cid: str,
    line: int | None,
) -> tuple[Entity, ...]:
    names = _strings(item.get(field), path, line, field)
    missing = [n for n in names if n not in entities]
    if missing:
        raise ConfigError(
            path,
            f"claim {cid!r} names unknown entity {missing[0]!r}; define it under 'entities'",
            line,
            field,
        )
    return tuple(entities[n] for n in names)


def load_claims(path: Path) -> tuple[Claim, ...]:
    """Read and validate a claims file; raises ``ConfigError`` naming file, line, field."""
    p = str(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ConfigError(p, "expected a mapping with a 'claims' list", 1, "claims")
    unknown = set(data) - {"version", "summary", "entities", "claims", "examples", LINE}
    if unknown:
        raise ConfigError(p, "unknown top-level field", data.get(LINE), sorted(unknown)[0])
    entities = _entities(data.get("entities"), p)
    claims: list[Claim] = []
    seen: set[str] = set()
    for item in data["claims"]:
        if not isinstance(item, dict):
            raise ConfigError(p, "each claim must be a mapping", None, "claims")
        line = item.get(LINE)
        unknown = set(item) - _CLAIM_FIELDS - {LINE}
        if unknown:
            raise ConfigError(
                p,
                f"unknown field (known: {', '.join(sorted(_CLAIM_FIELDS))})",
                line,
                sorted(unknown)[0],
            )
        cid = item.get("id")
        if not isinstance(cid, str) or not _ID.match(cid):
            raise ConfigError(
                p, "needs an id of lowercase letters, digits, '.', '_' or '-'", line, "id"
            )
        if cid in seen:
            raise ConfigError(p, f"claim id {cid!r} is used twice", line, "id")
        seen.add(cid)
        statements = _statements(item, p, cid, line)
        actors = _refs(item, "actors", entities, p, cid, line)
        objects = _refs(item, "objects", entities, p, cid, line)
        claims.append(
            Claim(
                id=cid,
                statements=statements,
                actors=actors,
                objects=objects,
                terms=_strings(item.get("terms"), p, line, "terms"),
                supports=_strings(item.get("supports"), p, line, "supports"),
                contradicts=_strings(item.get("contradicts"), p, line, "contradicts"),
            )
        )
    if not claims:
        raise ConfigError(p, "has no claims", data.get(LINE), "claims")
    return tuple(claims)


@dataclass(frozen=True)
class Story:
    """A claims file: its claims, the labelled examples it points to, its summary."""

    claims: tuple[Claim, ...]
    examples: tuple[Path, ...] = ()
    summary: str = ""

    def labelled(self) -> list[Labelled]:
        """The labelled passages of every examples file, in order (each file checked
        against the claims as it is read)."""
        from archiver.claims.labelled import read_labelled

        return [row for path in self.examples for row in read_labelled(path, self.claims)]

    def bank(self) -> Bank:
        """The examples as the matcher's bank."""
        from archiver.claims.training import bank_of

        return bank_of(self.labelled())


def load_story(path: Path) -> Story:
    """The claims file with its ``examples`` (JSONL files, relative to it) and summary."""
    claims = load_claims(path)
    data = load_yaml(path)
    p = str(path)
    raw = data.get("examples") or []
    if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
        raise ConfigError(p, "must be a list of JSONL file names", data.get(LINE), "examples")
    files = tuple((path.parent / e).resolve() for e in raw)
    for f in files:
        if not f.is_file():
            raise ConfigError(p, f"names {f}, which does not exist", data.get(LINE), "examples")
    summary = data.get("summary") or ""
    if not isinstance(summary, str):
        raise ConfigError(p, "must be text", data.get(LINE), "summary")
    return Story(claims, files, summary.strip())
