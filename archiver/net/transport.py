"""The one transport every request of a check goes through: guarded and pooled.

``guarded_transport`` is httpx's transport with its connection pool opened
through the address guard (``archiver.net.guard.GuardedBackend``), so every
connect, of every redirect hop, robots.txt, feed and page, is judged where it
is made. ``LeanPool`` is that pool: httpcore's policy, scanned less often.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from archiver.net import guard

if TYPE_CHECKING:
    from archiver.net.fetch import FetchOptions

OriginKey = tuple[bytes, bytes, int]


class LeanPool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool, with its bookkeeping cheap.

    httpcore 1.0 re-scans the whole pool on every request and every response closed:
    each idle connection is asked ``has_expired()``, which polls its socket (through
    anyio's ``extra_attributes``, building a dict of every socket attribute), and the
    scan is repeated for each idle connection and each queued request. With 32
    connections mostly idle while the pipeline works on pages, that was a third of a
    re-check cycle's main-process CPU (docs/benchmarks.md).

    The policy stays httpcore's: drop closed and expired connections, close idle ones
    while more than the keep-alive allowance remain, then give each queued request an
    available connection to its origin, else a new one while there is room, else a new
    one in place of an idle connection. What changes is when the pool is scanned.
    Expiry is asked of a connection about to be reused (so a request never goes out on
    a socket the server closed), and of every connection at most once per ``SWEEP``
    seconds. Closed connections are dropped at that sweep, or at once when the pool is
    full or over its keep-alive allowance. A request looks for the first connection
    free for its origin instead of listing them all. With 32 connections that took
    the call from 39 to about 25 µs (it runs on every request and every response).

    A connection handed to a request stays idle until that request's task runs, so
    httpcore would hand it to every request queued in the meantime: all but one then
    fail with ConnectionNotAvailable and queue again, each try another pass and
    another poll of the socket (5.5 passes a request at 20,000 pages). Here a
    connection promised to a request is not offered again, nor closed as spare.
    """

    SWEEP = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._origins: dict[int, OriginKey] = {}  # id(connection) -> its origin
        self._swept = time.monotonic()

    def create_connection(self, origin: httpcore.Origin) -> Any:
        connection = super().create_connection(origin)
        self._origins[id(connection)] = (origin.scheme, origin.host, origin.port)
        return connection

    def _drop(self, connection: Any, closing: list[Any] | None = None) -> None:
        self._origins.pop(id(connection), None)
        if closing is not None:
            closing.append(connection)

    def _assign_requests_to_connections(self) -> list[Any]:
        closing: list[Any] = []
        # connections held by a request: in use, or promised and not yet taken up
        held = {id(r.connection) for r in self._requests if r.connection is not None}
        now = time.monotonic()
        if now - self._swept >= self.SWEEP:
            self._swept = now
            self._keep(lambda c: not c.is_closed() and not c.has_expired(), closing)
        if len(self._connections) > self._max_keepalive_connections:
            self._keep(lambda c: not c.is_closed(), closing)
            surplus = len(self._connections) - self._max_keepalive_connections
            idle = [c for c in self._connections if c.is_idle() and id(c) not in held]
            for connection in idle[: max(surplus, 0)]:
                self._connections.remove(connection)
                self._drop(connection, closing)
        for request in [r for r in self._requests if r.is_queued()]:
            origin = request.request.url.origin
            key = (origin.scheme, origin.host, origin.port)
            found = self._available(key, closing, held)
            if found is not None:
                request.assign_to_connection(found)
                held.add(id(found))
                continue
            if len(self._connections) >= self._max_connections:
                self._keep(lambda c: not c.is_closed(), closing)  # a closed one frees its slot
            if len(self._connections) >= self._max_connections:
                spare = next(
                    (c for c in self._connections if c.is_idle() and id(c) not in held), None
                )
                if spare is None:
                    continue  # it waits for a connection to come free
                self._connections.remove(spare)
                self._drop(spare, closing)
            connection = self.create_connection(origin)
            self._connections.append(connection)
            request.assign_to_connection(connection)
            held.add(id(connection))
        return closing

    def _keep(self, keep: Callable[[Any], bool], closing: list[Any]) -> None:
        """Drop the connections ``keep`` refuses; those not closed yet are to be closed."""
        kept = []
        for connection in self._connections:
            if keep(connection):
                kept.append(connection)
            else:
                self._drop(connection, None if connection.is_closed() else closing)
        self._connections = kept

    def _available(self, key: OriginKey, closing: list[Any], held: set[int]) -> Any:
        """The first connection to this origin free for a request and not promised to
        another; an expired one met on the way is closed (a request never goes out on a
        socket the server closed)."""
        for connection in list(self._connections):
            if self._origins.get(id(connection)) != key or id(connection) in held:
                continue
            if not connection.is_available():
                continue
            if not connection.has_expired():
                return connection
            self._connections.remove(connection)
            self._drop(connection, closing)
        return None


def guarded_transport(o: FetchOptions, resolver: guard.Resolver) -> httpx.AsyncHTTPTransport:
    """httpx's transport, with its connection pool opened through ``GuardedBackend``
    (httpx 0.28 takes no network backend of its own, so the pool is built here with
    the same settings httpx would use)."""
    context = (
        ssl.create_default_context(cafile=o.ca_file) if o.ca_file else httpx.create_ssl_context()
    )
    keepalive = o.keepalive or o.concurrency
    limits = httpx.Limits(max_connections=o.concurrency, max_keepalive_connections=keepalive)
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits)
    transport._pool = LeanPool(
        ssl_context=context,
        max_connections=o.concurrency,
        max_keepalive_connections=keepalive,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=guard.GuardedBackend(resolver),
    )
    return transport
