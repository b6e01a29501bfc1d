"""Answers to repeated requests, kept so that a capture sent again is not analysed again.

Two tiers (docs/cache.md):

- in the worker, a least-recently-used store bounded in bytes (``max_bytes``; on by default);
- when ``PD_CACHE_URL`` names a Redis (``redis://host:6379/0``), a store shared by every
  worker and replica, whose entries expire after ``ttl_s``. A worker that finds an answer
  there keeps a copy in its own tier.

A request's key is a SHA-256 over everything that decides its answer: every field of the
TorchServe request row (the raw body, or the multipart fields; options travel in them), the
body's media type, the answer type chosen from ``Accept``, and the model's identity (name,
version and a fingerprint of the unpacked archive). Two requests share a key only if they
are byte for byte the same request to the same archive, so a cached answer is never served
for another model, other options or another answer type.

Only successful answers are stored: JSON answers (dicts) as compact JSON, PNG answers as
their bytes. A hit returns a fresh object equal to the stored one, which TorchServe
serializes to the same bytes as the first answer.

The cache never fails a request. Redis is given short socket timeouts and no retries; on
its first error the worker logs one line, answers without Redis, and tries it again only
``redis_retry_s`` later (one more line once it answers again).

Pure Python over bytes and dicts: tests and tools use it without a server.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

# The decoders read only the media type; a multipart boundary differs between two uploads of
# the same file and must not split their keys.
from .decode import base_type

logger = logging.getLogger(__name__)

# Shipped defaults; config/model-config.yaml (handler: cache:) repeats them.
DEFAULT_MAX_BYTES = 64 * 2**20  # the worker's store; its RSS is held to a budget (docs/reliability.md)
DEFAULT_MAX_ENTRY_BYTES = 8 * 2**20  # a larger answer is not kept: it would flush the store
DEFAULT_TTL_S = 3600
DEFAULT_REDIS_TIMEOUT_MS = 100
DEFAULT_REDIS_RETRY_S = 30.0
# What a stored entry costs besides its key and value bytes: the ordered dict's slot and
# node, and two bytes objects' headers (measured ~190 bytes on CPython 3.11, rounded up).
ENTRY_OVERHEAD = 256
# Part of every key: bump it when the key's serialisation or the stored format changes, so
# that a shared Redis never hands one release's entries to another that reads them otherwise.
KEY_FORMAT = b"pd-cache-1"
REDIS_PREFIX = "pd-cache:"
URL_VARIABLE = "PD_CACHE_URL"
MAX_BYTES_VARIABLE = "PD_CACHE_MAX_BYTES"
# Stored values start with one of these: what the rest of the bytes are.
JSON_TAG, BYTES_TAG = b"J", b"B"


def request_key(row: Mapping[str, Any], content_type: str | None, answer_type: str,
                model_identity: str) -> bytes | None:
    """The key of one TorchServe request row, or None when a field is of a kind that has no
    canonical form (such a request is simply not cached).

    Every part is tagged and length-prefixed, so that no two different requests serialise
    to the same bytes; fields go in sorted order, bytes as they are."""
    digest = hashlib.sha256()

    def part(tag: bytes, data: bytes | bytearray) -> None:
        digest.update(tag + len(data).to_bytes(8, "big"))
        digest.update(data)

    part(b"F", KEY_FORMAT)
    part(b"M", model_identity.encode("utf-8"))
    part(b"T", base_type(content_type).encode("utf-8", "surrogatepass"))
    part(b"A", answer_type.encode("utf-8"))
    for name in sorted(row, key=str):
        value = row[name]
        part(b"N", str(name).encode("utf-8", "surrogatepass"))
        if isinstance(value, (bytes, bytearray)):
            part(b"b", value)
        elif isinstance(value, memoryview):
            part(b"b", value.tobytes())
        elif isinstance(value, str):
            part(b"s", value.encode("utf-8", "surrogatepass"))
        else:
            # A body TorchServe parsed itself (it does not here: RAW_BODIES_SETTING in
            # pd_handler.py) or a test's dict.
            try:
                text = json.dumps(value, sort_keys=True, separators=(",", ":"))
            except (TypeError, ValueError):
                return None
            part(b"j", text.encode("utf-8", "surrogatepass"))
    return digest.digest()


def encode_answer(answer: Any) -> bytes:
    """A successful answer as stored: PNG (or any bytes) as is, JSON compactly."""
    if isinstance(answer, (bytes, bytearray)):
        return BYTES_TAG + bytes(answer)
    return JSON_TAG + json.dumps(answer, separators=(",", ":")).encode("utf-8")


def decode_answer(stored: bytes) -> Any:
    """The answer from its stored form (a new object each time: callers may keep or change
    it), or None for bytes that are not a stored answer."""
    tag, payload = stored[:1], stored[1:]
    if tag == BYTES_TAG:
        return payload
    if tag == JSON_TAG:
        try:
            return json.loads(payload)
        except ValueError:
            return None
    return None


def archive_fingerprint(model_dir: str | os.PathLike) -> str:
    """A digest of the unpacked model archive: its weights, record, settings and code.

    Part of the model's identity in every key, beside the archive's version: an archive
    rebuilt with other weights or code under the same version still never gets the answers
    of the old one from a shared Redis. Python's bytecode caches, which a worker may write
    next to the code, are left out."""
    digest = hashlib.sha256()
    root = Path(model_dir)
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        name = path.relative_to(root).as_posix().encode("utf-8", "surrogatepass")
        digest.update(len(name).to_bytes(8, "big") + name)
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def model_identity(model_info: Mapping[str, Any], model_dir: str | os.PathLike | None) -> str:
    """Name, version and (where the archive is at hand) its fingerprint, as keys carry them."""
    fingerprint = archive_fingerprint(model_dir) if model_dir else "-"
    return f"{model_info.get('name')}/{model_info.get('version')}/{fingerprint}"


def cache_directives(cache_control: str | None) -> tuple[bool, bool]:
    """(may answer from the cache, may store the answer) for a request's Cache-Control:
    ``no-cache`` asks for a fresh analysis (still stored, replacing the old answer),
    ``no-store`` for one that is neither looked up nor kept (RFC 9111, 5.2.1)."""
    directives = {part.split("=")[0].strip().lower() for part in (cache_control or "").split(",")}
    if "no-store" in directives:
        return False, False
    return "no-cache" not in directives, True


def entry_cost(key: bytes, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


class LruStore:
    """The worker's tier: keys to stored answers, the least recently used dropped first so
    that the entries' :func:`entry_cost` never sums to more than ``max_bytes``.

    Not locked: a worker's handler calls come one at a time."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.entries: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        self.size = 0
        self.evictions = 0

    def get(self, key: bytes) -> bytes | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: bytes) -> bool:
        """Keep ``value``; False (and nothing dropped) when it alone exceeds the bound."""
        cost = entry_cost(key, value)
        if cost > self.max_bytes:
            return False
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= entry_cost(key, old)
        while self.size + cost > self.max_bytes:
            dropped_key, dropped = self.entries.popitem(last=False)
            self.size -= entry_cost(dropped_key, dropped)
            self.evictions += 1
        self.entries[key] = value
        self.size += cost
        return True


