"""Files the commands write for the user: exports, watchlists, digest previews, models.

``atomic_write`` writes a file whole or not at all, through a temporary file beside it
that is synced and renamed into place, so a full disk or a kill leaves the old file (or
none), never half of one. A path that exists and is not a regular file (``/dev/stdout``,
a FIFO, a device) is written directly instead: renaming onto it replaced it, and as root
``--out /dev/full`` once turned that device into a file. Every ``OSError`` becomes a
``UsageError`` that names the path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from store.errors import UsageError


@contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through (see the module's docstring)."""
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    part = path if special else path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as f:
            yield f
            f.flush()
            if not special:
                os.fsync(f.fileno())
        if not special:
            os.replace(part, path)
    except OSError as exc:
        _discard(part, special)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _discard(part, special)
        raise


def write_file(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all."""
    with atomic_write(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _discard(part: Path, special: bool) -> None:
    if not special:
        with suppress(OSError):
            part.unlink(missing_ok=True)
