"""The fetcher's connection pool (archiver.net.transport.LeanPool) keeps httpcore's policy
in linear time: the same workloads open the same number of connections and leave the
same number idle as httpcore's own pool, against real loopback servers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest

from archiver.net.transport import LeanPool

BODY = b"x" * 2000


class Counting:
    """Loopback HTTP/1.1 servers with keep-alive that count the connections they accept."""

    def __init__(self, close_after_each: bool = False, say_close: bool = False) -> None:
        self.accepted = 0
        self.close_after_each = close_after_each  # keep-alive promised, then hung up
        self.say_close = say_close  # "Connection: close" said, then hung up
        self.servers: list[asyncio.Server] = []

    async def start(self, n: int) -> list[int]:
        for _ in range(n):
            self.servers.append(await asyncio.start_server(self._serve, "127.0.0.1", 0))
        return [s.sockets[0].getsockname()[1] for s in self.servers]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(0.005)  # long enough for requests to queue
                close = b"Connection: close\r\n" if self.say_close else b""
                writer.write(
                    b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (close, len(BODY)) + BODY
                )
                await writer.drain()
                if self.close_after_each or self.say_close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        for s in self.servers:
            s.close()


async def workload(pool_class: type[httpcore.AsyncConnectionPool], plan: str) -> tuple[int, int]:
    """Run a plan against fresh servers: (connections the servers accepted, connections
    the pool still holds at the end)."""
    servers = Counting(close_after_each=plan == "hung up")
    ports = await servers.start(3)
    pool = pool_class(max_connections=4, max_keepalive_connections=2)

    async def get(port: int) -> None:
        response = await pool.request("GET", f"http://127.0.0.1:{port}/")
        assert response.content == BODY

    try:
        if plan == "sequential":
            for _ in range(20):
                await get(ports[0])
        elif plan == "burst":
            await asyncio.gather(*(get(ports[0]) for _ in range(20)))
        elif plan == "three origins":
            await asyncio.gather(*(get(ports[n % 3]) for n in range(30)))
        elif plan == "hung up":  # each idle connection is dead by the next request
            for _ in range(5):
                await get(ports[0])
                await asyncio.sleep(0.05)
        elif plan == "waves":
            for wave in range(4):
                await asyncio.gather(*(get(ports[(wave + n) % 3]) for n in range(6)))
        await get(ports[1])  # one more pass of the bookkeeping after the last burst
        return servers.accepted, len(pool.connections)
    finally:
        await pool.aclose()
        servers.close()


@pytest.mark.parametrize("plan", ["sequential", "burst", "three origins", "waves", "hung up"])
def test_the_lean_pool_opens_and_keeps_what_httpcores_pool_does(plan: str) -> None:
    ours = asyncio.run(workload(LeanPool, plan))
    theirs = asyncio.run(workload(httpcore.AsyncConnectionPool, plan))
    assert ours[1] <= 2 and theirs[1] <= 2  # the keep-alive allowance holds
    if plan != "hung up":  # there, dead idle connections wait for the next sweep
        assert ours[1] == theirs[1]
    assert ours[0] <= theirs[0]  # never more connections opened than httpcore would
    if plan == "sequential":
        assert ours[0] == 2  # one connection reused 20 times, and the last request's
    if plan == "hung up":
        assert ours[0] == theirs[0] == 6  # no request went out on a closed socket


def test_a_pool_full_of_closed_connections_gives_their_slots_to_new_requests() -> None:
    """Closed connections leave the pool at the once-a-second sweep, or at once when a
    request finds the pool full: a server that says "Connection: close" to every
    response never leaves a request waiting for a slot."""

    async def run() -> tuple[int, int]:
        servers = Counting(say_close=True)
        [port] = await servers.start(1)
        pool = LeanPool(max_connections=2, max_keepalive_connections=2)
        try:
            for _ in range(3):  # well inside one sweep
                responses = await asyncio.wait_for(
                    asyncio.gather(
                        *(pool.request("GET", f"http://127.0.0.1:{port}/") for _ in range(2))
                    ),
                    timeout=5,
                )
                assert [r.content for r in responses] == [BODY, BODY]
                await asyncio.sleep(0.02)  # the server's hang-up reaches the client
            return servers.accepted, len(pool.connections)
        finally:
            await pool.aclose()
            servers.close()

    accepted, _held = asyncio.run(run())
    assert accepted == 6  # a new connection for every request: none went out on a dead one


class Checked(LeanPool):
    """A LeanPool that records, after each pass, connections promised to two requests,
    and counts the passes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes = 0
        self.shared = 0

    def _assign_requests_to_connections(self) -> list[Any]:
        closing = super()._assign_requests_to_connections()
        self.passes += 1
        held = [id(r.connection) for r in self._requests if r.connection is not None]
        self.shared += len(held) - len(set(held))
        return closing


def test_a_connection_is_promised_to_one_waiting_request_at_a_time() -> None:
    """A burst larger than the pool: each connection that comes free goes to one queued
    request, so no request is sent back to the queue (ConnectionNotAvailable) and each
    takes about two passes of the bookkeeping (its arrival and its response's end)."""

    async def run() -> Checked:
        servers = Counting()
        [port] = await servers.start(1)
        pool = Checked(max_connections=4, max_keepalive_connections=4)
        try:
            responses = await asyncio.gather(
                *(pool.request("GET", f"http://127.0.0.1:{port}/") for _ in range(60))
            )
            assert all(r.content == BODY for r in responses)
            return pool
        finally:
            await pool.aclose()
            servers.close()

    pool = asyncio.run(run())
    assert pool.shared == 0
    assert pool.passes <= 2 * 60 + 4
