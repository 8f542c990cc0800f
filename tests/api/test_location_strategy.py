"""location_strategy through the API: which location serves a download, the fallback when a
store lost the object, and the order of `locations` and `direct_url`. The stores are real: a
file store, an S3 store on moto's server and an http store on a loopback file server. Configs
are glance-api.conf files, written as Glance's docs write them."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from glimpse.config import Settings, load_settings
from glimpse.db.engine import Database
from glimpse.db.tables import ImageLocation
from store_servers import HttpServer, MotoServer, s3_client

OCTET = {"Content-Type": "application/octet-stream"}
SIZE = 3 * 1024 * 1024 + 17  # several chunks in every store
S3_KEYS = ("strategy-access", "strategy-secret")


@dataclass(frozen=True)
class Estate:
    """What a config file points at: this test's folder, database and store servers."""

    tmp_path: Path
    database_url: str
    moto: MotoServer
    http: HttpServer


@pytest.fixture
def estate(
    tmp_path: Path, database_url: str, moto_server: MotoServer, http_server: HttpServer
) -> Estate:
    return Estate(tmp_path, database_url, moto_server, http_server)


def glance_api_conf(
    estate: Estate, *, stores: str, strategy: str, preference: str = "", bucket: str = ""
) -> Settings:
    tmp_path, database_url, moto, http = (
        estate.tmp_path,
        estate.database_url,
        estate.moto,
        estate.http,
    )
    port = urlsplit(http.base).port
    text = f"""[DEFAULT]
enabled_backends = {stores}
location_strategy = {strategy}
show_multiple_locations = True
show_image_direct_url = True

[store_type_location_strategy]
store_type_preference = {preference}

[glance_store]
default_backend = local

[local]
filesystem_store_datadir = {tmp_path / "local"}

[objects]
s3_store_host = {moto.endpoint}
s3_store_access_key = {S3_KEYS[0]}
s3_store_secret_key = {S3_KEYS[1]}
s3_store_bucket = {bucket or "images-" + uuid.uuid4().hex[:12]}
s3_store_create_bucket_on_put = True
s3_store_bucket_url_format = path

[web]
http_request_timeout = 30

[import_filtering_opts]
allowed_hosts = localhost
allowed_ports = {port}

[database]
connection = {database_url}

[celery]
broker_data_dir = {tmp_path / "broker"}

[os_glance_staging_store]
filesystem_store_datadir = {tmp_path / "staging"}

[os_glance_tasks_store]
filesystem_store_datadir = {tmp_path / "tasks"}
"""
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return load_settings(path)


async def image_in_every_store(
    client: httpx.AsyncClient, database: Database, estate: Estate, stores: str
) -> tuple[str, dict[str, bytes]]:
    """An image uploaded to `objects` (S3), then copied to `local` and, when enabled, `web`;
    each copy has its own bytes (of one length), so a download tells which store served it."""
    created = await client.post(
        "/v2/images", json={"name": "spread", "disk_format": "raw", "container_format": "bare"}
    )
    image_id: str = created.json()["id"]
    copies = {"objects": b"s" * SIZE, "local": b"f" * SIZE}
    uploaded = await client.put(
        f"/v2/images/{image_id}/file",
        content=copies["objects"],
        headers={**OCTET, "X-Image-Meta-Store": "objects"},
    )
    assert uploaded.status_code == 204, uploaded.text
    tmp_path, http = estate.tmp_path, estate.http
    local = tmp_path / "local" / image_id
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(copies["local"])
    urls = {"local": local.as_uri()}
    if "web:http" in stores:
        copies["web"] = b"h" * SIZE
        (http.root / image_id).write_bytes(copies["web"])
        urls["web"] = f"http://localhost:{urlsplit(http.base).port}/files/{image_id}"
    async with database.write() as session:
        for store, url in urls.items():
            session.add(ImageLocation(image_id=image_id, value=url, meta_data={"store": store}))
    return image_id, copies


def shown_stores(image: dict[str, Any]) -> list[str]:
    return [location["metadata"]["store"] for location in image["locations"]]


THREE = "local:file, objects:s3, web:http"
TWO = "local:file, objects:s3"


@dataclass(frozen=True)
class Case:
    stores: str
    strategy: str
    preference: str
    expected: list[str]


