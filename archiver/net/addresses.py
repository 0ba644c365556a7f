"""What kind of address an IP address is: public, private or a cloud metadata one.

Standard library only, so ``sources add`` can judge a literal address in a URL
without loading the network stack; ``archiver.net.guard`` judges every connection
with the same rules.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded(address: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 addresses it carries (mapped, NAT64, 6to4, Teredo)."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def classify(address: IPAddress) -> Literal["public", "private", "metadata"]:
    forms = embedded(address)
    if any(a.is_link_local or any(a in net for net in METADATA) for a in forms):
        return "metadata"
    if any(not a.is_global or a.is_multicast or a.is_unspecified for a in forms):
        return "private"
    return "public"


def literal_host_kind(host: str | None) -> Literal["public", "private", "metadata"] | None:
    """The kind of a URL's host when it names an address itself (``127.0.0.1``,
    ``[::1]``, ``localhost``); None for a name, which only DNS can tell."""
    name = (host or "").strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "private"
    try:
        return classify(ipaddress.ip_address(name))
    except ValueError:
        return None


def literal_url_kind(url: str) -> Literal["public", "private", "metadata"] | None:
    """``literal_host_kind`` of a URL's host."""
    from urllib.parse import urlsplit

    return literal_host_kind(urlsplit(url).hostname)
