"""Prometheus metrics for the service (``serve --metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from archiver.pipeline import CheckResult


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.checks = Counter("claimwatch_checks", "Checks by outcome", ["outcome"], registry=r)
        buckets = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
        self.latency = Histogram(
            "claimwatch_check_seconds", "A check, fetch to commit", buckets=buckets, registry=r
        )
        self.fetch = Histogram(
            "claimwatch_fetch_seconds", "The fetch of a check", buckets=buckets, registry=r
        )
        self.flags = Counter("claimwatch_flags_created", "Claims flags raised", registry=r)
        self.versions = Counter("claimwatch_versions_created", "New versions archived", registry=r)
        self.backlog = Gauge("claimwatch_backlog", "Sources due and not leased", registry=r)
        self.expiries = Counter(
            "claimwatch_lease_expiries", "Leases taken over after they expired", registry=r
        )
        self.digests = Counter(
            "claimwatch_digests", "Digest runs by status", ["status"], registry=r
        )

    def observe(self, results: list[CheckResult], expired: int) -> None:
        for r in results:
            self.checks.labels(r.outcome).inc()
            self.latency.observe(r.duration_ms / 1000)
            if r.fetch_ms is not None:
                self.fetch.observe(r.fetch_ms / 1000)
            if r.outcome == "new_version":
                self.versions.inc()
            self.flags.inc(r.flags)
        self.expiries.inc(expired)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