@pytest.mark.parametrize(
    "case",
    [
        # location_order: as added (equal weights); the preference is unused.
        Case(THREE, "location_order", "http, file", ["objects", "local", "web"]),
        Case(TWO, "location_order", "", ["objects", "local"]),
        # store_type: the listed types first, in that order, then the rest as added.
        Case(THREE, "store_type", "http, file", ["web", "local", "objects"]),
        Case(THREE, "store_type", "file", ["local", "objects", "web"]),
        Case(THREE, "store_type", "rbd, s3, file, http", ["objects", "local", "web"]),
        Case(TWO, "store_type", "file, s3", ["local", "objects"]),
        # An empty preference changes nothing.
        Case(TWO, "store_type", "", ["objects", "local"]),
    ],
)
async def test_download_and_views_follow_the_strategy(
    client_for: Any, database: Database, estate: Estate, case: Case
) -> None:
    settings = glance_api_conf(
        estate, stores=case.stores, strategy=case.strategy, preference=case.preference
    )
    expected = case.expected
    client = await client_for(settings)
    image_id, copies = await image_in_every_store(client, database, estate, case.stores)
    download = await client.get(f"/v2/images/{image_id}/file")
    assert download.status_code == 200
    assert download.content == copies[expected[0]]
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert shown_stores(image) == expected
    assert image["direct_url"] == image["locations"][0]["url"]
    listed = (await client.get("/v2/images")).json()["images"]
    assert [shown_stores(each) for each in listed] == [expected]
    own = (await client.get(f"/v2/images/{image_id}/locations")).json()
    assert [location["metadata"]["store"] for location in own] == expected


async def test_deleted_object_falls_back_and_is_logged_once(
    client_for: Any, database: Database, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = "fallback-" + uuid.uuid4().hex[:12]
    settings = glance_api_conf(
        estate, stores=THREE, strategy="store_type", preference="s3, file", bucket=bucket
    )
    client = await client_for(settings)
    image_id, copies = await image_in_every_store(client, database, estate, THREE)
    assert (await client.get(f"/v2/images/{image_id}/file")).content == copies["objects"]
    # Behind Glimpse's back: the preferred store loses its object.
    s3 = s3_client(estate.moto, *S3_KEYS)
    s3.delete_object(Bucket=bucket, Key=image_id)
    with caplog.at_level(logging.WARNING):
        download = await client.get(f"/v2/images/{image_id}/file")
        ranged = await client.get(
            f"/v2/images/{image_id}/file", headers={"Range": "bytes=1048576-1048600"}
        )
    assert download.status_code == 200
    assert download.content == copies["local"]
    assert ranged.status_code == 206
    assert ranged.content == copies["local"][1048576:1048601]
    failures = [r for r in caplog.records if image_id in r.getMessage()]
    # One line per download that met the missing object, none per chunk.
    assert len(failures) == 2, [r.getMessage() for r in failures]
    assert all("unreadable" in r.getMessage() for r in failures)
    # Glimpse still lists the lost copy first: only the operator can say it is gone.
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert shown_stores(image) == ["objects", "local", "web"]
    # Then the file copy goes too: the http store serves, the client notices nothing.
    (estate.tmp_path / "local" / image_id).unlink()
    assert (await client.get(f"/v2/images/{image_id}/file")).content == copies["web"]


async def test_single_store_orders_by_url_scheme(
    client_for: Any, database: Database, database_url: str, tmp_path: Path
) -> None:
    """Without enabled_backends locations name no store: their URL's scheme gives the type."""
    path = tmp_path / "glance-api.conf"
    path.write_text(
        f"""[DEFAULT]
location_strategy = store_type
show_multiple_locations = True
show_image_direct_url = True

[store_type_location_strategy]
store_type_preference = swift, file

[glance_store]
stores = file, http
default_store = file
filesystem_store_datadir = {tmp_path / "images"}

[database]
connection = {database_url}

[celery]
broker_data_dir = {tmp_path / "broker"}

[os_glance_staging_store]
filesystem_store_datadir = {tmp_path / "staging"}

[os_glance_tasks_store]
filesystem_store_datadir = {tmp_path / "tasks"}
"""
    )
    client = await client_for(load_settings(path))
    created = await client.post(
        "/v2/images", json={"name": "single", "disk_format": "raw", "container_format": "bare"}
    )
    image_id = created.json()["id"]
    data = b"single store " * 1000
    uploaded = await client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
    assert uploaded.status_code == 204
    # A location a pre-Train deployment left on a store Glimpse does not have.
    swift = f"swift+https://swift.example/v1/AUTH_glance/glance/{image_id}"
    async with database.write() as session:
        session.add(ImageLocation(image_id=image_id, value=swift, meta_data={}))
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert [location["url"] for location in image["locations"]] == [
        swift,
        (tmp_path / "images" / image_id).as_uri(),
    ]
    assert image["direct_url"] == swift
    # The swift location cannot be read here; the file one serves the download.
    download = await client.get(f"/v2/images/{image_id}/file")
    assert download.status_code == 200
    assert download.content == data
