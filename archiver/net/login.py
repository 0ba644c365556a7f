"""A source URL's login (``https://user:password@host/page``), pure.

The fetchers split it off a URL at their entry (``split_login``) and send it as HTTP
Basic authentication only to that URL's origin: scheme, host and port, so neither
robots.txt, nor a redirect to another host or down to http, nor another site a page
asks for gets it. So no URL a check reports or records holds it; what shows a
source's URL masks the password (``store.models.mask_url``). A feed lends its login
to the articles it finds on its own origin (``lend_login``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import httpx

from store.models import mask_url


@dataclass(frozen=True)
class Login:
    """The user and password of a source URL's user information
    (``https://user:password@host/page``): sent as HTTP Basic authentication, only to
    that URL's origin (scheme, host and port), and never part of a URL the fetch
    reports (final URL, redirects, error messages)."""

    user: str
    password: str = field(repr=False)
    origin: tuple[str, str, int]

    def header(self) -> str:
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def authorization(login: Login | None, url: httpx.URL) -> dict[str, str]:
    """The header a request to ``url`` carries for ``login``: none off its origin."""
    if login is None or login.origin != origin_of(url):
        return {}
    return {"Authorization": login.header()}


def origin_of(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def split_login(url: str) -> tuple[str, Login | None]:
    """The URL without user information, and the login that was in it (None without
    one). A URL httpx cannot parse keeps its place, its password masked, for the fetch
    to refuse by name."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return mask_url(url), None
    if not parsed.userinfo:
        return url, None
    login = Login(parsed.username, parsed.password, origin_of(parsed))
    return str(parsed.copy_with(userinfo=b"")), login


def login_hint(headers: dict[str, str]) -> str:
    """What to do about a 401, given the headers the request carried."""
    if "Authorization" in headers:
        return "the login in the source's URL was refused; correct it with 'sources edit'"
    return (
        "the page asks for a login: give it in the source's URL "
        "(https://user:password@host/page); claimwatch never shows the password"
    )


def lend_login(url: str, lender: str) -> str:
    """``url`` with the login of ``lender`` (a feed's URL) when both are on one origin
    and ``url`` has none: the articles a password-protected feed lists on its own
    site need the same login. Otherwise ``url`` as it is."""
    try:
        parsed, owner = httpx.URL(url), httpx.URL(lender)
    except httpx.InvalidURL:
        return url
    if parsed.userinfo or not owner.userinfo or origin_of(parsed) != origin_of(owner):
        return url
    return str(parsed.copy_with(userinfo=owner.userinfo))
