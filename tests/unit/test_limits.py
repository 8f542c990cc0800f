"""image_size_cap and user_storage_quota refuse with Glance's words, wherever they apply."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from glimpse.domain.errors import LimitExceeded, SizeMismatch
from glimpse.limits import capped, check_size_cap, quota_message
from glimpse.stores.metering import Meter


async def _chunks(*blocks: bytes) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


def test_an_announced_size_past_the_cap_is_refused_before_any_byte() -> None:
    check_size_cap(10, None)
    check_size_cap(10, 10)
    with pytest.raises(LimitExceeded) as refused:
        check_size_cap(10, 11)
    assert refused.value.message == "The incoming image is too large: image_size_cap is 10 bytes"


async def test_data_up_to_the_cap_passes_counted_and_hashed() -> None:
    meter = Meter("sha512")
    passed = [block async for block in capped(_chunks(b"abc", b"defg"), meter, 7)]
    assert b"".join(passed) == b"abcdefg"
    assert meter.image_data() == {
        "size": 7,
        "checksum": "7ac66c0f148de9519b8bd264312c4d64",
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(b"abcdefg").hexdigest(),
    }


async def test_data_past_the_cap_is_refused_with_glances_words() -> None:
    meter = Meter("sha512")
    with pytest.raises(LimitExceeded) as refused:
        async for _ in capped(_chunks(b"abc", b"defg"), meter, 6):
            pass
    assert refused.value.message == "The incoming image is too large: image_size_cap is 6 bytes"


async def test_data_shorter_than_announced_is_refused() -> None:
    with pytest.raises(SizeMismatch):
        async for _ in capped(_chunks(b"abc"), Meter("sha512"), 10, expected_size=4):
            pass


def test_the_quota_message_is_glances() -> None:
    assert quota_message(5) == (
        "Denying attempt to upload image because it exceeds the quota: 5 bytes"
    )


async def test_a_signatures_hash_is_computed_in_the_same_pass_once() -> None:
    # sha512 is the multihash already: asked for again, it is that same digest.
    meter = Meter("sha512", also=("sha256", "sha512"))
    data = b"x" * (3 * 1024 * 1024 + 5)  # more than one block
    passed = [block async for block in capped(_chunks(data[:100], data[100:]), meter, len(data))]
    assert b"".join(passed) == data
    assert meter.digest("sha512") == hashlib.sha512(data).digest()
    assert meter.digest("sha256") == hashlib.sha256(data).digest()
    assert meter.hash_value == hashlib.sha512(data).hexdigest()
    assert meter.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
