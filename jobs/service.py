"""``claimwatch serve``: the background service.

The database is the schedule of record: each source's ``next_check_at``.
APScheduler 3 (one scheduler per process, never a shared job store) triggers
this process's periodic work:

* ``dispatch`` every ``tick`` seconds (max_instances=1, coalesce): lease due
  sources (``store.leases.claim``), check them, and finishing each check
  clears its lease in the capture's transaction;
* ``digest`` on its cron, in the configured time zone, under a PostgreSQL
  advisory lock so one worker sends it;
* ``heartbeat`` every 15 s: a ``workers`` row with host, pid and checks done.

SIGTERM/SIGINT stop claiming, let the running dispatch finish (up to
``drain`` seconds), release this worker's leases and exit 0. A check still
running after the deadline is abandoned; every write is one transaction, so
nothing is half-written, and its lease is released. SIGHUP reloads the seeds
(sources.yaml, claims.yaml) and the config's service settings. Claims it adds or
rewords are matched against the archive's current text in a thread beside the
checks (``scan_claims``, as ``flags scan --claim`` would; once across workers, under
an advisory lock), since a check matches only new text; SIGTERM stops that scan
between two sources.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from archiver import pipeline
from archiver.app.digest import DigestOptions
from archiver.app.pool import ExtractionPool
from archiver.app.story import SCAN_HINT, import_seeds, load_seeds, prepare_matching, stored_claims
from archiver.net.browser import BrowserHost
from archiver.net.mailer import SmtpSettings
from jobs import digest as digest_job
from jobs.alerts import AlertOptions, send_pending
from jobs.metrics import Metrics
from store import leases
from store.errors import ClaimwatchError
from store.repo import Store

log = logging.getLogger("claimwatch.serve")
DIGEST_LOCK = 0x636C6D77  # advisory lock key for the digest ("clmw")
SCAN_LOCK = 0x636C6D73  # and for the scan after a reload ("clms")


@dataclass(frozen=True)
class ServiceOptions:
    worker_id: str
    tick: float = 5.0
    lease: int = 300
    batch: int = 64  # sources claimed per dispatch
    jitter: int = 60  # after downtime, spread overdue checks over this many seconds
    drain: float = 8.0  # seconds to let a running dispatch finish on SIGTERM
    digest_cron: str | None = "0 7 * * *"
    timezone: str = "UTC"
    seeds: Path | None = None
    send_empty: bool = False  # send a digest even when nothing is new
    scan_on_reload: bool = True  # match the archive against claims a SIGHUP brings
    web_url: str | None = None  # [web] url: the digest links flags and changes there
    alerts: AlertOptions = field(default_factory=AlertOptions)  # instant alerts (Apprise)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Service:
    def __init__(
        self,
        store: Store,
        options: ServiceOptions,
        check: pipeline.CheckOptions,
        smtp: SmtpSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Metrics | None = None,
        reload: Callable[[], None] | None = None,
    ):
        self.store, self.options, self.check_options = store, options, check
        self.smtp, self.clock, self.metrics, self.reload_hook = smtp, clock, metrics, reload
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.busy = threading.Lock()
        self.checks = 0
        self.failures = 0
        self.drained = True
        self.pool = ExtractionPool(check.processes)  # kept across dispatches
        self.browser = BrowserHost(check.browser)  # one Chromium across dispatches, if needed
        self._backlog_at: float | None = None  # when the backlog gauge was last counted
        self._to_scan: set[str] = set()  # claims a reload brought, waiting for the scan
        self._scanning = threading.Lock()  # held by the scan thread while it scans

    def close(self) -> None:
        """Stop the extraction processes and the browser (``serve`` does this when it stops)."""
        self.pool.close()
        self.browser.close()

    # -- the jobs ----------------------------------------------------------------

    def dispatch(self) -> list[pipeline.CheckResult]:
        """One tick: lease what is due (a batch at a time) and check it."""
        done: list[pipeline.CheckResult] = []
        with self.busy:
            try:
                self._check_due(done)
            finally:
                self.pool.end_burst()  # a first import's helper worker: its backlog is done
            self.alert()
        self._count_backlog()
        return done

    def _check_due(self, done: list[pipeline.CheckResult]) -> None:
        """Lease and check due sources, a batch at a time, until none are left."""
        while not self.stopping.is_set():
            now = self.clock()
            claimed = leases.claim(
                self.store, self.options.worker_id, now, self.options.lease, self.options.batch
            )
            if not claimed.sources:
                break
            results = pipeline.check(
                self.store,
                claimed.sources,
                self.check_options,
                clock=self.clock,
                pool=self.pool,
                browser=self.browser,
            )
            self.checks += len(results)
            self.failures += sum(r.failed for r in results)
            if self.metrics is not None:
                self.metrics.observe(results, claimed.expired)
            for r in results:
                quiet = r.outcome not in ("new_version", "failed", "reverted")
                log.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "check %s: %s%s",
                    r.source.name,
                    r.outcome,
                    f" ({r.error_class}: {r.error})" if r.failed else "",
                    extra={"source": r.source.id, "outcome": r.outcome, "version": r.version},
                )
            done += results
            if len(claimed.sources) < self.options.batch:
                break

    def alert(self) -> None:
        """Announce what passed the alert thresholds since the last pass (each item
        once; failures are kept for status and retried)."""
        if not self.options.alerts.urls:
            return
        report = send_pending(self.store, self.options.alerts, self.clock())
        if report.sent or report.failed:
            log.info("alerts: %d sent, %d failed%s", report.sent, report.failed,
                     f" ({report.errors[0]})" if report.errors else "")  # fmt: skip

    def _count_backlog(self, every: float = 60.0) -> None:
        """The backlog gauge, counted at most once a minute: at a million sources the
        count is a range scan that should not follow every dispatch."""
        if self.metrics is None:
            return
        now = time.monotonic()
        if self._backlog_at is not None and now - self._backlog_at < every:
            return
        self._backlog_at = now
        self.metrics.backlog.set(leases.backlog(self.store, self.clock()).due)

    def digest(self) -> str:
        """Send the digest, once across all workers (advisory lock on PostgreSQL)."""
        if self.smtp is None or not self.smtp.recipients:
            log.warning("digest skipped: no SMTP recipients configured (CLAIMWATCH_SMTP_TO)")
            return "skipped"
        with leases.advisory_lock(self.store, DIGEST_LOCK) as mine:
            if not mine:
                return "elsewhere"
            options = DigestOptions(
                subject_prefix=self.smtp.subject_prefix,
                send_empty=self.options.send_empty,
                web_url=self.options.web_url,
                phrases=self.options.alerts.phrases,  # [watch] phrases
            )
            result = digest_job.run(
                self.store, self.smtp, self.clock(), send_mail=True, options=options
            )
        if self.metrics is not None:
            self.metrics.digests.labels(result.status).inc()
        log.info("digest: %s%s", result.status, f" ({result.error})" if result.error else "")
        return result.status

    def scan_claims(self) -> None:
        """Match the archive's current text against the claims reloads brought, until
        none wait (a reload during a scan adds to the next round). One scan at a time
        in this process; returns at once if one is running, which takes the new claims."""
        while self._to_scan and not self.stopping.is_set():
            if not self._scanning.acquire(blocking=False):
                return
            try:
                ids, self._to_scan = frozenset(self._to_scan), set()
                self._scan(ids)
            finally:
                self._scanning.release()

    def _scan(self, ids: frozenset[str]) -> None:
        from archiver.app.scan import ScanOptions, scan
        from archiver.claims.matcher import Matcher, make_matcher

        names = ", ".join(sorted(ids))
        with leases.advisory_lock(self.store, SCAN_LOCK) as mine:
            if not mine:
                log.info("scan for claims %s: another worker is scanning", names)
                return
            claims = stored_claims(self.store)
            wanted = ids & {c.id for c in claims}
            if not wanted:
                return
            log.info("scan for claims %s: matching the archive's current text", names)

            def stop_if_asked(_source: object) -> None:
                if self.stopping.is_set():
                    raise _Stopped

            try:
                with tempfile.TemporaryDirectory(prefix="claimwatch-scan-") as workdir:
                    opts = self.check_options
                    how = Matcher()
                    if opts.semantic:  # in this thread: the checks keep their workers
                        spec = prepare_matching(
                            self.store, claims, opts.claims_model, Path(workdir), self.clock()
                        )
                        how = make_matcher(spec)
                    report = scan(self.store, claims, how, ScanOptions(only_claims=wanted),
                                  self.clock(), on_source=stop_if_asked)  # fmt: skip
            except _Stopped:
                log.warning("scan for claims %s: stopped by shutdown; %s", names, SCAN_HINT)
                return
            except Exception as exc:  # a bug must not stop the service
                log.exception("scan for claims %s failed: %s; %s", names, exc, SCAN_HINT)
                return
        log.info("scan for claims %s: %d texts read, %d new flags", names, report.versions,
                 len(report.stored))  # fmt: skip

    def heartbeat(self, status: str = "running") -> None:
        leases.heartbeat(
            self.store,
            self.options.worker_id,
            socket.gethostname(),
            os.getpid(),
            self.clock(),
            self.checks,
            status,
        )

    # -- modes -------------------------------------------------------------------

    def run_once(self) -> int:
        """Everything due now, then exit: 0, or 1 if any check failed (the cron convention)."""
        results = self.dispatch()
        return 1 if any(r.failed for r in results) else 0

    def scheduler(self) -> BackgroundScheduler:
        """This process's APScheduler, with its jobs (not started)."""
        sched = BackgroundScheduler(timezone=self.options.timezone)
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        sched.add_job(
            self.dispatch,
            "interval",
            seconds=self.options.tick,
            id="dispatch",
            next_run_time=datetime.now(UTC),
            **common,
        )
        sched.add_job(
            self.heartbeat, "interval", seconds=leases.HEARTBEAT, id="heartbeat", **common
        )
        if self.options.digest_cron:
            trigger = CronTrigger.from_crontab(
                self.options.digest_cron, timezone=self.options.timezone
            )
            sched.add_job(self.digest, trigger, id="digest", **common)
        return sched

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code (0)."""
        spread = leases.spread_overdue(self.store, self.clock(), self.options.jitter)
        if spread:
            log.info("%d overdue sources spread over %ds", spread, self.options.jitter)
        self.heartbeat()
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        sched = self.scheduler()
        sched.start()
        log.info("worker %s serving (tick %.1fs)", self.options.worker_id, self.options.tick)
        try:
            while not self.stopping.wait(0.5):
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self._reload()
        finally:
            sched.shutdown(wait=False)
            drained = self.drained = self.busy.acquire(timeout=self.options.drain)
            self._end_scans()
            released = leases.release(self.store, self.options.worker_id, self.clock())
            if drained:
                self.close()
            self.heartbeat("stopped")
            log.info(
                "worker %s stopped (%s; %d leases released)",
                self.options.worker_id,
                "drained" if drained else "abandoned a running check",
                released,
            )
        return 0

    def _end_scans(self) -> None:
        """At shutdown: wait for a running scan (it stops between sources), and name the
        claims whose scan had not started, with what to run instead. A reload's scan
        thread that had not yet begun would otherwise drop them without a word."""
        if not self._scanning.acquire(timeout=self.options.drain):
            return
        try:  # the scan thread takes its claims under this lock: none can be taken now
            pending, self._to_scan = sorted(self._to_scan), set()
        finally:
            self._scanning.release()
        if pending:
            log.warning(
                "scan for claims %s: not run before shutdown; %s", ", ".join(pending), SCAN_HINT
            )

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        self.stopping.set()

    def _reload(self) -> None:
        """SIGHUP: read the seeds and the config again. Both are read and validated
        before anything changes; a bad file logs one line and the service goes on
        with what it had."""
        log.info("SIGHUP: reloading")
        try:
            seeds = load_seeds(self.options.seeds) if self.options.seeds else None
            if self.reload_hook is not None:
                self.reload_hook()  # validates the config, then swaps it in
            if seeds is not None:
                imported = import_seeds(self.store, seeds, self.clock())  # claims: per dispatch
                if imported.claims_changed and self.options.scan_on_reload:
                    log.info("SIGHUP: claims %s: scanning the archive for them",
                             imported.claims_changed)  # fmt: skip
                    self._to_scan.update(imported.changed_ids)
                    threading.Thread(target=self.scan_claims, name="scan", daemon=True).start()
                elif imported.claims_changed:
                    log.warning("SIGHUP: claims %s: %s", imported.claims_changed, SCAN_HINT)
        except ClaimwatchError as exc:
            log.error("SIGHUP: reload failed, keeping the previous settings: %s", exc)
        except Exception as exc:  # a bug must not stop the service either
            log.exception("SIGHUP: reload failed, keeping the previous settings: %s", exc)


class _Stopped(Exception):
    """SIGTERM during a scan: it stops between two sources (their flags are stored)."""
