"""A loopback HTTP server that misbehaves on purpose, one way per path.

It speaks HTTP/1.1 by hand over raw sockets, so it can do what a well-behaved
server library will not: reset a connection mid-body, lie about Content-Length,
trickle bytes, stream forever, or send a gzip bomb.
"""

from __future__ import annotations

import gzip
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

from archiver.net.fetch import FetchOptions

ARTICLE = (
    "<!doctype html><html><head><meta charset='{charset}'><title>Fault {name}</title></head>"
    "<body><nav><a href='/'>Home</a></nav><article><h1>Fault {name}</h1>"
    "<p>Meta said its capital spending would rise to as much as seventy billion dollars.</p>"
    "<p>{extra}The company told investors that its new lab would hire more researchers.</p>"
    "</article><footer>Loopback Ledger</footer></body></html>"
)


def article(name: str, charset: str = "utf-8", extra: str = "") -> str:
    return ARTICLE.format(name=name, charset=charset, extra=extra)


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _whole(sock: socket.socket, status: str, body: bytes, ctype: str = "text/html") -> None:
    headers = {"Content-Type": ctype, "Content-Length": str(len(body)), "Connection": "close"}
    sock.sendall(_head(status, headers) + body)


def ok(sock: socket.socket) -> None:
    _whole(sock, "200 OK", article("ok").encode(), "text/html; charset=utf-8")


def reset(sock: socket.socket) -> None:
    """Promise 50,000 bytes, send 2,000, then reset the connection (RST, not FIN)."""
    sock.sendall(_head("200 OK", {"Content-Type": "text/html", "Content-Length": "50000"}))
    sock.sendall(b"<html><body>" + b"x" * 2000)
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # now, before socketserver's shutdown() would send a FIN first


def slowloris(sock: socket.socket) -> None:
    """One byte every 0.1 s: never idle long enough for a read timeout."""
    sock.sendall(_head("200 OK", {"Content-Type": "text/html", "Content-Length": "100000"}))
    for _ in range(600):
        sock.sendall(b" ")
        time.sleep(0.1)


def endless(sock: socket.socket) -> None:
    """A chunked body that never ends."""
    sock.sendall(_head("200 OK", {"Content-Type": "text/html", "Transfer-Encoding": "chunked"}))
    chunk = b"<p>more</p>" * 6000
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    while True:
        sock.sendall(frame)


@cache
def _bomb() -> bytes:
    """64 KB that inflates to 64 MB. Built when a server starts, not while a client
    waits: on a busy machine the compression alone can outlast a short read timeout."""
    return gzip.compress(b"<p>" + b" " * (64 * 1024 * 1024) + b"</p>", 9)


def bomb(sock: socket.socket) -> None:
    """64 KB on the wire that inflates to 64 MB."""
    headers = {
        "Content-Type": "text/html",
        "Content-Encoding": "gzip",
        "Content-Length": str(len(_bomb())),
        "Connection": "close",
    }
    sock.sendall(_head("200 OK", headers) + _bomb())


def short(sock: socket.socket) -> None:
    """Content-Length says 5,000; the server sends 300 bytes and closes cleanly."""
    body = article("short").encode()[:300]
    sock.sendall(_head("200 OK", {"Content-Type": "text/html", "Content-Length": "5000"}) + body)


def bad_utf8(sock: socket.socket) -> None:
    body = article("bad utf-8", extra="Broken \xff\xfe bytes. ").encode("utf-8", "surrogateescape")
    body = body.replace("ÿþ".encode(), b"\xff\xfe")  # raw bytes that are not UTF-8
    _whole(sock, "200 OK", body, "text/html; charset=utf-8")


def lying_charset(sock: socket.socket) -> None:
    """Declares ISO-8859-1 in the header and the page; the bytes are UTF-8 Arabic."""
    body = article("charset", "iso-8859-1", extra="قالت ميتا إن إنفاقها سيرتفع. ").encode()
    _whole(sock, "200 OK", body, "text/html; charset=iso-8859-1")


def empty(sock: socket.socket) -> None:
    _whole(sock, "200 OK", b"")


def loop(sock: socket.socket) -> None:
    headers = {"Location": "/loop", "Content-Length": "0", "Connection": "close"}
    sock.sendall(_head("301 Moved Permanently", headers))


