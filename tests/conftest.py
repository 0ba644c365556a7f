"""Shared fixtures: real SQLite and PostgreSQL stores, loopback servers (helpers: tests/support).

PostgreSQL: each test session creates its own database on
``$CLAIMWATCH_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/postgres)
and drops it at the end. Without a server the PostgreSQL tests skip with the
reason shown by ``-ra``; under CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from store.repo import Store
from tests.support import reset_pg

# Claims matching without the embedding model, unless a test turns it on: loading the
# model and embedding the story's examples costs seconds that most tests do not test.
os.environ.setdefault("CLAIMWATCH_SEMANTIC", "0")

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the packages once. Many tests start the real ``claimwatch`` command, and
    where PYTHONDONTWRITEBYTECODE is set (as on these machines) Python would otherwise
    compile every module it imports again in each of those processes."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("archiver", "store", "jobs"):
        compileall.compile_dir(root / package, quiet=1)


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads or writes the user's cache (``claims match`` keeps bank files there)."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite the golden files under tests/data/ from the current output.",
    )
    parser.addoption(
        "--crash-runs",
        type=int,
        default=6,
        help="SIGKILL runs per database in tests/test_crash.py (the long version: 50).",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The PostgreSQL variants belong to the full suite, not the fast loop: every test
    marked ``postgres`` is also ``slow`` (``pytest -m 'not slow'`` runs SQLite only)."""
    for item in items:
        if item.get_closest_marker("postgres") is not None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``golden(path, actual)``: compare with the file, or rewrite it under --update-golden.
    ``differences(expected, actual)``, when given, replaces exact equality: it returns
    what differs beyond the tolerance it allows (nothing: the test passes)."""
    update = request.config.getoption("--update-golden")

    def check(
        path: Path, actual: str, differences: Callable[[str, str], list[str]] | None = None
    ) -> None:
        if update:
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing; run pytest --update-golden and review it"
        expected = path.read_text(encoding="utf-8")
        if differences is None:
            assert actual == expected, f"{path} differs (see --update-golden)"
            return
        found = differences(expected, actual)
        assert not found, f"{path} differs (see --update-golden):\n" + "\n".join(found)

    return check


PG_ADMIN_URL = os.environ.get("CLAIMWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; yields its URL."""
    try:
        import psycopg
    except ImportError as exc:
        _pg_unavailable(f"psycopg is not installed ({exc})")
    name = f"claimwatch_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc).splitlines()[0])
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claimwatch.db'}"
    url: str = request.getfixturevalue("pg_server")
    reset_pg(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    s = Store(f"sqlite:///{tmp_path / 'claimwatch.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def httpserver() -> Iterator[HTTPServer]:
    """A threaded loopback HTTP server on 127.0.0.1 (a slow handler blocks no other)."""
    from pytest_httpserver import HTTPServer

    class QuickStop(HTTPServer):
        def thread_target(self) -> None:
            assert self.server is not None
            # The default poll of 0.5 s made every test using this server wait half a
            # second to stop it: over a minute of the fast loop.
            self.server.serve_forever(poll_interval=0.01)

    server = QuickStop(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()
