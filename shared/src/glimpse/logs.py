"""Logging set-up shared by every entry point, and the per-request log context.

Each line carries `[request_id user_id project_id]` (oslo.log puts the same ids in the same
place), taken from a context variable that the API sets for each request: the request id as the
request arrives, the user and project once the caller is authenticated. A worker sets it from
the task it runs (the ids of the request that accepted the job), so one grep for a request id
follows an import from the API through the worker. Lines logged outside both show `-`.

The same filter redacts URLs in every line it passes (glimpse.domain.redaction): a location,
a web-download URI or a presigned URL that some library puts in its message or exception never
reaches the log with its credentials.

The ids are put on every record as it is made (a record factory), not only by the handlers
configured here: Celery and billiard add handlers of their own with this format (the pool's
"process exited" lines, stdout redirected to a logger), and a record without the fields would
fail to format there.
"""

from __future__ import annotations

import contextvars
import json as jsonlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from glimpse.domain.redaction import redact_text

LOG_FORMAT = (
    "%(asctime)s %(process)d %(levelname)s %(name)s "
    "[%(request_id)s %(user_id)s %(project_id)s] %(message)s"
)


@dataclass(frozen=True, slots=True)
class LogContext:
    request_id: str = "-"
    user_id: str = "-"
    project_id: str = "-"


_current: contextvars.ContextVar[LogContext] = contextvars.ContextVar(
    "glimpse_log_context",
    default=LogContext(),  # noqa: B039 -- a frozen dataclass, never mutated
)


def bind_request(request_id: str) -> contextvars.Token[LogContext]:
    """Start a request's log context; give the token to `unbind` when the request ends."""
    return _current.set(LogContext(request_id=request_id))


def bind_identity(user_id: str | None, project_id: str | None) -> None:
    """Add the authenticated caller to the current request's log context."""
    # Built directly rather than by dataclasses.replace, at a third of its cost (every request).
    _current.set(LogContext(_current.get().request_id, user_id or "-", project_id or "-"))


def bind_job(request_id: str | None, user_id: str | None, project_id: str | None) -> None:
    """Give the current job (an asyncio task of its own) the ids of the request it came from."""
    _current.set(LogContext(request_id or "-", user_id or "-", project_id or "-"))


@contextmanager
def job_context(
    request_id: str | None, user_id: str | None = None, project_id: str | None = None
) -> Iterator[None]:
    """The ids of the request a piece of deferred work came from, for the lines logged inside
    the block (the scrubber's work on one image); the previous ids come back after it."""
    token = _current.set(LogContext(request_id or "-", user_id or "-", project_id or "-"))
    try:
        yield
    finally:
        _current.reset(token)


def add_context_filter(handlers: list[logging.Handler]) -> None:
    """Make `handlers` able to format LOG_FORMAT's ids (each handler gets one filter)."""
    for handler in handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())


def unbind(token: contextvars.Token[LogContext]) -> None:
    _current.reset(token)


def current() -> LogContext:
    return _current.get()


class ContextFilter(logging.Filter):
    """Copies the log context onto every record a handler emits, and redacts the URLs in its
    message and exception text (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.request_id = context.request_id
        record.user_id = context.user_id
        record.project_id = context.project_id
        redact_record(record)
        return True


_EXCEPTION_FORMATTER = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite `record` so its message and traceback hold no URL credentials."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 -- a bad format string is logging's to report, not ours
        return
    redacted = redact_text(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        # Formatted here, redacted, and cached where every Formatter looks for it first.
        record.exc_text = redact_text(_EXCEPTION_FORMATTER.formatException(record.exc_info))


class _ContextRecordFactory:
    """Wraps the process's record factory: each record gets the log context's ids."""

    def __init__(self, make: Callable[..., logging.LogRecord]) -> None:
        self.make = make

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:  # noqa: ANN401 -- LogRecord's
        record = self.make(*args, **kwargs)
        context = _current.get()
        record.request_id = context.request_id
        record.user_id = context.user_id
        record.project_id = context.project_id
        redact_record(record)  # handlers that are not ours (Celery's, billiard's) see it redacted
        return record


def install_record_factory() -> None:
    """Give every record made in this process the log context's ids (once per process)."""
    current_factory = logging.getLogRecordFactory()
    if not isinstance(current_factory, _ContextRecordFactory):
        logging.setLogRecordFactory(_ContextRecordFactory(current_factory))


# Loggers kept quiet under `debug`, as oslo.log's default_log_levels does: botocore's and
# urllib3's debug lines carry request headers (signatures, tokens); the others log every byte.
QUIET_LOGGERS: Final[dict[str, int]] = {
    "botocore": logging.WARNING,
    "aiobotocore": logging.WARNING,
    "boto3": logging.WARNING,
    "s3transfer": logging.WARNING,
    "urllib3": logging.WARNING,
    "aiosqlite": logging.INFO,
    "httpcore": logging.INFO,
    "hpack": logging.INFO,
    "python_multipart": logging.INFO,
    "multipart": logging.INFO,
    "asyncio": logging.INFO,
    "watchfiles": logging.INFO,
}


def log_level(*, debug: bool = False) -> str:
    """GLIMPSE_LOG_LEVEL when set; else DEBUG with `[DEFAULT] debug = true`; else INFO."""
    explicit = os.environ.get("GLIMPSE_LOG_LEVEL")
    if explicit:
        return explicit.upper()
    return "DEBUG" if debug else "INFO"


def quiet_libraries() -> None:
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


class JsonFormatter(logging.Formatter):
    """`use_json`: one JSON object a line, with the same ids as the text format's."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "request_id": getattr(record, "request_id", "-"),
            "user_id": getattr(record, "user_id", "-"),
            "project_id": getattr(record, "project_id", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return jsonlib.dumps(line, ensure_ascii=False)


def use_format(handlers: list[logging.Handler], *, json: bool) -> None:
    """JSON lines on `handlers` when `json`; their own format otherwise."""
    if json:
        for handler in handlers:
            handler.setFormatter(JsonFormatter())


def setup_logging(*, debug: bool = False, json: bool = False) -> None:
    """Configure the root logger (once), and set its level (again, once the settings say
    whether `debug` is on) and its format (JSON lines with `use_json`)."""
    install_record_factory()
    level = log_level(debug=debug)
    logging.basicConfig(level=level, format=LOG_FORMAT)
    root = logging.getLogger()
    add_context_filter(root.handlers)
    use_format(root.handlers, json=json)
    root.setLevel(level)
    quiet_libraries()
