"""Fixed-window rate limits counted in Django's cache.

One counter per (scope, key, minute). The key is hashed before it becomes part of
a cache key, so secret keys never sit in Redis or in its logs. With the
local-memory cache each process counts on its own (gunicorn's two workers let
through up to twice the limit); set REDIS_URL for one shared count.
"""

import hashlib
import logging
import math
import time

from django.core.cache import cache

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def _cache_key(scope: str, key: str, window_start: int) -> str:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}:{window_start}"


def hit(scope: str, key: str, limit: int, window: int = WINDOW_SECONDS) -> int | None:
    """Count one request; the seconds to wait when it is over `limit`, else None.

    A limit of 0 or less disables the check. When the cache itself fails, the
    request goes through: a broken cache must not take the API down with it.
    """
    if limit <= 0:
        return None
    now = time.time()
    window_start = int(now // window) * window
    cache_key = _cache_key(scope, key, window_start)
    try:
        # add() is a no-op when the counter exists; incr() is atomic in Redis and locmem.
        cache.add(cache_key, 0, timeout=window + 5)
        try:
            count = cache.incr(cache_key)
        except ValueError:
            # Expired or evicted between add() and incr(): this is the window's first hit.
            cache.set(cache_key, 1, timeout=window + 5)
            count = 1
    except Exception as e:  # noqa: BLE001 - any cache backend failure
        log.warning(
            "rate limit cache unavailable (%s); letting the request through", type(e).__name__
        )
        return None
    if count <= limit:
        return None
    return max(1, math.ceil(window_start + window - now))


def waiting(scope: str, key: str, limit: int, window: int = WINDOW_SECONDS) -> int | None:
    """The seconds to wait when `key` is already over `limit` this window, counting nothing."""
    if limit <= 0:
        return None
    now = time.time()
    window_start = int(now // window) * window
    try:
        count = cache.get(_cache_key(scope, key, window_start)) or 0
    except Exception as e:  # noqa: BLE001 - any cache backend failure
        log.warning("rate limit cache unavailable (%s); not checking", type(e).__name__)
        return None
    if count < limit:
        return None
    return max(1, math.ceil(window_start + window - now))
