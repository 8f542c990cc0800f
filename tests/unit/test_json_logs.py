"""`use_json`: every line a JSON object with the request's ids, URLs redacted as in text."""

from __future__ import annotations

import io
import json
import logging

from glimpse.logs import JsonFormatter, bind_request, install_record_factory, unbind


def test_json_line_carries_the_ids_and_the_exception() -> None:
    install_record_factory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("glimpse.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    token = bind_request("req-abc")
    try:
        logger.warning("fetched %s", "http://user:secret@example.com/x")
        try:
            raise ValueError("boom")  # noqa: TRY301 -- an exception to log
        except ValueError:
            logger.exception("failed")
    finally:
        unbind(token)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "glimpse.test.json"
    assert first["request_id"] == "req-abc"
    assert (first["user_id"], first["project_id"]) == ("-", "-")
    assert "secret" not in first["message"]
    assert first["time"].endswith("+00:00")
    assert "exception" not in first
    assert second["message"] == "failed"
    assert "ValueError: boom" in second["exception"]
