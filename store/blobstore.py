"""Blobs in the database: content-addressed, stored whole or as a delta on a base.

The versions aggregate's storage, used inside a transaction the caller holds
(``Store.transaction``): ``read_blob`` follows a delta chain to its full copy and
checks every link's digest; ``put_blob`` writes a blob once by its SHA-256. The
codec itself (zstd frames, whole or delta) is store/blobs.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, literal, select

from store import blobs as codec
from store.db import insert_ignoring_duplicates
from store.errors import IntegrityError
from store.schema import blobs

if TYPE_CHECKING:
    from store.repo import StoreOptions


def read_blob(conn: Connection, options: StoreOptions, digest: str) -> bytes:
    """Read a blob through its delta chain, verifying every link's digest."""
    chain = _chain(conn, digest, options.max_chain_depth + 2)
    if not chain:
        raise IntegrityError(f"blob {digest} is missing from the store")
    if len(chain) > options.max_chain_depth + 2:
        raise IntegrityError(f"blob {digest} has a delta chain that is too long or circular")
    if chain[-1]["base_digest"] is not None:
        raise IntegrityError(
            f"base {chain[-1]['base_digest']} of blob {digest} is missing from the store"
        )
    data: bytes | None = None
    for row in reversed(chain):
        try:
            data = codec.decompress(bytes(row["data"]), data)
        except Exception as exc:
            raise IntegrityError(f"blob {row['digest']} cannot be decompressed: {exc}") from None
        if codec.digest(data) != row["digest"]:
            raise IntegrityError(f"blob {row['digest']} does not match its digest (corrupted)")
    assert data is not None
    return data


def _chain_query() -> Any:
    """The blob ``:digest`` and its bases, newest first, at most ``:limit`` + 1 rows (a
    recursive CTE, on both backends). Built once: building it cost more than running it."""
    first = select(blobs, literal(0).label("step")).where(blobs.c.digest == bindparam("digest"))
    chain = first.cte("chain", recursive=True)
    base = blobs.alias("base")
    chain = chain.union_all(
        select(base, (chain.c.step + 1).label("step")).where(
            base.c.digest == chain.c.base_digest, chain.c.step < bindparam("limit")
        )
    )
    return select(chain).order_by(chain.c.step)


_CHAIN = _chain_query()
_DEPTH = select(blobs.c.depth).where(blobs.c.digest == bindparam("digest"))


def _chain(conn: Connection, digest: str, limit: int) -> list[Any]:
    """The blob and its bases in one round trip instead of one per link."""
    return list(conn.execute(_CHAIN, {"digest": digest, "limit": limit}).mappings())


def put_blob(
    conn: Connection, options: StoreOptions, data: bytes, base: tuple[str, bytes] | None
) -> str:
    """Store ``data`` once by its digest: a delta against ``base`` (digest, bytes) while the
    chain is short enough, else a full copy; returns the digest."""
    digest = codec.digest(data)
    if conn.execute(_DEPTH, {"digest": digest}).first():
        return digest  # content-addressed: already stored
    depth = 0
    if base is not None:
        depth = conn.execute(_DEPTH, {"digest": base[0]}).scalar_one() + 1
    if base is not None and depth <= options.max_chain_depth:
        payload = codec.compress(data, base[1], options.delta_level)
        stored = {
            "codec": codec.DELTA,
            "base_digest": base[0],
            "depth": depth,
            "data": payload,
            "stored_size": len(payload),
        }
    else:
        stored = full_copy(options, data)
    # Another worker may be writing the same content this moment (one wire story on two
    # sites): its row, once committed, is this one.
    row = {"digest": digest, "size": len(data), **stored}
    conn.execute(insert_ignoring_duplicates(conn, blobs), row)
    return digest


def full_copy(options: StoreOptions, data: bytes) -> dict[str, Any]:
    """A blob row's stored columns for ``data`` compressed whole: no base, depth 0 (a new
    chain's start, or a delta rewritten by ``gc`` when its base goes)."""
    payload = codec.compress(data, None, options.full_level)
    return {
        "codec": codec.FULL,
        "base_digest": None,
        "depth": 0,
        "data": payload,
        "stored_size": len(payload),
    }
