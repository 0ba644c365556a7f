"""Recognise a JavaScript app shell: HTML whose text its scripts will write (pure).

Such a page, fetched without a browser, yields either nothing (an empty
``<div id="root">``) or a notice ("You need to enable JavaScript to run this
app"). Either is a failed capture saying to add the source with ``--browser``,
never a version holding the notice as the page's text.
"""

from __future__ import annotations

import re

# "enable JavaScript" notices, in the languages of the coverage claimwatch follows.
_NOTICE = re.compile(
    r"(enable|turn on|activate|allow)\s+javascript|javascript\s+(is\s+)?(required|disabled"
    r"|needs to be enabled|must be enabled)|requires\s+javascript|without\s+javascript"
    r"|javascript\s+aktivieren|activez?\s+(le\s+)?javascript|habilit[ae]r?\s+(el\s+)?javascript"
    r"|ative\s+o\s+javascript|تفعيل\s+(جافا\s*سكريبت|javascript)|启用\s*javascript"
    r"|javascript\s*を有効",
    re.IGNORECASE,
)
# An element whose id says "the app mounts here", empty in the HTML as sent.
_EMPTY_ROOT = re.compile(
    rb"<(div|main|section|app-root)\b[^>]*\bid=[\"']?(root|app|__next|__nuxt|main-app|"
    rb"svelte|q-app|application)[\"']?[^>]*>\s*</\1>",
    re.IGNORECASE,
)
_SCRIPT = re.compile(rb"<script\b", re.IGNORECASE)
SHORT = 400  # characters: a real article says more than a notice
# Kept as the source's warning after such a failure: status and sources list show it.
BROWSER_HINT = "built by JavaScript: add it again with --browser to render it"


def shell_reason(body: bytes, text: str | None) -> str | None:
    """Why this page looks like a JavaScript shell, or None. ``text`` is what
    extraction found (None: it found nothing)."""
    if text is not None and len(text) <= SHORT and _NOTICE.search(text):
        return "its text is an 'enable JavaScript' notice"
    if (text is None or len(text) <= SHORT) and _SCRIPT.search(body) and _EMPTY_ROOT.search(body):
        return "its body is an empty app root that scripts fill in"
    return None
