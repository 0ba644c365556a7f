"""Configuration: every setting declared once, in ``SETTINGS``.

A setting comes from its environment variable, else from ``claimwatch.toml``
(``--config``, ``$CLAIMWATCH_CONFIG``, or the user config directory), else its
default. From the one table come the file's validation, the environment
overrides, the ``Config`` object, ``config show`` (secrets masked) and
docs/config.md (``python -m archiver.config > docs/config.md``, golden-tested).
Commands receive the loaded ``Config``; nothing else reads the environment for
settings. A bad value is a ``ConfigError`` (exit 2) that names the variable, or
the file and key, and says what is allowed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs

from archiver.app.schedule import format_duration, parse_cron, parse_interval
from archiver.net.mailer import TLS_MODES, SmtpSettings
from store.db import check_db_url, mask_url
from store.errors import NESTED, ConfigError, UsageError


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    kind: type  # str, int, float, bool, list (of strings), or "duration" via parse
    default: Any
    help: str
    env: str | None = None  # the environment variable that overrides the file
    attr: str | None = None  # the Config attribute (default: the key); "smtp.<field>"
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    check: Callable[[Any], Any] | None = None  # converts or raises UsageError
    file: bool = True  # False: environment only (a password is never written in the file)

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def target(self) -> str:
        return self.attr or self.key


def _duration(value: Any) -> int:
    return parse_interval(str(value))


def _cron(value: Any) -> str:
    parse_cron(str(value))
    return str(value)


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
        ) from None
    return str(value)


def _file(value: Any) -> str:
    if not Path(str(value)).is_file():
        raise UsageError(f"{value} is not a file")
    return str(value)


def _web_url(value: Any) -> str:
    from archiver.app.links import web_url_problem

    problem = web_url_problem(str(value))
    if problem:
        raise UsageError(f"{value!r} {problem}")
    return str(value)


def _addresses(value: Any) -> Any:
    """E-mail addresses (one, or a list) as the digest's headers take them: a bare
    addr-spec, no display name, no line break (which would add a header)."""
    from email.headerregistry import Address

    for address in value if isinstance(value, list) else [value]:
        try:
            Address(addr_spec=str(address))
        except Exception:  # the email package raises several kinds for a bad address
            raise UsageError(
                f"{address!r} is not an e-mail address such as desk@example.org"
            ) from None
    return value


# Checks that only refuse (they return the value as given). A default is not run
# through them at each start: the cron check alone imports APScheduler, a tenth of
# `sources add`'s time. tests/test_config.py checks every default passes its check.
_REFUSE_ONLY: tuple[Callable[[Any], Any], ...] = (_cron, _timezone, _file, _addresses)

SETTINGS: tuple[Setting, ...] = (
    Setting("database", "url", str, None, "Database URL: sqlite:///FILE or postgresql://…",
            "CLAIMWATCH_DB", attr="db", secret=True, check=lambda v: check_db_url(str(v))),
    Setting("service", "concurrency", int, 16, "Checks at once.", "CLAIMWATCH_CONCURRENCY",
            low=1, high=512),
    Setting("service", "workers", int, None,
            "Extraction worker processes (default: one per core but one, at least one, "
            "and one more while a run's first extractions queue up).",
            "CLAIMWATCH_WORKERS", low=1, high=256),
    Setting("service", "per_host", int, 2, "Checks at once against one host.", low=1, high=64),
    Setting("service", "host_delay", float, 1.0, "Seconds between two requests to one host.",
            low=0, high=3600),
    Setting("service", "user_agent", str, None, "The User-Agent header (default: claimwatch's).",
            "CLAIMWATCH_USER_AGENT"),
    Setting("service", "tick", float, 5.0, "Seconds between two dispatches of due checks.",
            low=0.1, high=3600),
    Setting("service", "lease", int, 300, "Seconds a claimed check stays leased.",
            low=10, high=86400),
    Setting("service", "jitter", int, 60, "Spread of overdue checks after downtime, seconds.",
            low=0, high=86400),
    Setting("service", "log_format", str, "text", "How serve logs on stderr.",
            "CLAIMWATCH_LOG_FORMAT", choices=("text", "json")),
    Setting("service", "seeds", str, None, "The story's seeds directory (reloaded on SIGHUP).",
            "CLAIMWATCH_SEEDS"),
    Setting("service", "allow_private_addresses", bool, False,
            "Let every source reach loopback and private addresses (tests, intranets); never "
            "cloud metadata addresses.", "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES",
            attr="allow_private"),
    Setting("service", "ca_file", str, None, "Trust these CA certificates for https.",
            "CLAIMWATCH_CA_FILE", check=_file),
    Setting("schedule", "default_every", str, "1h",
            "Check interval of sources without their own (a duration such as 1h).",
            check=_duration),
    Setting("digest", "cron", str, "0 7 * * *", "When serve sends the digest (crontab).",
            "CLAIMWATCH_DIGEST_CRON", attr="digest_cron", check=_cron),
    Setting("digest", "timezone", str, "UTC", "The time zone of the digest's cron.",
            "CLAIMWATCH_TIMEZONE", check=_timezone),
    Setting("digest", "send_empty", bool, False, "Send a digest even when nothing is new."),
    Setting("smtp", "host", str, "localhost", "SMTP server.", "CLAIMWATCH_SMTP_HOST",
            attr="smtp.host"),
    Setting("smtp", "port", int, None, "SMTP port (default: 25, 587 or 465 by tls).",
            "CLAIMWATCH_SMTP_PORT", attr="smtp.port", low=1, high=65535),
    Setting("smtp", "tls", str, "starttls", "How the SMTP connection is secured.",
            "CLAIMWATCH_SMTP_TLS", attr="smtp.tls", choices=TLS_MODES),
    Setting("smtp", "user", str, None, "SMTP user name.", "CLAIMWATCH_SMTP_USER",
            attr="smtp.user"),
    Setting("smtp", "password", str, None,
            "SMTP password: environment only; in the file, use password_file.",
            "CLAIMWATCH_SMTP_PASSWORD", attr="smtp.password", secret=True, file=False),
    Setting("smtp", "password_file", str, None, "A file holding the SMTP password.",
            "CLAIMWATCH_SMTP_PASSWORD_FILE", attr="smtp.password_file"),
    Setting("smtp", "from", str, "claimwatch@localhost", "The digest's sender address.",
            "CLAIMWATCH_SMTP_FROM", attr="smtp.sender", check=_addresses),
    Setting("smtp", "to", list, [], "The digest's recipients (environment: comma-separated).",
            "CLAIMWATCH_SMTP_TO", attr="smtp.recipients", check=_addresses),
    Setting("smtp", "reply_to", str, None, "A Reply-To address.", attr="smtp.reply_to",
            check=_addresses),
    Setting("smtp", "subject_prefix", str, "[claimwatch]", "Put before every subject.",
            attr="smtp.subject_prefix"),
    Setting("browser", "executable", str, "/usr/bin/chromium",
            "The Chromium that --browser sources are rendered in (never downloaded).",
            "CLAIMWATCH_BROWSER", attr="browser_executable"),
    Setting("browser", "max_pages", int, 2, "Browser pages rendering at once.",
            attr="browser_pages", low=1, high=32),
    Setting("browser", "timeout", float, 20.0, "Seconds for a page to load in the browser.",
            attr="browser_timeout", low=1, high=300),
    Setting("matching", "semantic", bool, True,
            "Score claims with the multilingual embedding model (off: lexical rules only).",
            "CLAIMWATCH_SEMANTIC"),
    Setting("matching", "scan_on_reload", bool, True,
            "After a SIGHUP brings new or reworded claims, serve matches the archive's "
            "current text against them (as 'flags scan --claim' does).",
            "CLAIMWATCH_SCAN_ON_RELOAD"),
    Setting("matching", "model", str, None,
            "A claims model trained by 'claims train' (default: the one shipped).",
            "CLAIMWATCH_CLAIMS_MODEL", attr="claims_model"),
    Setting("alerts", "urls", list, [],
            "Apprise URLs that get an alert per change or flag over the thresholds "
            "(environment: comma-separated). One that Apprise cannot read stops 'alerts' "
            "and 'serve' at the start.", "CLAIMWATCH_ALERT_URLS", attr="alert_urls",
            secret=True),
    Setting("alerts", "min_significance", float, 0.5, "Changes at least this significant.",
            attr="alert_min_significance", low=0, high=1),
    Setting("alerts", "min_score", float, 0.7, "Flags (supports or contradicts) at least this "
            "strong.", attr="alert_min_score", low=0, high=1),
    Setting("watch", "phrases", list, [],
            "Phrases to watch across the archive, however small the edit that moves one: the "
            "digest lists each page that started or stopped saying one, and with [alerts] urls "
            "an alert goes out at once (any case and spacing, as 'claimwatch search'; "
            "environment: comma-separated).", "CLAIMWATCH_WATCH_PHRASES", attr="watch_phrases"),
    Setting("web", "token", str, None,
            "Required by 'claimwatch web' on any address but loopback (?token=, or a Bearer "
            "header).", "CLAIMWATCH_WEB_TOKEN", attr="web_token", secret=True),
    Setting("web", "url", str, None,
            "Where readers reach the web view (e.g. https://claimwatch.example.org): the "
            "digest and the alerts then link each flag to its review page and each change "
            "to its versions side by side.", "CLAIMWATCH_WEB_URL", attr="web_url",
            check=_web_url),
    Setting("feeds", "max_new_per_poll", int, 50,
            "Coverage sources one poll of a feed may create; the rest wait.", low=1, high=10000),
)  # fmt: skip


@dataclass(frozen=True)
class Config:
    """The loaded settings (see ``SETTINGS`` for each one's meaning and default)."""

    path: Path | None = None
    db: str | None = None
    concurrency: int = 16
    workers: int | None = None
    per_host: int = 2
    host_delay: float = 1.0
    user_agent: str | None = None
    tick: float = 5.0
    lease: int = 300
    jitter: int = 60
    log_format: str = "text"
    seeds: str | None = None
    allow_private: bool = False
    ca_file: str | None = None
    default_every: int = 3600
    digest_cron: str = "0 7 * * *"
    timezone: str = "UTC"
    send_empty: bool = False
    semantic: bool = True
    scan_on_reload: bool = True
    claims_model: str | None = None
    web_token: str | None = None
    web_url: str | None = None
    alert_urls: list[str] = field(default_factory=list)
    alert_min_significance: float = 0.5
    alert_min_score: float = 0.7
    watch_phrases: list[str] = field(default_factory=list)
    browser_executable: str = "/usr/bin/chromium"
    browser_pages: int = 2
    browser_timeout: float = 20.0
    max_new_per_poll: int = 50
    smtp: SmtpSettings = field(default_factory=SmtpSettings)

    def masked(self) -> dict[str, Any]:
        """The effective configuration by section, secrets masked (``config show``)."""
        out: dict[str, Any] = {"config_file": str(self.path) if self.path else None}
        for s in SETTINGS:
            value = _get(self, s.target)
            if s.secret and value is not None:
                value = mask_url(value) if s.target == "db" else "***"
            if s.target == "default_every":
                value = format_duration(value)
            out.setdefault(s.section, {})[s.key] = (
                list(value) if isinstance(value, tuple) else value
            )
        out["smtp"]["port"] = self.smtp.effective_port
        return out


def _get(cfg: Config, target: str) -> Any:
    if target.startswith("smtp."):
        name = target[5:]
        return None if name == "password_file" else getattr(cfg.smtp, name)
    return getattr(cfg, target)


def default_path() -> Path:
    return platformdirs.user_config_path("claimwatch") / "claimwatch.toml"


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any) and the environment; validate every setting."""
    env = os.environ if env is None else env
    explicit = path or (Path(env["CLAIMWATCH_CONFIG"]) if env.get("CLAIMWATCH_CONFIG") else None)
    path = explicit or default_path()
    data = _read(path, explicit is not None)
    known = {(s.section, s.key): s for s in SETTINGS}
    sections = {s.section for s in SETTINGS}
    for section, table in data.items():
        if section not in sections or not isinstance(table, dict):
            raise ConfigError(str(path), f"unknown section (known: {', '.join(sorted(sections))})",
                              None, section)  # fmt: skip
        for key in table:
            s = known.get((section, key))
            if s is None or not s.file:
                hint = " (put the password in a file: password_file)" if key == "password" else ""
                raise ConfigError(str(path), f"unknown key{hint}", None, f"{section}.{key}")
    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw = env.get(s.env) if s.env else None
        if raw not in (None, ""):
            where = str(s.env) if s.secret else f"{s.env}={raw!r}"  # a secret is never shown
            values[s.target] = _convert(s, _from_env(s, str(raw)), where, str(s.env))
        elif s.key in data.get(s.section, {}):
            values[s.target] = _convert(s, data[s.section][s.key], str(path), s.name)
        elif s.default is None or s.check in _REFUSE_ONLY:
            values[s.target] = s.default  # the table's own value (tests/test_config.py)
        else:
            values[s.target] = _convert(s, s.default, "the default", s.name)
    return _build(values, path if path.exists() else None)


def _read(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(str(path), "file not found")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(str(path), NESTED) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read it: {exc}") from None


def _from_env(s: Setting, raw: str) -> Any:
    """An environment variable's text as the setting's kind (checked by ``_convert``)."""
    if s.kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        return raw
    if s.kind is list:
        return [a.strip() for a in raw.split(",") if a.strip()]
    if s.kind in (int, float):
        try:
            return s.kind(raw.strip())
        except ValueError:
            return raw
    return raw


def _convert(s: Setting, value: Any, where: str, name: str) -> Any:
    """Check a value against its setting; a ConfigError names where it came from."""

    def bad(message: str) -> ConfigError:
        if s.secret:
            message = message.split(", not ")[0]
        if s.env and (where == s.env or where.startswith(f"{s.env}=")):
            return ConfigError(where, message)
        return ConfigError(where, message, None, name)

    ok = isinstance(value, s.kind) and not (s.kind is int and isinstance(value, bool))
    if s.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if s.kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        raise bad(f"must be {_kind_name(s)}, not {value!r}")
    low, high = s.low, s.high
    if low is not None and high is not None and not low <= value <= high:
        raise bad(f"must be from {low:g} to {high:g}, not {value!r}")
    if s.choices and value not in s.choices:
        raise bad(f"must be one of {', '.join(s.choices)}, not {value!r}")
    if s.check is not None:
        try:
            value = s.check(value)
        except UsageError as exc:
            raise bad(str(exc)) from None
    return value


def _kind_name(s: Setting) -> str:
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list of text"}[s.kind]  # fmt: skip


def _build(values: dict[str, Any], path: Path | None) -> Config:
    smtp = {k[5:]: v for k, v in values.items() if k.startswith("smtp.")}
    password_file = smtp.pop("password_file", None)
    if smtp.get("password") is None and password_file:
        try:
            smtp["password"] = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            message = f"cannot read the SMTP password: {exc.strerror}"
            raise ConfigError(str(password_file), message) from None
    smtp["recipients"] = tuple(smtp.get("recipients") or ())
    top = {k: v for k, v in values.items() if not k.startswith("smtp.")}
    return Config(path=path, smtp=replace(SmtpSettings(), **smtp), **top)


def reference() -> str:
    """docs/config.md, from the table."""
    lines = [
        "# claimwatch configuration",
        "",
        "Generated from `archiver/config.py` by `python -m archiver.config`; do not edit by hand.",
        "",
        "Each setting comes from its environment variable, else from `claimwatch.toml`",
        "(`--config FILE`, `$CLAIMWATCH_CONFIG`, or the user config directory), else its",
        "default. `claimwatch config show` prints the effective values, secrets masked.",
        "",
    ]
    section = None
    for s in SETTINGS:
        if s.section != section:
            section = s.section
            lines += [f"## [{section}]", "", "| key | default | environment | meaning |",
                      "|---|---|---|---|"]  # fmt: skip
        default = "-" if s.default in (None, []) else f"`{s.default}`"
        allowed = ""
        if s.choices:
            allowed = f" One of: {', '.join(s.choices)}."
        elif s.low is not None and s.high is not None:
            allowed = f" From {s.low:g} to {s.high:g}."
        key = s.key if s.file else f"({s.key}: environment only)"
        env = f"`{s.env}`" if s.env else "-"
        lines.append(f"| {key} | {default} | {env} | {s.help}{allowed} |")
        if s is SETTINGS[-1] or SETTINGS[SETTINGS.index(s) + 1].section != section:
            lines.append("")
    return "\n".join(lines)


assert {f.name for f in fields(Config)} - {"path", "smtp"} == {
    s.target for s in SETTINGS if not s.target.startswith("smtp.")
}, "Config and SETTINGS must declare the same settings"


if __name__ == "__main__":
    print(reference(), end="")