def _where(url: str) -> str:
    """host:port/db of a Redis URL, for log lines: never its password."""
    try:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"
    except ValueError:
        return "(an unreadable URL)"


class RedisStore:
    """The shared tier: a Redis that every call may find gone or slow.

    Each call waits at most ``timeout_s`` (no retries). The first failure logs one line and
    puts Redis aside for ``retry_s`` seconds, during which calls return at once; the next
    call after that tries again (failing again stays silent; succeeding logs one line)."""

    def __init__(self, url: str, ttl_s: float = DEFAULT_TTL_S,
                 timeout_s: float = DEFAULT_REDIS_TIMEOUT_MS / 1000, retry_s: float = DEFAULT_REDIS_RETRY_S) -> None:
        # Imported here: a worker without Redis, and the client that shares pdseg, need none.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if ttl_s < 1:
            raise ValueError(f"cache ttl_s must be at least 1 s, not {ttl_s}")
        self.where = _where(url)
        self.ttl_s = int(ttl_s)
        self.retry_s = float(retry_s)
        # redis-py retries a failed call three times with back-off by default: seconds of
        # waiting per request while Redis is down. One attempt, then the back-off below.
        self.client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                           retry=Retry(NoBackoff(), 0), health_check_interval=0)
        # Answers are bytes: a URL asking for decoded responses (its options win over the
        # arguments above) would turn every hit into a miss.
        self.client.connection_pool.connection_kwargs["decode_responses"] = False
        self.resume_at = 0.0  # while the clock is before this, Redis is not asked
        self.failing = False

    def _usable(self) -> bool:
        return time.monotonic() >= self.resume_at

    def _failed(self, error: Exception) -> None:
        if not self.failing:
            logger.warning("result cache: Redis at %s failed (%s: %s); answering without it, next try in %g s",
                           self.where, type(error).__name__, error, self.retry_s)
        self.failing = True
        self.resume_at = time.monotonic() + self.retry_s
        try:  # a half-read reply must not be read as the next call's
            self.client.connection_pool.disconnect()
        except Exception:  # noqa: BLE001 - best effort on a broken connection
            pass

    def _succeeded(self) -> None:
        if self.failing:
            logger.info("result cache: Redis at %s answers again", self.where)
            self.failing = False

    def get(self, key: bytes) -> bytes | None:
        if not self._usable():
            return None
        try:
            value = self.client.get(REDIS_PREFIX + key.hex())
        except Exception as error:  # noqa: BLE001 - any failure of the cache is a miss, never the caller's error
            self._failed(error)
            return None
        self._succeeded()
        return value

    def put(self, key: bytes, value: bytes) -> bool:
        if not self._usable():
            return False
        try:
            self.client.set(REDIS_PREFIX + key.hex(), value, ex=self.ttl_s)
        except Exception as error:  # noqa: BLE001
            self._failed(error)
            return False
        self._succeeded()
        return True


