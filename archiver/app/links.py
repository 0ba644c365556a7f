"""Addresses in the web view, for the digest and the alerts to link to (pure).

``[web] url`` says where the web view is reached (``claimwatch web`` behind a
proxy, say). Without it nothing links there: a link to 127.0.0.1 in an e-mail
would lead nowhere for its reader.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def web_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be the web view's address (None: it can)."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https address such as https://claimwatch.example.org"
    if parts.query or parts.fragment:
        return "must not have a query or a fragment (the web view's own paths go after it)"
    if any(c.isspace() or ord(c) < 32 for c in value):
        return "must not hold spaces or control characters"
    return None


def story_link(base: str | None) -> str | None:
    """The story page: the article and its claims' timelines."""
    return f"{base.rstrip('/')}/" if base else None


def flag_link(base: str | None, flag_id: int) -> str | None:
    """The flag's page, where a reviewer confirms or rejects it."""
    return f"{base.rstrip('/')}/flags/{flag_id}" if base else None


def change_link(base: str | None, source_id: int, old: int, new: int) -> str | None:
    """The source's page with the two versions side by side."""
    return f"{base.rstrip('/')}/sources/{source_id}?a={old}&b={new}" if base else None
