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


class LoggingCallers:
    """Logs who each call to /v1 was made as, once Keystone's middleware has said (it writes
    the token's user and project into the request's environ): `caller GET /v1/... user
    project`, so the tests can see in whose name Glimpse asked."""

    def __init__(self, application: object) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response: object) -> object:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        answer = self.application(environ, start_response)
        user = environ.get("HTTP_X_USER_ID") or "-"
        project = environ.get("HTTP_X_PROJECT_ID") or "-"
        sys.stderr.write(f"caller {method} {path} {user} {project}\n")
        sys.stderr.flush()
        return answer


class Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- the base's name
        sys.stderr.write(f"request {format % args}\n")
        sys.stderr.flush()


def main() -> None:
    port, paste_ini = int(sys.argv[1]), sys.argv[2]
    sys.argv = sys.argv[:1]  # oslo.config would read ours as its options
    from paste import deploy  # noqa: PLC0415 -- only the Barbican virtualenv has it

    application = LoggingCallers(deploy.loadapp(f"config:{paste_ini}"))
    server = make_server("127.0.0.1", port, application, ThreadingServer, Handler)
    sys.stdout.write(f"serving on {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
