"""The web view served by a real uvicorn on a loopback port, in a thread of the test."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from archiver.web import WebOptions, create_app
from store.repo import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, store: Store, options: WebOptions | None = None):
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(store, options), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
