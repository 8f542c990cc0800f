"""Serve Keystone's public WSGI app on 127.0.0.1:<port> with the standard library.

Run by the Keystone virtualenv's Python (never imported by the tests): `python serve.py PORT`,
with OS_KEYSTONE_CONFIG_FILES naming keystone.conf. Keystone 30 ships no keystone-wsgi-public
script any more, only the `keystone.server.wsgi` application factory.
"""

import importlib
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- the base's name
        # One line per request on stderr, which the tests read to count validations.
        sys.stderr.write(f"request {format % args}\n")
        sys.stderr.flush()


def main() -> None:
    port = int(sys.argv[1])
    # Keystone parses sys.argv as oslo.config options when it builds the app.
    sys.argv = sys.argv[:1]
    wsgi = importlib.import_module("keystone.server.wsgi")
    application = wsgi.initialize_public_application()
    server = make_server("127.0.0.1", port, application, ThreadingServer, Handler)
    sys.stdout.write(f"serving on {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
