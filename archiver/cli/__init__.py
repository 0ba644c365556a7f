"""The ``claimwatch`` command: one click group, its commands in a module per area.

``cli`` (the group, every command registered) and ``base.main`` load on first
use: ``claimwatch --version`` answers before any of it is imported, in the time
Python itself takes to start. ``main`` maps errors to exit codes in one place
(``base.main``).
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from archiver import __version__

__all__ = ["cli", "main"]


# The module that registers each command. ``main`` imports only the one its command
# line names, so ``sources add`` does not pay for the web view's or the matcher's
# imports; help and unknown names import them all. tests/test_cli.py checks this
# table against the commands the modules register.
COMMANDS = {
    "init": "sources",
    "sources": "sources",
    "check": "sources",
    "history": "views",
    "show": "views",
    "diff": "views",
    "changes": "views",
    "search": "views",
    "claims": "claims",
    "flags": "flags",
    "digest": "service",
    "serve": "service",
    "alerts": "service",
    "config": "service",
    "status": "service",
    "demo": "service",
    "web": "service",
    "verify": "archive",
    "export": "archive",
    "gc": "archive",
}
GROUP_VALUE_OPTIONS = ("--db", "--config")  # the group's options that take a value


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"claimwatch, version {__version__}")
        return
    from archiver.cli import base

    _register(command_of(args))
    try:
        base.main(argv)
    finally:
        _skip_exit_collection()


def _skip_exit_collection() -> None:
    """Move every live object out of the collector's reach before the process exits.

    Python's last garbage collection walks every object the imports made (SQLAlchemy
    alone makes over 100,000), about 30 ms, a sixth of ``sources add``, to free
    memory the process is handing back anyway. Frozen objects are still released by
    reference counting, and ``atexit`` handlers and the flush of stdout and stderr
    run as before; only reference cycles still alive at exit go without their
    finalizers, and no command leaves work to one (each commits and closes in its
    own ``with`` blocks).
    """
    gc.freeze()


def command_of(args: list[str]) -> str | None:
    """The command a command line names (None for group help or no command)."""
    words = iter(args)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word in GROUP_VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _register(command: str | None = None) -> None:
    import importlib

    module = COMMANDS.get(command or "")
    for name in [module] if module else sorted(set(COMMANDS.values())):
        importlib.import_module(f"archiver.cli.{name}")  # registers its commands


def __getattr__(name: str) -> Any:
    if name == "cli":
        from archiver.cli.base import cli

        _register()
        return cli
    raise AttributeError(name)
