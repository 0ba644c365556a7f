"""Network faults from a misbehaving loopback server: each ends as a capture with the
right error class, the service keeps running, and the healthy sources are unaffected."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from archiver import pipeline
from archiver.net.fetch import FetchOptions
from jobs.service import Service, ServiceOptions
from store.models import SourceSpec
from store.repo import Store
from tests.support import NOW
from tests.support.faultserver import fault_server

# path -> (outcome, error class); None: a new version
EXPECTED: dict[str, tuple[str, str | None]] = {
    "/ok": ("new_version", None),
    "/reset": ("failed", "ConnectFailed"),
    "/slowloris": ("failed", "FetchTimeout"),
    "/endless": ("failed", "BodyTooLarge"),
    "/bomb": ("failed", "BodyTooLarge"),
    "/short": ("failed", "BadResponse"),
    "/bad-utf8": ("new_version", None),
    "/lying-charset": ("new_version", None),
    "/empty": ("failed", "EmptyExtraction"),
    "/loop": ("failed", "TooManyRedirects"),
    "/ftp": ("failed", "UnsupportedURL"),
    "/429": ("failed", "HTTPStatusError"),
    "/503": ("failed", "HTTPStatusError"),
    "/huge": ("failed", "PageTooLarge"),
    "/nested": ("failed", "EmptyExtraction"),
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def tls_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture
def servers(ca: trustme.CA) -> Iterator[tuple[str, str, str]]:
    """Plain HTTP faults; HTTPS with a certificate for another name; HTTPS done right."""
    with (
        fault_server() as plain,
        fault_server(tls_context(ca, "claimwatch.test")) as wrong_name,
        fault_server(tls_context(ca, "127.0.0.1")) as right_name,
    ):
        yield plain, wrong_name, right_name


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_every_fault_is_a_capture_and_the_rest_go_on(
    sqlite_store: Store, servers: tuple[str, str, str], ca_file: str
) -> None:
    plain, wrong_name, right_name = servers
    store = sqlite_store
    targets = {f"{plain}{path}": expected for path, expected in EXPECTED.items()}
    targets[f"http://127.0.0.1:{closed_port()}/refused"] = ("failed", "ConnectFailed")
    targets[f"{wrong_name}/ok"] = ("failed", "ConnectFailed")
    targets[f"{right_name}/ok"] = ("new_version", None)
    for url in targets:
        store.add_source(SourceSpec(url=url, interval_seconds=600), NOW)
    fetch = FetchOptions(
        allow_private=True,
        host_delay=0,
        per_host=32,
        concurrency=32,
        max_attempts=2,
        backoff_base=0.01,
        read_timeout=1,
        total_timeout=3,
        ca_file=ca_file,
    )
    clock = {"now": NOW}
    service = Service(
        store,
        ServiceOptions(worker_id="faults", tick=1, lease=60, jitter=0, digest_cron=None),
        pipeline.CheckOptions(fetch=fetch, processes=2, claims=()),
        clock=lambda: clock["now"],
    )
    results = {r.source.url: r for r in service.dispatch()}
    assert set(results) == set(targets)
    got = {url: (r.outcome, r.error_class) for url, r in results.items()}
    assert got == targets

    by_url = {s.url: s for s in store.list_sources()}
    for url, (outcome, error_class) in targets.items():
        [capture] = store.captures(by_url[url].id)
        assert (capture.outcome, capture.error_class) == (outcome, error_class), url
        if outcome == "failed":
            assert capture.error_message, url
            assert by_url[url].consecutive_failures == 1
    messages = {url: r.error for url, r in results.items()}
    assert "mismatch" in (messages[f"{wrong_name}/ok"] or "").lower()
    assert "decompresses to more than the cap" in (messages[f"{plain}/bomb"] or "")
    assert "took longer than 3s in total" in (messages[f"{plain}/slowloris"] or "")
    # Raised in a pool worker, pickled back: the message is said once.
    assert messages[f"{plain}/empty"] == "no article text found: the body is empty"
    # 429 keeps its Retry-After; 503 was retried once after its short one.
    assert by_url[f"{plain}/429"].next_check_at >= NOW + timedelta(hours=1)  # type: ignore[operator]
    assert results[f"{plain}/503"].error == f"HTTP 503 from {plain}/503"
    [c503] = store.captures(by_url[f"{plain}/503"].id)
    assert c503.attempts == 2
    # Decoded text: broken bytes replaced, the lying charset read as the UTF-8 it is.
    bad = store.read_text(store.versions(by_url[f"{plain}/bad-utf8"].id)[0])
    assert "Broken \ufffd\ufffd bytes. The company told investors" in bad
    arabic = store.read_text(store.versions(by_url[f"{plain}/lying-charset"].id)[0])
    assert "قالت ميتا إن إنفاقها سيرتفع." in arabic

    # The service goes on: an hour later the healthy pages are checked again as usual.
    clock["now"] = NOW + timedelta(hours=1, minutes=1)
    again = {r.source.url: r.outcome for r in service.dispatch()}
    assert again[f"{plain}/ok"] == "same_bytes"
    assert again[f"{right_name}/ok"] == "same_bytes"
