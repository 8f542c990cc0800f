"""Image data: PUT streams the body to a store, GET streams it back (with Range support)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from glimpse.domain.errors import InvalidInput, UnsupportedMediaType
from glimpse.domain.ranges import parse_range
from glimpse_api.deps import ContextDep, ImageDataServiceDep
from glimpse_api.openapi.routes import (
    BINARY,
    OCTET_STREAM,
    STORE_HEADER,
    binary_body,
    header,
    operation,
    query,
)
from glimpse_api.schemas.body import content_length

router = APIRouter(prefix="/v2/images/{image_id}/file")

_SIZE_HEADER = header(
    "X-Openstack-Image-Size", {"type": "integer", "minimum": 0}, "The size of the data, if known"
)
_RANGE_HEADER = header("Range", {"type": "string"}, "One RFC 7233 byte range: bytes=first-last")
_PREFER = query("prefer", {"type": "string"}, "Comma-separated store ids to read first")
_DATA = {"schema": BINARY}


@router.put(
    "",
    status_code=204,
    **operation(
        errors=(403, 409, 410, 415, 503),
        body=binary_body(),
        parameters=[STORE_HEADER, _SIZE_HEADER],
    ),
)
async def upload_image_data(
    image_id: str, request: Request, ctx: ContextDep, image_data: ImageDataServiceDep
) -> Response:
    content_type = request.headers.get("content-type", OCTET_STREAM).split(";")[0].strip()
    if content_type.lower() != OCTET_STREAM:
        raise UnsupportedMediaType(f"Content-Type must be {OCTET_STREAM}, not {content_type}")
    await image_data.upload(
        ctx,
        image_id,
        request.stream(),
        store_id=request.headers.get("x-image-meta-store"),
        expected_size=_announced_size(request.headers.get("x-openstack-image-size")),
        body_size=content_length(request),
    )
    return Response(status_code=204)


def _announced_size(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise InvalidInput("Invalid or missing image size in request headers.")
    return size


@router.get(
    "",
    response_class=StreamingResponse,
    **operation(
        errors=(403, 416, 503),
        parameters=[_RANGE_HEADER, _PREFER],
        extra={
            200: {"description": "The image data", "content": {OCTET_STREAM: _DATA}},
            206: {"description": "The requested range", "content": {OCTET_STREAM: _DATA}},
            204: {"description": "The image has no data"},
        },
    ),
)
async def download_image_data(
    image_id: str, request: Request, ctx: ContextDep, image_data: ImageDataServiceDep
) -> Response:
    prefer = [s.strip() for s in request.query_params.get("prefer", "").split(",") if s.strip()]
    download = await image_data.download(
        ctx, image_id, parse_range(request.headers.get("range")), prefer
    )
    if download is None:
        return Response(status_code=204)
    headers = {}
    if download.span is None:
        headers["Content-Length"] = str(download.image_size)
        if download.checksum:
            headers["Content-MD5"] = download.checksum
        status = 200
    else:
        span = download.span
        headers["Content-Length"] = str(span.length)
        headers["Content-Range"] = f"bytes {span.start}-{span.stop - 1}/{download.image_size}"
        status = 206
    return StreamingResponse(
        download.chunks, status_code=status, media_type=OCTET_STREAM, headers=headers
    )
