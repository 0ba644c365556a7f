"""The extraction pool outlives the thread that started it, and is reused."""

from __future__ import annotations

import os
import threading
import time

import pytest

from archiver.pipeline import ExtractionPool


@pytest.mark.slow
def test_workers_survive_the_starting_thread_and_are_reused() -> None:
    with ExtractionPool(2) as pool:
        first: list[int] = []

        def start() -> None:
            executor = pool.executor()
            assert executor is not None
            first.extend(executor.submit(os.getpid).result(timeout=60) for _ in range(4))

        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        time.sleep(1.5)  # long enough for a worker tied to that thread to be gone
        executor = pool.executor()
        assert executor is not None
        again = {executor.submit(os.getpid).result(timeout=60) for _ in range(8)}
        assert not getattr(executor, "_broken", False)
        assert set(first) & again  # the same worker processes, not new ones
        assert os.getpid() not in again  # they are separate processes
