"""Serve Barbican's API (the paste pipeline of barbican-api-paste.ini) on 127.0.0.1:<port>.

Run by the Barbican virtualenv's Python (never imported by the tests): `python barbican_serve.py
PORT PASTE_INI`, with HOME set to the directory whose .barbican/barbican.conf configures it:
Barbican parses its configuration at import time, once per module, from oslo.config's default
locations only, so HOME is the one way to point all of them at the test's file. The standard
library's threading WSGI server stands in for uWSGI, which Barbican's own script assumes.
"""

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- the base's name
        sys.stderr.write(f"request {format % args}\n")
        sys.stderr.flush()


def main() -> None:
    port, paste_ini = int(sys.argv[1]), sys.argv[2]
    sys.argv = sys.argv[:1]  # oslo.config would read ours as its options
    from paste import deploy  # noqa: PLC0415 -- only the Barbican virtualenv has it

    application = deploy.loadapp(f"config:{paste_ini}")
    server = make_server("127.0.0.1", port, application, ThreadingServer, Handler)
    sys.stdout.write(f"serving on {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
