"""The test's HTTP server on the compose network (web-download sources), run by python:3.11-slim.

`python webserver.py DIR` serves DIR's files on port 80: /<name> at full speed, /slow/<name> at
SLOW_RATE bytes per second, so an import can be caught in the middle of its download.
"""

import sys
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW_RATE = 1024 * 1024
BLOCK = 64 * 1024


class Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if not self.path.startswith("/slow/"):
            super().do_GET()
            return
        path = Path(self.directory) / Path(self.path.removeprefix("/slow/")).name
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()
        with path.open("rb") as source:
            while block := source.read(BLOCK):
                self.wfile.write(block)
                time.sleep(len(block) / SLOW_RATE)


if __name__ == "__main__":
    handler = partial(Handler, directory=sys.argv[1])
    ThreadingHTTPServer(("0.0.0.0", 80), handler).serve_forever()  # noqa: S104 -- in its container
