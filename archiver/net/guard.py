"""The address guard: which hosts a request may reach, checked where the socket opens.

Every connection the fetcher makes goes through ``GuardedBackend`` (an httpcore
network backend): it resolves the host itself, judges every address it got, and
connects to the address it judged. A DNS answer that changes between a check and
the connect (rebinding) therefore cannot slip past, and robots.txt, feeds, pages,
feed entries' articles and every redirect hop are guarded alike.

The rules (``AddressPolicy``):

* link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
  fd00:ec2::254, 100.100.100.200) are never reached;
* other non-public addresses (loopback, private, shared, unspecified, and
  their NAT64, 6to4, Teredo and IPv4-mapped forms) only from the host a source
  was added for with ``--allow-private`` (``private_host``), or from any host
  when ``anywhere`` is set (``allow_private_addresses``, or a source's
  ``--allow-redirects-anywhere``);
* public addresses always.

The policy of the request in flight is a context variable, set by the fetcher
around each request: httpcore opens a request's connection in the request's
own task, so the backend sees the right one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore

from archiver.net.addresses import IPAddress, classify
from store.errors import BlockedAddress, ConnectFailed


@dataclass(frozen=True)
class AddressPolicy:
    private_host: str | None = None  # this host may be non-public (--allow-private)
    anywhere: bool = False  # every host may be non-public (never metadata)


STRICT = AddressPolicy()  # frozen: safe as the default
POLICY: ContextVar[AddressPolicy] = ContextVar("claimwatch_address_policy", default=STRICT)


def judge(url: str, host: str, addresses: Iterable[IPAddress], policy: AddressPolicy) -> None:
    """Raise ``BlockedAddress`` unless every address of ``host`` may be reached."""
    for address in addresses:
        kind = classify(address)
        if kind == "metadata":
            raise BlockedAddress(
                f"{url} resolves to {address}, a link-local or cloud metadata address, "
                "which claimwatch never fetches"
            )
        if kind == "private" and not (policy.anywhere or _same_host(host, policy.private_host)):
            if policy.private_host is not None:
                raise BlockedAddress(
                    f"{url} resolves to {address}, a non-public address; --allow-private "
                    f"covers {policy.private_host} only (a redirect elsewhere needs "
                    "--allow-redirects-anywhere)"
                )
            raise BlockedAddress(
                f"{url} resolves to {address}, a non-public address; only sources added "
                "with --allow-private (or allow_private_addresses) may reach it"
            )


def _same_host(a: str, b: str | None) -> bool:
    return b is not None and a.strip("[]").lower().rstrip(".") == b.strip("[]").lower().rstrip(".")


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host`` (an IP literal is itself)."""
    bare = host.strip("[]")
    try:
        return [ipaddress.ip_address(bare.split("%", 1)[0])]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConnectFailed(f"{host}: cannot resolve ({reason})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise ConnectFailed(f"{host}: cannot resolve (no addresses)")
    return found


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, judge under the current ``POLICY``, then connect to a judged address."""

    def __init__(self, resolver: Resolver = resolve) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        judge(f"{host}:{port}", host, addresses, POLICY.get())
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress(f"unix socket {path}: claimwatch only fetches over TCP")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
