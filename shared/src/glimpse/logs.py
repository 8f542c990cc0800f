"""Logging set-up shared by every entry point, and the per-request log context.

Each line carries `[request_id user_id project_id]` (oslo.log puts the same ids in the same
place), taken from a context variable that the API sets for each request: the request id as the
request arrives, the user and project once the caller is authenticated. A worker sets it from
the task it runs (the ids of the request that accepted the job), so one grep for a request id
follows an import from the API through the worker. Lines logged outside both show `-`.

The same filter redacts URLs in every line it passes (glimpse.domain.redaction): a location,
a web-download URI or a presigned URL that some library puts in its message or exception never
reaches the log with its credentials.
"""

from __future__ import annotations

import contextvars
import logging
import os
from dataclasses import dataclass, replace

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
    _current.set(replace(_current.get(), user_id=user_id or "-", project_id=project_id or "-"))


def bind_job(request_id: str | None, user_id: str | None, project_id: str | None) -> None:
    """Give the current job (an asyncio task of its own) the ids of the request it came from."""
    _current.set(LogContext(request_id or "-", user_id or "-", project_id or "-"))


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


def setup_logging() -> None:
    level = os.environ.get("GLIMPSE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    add_context_filter(logging.getLogger().handlers)