class ResultCache:
    """What the handler uses: :meth:`key` for a request row, :meth:`get` before decoding,
    :meth:`put` after a successful answer. Off (keys are None) when neither tier is."""

    def __init__(self, model_identity: str, local: LruStore | None = None, remote: RedisStore | None = None,
                 max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES) -> None:
        self.model_identity = model_identity
        self.local = local if local is not None and local.max_bytes > 0 else None
        self.remote = remote
        self.max_entry_bytes = int(max_entry_bytes)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], model_identity: str,
                      environ: Mapping[str, str] | None = None) -> "ResultCache":
        """The ``cache`` block of model-config.yaml's ``handler`` section. ``PD_CACHE_URL``
        turns the Redis tier on; ``PD_CACHE_MAX_BYTES`` overrides ``max_bytes`` (0: no
        worker tier), so an operator can size it to the pod without rebuilding the archive."""
        environ = os.environ if environ is None else environ
        settings = settings or {}

        # A cache is not worth a worker that cannot start: a setting that cannot be read falls
        # back to its default, and the log says so once.
        def setting(name: str, variable: str | None, default: float) -> float:
            given = (environ.get(variable) if variable else None) or settings.get(name)
            if given is None:
                return default
            try:
                return float(given)
            except (TypeError, ValueError):
                logger.error("result cache: %s=%r is not a number; using %g", variable or name, given, default)
                return default

        max_bytes = int(setting("max_bytes", MAX_BYTES_VARIABLE, DEFAULT_MAX_BYTES))
        url = (environ.get(URL_VARIABLE) or "").strip()
        remote = None
        if url:
            try:
                remote = RedisStore(url, ttl_s=setting("ttl_s", None, DEFAULT_TTL_S),
                                    timeout_s=setting("redis_timeout_ms", None, DEFAULT_REDIS_TIMEOUT_MS) / 1000,
                                    retry_s=setting("redis_retry_s", None, DEFAULT_REDIS_RETRY_S))
            except Exception as error:  # noqa: BLE001 - a bad URL, a missing client library
                logger.error("result cache: no Redis tier (%s: %s); running without it", type(error).__name__, error)
        cache = cls(model_identity, LruStore(max_bytes), remote,
                    int(setting("max_entry_bytes", None, DEFAULT_MAX_ENTRY_BYTES)))
        local = f"{max_bytes / 2**20:g} MiB" if cache.local is not None else "none"
        shared = f", Redis at {remote.where} (entries expire after {remote.ttl_s} s)" if remote is not None else ""
        logger.info("result cache: %s in the worker%s", local, shared)
        return cache

    @property
    def enabled(self) -> bool:
        return self.local is not None or self.remote is not None

    # The three calls below never raise: a request whose answer cannot be looked up or kept
    # is analysed and answered as if there were no cache (a failure here would be a bug).

    def key(self, row: Mapping[str, Any], content_type: str | None, answer_type: str) -> bytes | None:
        if not self.enabled:
            return None
        try:
            return request_key(row, content_type, answer_type, self.model_identity)
        except Exception:  # noqa: BLE001
            logger.exception("result cache: no key for a request")
            return None

    def get(self, key: bytes | None) -> Any:
        """The stored answer for ``key``, or None."""
        if key is None:
            return None
        try:
            stored = self.local.get(key) if self.local is not None else None
            if stored is None and self.remote is not None:
                stored = self.remote.get(key)
                if stored is not None and self.local is not None:
                    self.local.put(key, stored)  # the next time, without the round trip
            return decode_answer(stored) if stored is not None else None
        except Exception:  # noqa: BLE001
            logger.exception("result cache: looking up an answer failed")
            return None

    def put(self, key: bytes | None, answer: Any) -> bool:
        """Store a successful answer; False where it is not kept (no key, too large)."""
        if key is None:
            return False
        try:
            stored = encode_answer(answer)
            if len(stored) > self.max_entry_bytes:
                return False
            kept = self.local.put(key, stored) if self.local is not None else False
            if self.remote is not None:
                kept = self.remote.put(key, stored) or kept
            return kept
        except Exception:  # noqa: BLE001
            logger.exception("result cache: an answer could not be stored")
            return False
