"""The ``claimwatch`` command: one click group, its commands in a module per area.

``cli`` (the group, every command registered) and ``base.main`` load on first
use: ``claimwatch --version`` answers before any of it is imported, in the time
Python itself takes to start. ``main`` maps errors to exit codes in one place
(``base.main``).
"""

from __future__ import annotations

import sys
from typing import Any

from archiver import __version__

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"claimwatch, version {__version__}")
        return
    from archiver.cli import base

    _register()
    base.main(argv)


def _register() -> None:
    from archiver.cli import archive, claims, service, sources, views  # noqa: F401 (registers)


def __getattr__(name: str) -> Any:
    if name == "cli":
        from archiver.cli.base import cli

        _register()
        return cli
    raise AttributeError(name)
