"""Seeds: a story's seed articles and watchlist, read from a directory of YAML files.

A seeds directory holds ``sources.yaml`` (the watchlist) and one
``NAME.meta.yaml`` per seed article, which names the text file and its
provenance. Every validation error names the file, the line and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from archiver.app.schedule import parse_cron, parse_interval
from archiver.text.normalize import compile_patterns, normalize
from store.errors import NESTED, ConfigError, UsageError
from store.kinds import USER_KINDS, kind_of
from store.models import NewVersion, SourceSpec

LINE = "__line__"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@cache
def _line_loader() -> Any:
    """A safe YAML loader that remembers the line of every mapping (as ``__line__``).
    Built on first use: PyYAML is not imported by commands that read no YAML."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            mapping = super().construct_mapping(node, deep=deep)
            mapping[LINE] = node.start_mark.line + 1
            return mapping

    return LineLoader


def load_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 text ({exc.reason})") from None
    try:
        return yaml.load(text, Loader=_line_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(
            str(path), f"malformed YAML: {exc.problem or exc.context}", line
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"malformed YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(str(path), NESTED) from None


@dataclass(frozen=True)
class SeedArticle:
    label: str
    url: str
    text_path: Path
    title: str | None
    language: str | None
    published: str | None
    provenance: dict[str, Any]

    def version(self) -> NewVersion:
        raw = self.text_path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(str(self.text_path), "the seed article is not UTF-8 text") from None
        return NewVersion(
            text=normalize(text),
            raw=raw,
            title=self.title,
            published=self.published,
            language=self.language,
            content_type="text/plain",
        )


# A plain URL: http(s), an ASCII host name (not four dotted numbers: httpx checks those
# as an IPv4 address), maybe a port, then only characters RFC 3986 allows unescaped.
# httpx_url_problem accepts every such URL (tests/test_seeds.py checks this property),
# so ``url_problem`` answers it without importing httpx, a fifth of ``sources add``'s
# start-up; anything else goes to httpx itself.
_LABEL_RE = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_URL = re.compile(
    rf"https?://((?:{_LABEL_RE}\.)*{_LABEL_RE})(?::(\d{{1,5}}))?"
    r"(?:[/?#][A-Za-z0-9\-._~!$&'()*+,;=:@/?#]*)?",
    re.IGNORECASE | re.ASCII,
)

_DOTTED_QUAD = re.compile(r"[0-9]+(?:\.[0-9]+){3}")


def url_problem(url: str) -> str | None:
    """Why ``url`` can never be fetched, or None: the scheme, a host, a port in range,
    and nothing httpx would refuse or silently re-encode (spaces, control bytes)."""
    return None if is_plain_url(url) else httpx_url_problem(url)


def is_plain_url(url: str) -> bool:
    """A URL of the plain shape above, with a port in range: httpx_url_problem has
    nothing to say about it."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is None or len(url) > 2048:
        return False
    if _DOTTED_QUAD.fullmatch(plain.group(1)):
        return False  # an IPv4 address, which httpx checks ("1.2.3.04", "256.0.0.1")
    return 0 < int(plain.group(2) or 80) < 65536


def httpx_url_problem(url: str) -> str | None:
    """``url_problem``, decided by httpx's own URL parser."""
    import httpx  # the fetcher's own parser decides what can be fetched

    if not re.match(r"^https?://", url, re.I):
        return "is not an http(s) URL"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "has spaces or control characters; percent-encode them"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"is not a valid URL ({exc})"
    if not parsed.host:
        return "has no host"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"has port {parsed.port}, outside 1-65535"
    return None


def spec_from_mapping(
    item: dict[str, Any], path: str, defaults: dict[str, Any] | None = None
) -> SourceSpec:
    """Validate one watchlist entry (also used by ``sources add``)."""
    defaults = defaults or {}
    line = item.get(LINE)
    known = {
        *("url", "kind", "label", "tags", "every", "cron", "ignore", "robots", "note"),
        *("verified", "topic", "match_claims", "select", "exclude", "browser"),
        *("block_third_party", LINE),
    }
    for key in item:
        if key in ("allow_private", "allow_redirects_anywhere"):  # never from a file
            raise ConfigError(
                path,
                "a watchlist file cannot let a source reach private addresses; add it "
                "with `claimwatch sources add URL --allow-private`, or set "
                "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=1 for every source",
                line,
                str(key),
            )
        if key not in known:
            raise ConfigError(
                path, f"unknown field (known: {', '.join(sorted(known - {LINE}))})", line, str(key)
            )

    def field(name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = item.get(name, defaults.get(name, default))
        if value is not None and not isinstance(value, kind):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise ConfigError(path, f"must be a {names}, not {type(value).__name__}", line, name)
        return value

    url = field("url", str)
    if not url:
        raise ConfigError(path, "every source needs a url", line, "url")
    problem = url_problem(url)
    if problem:
        raise ConfigError(path, f"{url!r} {problem}", line, "url")
    kind = field("kind", str, "page")
    if kind not in USER_KINDS:
        raise ConfigError(
            path, f"must be one of {', '.join(USER_KINDS)} (got {kind!r})", line, "kind"
        )
    rules = kind_of(kind)
    label = field("label", str)
    if label is not None and (not _LABEL.match(label) or label.isdigit()):
        raise ConfigError(
            path,
            f"{label!r}: use letters, digits, '.', '_' or '-', and at least one letter "
            "(a label must never look like a source id)",
            line,
            "label",
        )
    tags = field("tags", list, [])
    if not all(isinstance(t, str) for t in tags):
        raise ConfigError(path, "must be a list of strings", line, "tags")
    every = field("every", (str, int))
    try:
        interval = parse_interval(str(every)) if every is not None else None
    except UsageError as exc:
        raise ConfigError(path, str(exc), line, "every") from None
    ignore = field("ignore", list, [])
    try:
        compile_patterns(tuple(str(p) for p in ignore))
    except UsageError as exc:
        raise ConfigError(path, str(exc), line, "ignore") from None
    robots = field("robots", bool, True)
    cron = field("cron", str)
    if cron is not None and every is not None:
        raise ConfigError(path, "give every or cron, not both", line, "cron")
    topic = field("topic", str)
    try:
        if cron is not None:
            parse_cron(cron)
        if topic is not None:
            from archiver.claims.topic import parse as parse_topic  # its stemmers load on use

            parse_topic(topic)
    except UsageError as exc:
        raise ConfigError(
            path, str(exc), line, "cron" if cron and "cron" in str(exc) else "topic"
        ) from None
    if (topic is not None or item.get("match_claims")) and not rules.entries:
        raise ConfigError(path, "only feeds take a topic filter", line, "topic")
    select = field("select", str)
    exclude = field("exclude", (list, str), [])
    exclude = [exclude] if isinstance(exclude, str) else exclude
    if not all(isinstance(e, str) for e in exclude):
        raise ConfigError(path, "must be a list of CSS or XPath selectors", line, "exclude")
    if exclude and select is None:
        raise ConfigError(path, "exclude goes with select", line, "exclude")
    if select is not None:
        from archiver.text.selection import Selector  # lxml loads on use
        from archiver.text.selection import check as check_selector

        if not rules.renders:
            raise ConfigError(path, "a feed's entries are its text: no selector", line, "select")
        try:
            check_selector(Selector(select, tuple(exclude)))
        except UsageError as exc:
            raise ConfigError(path, str(exc), line, "select") from None
    browser = bool(field("browser", bool, False))
    block_third_party = bool(field("block_third_party", bool, False))
    if block_third_party and not browser:
        raise ConfigError(path, "block_third_party goes with browser: true", line, "browser")
    if browser and not rules.renders:
        raise ConfigError(path, "a feed is read as it is sent: no browser", line, "browser")
    return SourceSpec(
        url=url,
        kind=kind,
        label=label,
        tags=tuple(tags),
        interval_seconds=interval,
        cron=cron,
        ignore=tuple(str(p) for p in ignore),
        robots=robots,
        origin="seed",
        topic=topic,
        match_claims=bool(field("match_claims", bool, False)),
        select=select,
        exclude=tuple(exclude),
        browser=browser,
        block_third_party=block_third_party,
    )


def load_sources(path: Path) -> list[SourceSpec]:
    data = load_yaml(path)
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("sources", []), list):
        raise ConfigError(str(path), "expected a mapping with a 'sources' list", 1, "sources")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(str(path), "must be a mapping", data.get(LINE), "defaults")
    specs: list[SourceSpec] = []
    seen: dict[str, int] = {}
    for item in data.get("sources") or []:
        if not isinstance(item, dict):
            raise ConfigError(
                str(path), "each source must be a mapping with a url", None, "sources"
            )
        spec = spec_from_mapping(item, str(path), defaults)
        if spec.url in seen:
            raise ConfigError(
                str(path),
                f"{spec.url} is listed twice (first on line {seen[spec.url]})",
                item.get(LINE),
                "url",
            )
        seen[spec.url] = item.get(LINE, 0)
        specs.append(spec)
    labels = [s.label for s in specs if s.label]
    dupes = {x for x in labels if labels.count(x) > 1}
    if dupes:
        raise ConfigError(str(path), f"label {sorted(dupes)[0]!r} is used twice", None, "label")
    return specs


def read_source_file(path: Path, fmt: str = "auto") -> list[SourceSpec]:
    """Sources to import, validated like sources.yaml, from sources.yaml, an OPML file
    (its feeds), or a list of URLs (one a line; '#' starts a comment). Raises
    ``ConfigError`` naming the line before anything is written."""
    if fmt == "auto":
        head = path.read_bytes()[:512].lstrip()
        if path.suffix.lower() in (".yaml", ".yml"):
            fmt = "yaml"
        elif path.suffix.lower() in (".opml", ".xml") or head.startswith(b"<"):
            fmt = "opml"
        else:
            fmt = "urls"
    if fmt == "yaml":
        specs = load_sources(path)
    elif fmt == "opml":
        specs = _opml_sources(path)
    else:
        specs = _url_list(path)
    return [replace(s, origin="user") for s in specs]


def _opml_sources(path: Path) -> list[SourceSpec]:
    from lxml import etree  # only for OPML

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.parse(str(path), parser).getroot()
    except (etree.XMLSyntaxError, OSError) as exc:
        raise ConfigError(str(path), f"malformed OPML: {exc}") from None
    specs: list[SourceSpec] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if not url or url in seen:
            continue
        seen.add(url)
        item = {"url": url.strip(), "kind": "feed", LINE: outline.sourceline}
        specs.append(spec_from_mapping(item, str(path)))
    if not specs:
        raise ConfigError(str(path), "no outline with an xmlUrl (a feed) in this OPML file")
    return specs


def _url_list(path: Path) -> list[SourceSpec]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not UTF-8 text") from None
    specs: list[SourceSpec] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        url = line.strip()  # a URL may hold '#'; only a whole line is a comment
        if not url or url.startswith("#") or url in seen:
            continue
        seen.add(url)
        specs.append(spec_from_mapping({"url": url, LINE: number}, str(path)))
    return specs


def export_sources(rows: list[dict[str, Any]]) -> str:
    """sources.yaml text for these source rows (``sources export``); import reads it back."""
    import yaml

    return yaml.safe_dump({"sources": rows}, sort_keys=False, allow_unicode=True)


def load_seed_articles(seeds_dir: Path) -> list[SeedArticle]:
    articles = []
    for meta_path in sorted(seeds_dir.glob("*.meta.yaml")):
        meta = load_yaml(meta_path)
        p = str(meta_path)
        if not isinstance(meta, dict):
            raise ConfigError(p, "expected a mapping", 1)
        line = meta.get(LINE)
        for required in ("file", "label"):
            if not isinstance(meta.get(required), str):
                raise ConfigError(p, "is required (a string)", line, required)
        text_path = seeds_dir / meta["file"]
        if not text_path.is_file():
            raise ConfigError(p, f"{text_path} does not exist", line, "file")
        published = meta.get("published")
        articles.append(
            SeedArticle(
                label=meta["label"],
                url=meta.get("url") or f"seed:{meta['label']}",
                text_path=text_path,
                title=meta.get("title"),
                language=meta.get("language"),
                published=str(published) if published is not None else None,
                provenance={k: v for k, v in meta.items() if k != LINE},
            )
        )
    return articles


def seed_spec(article: SeedArticle) -> SourceSpec:
    return SourceSpec(
        url=article.url, kind="seed", label=article.label, origin="seed", tags=("seed",)
    )


def default_seeds_dir(configured: str | None = None, bundled: bool = True) -> Path | None:
    """The configured seeds (``service.seeds`` / ``$CLAIMWATCH_SEEDS``), else ./seeds,
    else (with ``bundled``) the seeds beside a source checkout."""
    if configured:
        return Path(configured)
    candidates = [Path.cwd() / "seeds"]
    if bundled:
        candidates.append(Path(__file__).resolve().parents[2] / "seeds")
    for candidate in candidates:
        if (candidate / "sources.yaml").is_file():
            return candidate
    return None
