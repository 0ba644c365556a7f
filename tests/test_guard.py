"""The address guard covers every request: pages, robots.txt, each redirect hop and
the connect itself (so a DNS answer that changes in between cannot slip past).

The servers listen on two loopback addresses, 127.0.0.1 and 127.0.0.2, which
stand for "the host the user allowed" and "another private host"."""

from __future__ import annotations

import asyncio
import ipaddress
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from archiver.net.fetch import Fetcher, FetchOptions, FetchRequest, FetchResult
from archiver.net.guard import AddressPolicy, IPAddress, classify, judge
from store.errors import BlockedAddress
from tests.support.faultserver import article

OPTS = FetchOptions(host_delay=0, max_attempts=1, read_timeout=2, total_timeout=3)


@contextmanager
def recording_server(host: str, answers: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """A raw server on ``host`` that answers by path and records every request path."""
    seen: list[str] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            while b"\r\n\r\n" not in data:
                more = self.request.recv(4096)
                if not more:
                    return
                data += more
            path = data.split(b" ", 2)[1].decode("latin-1")
            seen.append(path)
            self.request.sendall(
                answers.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            )

    server = socketserver.ThreadingTCPServer((host, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def redirect(location: str) -> bytes:
    return f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()


PAGE = article("guarded").encode()
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(PAGE) + PAGE


def fetch(request: FetchRequest, options: FetchOptions = OPTS, **kw: object) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(options, **kw) as f:  # type: ignore[arg-type]
            return await f.fetch(request)

    return asyncio.run(run())


@pytest.mark.slow
def test_robots_redirect_to_another_private_host_is_never_requested() -> None:
    with (
        recording_server("127.0.0.2", {"/robots.txt": b"User-agent: *\nDisallow: /\n"}) as (
            other,
            other_seen,
        ),
        recording_server(
            "127.0.0.1", {"/robots.txt": redirect(f"{other}/robots.txt"), "/page": OK}
        ) as (base, seen),
    ):
        result = fetch(FetchRequest(url=f"{base}/page", allow_private=True))
    assert result.status == 200 and seen == ["/robots.txt", "/page"]
    assert other_seen == []  # no request, so no open/closed answer to learn from


def test_robots_redirect_to_a_metadata_address_is_never_requested() -> None:
    with recording_server(
        "127.0.0.1",
        {"/robots.txt": redirect("http://169.254.169.254/latest/meta-data/"), "/page": OK},
    ) as (base, seen):
        # Even with every private address allowed, metadata is not: no connect happens
        # (169.254.169.254 would hang until the connect timeout if it were tried).
        result = fetch(FetchRequest(url=f"{base}/page"), replace(OPTS, allow_private=True))
    assert result.status == 200 and seen == ["/robots.txt", "/page"]


def test_allow_private_covers_the_sources_own_host_only() -> None:
    with (
        recording_server("127.0.0.2", {"/page": OK}) as (other, other_seen),
        recording_server("127.0.0.1", {"/go": redirect(f"{other}/page")}) as (base, _seen),
    ):
        request = FetchRequest(url=f"{base}/go", robots=False, allow_private=True)
        with pytest.raises(BlockedAddress, match=r"covers 127\.0\.0\.1 only"):
            fetch(request)
        assert other_seen == []
        anywhere = replace(request, allow_redirects_anywhere=True)
        assert fetch(anywhere).final_url == f"{other}/page"
        assert other_seen == ["/page"]


def test_a_source_without_allow_private_reaches_no_private_host() -> None:
    with (
        recording_server("127.0.0.1", {"/page": OK}) as (base, seen),
        pytest.raises(BlockedAddress, match=r"127\.0\.0\.1, a non-public address"),
    ):
        fetch(FetchRequest(url=f"{base}/page"))
    assert seen == []


def test_a_dns_answer_that_changes_before_the_connect_is_caught() -> None:
    """Rebinding: the hop check is told a public address, the connect a loopback one."""
    answers = iter(["93.184.216.34", "127.0.0.1"])

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(next(answers))]

    with recording_server("127.0.0.1", {"/page": OK}) as (base, seen):
        port = base.rsplit(":", 1)[1]
        request = FetchRequest(url=f"http://rebind.example:{port}/page", robots=False)
        with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1"):
            fetch(request, resolver=rebinding)
    assert seen == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", "public"),
        ("2606:4700::1111", "public"),
        ("2002:808:808::1", "public"),  # 6to4 of a public address
        ("127.0.0.1", "private"),
        ("10.1.2.3", "private"),
        ("100.64.0.1", "private"),  # shared address space (carrier NAT)
        ("0.0.0.0", "private"),
        ("::", "private"),
        ("::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("64:ff9b::7f00:1", "private"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("2002:7f00:1::", "private"),  # 6to4 of 127.0.0.1
        ("169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("::ffff:169.254.169.254", "metadata"),
        ("fe80::1", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
    ],
)
def test_address_classes(address: str, kind: str) -> None:
    assert classify(ipaddress.ip_address(address)) == kind


def test_judge_never_allows_metadata() -> None:
    metadata = [ipaddress.ip_address("169.254.169.254")]
    for policy in (AddressPolicy(), AddressPolicy("h"), AddressPolicy(anywhere=True)):
        with pytest.raises(BlockedAddress, match="cloud metadata"):
            judge("http://h/", "h", metadata, policy)
    judge("http://h/", "h", [ipaddress.ip_address("10.0.0.1")], AddressPolicy("H."))
