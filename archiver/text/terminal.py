"""Outside text as it may reach a terminal (pure): no escape sequences, no control
characters, no bidi overrides. Its own module so the quick commands (``sources
add``) can print safely without loading the diff renderer."""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
    # bidi embeddings, overrides and isolates: they reorder what the terminal shows
    r"|[\u202a-\u202e\u2066-\u2069]"
)


def terminal_safe(text: str) -> str:
    """Text as it may reach a terminal: no escape sequences or control characters."""
    return _ESCAPES.sub("", text)
