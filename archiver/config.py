"""Configuration: ``claimwatch.toml`` with environment overrides.

The file is found at ``--config``, ``$CLAIMWATCH_CONFIG``, or
``claimwatch.toml`` in the user config directory (optional). Every key is
optional::

    [database]
    url = "postgresql://claimwatch@db/claimwatch"     # or $CLAIMWATCH_DB
    [service]
    concurrency = 16          # checks at once          ($CLAIMWATCH_CONCURRENCY)
    per_host = 2              # at once per host
    host_delay = 1.0          # seconds between requests to one host
    user_agent = "claimwatch/0.1 (ops@example.org)"   ($CLAIMWATCH_USER_AGENT)
    tick = 5                  # seconds between dispatches
    lease = 300               # seconds a claimed check stays leased
    jitter = 60               # spread of overdue checks after downtime, seconds
    log_format = "text"       # or "json"               ($CLAIMWATCH_LOG_FORMAT)
    seeds = "/srv/story/seeds"  # reloaded on SIGHUP     ($CLAIMWATCH_SEEDS)
    allow_private_addresses = false  # let every source reach loopback/private addresses
                              # (tests, intranets)   ($CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=1)
    ca_file = "/etc/ssl/intranet-ca.pem"  # trust these CAs for https ($CLAIMWATCH_CA_FILE)
    [schedule]
    default_every = "1h"      # sources without their own interval
    [digest]
    cron = "0 7 * * *"        # when the service sends it  ($CLAIMWATCH_DIGEST_CRON)
    timezone = "UTC"          #                            ($CLAIMWATCH_TIMEZONE)
    send_empty = false
    [smtp]
    host = "smtp.example.org"; port = 587; tls = "starttls"; user = "me"
    password_file = "/run/secrets/smtp"   # never the password itself
    from = "claimwatch@example.org"; to = ["ana@example.org"]; reply_to = ""
    subject_prefix = "[claimwatch]"
    [matching]
    semantic = false          # embeddings (the 'semantic' extra)
    [feeds]
    max_new_per_poll = 50     # coverage sources one poll of a feed may create

SMTP keys are overridden by the ``CLAIMWATCH_SMTP_*`` variables.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs

from archiver.errors import ConfigError, UsageError
from archiver.mailer import TLS_MODES, SmtpSettings, settings_from_env
from archiver.schedule import parse_cron, parse_interval
from store.db import mask_url

_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "database": {"url": str},
    "service": {
        "concurrency": int,
        "per_host": int,
        "host_delay": (int, float),
        "user_agent": str,
        "tick": (int, float),
        "lease": int,
        "jitter": int,
        "log_format": str,
        "seeds": str,
        "ca_file": str,
    },
    "schedule": {"default_every": str},
    "digest": {"cron": str, "timezone": str, "send_empty": bool},
    "smtp": {
        "host": str,
        "port": int,
        "tls": str,
        "user": str,
        "password_file": str,
        "from": str,
        "to": list,
        "reply_to": str,
        "subject_prefix": str,
    },
    "matching": {"semantic": bool},
    "feeds": {"max_new_per_poll": int},
}


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    db: str | None = None
    concurrency: int = 16
    per_host: int = 2
    host_delay: float = 1.0
    user_agent: str | None = None
    tick: float = 5.0
    lease: int = 300
    jitter: int = 60
    log_format: str = "text"
    seeds: str | None = None
    default_every: int = 3600
    digest_cron: str = "0 7 * * *"
    timezone: str = "UTC"
    send_empty: bool = False
    semantic: bool = False
    allow_private: bool = False  # fetch loopback/private addresses from any source
    ca_file: str | None = None  # CA certificates trusted for https instead of the system's
    max_new_per_poll: int = 50  # coverage sources one poll of a feed may create
    smtp: SmtpSettings = field(default_factory=SmtpSettings)

    def masked(self) -> dict[str, Any]:
        """The effective configuration with secrets masked (for ``config show``)."""
        return {
            "config_file": str(self.path) if self.path else None,
            "database": {"url": mask_url(self.db) if self.db else None},
            "service": {
                "concurrency": self.concurrency,
                "per_host": self.per_host,
                "host_delay": self.host_delay,
                "user_agent": self.user_agent,
                "tick": self.tick,
                "lease": self.lease,
                "jitter": self.jitter,
                "log_format": self.log_format,
                "seeds": self.seeds,
                "allow_private_addresses": self.allow_private,
                "ca_file": self.ca_file,
            },
            "schedule": {"default_every": self.default_every},
            "digest": {
                "cron": self.digest_cron,
                "timezone": self.timezone,
                "send_empty": self.send_empty,
            },
            "smtp": self.smtp.masked(),
            "matching": {"semantic": self.semantic},
            "feeds": {"max_new_per_poll": self.max_new_per_poll},
        }


def default_path() -> Path:
    return platformdirs.user_config_path("claimwatch") / "claimwatch.toml"


def load(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the config file (if any) and apply environment overrides; validate all."""
    env = dict(os.environ) if env is None else env
    explicit = path or (Path(env["CLAIMWATCH_CONFIG"]) if env.get("CLAIMWATCH_CONFIG") else None)
    path = explicit or default_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"malformed TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"cannot read it: {exc}") from None
    elif explicit is not None:
        raise ConfigError(str(path), "file not found")
    _check(data, str(path))
    section = lambda name: data.get(name, {})  # noqa: E731
    svc, dig, smtp = section("service"), section("digest"), section("smtp")
    cfg = Config(
        path=path if path.exists() else None,
        db=env.get("CLAIMWATCH_DB") or section("database").get("url"),
        concurrency=int(env.get("CLAIMWATCH_CONCURRENCY") or svc.get("concurrency", 16)),
        per_host=svc.get("per_host", 2),
        host_delay=float(svc.get("host_delay", 1.0)),
        user_agent=env.get("CLAIMWATCH_USER_AGENT") or svc.get("user_agent"),
        tick=float(svc.get("tick", 5.0)),
        lease=svc.get("lease", 300),
        jitter=svc.get("jitter", 60),
        log_format=env.get("CLAIMWATCH_LOG_FORMAT") or svc.get("log_format", "text"),
        seeds=env.get("CLAIMWATCH_SEEDS") or svc.get("seeds"),
        default_every=parse_interval(section("schedule").get("default_every", "1h")),
        digest_cron=env.get("CLAIMWATCH_DIGEST_CRON") or dig.get("cron", "0 7 * * *"),
        timezone=env.get("CLAIMWATCH_TIMEZONE") or dig.get("timezone", "UTC"),
        send_empty=dig.get("send_empty", False),
        semantic=section("matching").get("semantic", False),
        allow_private=env.get("CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES", "").lower()
        in ("1", "true", "yes")
        or svc.get("allow_private_addresses", False),
        ca_file=env.get("CLAIMWATCH_CA_FILE") or svc.get("ca_file"),
        max_new_per_poll=section("feeds").get("max_new_per_poll", 50),
    )
    if cfg.ca_file and not Path(cfg.ca_file).is_file():
        raise ConfigError(str(path), f"{cfg.ca_file} is not a file", field="ca_file")
    base = SmtpSettings(
        host=smtp.get("host", "localhost"),
        port=smtp.get("port"),
        tls=smtp.get("tls", "starttls"),
        user=smtp.get("user"),
        sender=smtp.get("from", "claimwatch@localhost"),
        recipients=tuple(smtp.get("to", ())),
        reply_to=smtp.get("reply_to") or None,
        subject_prefix=smtp.get("subject_prefix", "[claimwatch]"),
    )
    if smtp.get("password_file") and not env.get("CLAIMWATCH_SMTP_PASSWORD_FILE"):
        env = {**env, "CLAIMWATCH_SMTP_PASSWORD_FILE": smtp["password_file"]}
    cfg = replace(cfg, smtp=settings_from_env(base, env))
    _validate(cfg, str(path))
    return cfg


