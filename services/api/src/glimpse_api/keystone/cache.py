"""Token validations kept for reuse: a bounded in-process LRU, optionally backed by Redis.

An entry lives until the earlier of the token's expiry and `token_cache_time` after Keystone
validated it; Redis entries carry that deadline, so a node that picks one up keeps the same
bound. Keys are SHA-256 hashes of the tokens: a token never reaches Redis or a log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from glimpse_api.keystone.client import Clock, utcnow
from glimpse_api.keystone.tokens import TokenInfo

log = logging.getLogger(__name__)

REDIS_PREFIX = "glimpse:keystone:token:"


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class CacheStats:
    memory_hits: int = 0
    redis_hits: int = 0
    misses: int = 0


@dataclass(frozen=True, slots=True)
class _Entry:
    info: TokenInfo
    until: datetime


class TokenCache:
    def __init__(
        self,
        cache_time: int,
        max_entries: int,
        redis: Redis | None = None,
        clock: Clock = utcnow,
    ) -> None:
        # keystonemiddleware's -1 disables the cache; 0 would keep nothing either.
        self._cache_time = timedelta(seconds=cache_time) if cache_time > 0 else None
        self._max_entries = max_entries
        self._redis = redis
        self._clock = clock
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self._cache_time is not None

    def __len__(self) -> int:
        return len(self._memory)

    async def get(self, token: str) -> TokenInfo | None:
        if not self.enabled:
            return None
        key = token_key(token)
        now = self._clock()
        entry = self._memory.get(key)
        if entry is not None:
            if entry.until > now:
                self._memory.move_to_end(key)
                self.stats.memory_hits += 1
                return entry.info
            del self._memory[key]
        entry = await self._redis_get(key)
        if entry is not None and entry.until > now:
            self._remember(key, entry)
            self.stats.redis_hits += 1
            return entry.info
        self.stats.misses += 1
        return None

    async def put(self, token: str, info: TokenInfo) -> None:
        if self._cache_time is None:
            return
        now = self._clock()
        until = min(info.expires_at, now + self._cache_time)
        if until <= now:
            return
        key = token_key(token)
        entry = _Entry(info=info, until=until)
        self._remember(key, entry)
        if self._redis is not None:
            value = json.dumps({"token": info.to_json(), "until": until.isoformat()})
            milliseconds = max(1, int((until - now).total_seconds() * 1000))
            try:
                await self._redis.set(REDIS_PREFIX + key, value, px=milliseconds)
            except RedisError as exc:
                log.warning("token cache: Redis write failed: %s", exc)

    def _remember(self, key: str, entry: _Entry) -> None:
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self._max_entries:
            self._memory.popitem(last=False)

    async def _redis_get(self, key: str) -> _Entry | None:
        if self._redis is None:
            return None
        try:
            raw = await self._redis.get(REDIS_PREFIX + key)
        except RedisError as exc:
            # The cache only saves work: without Redis, Keystone answers instead.
            log.warning("token cache: Redis read failed: %s", exc)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return _Entry(
                info=TokenInfo.from_json(data["token"]),
                until=datetime.fromisoformat(data["until"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("token cache: ignoring an unreadable Redis entry: %s", exc)
            return None

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class RefusedTokens:
    """Tokens Keystone refused lately, by SHA-256 hash, each for `cache_time` seconds: a client
    repeating a bad token (or a flood of them) is answered 401 without asking Keystone again.
    In memory only, bounded (the oldest go first)."""

    def __init__(self, cache_time: int, max_entries: int) -> None:
        self._cache_time = cache_time
        self._max_entries = max_entries
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def add(self, token: str) -> None:
        if self._cache_time <= 0:
            return
        key = token_key(token)
        self._until[key] = time.monotonic() + self._cache_time
        self._until.move_to_end(key)
        while len(self._until) > self._max_entries:
            self._until.popitem(last=False)

    def holds(self, token: str) -> bool:
        if not self._until:
            return False
        key = token_key(token)
        until = self._until.get(key)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._until[key]
            return False
        return True
