"""Commands that run or report on the service: digest, serve, config, status."""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from archiver.config import Config
    from jobs.alerts import AlertOptions
    from jobs.demo import DemoResult
from rich.text import Text

from archiver.app.seeds import default_seeds_dir
from archiver.app.status import StatusOptions, status_record
from archiver.app.words import counted
from archiver.cli.base import (
    SEMANTIC,
    SINCE,
    App,
    check_options,
    cli,
    emit_json,
    make_console,
    parse_since,
    program_name,
    use_semantic,
    when,
)
from archiver.config import load as load_config
from archiver.net.mailer import SendError
from archiver.text.terminal import terminal_safe
from store.db import mask_url
from store.errors import UsageError
from store.leases import ServeLock

# -- digest ---------------------------------------------------------------------


@cli.command()
@click.option("--dry-run", is_flag=True, help="Compose only: mark nothing as sent.")
@click.option("--send", "send_mail", is_flag=True, help="Send it (SMTP settings from the env).")
@SINCE
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the .eml and an .html preview here.",
)
@click.option("--send-empty", is_flag=True, help="Send a 'nothing changed' digest too.")
@click.pass_obj
def digest(
    app: App,
    dry_run: bool,
    send_mail: bool,
    since: str | None,
    out_dir: Path | None,
    send_empty: bool,
) -> int:
    """The email digest: what changed and what it means for the claims.

    Without --since it covers everything since the last digest that was sent.
    SMTP: the [smtp] section of the config, or CLAIMWATCH_SMTP_HOST, _PORT, _TLS
    (none|starttls|ssl), _USER, _PASSWORD (or _PASSWORD_FILE), _FROM, _TO
    (comma-separated); see docs/config.md."""
    if dry_run == send_mail:
        raise UsageError("give --dry-run or --send")
    from jobs import digest as digest_job  # the mail stack, only for this command

    settings = app.config.smtp
    from archiver.app.digest import DigestOptions

    options = DigestOptions(
        subject_prefix=settings.subject_prefix,
        send_empty=send_empty or app.config.send_empty,
        web_url=app.config.web_url,
        phrases=watched_phrases(app.config),
    )
    result = digest_job.run(
        app.store(),
        settings,
        app.now,
        send_mail=send_mail,
        since=parse_since(since, app.now) if since else None,
        out_dir=out_dir,
        options=options,
    )
    for path in result.files:
        click.echo(f"wrote {path}", err=True)
    if result.status == "dry-run" and result.composed is not None and not out_dir:
        click.echo(terminal_safe(f"Subject: {result.composed.subject}\n"))
        click.echo(terminal_safe(result.composed.text))
    elif result.status == "failed":
        raise SendError(result.error or "the digest was not sent")
    else:
        subject = result.composed.subject if result.composed else "(the interrupted digest)"
        click.echo(
            {
                "sent": f"sent: {subject}",
                "resent": f"resent {result.message_id} "
                "(a previous send was interrupted); run again for anything newer",
                "empty": "nothing new since the last digest; nothing sent",
                "dry-run": f"composed: {subject}",
            }[result.status]
        )
    return 0


# -- service ----------------------------------------------------------------------


def setup_logging(fmt: str) -> None:
    """One handler on the root logger, so every library's records (APScheduler's,
    warnings) take the same form: with ``json``, every line on stderr is one JSON
    object, tracebacks included. Ours log from INFO, others from WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    ours = logging.getLogger("claimwatch")
    ours.handlers[:] = []
    ours.setLevel(logging.INFO)
    ours.propagate = True
    logging.captureWarnings(True)

    def thread_died(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        logging.getLogger("claimwatch.serve").error(
            "thread %s died",
            args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    threading.excepthook = thread_died


class _TextFormatter(logging.Formatter):
    """Text lines; page text and URLs in them are made terminal-safe."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("source", "outcome", "version"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


