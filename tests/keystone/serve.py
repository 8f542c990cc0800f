"""Serve Keystone's public WSGI app on 127.0.0.1:<port> with the standard library.

Run by the Keystone virtualenv's Python (never imported by the tests): `python serve.py PORT`,
with OS_KEYSTONE_CONFIG_FILES naming keystone.conf. Keystone 30 ships no keystone-wsgi-public
script any more, only the `keystone.server.wsgi` application factory.
"""

import importlib
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class CountingValidations:
    """Logs, as each token validation starts, how many are in progress (itself included), so
    the tests can see how many a client asks at once."""

    def __init__(self, application: object) -> None:
        self.application = application
        self.lock = threading.Lock()
        self.in_flight = 0

    def __call__(self, environ: dict, start_response: object) -> object:
        validation = environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO", "").rstrip(
            "/"
        ).endswith("/auth/tokens")
        if not validation:
            return self.application(environ, start_response)
        with self.lock:
            self.in_flight += 1
            sys.stderr.write(f"validations in flight {self.in_flight}\n")
            sys.stderr.flush()
        try:
            return self.application(environ, start_response)
        finally:
            with self.lock:
                self.in_flight -= 1


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
    counted = CountingValidations(application)
    server = make_server("127.0.0.1", port, counted, ThreadingServer, Handler)
    sys.stdout.write(f"serving on {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
