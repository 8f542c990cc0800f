"""The transition table walked whole: every allowed move succeeds, every other is refused, both
by the table itself and by the images repository's status writes."""

from __future__ import annotations

import itertools
import uuid

import pytest

from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image, utcnow
from glimpse.domain.errors import InvalidTransition
from glimpse.domain.images import TRANSITIONS, ImageStatus, transition

PAIRS = list(itertools.product(ImageStatus, repeat=2))
ALLOWED = [(current, target) for current, target in PAIRS if target in TRANSITIONS[current]]
REFUSED = [(current, target) for current, target in PAIRS if target not in TRANSITIONS[current]]


def test_the_walk_covers_the_table() -> None:
    assert set(TRANSITIONS) == set(ImageStatus)
    assert len(ALLOWED) == sum(len(targets) for targets in TRANSITIONS.values())
    assert len(ALLOWED) + len(REFUSED) == len(ImageStatus) ** 2
    assert TRANSITIONS[ImageStatus.DELETED] == frozenset()
    # No status "moves" to itself: a write that keeps the status is not a transition.
    assert all(current != target for current, target in ALLOWED)


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_an_allowed_transition_succeeds(current: ImageStatus, target: ImageStatus) -> None:
    assert transition(current, target) == target


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_any_other_transition_is_refused(current: ImageStatus, target: ImageStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"from {current} to {target}"):
        transition(current, target)


async def _add_image(repo: ImageRepository, status: ImageStatus) -> str:
    image_id = str(uuid.uuid4())
    now = utcnow()
    image = Image(id=image_id, status=status, visibility="shared", created_at=now, updated_at=now)
    await repo.add(image, {}, [])
    return image_id


async def test_the_repository_writes_exactly_the_allowed_moves(database: Database) -> None:
    """claim_status on one image per pair: allowed moves are written, the others refused
    before any write (the image keeps its status)."""
    async with database.write() as session:
        repo = ImageRepository(session)
        images = {pair: await _add_image(repo, pair[0]) for pair in PAIRS}
    async with database.write() as session:
        repo = ImageRepository(session)
        for (current, target), image_id in images.items():
            if target in TRANSITIONS[current]:
                assert await repo.claim_status(image_id, current, target)
            else:
                with pytest.raises(InvalidTransition):
                    await repo.claim_status(image_id, current, target)
    async with database.read() as session:
        repo = ImageRepository(session)
        for (current, target), image_id in images.items():
            image = await repo.get(image_id)
            assert image is not None
            assert image.status == (target if target in TRANSITIONS[current] else current)


async def test_a_move_from_a_status_the_image_left_writes_nothing(database: Database) -> None:
    async with database.write() as session:
        repo = ImageRepository(session)
        image_id = await _add_image(repo, ImageStatus.ACTIVE)
    async with database.write() as session:
        repo = ImageRepository(session)
        assert not await repo.claim_status(image_id, ImageStatus.QUEUED, ImageStatus.SAVING)
        assert not await repo.activate(image_id, ImageStatus.IMPORTING, {"size": 3})
        assert not await repo.record_data(image_id, ImageStatus.UPLOADING, {"size": 3})
    async with database.read() as session:
        image = await ImageRepository(session).get(image_id)
        assert image is not None
        assert (image.status, image.size) == (ImageStatus.ACTIVE, None)


async def test_deletion_is_checked_against_the_table(database: Database) -> None:
    async with database.write() as session:
        repo = ImageRepository(session)
        delayed = await repo.get(await _add_image(repo, ImageStatus.QUEUED))
        assert delayed is not None
        assert await repo.mark_deleted(delayed, delayed=True, request_id=None) == []
        assert delayed.status == ImageStatus.PENDING_DELETE
        deleted = await repo.get(await _add_image(repo, ImageStatus.ACTIVE))
        assert deleted is not None
        assert await repo.mark_deleted(deleted, delayed=False, request_id=None) == []
        assert deleted.status == ImageStatus.DELETED
        with pytest.raises(InvalidTransition, match="from deleted to deleted"):
            await repo.mark_deleted(deleted, delayed=False, request_id=None)
