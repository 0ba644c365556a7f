"""gc: raw HTML released only on request, unused blobs deleted, nothing a version needs lost."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from store.gc import GcOptions, collect
from store.models import SourceSpec
from store.repo import Store
from store.schema import blobs
from tests.support import NOW, cli
from tests.support.records import capture, revisions, schedule


def history(store: Store, label: str, n: int = 10, seed: int = 3) -> list[tuple[str, bytes]]:
    from store.models import NewVersion

    sid = store.add_source(SourceSpec(url=f"http://127.0.0.1/{label}", label=label), NOW)
    revs = revisions(n, seed)
    for i, (text, raw) in enumerate(revs):
        store.add_version(NewVersion(text=text, raw=raw), capture(sid, i * 60 * 24), schedule(i))
    return revs


def blob_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(blobs)).scalar_one())


def test_raw_retention_by_count_keeps_every_text(store: Store) -> None:
    revs = history(store, "a")
    history(store, "b", seed=4)
    before = blob_count(store)
    report = collect(store, GcOptions(keep_raw_versions=3), NOW + timedelta(days=30))
    assert report.raw_released == 14  # 7 of source a, 7 of b
    a = store.get_source("a")
    versions = store.versions(a.id)
    assert [v.raw_digest is None for v in versions] == [True] * 7 + [False] * 3
    for v, (text, raw) in zip(versions, revs, strict=True):
        assert store.read_text(v) == text  # the text history is whole
        if v.raw_digest is not None:
            assert store.read_raw(v) == raw
    assert report.blobs_rewritten == 2  # in each source, v8 raw was a delta on v7 raw
    assert report.bytes_after < report.bytes_before
    assert blob_count(store) == before - 14
    assert list(store.verify()) == []


def test_raw_retention_by_age_and_the_newest_always_stays(store: Store) -> None:
    history(store, "a", n=5)  # captured a day apart, from NOW
    report = collect(store, GcOptions(keep_raw_days=2), NOW + timedelta(days=5))
    raws = [v.raw_digest is not None for v in store.versions(store.get_source("a").id)]
    assert raws == [False, False, False, True, True]  # 3 and 4 days old; v4, v5 are newer
    assert report.raw_released == 3
    everything = collect(store, GcOptions(keep_raw_days=0), NOW + timedelta(days=50))
    assert everything.raw_released == 1
    assert [v.raw_digest is not None for v in store.versions(store.get_source("a").id)][-1]
    assert list(store.verify()) == []


def test_blobs_of_a_removed_source_go_and_nothing_else(store: Store) -> None:
    history(store, "keep")
    history(store, "gone", seed=9)
    store.remove_source(store.get_source("gone"))
    report = collect(store, GcOptions(), NOW)
    assert report.raw_released == 0
    assert report.blobs_deleted == 20
    assert blob_count(store) == 20
    assert list(store.verify()) == []


def test_dry_run_changes_nothing(store: Store) -> None:
    history(store, "a")
    before = blob_count(store)
    report = collect(store, GcOptions(keep_raw_versions=1, dry_run=True), NOW)
    assert report.raw_released == 9 and report.blobs_deleted == 9
    assert blob_count(store) == before
    assert all(v.raw_digest for v in store.versions(store.get_source("a").id))


@pytest.mark.e2e
@pytest.mark.slow
def test_gc_command(sqlite_store: Store) -> None:
    history(sqlite_store, "a")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(sqlite_store, *args)

    r = run("gc", "--keep-raw-versions", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("gc did: release the raw HTML of 8 version(s), delete 8 blob(s)")
    shown = run("show", "a", "1", "--raw")
    assert shown.returncode == 2 and "version 1 has no raw body stored" in shown.stderr
    assert run("show", "a", "1").returncode == 0
    assert run("verify").returncode == 0
    assert run("gc", "--keep-raw-versions", "0").returncode == 2  # at least 1