def ftp(sock: socket.socket) -> None:
    headers = {"Location": "ftp://127.0.0.1/pub/page.html", "Content-Length": "0"}
    sock.sendall(_head("302 Found", {**headers, "Connection": "close"}))


def too_many(sock: socket.socket) -> None:
    headers = {"Retry-After": "3600", "Content-Length": "0", "Connection": "close"}
    sock.sendall(_head("429 Too Many Requests", headers))


def unavailable(sock: socket.socket) -> None:
    headers = {"Retry-After": "1", "Content-Length": "0", "Connection": "close"}
    sock.sendall(_head("503 Service Unavailable", headers))


def huge(sock: socket.socket) -> None:
    """A 10 MB HTML page on one line."""
    para = "<p>Meta said the data centre in Louisiana would draw more power than planned.</p>"
    body = ("<html><head><title>Huge</title></head><body><article>" + para * 125_000).encode()
    body = body[: 10_000_000 - 24] + b"</article></body></html>"
    _whole(sock, "200 OK", body, "text/html; charset=utf-8")


def nested(sock: socket.socket) -> None:
    """50,000 nested tags around the article."""
    body = ("<html><body>" + "<div>" * 50_000 + article("nested") + "</div>" * 50_000).encode()
    _whole(sock, "200 OK", body, "text/html; charset=utf-8")


def latin1_etag(sock: socket.socket) -> None:
    """Validators with an obs-text byte (legal in a response; unsendable in a request)."""
    body = article("latin-1 etag").encode()
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "ETag": '"caf\xe9-1"',
        "Last-Modified": "Mon, 14 Jul 2025 08:00:00 GMT\xa0",
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    sock.sendall(_head("200 OK", headers) + body)


def retry_forever(sock: socket.socket) -> None:
    headers = {"Retry-After": "99999999999999", "Content-Length": "0", "Connection": "close"}
    sock.sendall(_head("429 Too Many Requests", headers))


def retry_unicode(sock: socket.socket) -> None:
    """A Retry-After of digits that are not ASCII digits (str.isdigit says yes)."""
    headers = {"Retry-After": "\xb2\xb3", "Content-Length": "0", "Connection": "close"}
    sock.sendall(_head("503 Service Unavailable", headers))


def robots(sock: socket.socket) -> None:
    _whole(sock, "404 Not Found", b"", "text/plain")


ROUTES: dict[str, Callable[[socket.socket], None]] = {
    "/robots.txt": robots,
    "/ok": ok,
    "/reset": reset,
    "/slowloris": slowloris,
    "/endless": endless,
    "/bomb": bomb,
    "/short": short,
    "/bad-utf8": bad_utf8,
    "/lying-charset": lying_charset,
    "/empty": empty,
    "/loop": loop,
    "/ftp": ftp,
    "/429": too_many,
    "/503": unavailable,
    "/huge": huge,
    "/nested": nested,
    "/latin1-etag": latin1_etag,
    "/retry-forever": retry_forever,
    "/retry-unicode": retry_unicode,
}


def _request_path(sock: socket.socket, timeout: float) -> str | None:
    """Read a request's head; its path without the query, or None if the client left."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(4096)
        if not more:
            return None
        data += more
    return data.split(b" ", 2)[1].decode("latin-1").split("?", 1)[0]


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            path = _request_path(sock, 10)
            if path is not None:
                ROUTES.get(path, lambda s: _whole(s, "404 Not Found", b"no such fault"))(sock)
        except OSError:
            pass  # the client gave up, as it should


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # failed TLS handshakes are the point of some tests


@contextmanager
def fault_server(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run the server; yields its base URL (http or https)."""
    _bomb()  # ready before any request
    server = _Server(tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def scripted_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A server that answers each path with the exact bytes the test put in the dict
    (status line, headers and body, however malformed), then closes. An unknown
    path gets a 404. Yields (base URL, the dict)."""
    answers: dict[str, bytes] = {}

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            try:
                path = _request_path(sock, 5)
                if path is None:
                    return
                answer = answers.get(path)
                if answer is None:
                    _whole(sock, "404 Not Found", b"", "text/plain")
                else:
                    sock.sendall(answer)
            except OSError:
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


# Fetch options for hostile servers: one attempt, short timeouts, no politeness delay.
FAST = FetchOptions(
    allow_private=True,
    host_delay=0,
    per_host=16,
    concurrency=16,
    max_attempts=1,
    read_timeout=1,
    total_timeout=2,
)
