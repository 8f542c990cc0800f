"""Steady client load through the balancer, each request's outcome recorded: clients that list
images and download known ones (checking every byte), and uploaders that create and upload."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx

from support import image_bytes

OCTET = {"Content-Type": "application/octet-stream"}
UPLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    what: str
    started: float  # time.monotonic()
    error: str | None
    image_id: str | None = None


@dataclass
class Load:
    """`readers` threads list and download `images` (id -> sha512); `uploaders` threads create
    images and upload UPLOAD_BYTES each. Used as a context manager: the threads stop, and
    their connections close, on the way out."""

    url: str
    images: dict[str, str]
    readers: int
    uploaders: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    uploaded: dict[str, str] = field(default_factory=dict)  # image id -> sha512, upload 204
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Self:
        for index in range(self.readers):
            self._spawn(self._read, index)
        for index in range(self.uploaders):
            self._spawn(self._upload, index)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads), "load threads hang"

    def _spawn(self, target: object, index: int) -> None:
        thread = threading.Thread(target=target, args=(index,), daemon=True)  # type: ignore[arg-type]  # target takes the index
        thread.start()
        self._threads.append(thread)

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def count(self, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if outcome.started > since)

    def failures(self, since: float = 0.0) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.started > since and o.error is not None]

    def _read(self, index: int) -> None:
        ids = sorted(self.images)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            turn = index
            while not self._stop.is_set():
                turn += 1
                started = time.monotonic()
                if turn % 2:
                    error = _listed(client)
                    self._record(Outcome("list", started, error))
                else:
                    image_id = ids[turn % len(ids)]
                    error = _downloaded(client, image_id, self.images[image_id])
                    self._record(Outcome("download", started, error, image_id))

    def _upload(self, _index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                data = image_bytes(UPLOAD_BYTES)
                image_id = None
                try:
                    created = client.post(
                        "/v2/images",
                        json={"name": "load", "disk_format": "raw", "container_format": "bare"},
                    )
                    if created.status_code != 201:
                        self._record(Outcome("create", started, f"{created.status_code}"))
                        continue
                    image_id = created.json()["id"]
                    put = client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
                except httpx.HTTPError as exc:
                    self._record(Outcome("upload", started, repr(exc), image_id))
                    continue
                if put.status_code == 204:
                    with self._lock:
                        self.uploaded[image_id] = hashlib.sha512(data).hexdigest()
                    self._record(Outcome("upload", started, None, image_id))
                else:
                    self._record(Outcome("upload", started, f"{put.status_code}", image_id))


def _listed(client: httpx.Client) -> str | None:
    try:
        answer = client.get("/v2/images", params={"limit": 5})
    except httpx.HTTPError as exc:
        return repr(exc)
    if answer.status_code != 200 or "images" not in answer.json():
        return f"list: {answer.status_code} {answer.text[:200]}"
    return None


def _downloaded(client: httpx.Client, image_id: str, sha512: str) -> str | None:
    digest = hashlib.sha512()
    try:
        with client.stream("GET", f"/v2/images/{image_id}/file") as answer:
            if answer.status_code != 200:
                return f"download: {answer.status_code}"
            for chunk in answer.iter_bytes():
                digest.update(chunk)
    except httpx.HTTPError as exc:
        return repr(exc)
    return None if digest.hexdigest() == sha512 else "download: other bytes"
