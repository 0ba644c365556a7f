"""The ``claimwatch`` command: one click group, its commands in a module per area.

Importing this package registers every command on ``cli``; ``main`` runs it and
maps errors to exit codes in one place (``base.main``).
"""

from archiver.cli import archive, claims, service, sources, views  # noqa: F401  (registers commands)
from archiver.cli.base import cli, main

__all__ = ["cli", "main"]