@cli.command()
@click.option(
    "--workers-id", "--worker-id", "worker_id", help="This worker's id (default: host-pid)."
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    help="Checks at once (config: service.concurrency).",
)
@click.option(
    "--once", is_flag=True, help="Run everything due, then exit (for cron or a systemd timer)."
)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Logs on stderr.")
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics here."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@SEMANTIC
@click.pass_obj
def serve(
    app: App,
    worker_id: str | None,
    concurrency: int | None,
    once: bool,
    log_format: str | None,
    metrics_port: int | None,
    metrics_host: str,
    semantic: bool | None,
) -> None:
    """Run the service: check sources when due, send the digest on its cron.

    On SQLite one serve owns the store; on PostgreSQL run as many as you like.
    SIGTERM/SIGINT finish the running checks and exit; SIGHUP reloads the seeds."""
    use_semantic(app, semantic)
    cfg = app.config
    setup_logging(log_format or cfg.log_format)
    store = app.store()
    from jobs.metrics import Metrics
    from jobs.service import Service, ServiceOptions, default_worker_id

    options = ServiceOptions(
        worker_id=worker_id or default_worker_id(),
        tick=cfg.tick,
        lease=cfg.lease,
        jitter=0 if once else cfg.jitter,
        digest_cron=cfg.digest_cron,
        timezone=cfg.timezone,
        seeds=Path(cfg.seeds) if cfg.seeds else None,
        send_empty=cfg.send_empty,
        scan_on_reload=cfg.scan_on_reload,
        web_url=cfg.web_url,
        alerts=alert_options(cfg),
    )
    options_now = check_options(cfg, concurrency)
    metrics = Metrics() if metrics_port else None
    with ServeLock(store):
        service = Service(store, options, options_now, cfg.smtp, metrics=metrics)

        def reload_config() -> None:
            """SIGHUP: fetch limits, workers, user agent and SMTP settings, read again."""
            fresh = load_config(cfg.path)
            service.smtp = fresh.smtp
            service.check_options = check_options(fresh, concurrency)
            if service.pool.resize(service.check_options.processes):
                logging.getLogger("claimwatch.serve").info(
                    "SIGHUP: %d extraction workers from the next dispatch", service.pool.processes
                )

        service.reload_hook = reload_config
        if once:
            code = service.run_once()
            service.close()
            sys.exit(code)
        if metrics is not None and metrics_port:
            metrics.serve(metrics_port, metrics_host)
        code = service.serve()
    if not service.drained:  # a check thread is still running: leave without joining it
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@cli.group("config")
def config_group() -> None:
    """The configuration file (claimwatch.toml) and environment."""


@config_group.command("show")
@click.pass_obj
def config_show(app: App) -> None:
    """The effective configuration, secrets masked."""
    data = app.config.masked()
    data["database"]["url"] = mask_url(app.db_url)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# -- status -------------------------------------------------------------------


