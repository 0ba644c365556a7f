"""Engines for the two backends, with the settings the archive relies on.

SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged version survives a
power cut), foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` so a
writer takes its lock up front instead of failing half-way. A connection marked
``READ`` (``Store.reading``) begins a plain deferred transaction instead: under WAL
it reads the last commit without waiting for, or holding up, a writer. PostgreSQL: plain
``postgresql://`` URLs are routed to psycopg 3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Select,
    and_,
    create_engine,
    event,
    func,
    or_,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from store.errors import StoreBusy, StoreError, UsageError
from store.models import mask_url

READ = {"claimwatch_read": True}  # execution options of a connection that only reads


def check_db_url(url: str) -> str:
    """Refuse a URL whose password holds a raw '@': parsers split it differently, and
    part of the password could be sent to DNS as a host name."""
    _scheme, sep, rest = url.partition("://")
    netloc = rest.partition("/")[0] if sep else ""
    if netloc.count("@") > 1:
        raise UsageError(
            f"the database URL {mask_url(url)!r} has more than one '@' before the host; "
            "percent-encode an '@' in the user name or password as %40"
        )
    return url


def normalize_url(url: str) -> str:
    """Accept a bare path as an SQLite file and route PostgreSQL to psycopg."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# mask_url in PostgreSQL's regular expressions: the password between the user's ':'
# and the authority's last '@' (an authority ends at '/', '?' or '#').
_PG_MASK = (r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#:]*:)[^/?#]*@", r"\1***@")


def shown_url(conn: Connection, column: Any) -> Any:
    """SQL for ``mask_url(column)``, to match a URL as it is shown (a search must not
    find a source by its password). SQLite calls mask_url itself, registered on
    connect; PostgreSQL replaces the same span with a regular expression."""
    if conn.dialect.name == "postgresql":
        return func.regexp_replace(column, *_PG_MASK)
    return func.claimwatch_mask_url(column)


def make_engine(url: str, busy_timeout_s: float = 30.0) -> Engine:
    url = normalize_url(check_db_url(url))
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise UsageError(f"--db {mask_url(url)!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, busy_timeout_s)
    if parsed.get_backend_name() == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except ModuleNotFoundError:
            raise UsageError(
                "PostgreSQL support is not installed: pip install 'claimwatch[postgres]'"
            ) from None
    raise UsageError(f"--db {mask_url(url)!r}: only sqlite:/// and postgresql:// are supported")


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL or an in-memory database)."""
    url = normalize_url(url)
    if not url.startswith("sqlite:"):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def _sqlite_engine(url: str, database: str | None, busy_timeout_s: float) -> Engine:
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.create_function("claimwatch_mask_url", 1, mask_url, deterministic=True)
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        reads_only = conn.get_execution_options().get("claimwatch_read", False)
        conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver errors that users can act on into one clear ``StoreError``."""
    try:
        yield
    except OperationalError as exc:
        orig = exc.orig
        text = str(orig).lower()
        where = mask_url(url)
        if isinstance(orig, sqlite3.OperationalError) and "locked" in text:
            raise StoreBusy(
                f"database {where} is locked by another process; wait for it or stop it, then retry"
            ) from None
        if "disk is full" in text or "no space left" in text:
            raise StoreError(
                f"database {where}: the disk is full; free space, then retry"
            ) from None
        if "unable to open" in text or "could not connect" in text or "connection" in text:
            first = " ".join(str(orig).split("\n", 1)[0].split())
            raise StoreError(f"cannot open database {where}: {first}") from None
        raise StoreError(f"database {where}: {str(orig).splitlines()[0]}") from None


def narrow(
    query: Select[Any], *filters: tuple[object | None, Any, Callable[[Any, Any], Any]]
) -> Select[Any]:
    """Add ``op(column, value)`` for each filter whose value was given (not None)."""
    for value, column, op in filters:
        if value is not None:
            query = query.where(op(column, value))
    return query


def older(columns: tuple[Any, Any], cursor: tuple[datetime, int]) -> Any:
    """The rows after ``cursor`` (a row's time and id) in a newest-first listing ordered
    by (time, id), descending: where a page that ended at that row resumes."""
    (at_column, id_column), (at, row_id) = columns, cursor
    return or_(at_column < at, and_(at_column == at, id_column < row_id))


# The largest source id or version number a store can hold (PostgreSQL's integer),
# and the largest capture, version, change or flag id (its bigint: schema.BIG_ID). A
# number someone typed can be any size: past SQLite's 64 bits it ended a command with
# an internal OverflowError, past a column's type PostgreSQL's "out of range". Lookups
# by such a number find nothing instead (``can_be_id``).
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1


def can_be_id(n: int, limit: int = MAX_ID) -> bool:
    return 0 <= n <= limit


def among(column: Any, ids: Sequence[int]) -> Any:
    """``column IN ids``, as a ``narrow`` operator (a number no row can have is left
    out)."""
    limit = MAX_BIG_ID if isinstance(column.type, BigInteger) else MAX_ID
    return column.in_([i for i in ids if can_be_id(i, limit)])


def _dialect_insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_duplicates(conn: Connection, table: Any) -> Any:
    """INSERT that skips rows whose primary key exists (a concurrent writer's)."""
    return _dialect_insert(conn, table).on_conflict_do_nothing()


def insert_replacing(conn: Connection, table: Any) -> Any:
    """INSERT that overwrites the row whose primary key exists (a concurrent writer's,
    or an older one): the last writer wins, and neither fails. Give it every column: one
    left out would be overwritten with its default."""
    statement = _dialect_insert(conn, table)
    keys = [c.name for c in table.primary_key.columns]
    others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=others)