def _check(data: dict[str, Any], path: str) -> None:
    for name, value in data.items():
        if name not in _SCHEMA or not isinstance(value, dict):
            raise ConfigError(path, f"unknown section (known: {', '.join(_SCHEMA)})", None, name)
        for key, item in value.items():
            kind = _SCHEMA[name].get(key)
            if kind is None:
                hint = " (put the password in a file: password_file)" if key == "password" else ""
                raise ConfigError(path, f"unknown key{hint}", None, f"{name}.{key}")
            if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
                raise ConfigError(
                    path, f"has the wrong type ({type(item).__name__})", None, f"{name}.{key}"
                )


def _validate(cfg: Config, path: str) -> None:
    if cfg.log_format not in ("text", "json"):
        raise ConfigError(path, "must be 'text' or 'json'", None, "service.log_format")
    if cfg.smtp.tls not in TLS_MODES:
        raise ConfigError(path, f"must be one of {', '.join(TLS_MODES)}", None, "smtp.tls")
    if cfg.concurrency < 1 or cfg.per_host < 1 or cfg.tick <= 0 or cfg.lease < 10:
        raise ConfigError(
            path, "concurrency, per_host, tick must be positive; lease >= 10", None, "service"
        )
    if not 1 <= cfg.max_new_per_poll <= 10_000:
        raise ConfigError(path, "must be from 1 to 10000", None, "feeds.max_new_per_poll")
    try:
        ZoneInfo(cfg.timezone)
        parse_cron(cfg.digest_cron, cfg.timezone)
    except ZoneInfoNotFoundError:
        raise ConfigError(
            path, f"unknown time zone {cfg.timezone!r}", None, "digest.timezone"
        ) from None
    except UsageError as exc:
        raise ConfigError(path, str(exc), None, "digest.cron") from None
