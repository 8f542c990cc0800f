"""Read a subunit v2 stream on stdin; print one JSON object per test: id, status, detail.

Run by tempest's virtualenv (python-subunit and testtools come with tempest), never imported by
Glimpse. `detail` is a skip's reason, or a failure's traceback.
"""

import json
import sys

import subunit
import testtools

FINAL = {"success", "fail", "skip", "xfail", "uxsuccess"}


class Collector(testtools.StreamResult):
    def __init__(self) -> None:
        super().__init__()
        self.tests: dict[str, dict[str, str]] = {}

    def status(  # testtools calls it with keywords, among them others we do not need
        self,
        test_id: str | None = None,
        test_status: str | None = None,
        file_name: str | None = None,
        file_bytes: bytes | None = None,
        **_kwargs: object,
    ) -> None:
        if test_id is None:
            return
        test = self.tests.setdefault(test_id, {"id": test_id, "status": "", "detail": ""})
        if file_name in {"reason", "traceback"} and file_bytes:
            test["detail"] += bytes(file_bytes).decode("utf-8", "replace")
        if test_status in FINAL:
            test["status"] = test_status


def main() -> None:
    collector = Collector()
    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    collector.startTestRun()
    stream.run(collector)
    collector.stopTestRun()
    for test in collector.tests.values():
        if test["status"]:
            sys.stdout.write(json.dumps(test) + "\n")


if __name__ == "__main__":
    main()
