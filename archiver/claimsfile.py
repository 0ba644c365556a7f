"""Reading a claims file (``claims.yaml``) into ``Claim`` objects, with validation.

Every error names the file, the line and the field. The format is documented
in docs/claims.md and in the comments of seeds/claims.yaml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from archiver.claims import Claim, Entity
from archiver.errors import ConfigError
from archiver.seeds import LINE, load_yaml

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_CLAIM_FIELDS = {"id", "en", "ar", "actors", "objects", "terms", "supports", "contradicts", "note"}


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
        for lang in ("en", "ar"):
            if not isinstance(item.get(lang), str) or not item[lang].strip():
                raise ConfigError(p, f"claim {cid!r} needs its text in '{lang}'", line, lang)

        actors = _refs(item, "actors", entities, p, cid, line)
        objects = _refs(item, "objects", entities, p, cid, line)
        if not actors and not objects:
            raise ConfigError(
                p, f"claim {cid!r} needs at least one actor or object to match on", line, "actors"
            )
        claims.append(
            Claim(
                id=cid,
                en=item["en"].strip(),
                ar=item["ar"].strip(),
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
