"""Browser checks per second, and the browser's memory.

Usage: python benchmarks/browser.py [--pages 40] [--max-pages 2]

A loopback server serves N JavaScript app pages, each filling its article from a
JSON file on the same server. One BrowserFetcher (one Chromium, ``--max-pages``
pages at once) renders them all; the figure is rendered pages per second of wall
time, with the peak RSS of the Chromium process tree (sampled every 50 ms).
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil

from archiver.net.browser import BrowserFetcher, BrowserOptions
from archiver.net.fetch import FetchRequest

PAGE = """<!doctype html><html><head><title>Story {n}</title></head><body>
<div id="root"></div><script>
fetch("/data/{n}.json").then(r => r.json()).then(d => {{
  document.getElementById("root").innerHTML =
    "<article><h1>" + d.title + "</h1>" + d.ps.map(p => "<p>" + p + "</p>").join("") +
    "</article>";
}});
</script></body></html>"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/data/"):
            n = self.path.split("/")[-1].split(".")[0]
            body = json.dumps(
                {"title": f"Story {n}", "ps": [f"Paragraph {i} of story {n}." for i in range(12)]}
            ).encode()
            kind = "application/json"
        else:
            n = self.path.strip("/").split(".")[0] or "0"
            body, kind = PAGE.format(n=n).encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--max-pages", type=int, default=2)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not done.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    if "chrom" in child.name().lower():
                        total += child.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()

    async def run() -> tuple[float, float, int]:
        options = BrowserOptions(max_pages=args.max_pages, settle_ms=200, allow_private=True)
        async with BrowserFetcher(options) as browser:
            t0 = time.perf_counter()
            await browser.fetch(FetchRequest(f"{base}/0.html"))  # starts Chromium
            start_up = time.perf_counter() - t0
            t1 = time.perf_counter()
            results = await asyncio.gather(
                *(browser.fetch(FetchRequest(f"{base}/{n}.html")) for n in range(args.pages))
            )
            wall = time.perf_counter() - t1
            ok = sum(b"Paragraph 11" in r.body for r in results)
            return start_up, wall, ok

    start_up, wall, ok = asyncio.run(run())
    done.set()
    print(
        f"{args.pages} pages, {args.max_pages} at once, {psutil.cpu_count()} cores: "
        f"{args.pages / wall:.1f} pages/s ({wall:.1f} s), {ok} rendered with their text; "
        f"first page with start-up {start_up:.1f} s; Chromium tree peak RSS "
        f"{peak[0] / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    main()