def status_options(app: App) -> StatusOptions:
    """What the status record needs from the command line and the config."""
    return StatusOptions(app.db_url, app.config.digest_cron, app.config.timezone)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Counts, workers, the due backlog, failing sources, and the digests."""
    data = status_record(app.store(), app.now, status_options(app))
    if as_json:
        emit_json([data])
        return
    console = make_console()
    console.print(f"store      {data['db']}", highlight=False)
    console.print(
        f"sources    {data['sources']}\nversions   {data['versions']}\n"
        f"captures   {data['captures']} ({data['failed_captures']} failed)\n"
        f"blob bytes {data['blob_bytes']}"
        + ("\n(large tables: PostgreSQL's estimates)" if data["approximate"] else ""),
        highlight=False,
    )
    backlog = data["backlog"]
    oldest = ""
    if backlog["due"]:
        name = terminal_safe(backlog["oldest_source"] or "")
        oldest = f", oldest due since {when(backlog['oldest_due_at'])} ({name})"
    console.print(
        f"backlog    {backlog['due']} due, {backlog['leased']} leased{oldest}", highlight=False
    )
    console.print(
        f"digest     last sent {when(data['last_digest'])}, next {when(data['next_digest'])}",
        highlight=False,
    )
    alerts = data["alerts"]
    if alerts["failing"]:
        console.print(
            Text(
                terminal_safe(
                    f"alerts     {alerts['failing']} failing, retried at the next pass: "
                    f"{alerts['last_error']}"
                ),
                style="red",
            )
        )
    for w in data["workers"]:
        console.print(
            f"worker     {w['id']} ({w['host']}, pid {w['pid']}) {w['status']}, "
            f"heartbeat {when(w['heartbeat_at'])}, {w['checks']} checks",
            highlight=False,
        )
    if data["failing"]:
        console.print(Text("failing:", style="red"))
        for f in data["failing"]:
            console.print(
                f"  {terminal_safe(f['source'])}: {f['consecutive_failures']} in a row",
                highlight=False,
            )
    if data["warnings"]:
        console.print(Text("warnings:", style="yellow"))
        for w in data["warnings"]:
            console.print(f"  {terminal_safe(w['source'])}: {terminal_safe(w['warning'] or '')}")
    if data["next_due"]:
        console.print("next due:")
        for d in data["next_due"]:
            console.print(
                f"  {when(d['next_check_at'])}  {terminal_safe(d['source'])}", highlight=False
            )


# -- demo ---------------------------------------------------------------------


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("claimwatch-demo"),
    show_default=True,
    help="Where the demo's store and digest preview go (replaced if present).",
)
@click.option(
    "--seeds",
    "seeds_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Seeds directory with demo/timeline.yaml [default: the bundled seeds]",
)
@SEMANTIC
@click.pass_obj
def demo(app: App, directory: Path, seeds_dir: Path | None, semantic: bool | None) -> None:
    """The whole story offline: archive, changes, flags and a digest, in under a minute."""
    from jobs import demo as demo_job

    seeds_dir = seeds_dir or default_seeds_dir(app.config.seeds)
    if seeds_dir is None or not (seeds_dir / "demo" / "timeline.yaml").exists():
        raise UsageError("no demo timeline found; pass --seeds DIR (with demo/timeline.yaml)")
    click.echo(f"replaying {seeds_dir / 'demo' / 'timeline.yaml'} into {directory}/")
    use_semantic(app, semantic)
    result = demo_job.run(directory, seeds_dir, say=click.echo, semantic=app.config.semantic)
    db = f"sqlite:///{directory / 'claimwatch.db'}"
    click.echo("")
    click.echo(
        f"archived: {sum(result.versions.values())} versions of {len(result.versions)} pages "
        f"({result.sources} sources, found by the feed included)"
    )
    click.echo(
        f"changes:  {counted(result.changes, 'edit')}, "
        f"{counted(result.reverts, 'flip-back')} recognised"
    )
    click.echo("flags per claim:")
    for claim, stances in sorted(result.flags.items()):
        parts = [f"{n} {stance}" for stance, n in sorted(stances.items()) if stance != "removed"]
        if stances["removed"]:
            parts.append(f"{stances['removed']} removed from pages")
        click.echo(f"  {claim}: {', '.join(parts)}")
    for path in result.digest_files:
        click.echo(f"digest preview: {path}")
    click.echo("\nexplore:")
    program = program_name(sys.argv[0], shutil.which("claimwatch"))
    for command in explore_commands(result):
        click.echo(f"  {program} --db {shlex.quote(db)} {command}")


def explore_commands(result: DemoResult) -> list[str]:
    """What to try next on the demo's store, named from what this timeline produced
    (``--seeds`` may hold another story): its most revised watched page, its most
    flagged claim, the flags that contradict a claim when there are any, and what pages
    stopped saying when an edit removed a sentence that bore on a claim."""
    labelled = {k: n for k, n in result.versions.items() if "://" not in k}  # not the
    # feed's finds: their URLs name the replay server's port, gone when the demo ends
    revised = sorted(labelled.items(), key=lambda kv: (-kv[1], kv[0]))
    flagged = sorted(result.flags.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    against = any(stances.get("contradicts") for stances in result.flags.values())
    return [
        "sources list",
        "changes",
        *([f"diff {revised[0][0]}"] if revised and revised[0][1] > 1 else []),
        "claims list",
        *([f"claims show {flagged[0][0]}"] if flagged else []),
        "flags --stance contradicts" if against else "flags",
        *(["flags --removed"] if any(s.get("removed") for s in result.flags.values()) else []),
    ]


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.pass_obj
def web(app: App, host: str, port: int) -> None:
    """The web view: the story and its claims' timelines, sources, versions side by
    side, changes, flags with review, Atom feeds and /api/v1 (claimwatch[web]).
    Listens on 127.0.0.1; any other address needs [web] token (CLAIMWATCH_WEB_TOKEN)."""
    try:
        import uvicorn

        from archiver.web import WebOptions, create_app, is_loopback
    except ImportError as exc:  # the extra is not installed (starlette, uvicorn...)
        raise UsageError(
            f"the web view needs {exc.name or 'its packages'}: pip install 'claimwatch[web]'"
        ) from None
    token = app.config.web_token
    if not is_loopback(host) and not token:
        raise UsageError(
            f"--host {host} is reachable from other machines: set CLAIMWATCH_WEB_TOKEN "
            "(or [web] token) first, or listen on 127.0.0.1"
        )
    store = app.store()
    click.echo(f"claimwatch web on http://{host}:{port}/", err=True)
    web_app = create_app(store, WebOptions(token=token, status=status_options(app)))
    uvicorn.run(web_app, host=host, port=port, log_level="warning")


def watched_phrases(cfg: Config) -> tuple[str, ...]:
    """[watch] phrases, each long enough to mean something (refused at the start)."""
    from archiver.text.search import MIN_PHRASE, too_short

    for phrase in cfg.watch_phrases:
        if too_short(phrase):
            raise UsageError(
                f"[watch] phrases: {phrase!r} is too short; give at least {MIN_PHRASE} characters"
            )
    return tuple(cfg.watch_phrases)


def alert_options(cfg: Config) -> AlertOptions:
    """The [alerts] settings; an address Apprise cannot read is refused here, at the
    start, rather than failing every alert of a running service."""
    from jobs.alerts import AlertOptions, unreadable_alert_url

    for n, url in enumerate(cfg.alert_urls, start=1):
        why = unreadable_alert_url(url)
        if why:
            raise UsageError(f"[alerts] urls, address {n} of {len(cfg.alert_urls)}: {why}")
    return AlertOptions(
        urls=tuple(cfg.alert_urls),
        min_significance=cfg.alert_min_significance,
        min_score=cfg.alert_min_score,
        web_url=cfg.web_url,
        phrases=watched_phrases(cfg),
    )


@cli.command()
@click.pass_obj
def alerts(app: App) -> None:
    """Send the instant alerts that are due now (serve does this after every dispatch):
    one Apprise message per change and flag over [alerts] thresholds, each once."""
    from jobs.alerts import send_pending

    options = alert_options(app.config)
    if not options.urls:
        raise UsageError("no alert URLs: set [alerts] urls (or CLAIMWATCH_ALERT_URLS)")
    report = send_pending(app.store(), options, app.now)
    if report.elsewhere:
        click.echo("alerts: another worker is sending them now; nothing sent here")
        return
    click.echo(f"alerts: {report.sent} sent, {report.failed} failed")
    if report.failed:
        click.echo(terminal_safe(f"first error: {report.errors[0]}"), err=True)
        sys.exit(1)
