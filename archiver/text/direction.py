"""The writing direction of a language, for the ``dir`` attribute of HTML we write."""

from __future__ import annotations

# Languages written right to left (ISO 639 codes), as a page or a claims file gives them.
RTL = frozenset({"ar", "fa", "he", "ur", "ps", "yi", "ckb", "dv", "sd", "ug"})


def direction(lang: str | None) -> str:
    """``rtl`` or ``ltr`` for a language code such as ``ar`` or ``de-AT``; ``auto``, for
    the browser to decide from the text, when the language is unknown (``und``, none)."""
    code = (lang or "").strip().split("-")[0].split("_")[0].lower()
    if code in ("", "und"):
        return "auto"
    return "rtl" if code in RTL else "ltr"
