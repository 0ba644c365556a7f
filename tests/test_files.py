"""Files written for the user (archiver.app.files): whole or not at all, and a full disk
or a special file is one error line, never a half-written file or a replaced device."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archiver.app.files import atomic_write, write_file
from store.errors import UsageError
from tests.support import claimwatch

FULL = Path("/dev/full")  # every write fails with ENOSPC (Linux)


def test_a_file_is_written_whole_and_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_file(path, "old\n")
    write_file(path, "نص جديد\n")
    assert path.read_text(encoding="utf-8") == "نص جديد\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write_file(path, b"old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write(b"half of a new ")
        raise RuntimeError("killed")
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "out.yaml"
    with pytest.raises(UsageError, match=f"cannot write {path}: No such file or directory"):
        write_file(path, "x")


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux) to fill a disk")
def test_a_full_disk_is_an_error_and_a_device_stays_a_device() -> None:
    """As root, --out /dev/full renamed a file onto the device, replacing it, and the
    export said it had written its records."""
    with pytest.raises(UsageError, match="cannot write /dev/full: No space left on device"):
        write_file(FULL, b"x" * 100_000)
    assert stat.S_ISCHR(os.stat(FULL).st_mode)


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_file(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux) to fill a disk")
def test_output_to_a_full_disk_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """stdout on a full disk ended in 'internal error: OSError' (or, for output small
    enough to wait in the buffer, a silent exit 0); --out to it said it had written."""
    assert claimwatch(tmp_path, "init", "--no-seeds").returncode == 0
    assert claimwatch(tmp_path, "sources", "add", "https://example.org/a").returncode == 0
    with FULL.open("w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "archiver.cli", "--db", f"sqlite:///{tmp_path / 'x.db'}",
             "status"],
            stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr == (
        "claimwatch: error: the output could not be written (No space left on device); "
        "free some space and run it again\n"
    )
    for args in (("export", "json", "--all"), ("sources", "export")):
        r = claimwatch(tmp_path, *args, "--out", str(FULL))
        assert (r.returncode, r.stderr) == (
            2,
            "claimwatch: error: cannot write /dev/full: No space left on device\n",
        ), args
    assert stat.S_ISCHR(os.stat(FULL).st_mode)
