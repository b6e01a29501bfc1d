"""The result cache (handler/pdseg/cache.py): keys, the worker's byte-bounded LRU, the Redis
tier against a real redis-server (stopped, hung and restarted under it), and a real
TorchServe answering repeated requests from it, with and without Redis."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from pdseg import cache as cache_mod
from pdseg.cache import (ENTRY_OVERHEAD, LruStore, RedisStore, ResultCache, archive_fingerprint,
                         cache_directives, decode_answer, encode_answer, entry_cost, request_key)
from serve import ROOT, LocalServer, free_port

IDENTITY = "pd_segmenter/1.0/0123456789abcdef"
JSON_BODY = b'{"signal": [0.5, 1.5, 7.25, 2.0], "threshold": 0.6}'
ANSWER = {"model": {"name": "pd_segmenter", "version": "1.0"},
          "summary": {"pulses": 1, "histogram": [0, 1, 0], "mean_peak": 7.250000000000001},
          "signals": [{"index": 0, "length": 4, "regions": [{"start": 2, "end": 3, "peak": -1e-300,
                                                             "phase_deg": 123.456789}]}]}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def json_key(body: bytes = JSON_BODY, identity: str = IDENTITY, accept: str = "application/json") -> bytes:
    return request_key({"body": body}, "application/json", accept, identity)


# --- keys ------------------------------------------------------------------------------------

def test_a_hit_returns_the_identical_answer():
    cache = ResultCache(IDENTITY, LruStore(2**20))
    key = cache.key({"body": JSON_BODY}, "application/json", "application/json")
    assert cache.get(key) is None
    assert cache.put(key, ANSWER)
    first, second = cache.get(key), cache.get(key)
    assert first == ANSWER and first is not ANSWER and first is not second  # callers may change theirs
    # What TorchServe sends for a dict answer (json.dumps, indent=2): the same bytes as the first time.
    assert json.dumps(first, indent=2) == json.dumps(ANSWER, indent=2)
    png_key = cache.key({"body": JSON_BODY}, "application/json", "image/png")
    assert cache.put(png_key, PNG) and cache.get(png_key) == PNG and isinstance(cache.get(png_key), bytes)
    assert cache.get(key) == ANSWER  # the PNG answer is kept beside the JSON one, not instead of it


def test_another_option_answer_type_format_or_model_version_misses():
    key = json_key()
    assert json_key() == key and len(key) == 32
    different = {
        "another threshold": json_key(JSON_BODY.replace(b"0.6", b"0.7")),
        "another view": json_key(JSON_BODY[:-1] + b', "view": "prpd"}'),
        "a PNG answer": json_key(accept="image/png"),
        "another version": json_key(identity="pd_segmenter/1.1/0123456789abcdef"),
        "another archive of the same version": json_key(identity="pd_segmenter/1.0/fedcba9876543210"),
        "another model": json_key(identity="other_model/1.0/0123456789abcdef"),
        "another format": request_key({"body": JSON_BODY}, "text/csv", "application/json", IDENTITY),
    }
    assert len(set(different.values()) | {key}) == len(different) + 1, different
    cache = ResultCache(IDENTITY, LruStore(2**20))
    cache.put(key, ANSWER)
    for name, other in different.items():
        assert cache.get(other) is None, name
    # Two workers of another archive version sharing nothing but the key function:
    assert ResultCache("pd_segmenter/1.1/x", LruStore(2**20)).key({"body": JSON_BODY}, "application/json",
                                                                  "application/json") != key


def test_multipart_fields_are_keyed_in_any_order_and_without_the_boundary():
    form = {"data": b"\x93NUMPY...", "threshold": b"0.6", "view": b"prpd"}
    reordered = {"view": b"prpd", "threshold": b"0.6", "data": b"\x93NUMPY..."}
    one = request_key(form, "multipart/form-data; boundary=aaa", "image/png", IDENTITY)
    assert one == request_key(reordered, "Multipart/Form-Data; boundary=bbb", "image/png", IDENTITY)
    assert one != request_key(form | {"threshold": b"0.61"}, "multipart/form-data", "image/png", IDENTITY)
    assert one != request_key({"data": form["data"], "view": b"prpd"}, "multipart/form-data", "image/png", IDENTITY)
    # Field boundaries and value kinds are part of the key: nothing runs into its neighbour.
    assert request_key({"a": b"bc"}, "", "", IDENTITY) != request_key({"ab": b"c"}, "", "", IDENTITY)
    assert request_key({"a": b"1"}, "", "", IDENTITY) != request_key({"a": "1"}, "", "", IDENTITY)
    assert request_key({"body": b"x"}, "a", "b", IDENTITY) != request_key({"body": b"x"}, "ab", "", IDENTITY)
    # A body TorchServe parsed (a dict) is keyed by its content, not its key order.
    assert request_key({"body": {"signal": [1], "threshold": 0.5}}, "application/json", "application/json", IDENTITY) \
        == request_key({"body": {"threshold": 0.5, "signal": [1]}}, "application/json", "application/json", IDENTITY)
    assert request_key({"body": object()}, "application/json", "application/json", IDENTITY) is None


def test_stored_form_round_trips_and_refuses_strangers():
    assert decode_answer(encode_answer(ANSWER)) == ANSWER
    assert decode_answer(encode_answer(PNG)) == PNG
    assert decode_answer(b"Xsomething") is None and decode_answer(b"J{broken") is None and decode_answer(b"") is None


def test_cache_control_directives():
    assert cache_directives(None) == (True, True)
    assert cache_directives("max-age=0") == (True, True)
    assert cache_directives("no-cache") == (False, True)
    assert cache_directives("No-Cache, max-age=0") == (False, True)
    assert cache_directives("no-store") == (False, False)
    assert cache_directives("no-cache, no-store") == (False, False)


def test_archive_fingerprint_follows_every_file_but_bytecode(tmp_path):
    (tmp_path / "pdseg").mkdir()
    (tmp_path / "pd_segmenter.pt").write_bytes(b"weights")
    (tmp_path / "pdseg" / "decode.py").write_text("x = 1\n")
    first = archive_fingerprint(tmp_path)
    (tmp_path / "pdseg" / "__pycache__").mkdir()
    (tmp_path / "pdseg" / "__pycache__" / "decode.cpython-311.pyc").write_bytes(b"\0" * 100)
    assert archive_fingerprint(tmp_path) == first
    (tmp_path / "pd_segmenter.pt").write_bytes(b"weightz")
    assert archive_fingerprint(tmp_path) != first
    assert cache_mod.model_identity({"name": "pd_segmenter", "version": "1.0"}, tmp_path) \
        == f"pd_segmenter/1.0/{archive_fingerprint(tmp_path)}"


# --- the worker's tier -----------------------------------------------------------------------

def test_a_full_cache_evicts_the_least_recently_used():
    value = b"v" * 1000
    store = LruStore(3 * entry_cost(b"k" * 32, value))
    keys = [bytes([n]) * 32 for n in range(4)]
    for key in keys[:3]:
        assert store.put(key, value)
    assert store.get(keys[0]) == value  # now the most recently used
    assert store.put(keys[3], value)
    assert store.get(keys[1]) is None and store.evictions == 1
    assert [store.get(k) for k in (keys[0], keys[2], keys[3])] == [value] * 3
    # Through ResultCache: the oldest answer goes, the recent ones stay.
    one_answer = len(encode_answer(ANSWER))
    cache = ResultCache(IDENTITY, LruStore(2 * (32 + one_answer + ENTRY_OVERHEAD)))
    bodies = [JSON_BODY.replace(b"0.6", f"0.{n}".encode()) for n in range(1, 4)]
    for body in bodies:
        cache.put(json_key(body), ANSWER)
    assert cache.get(json_key(bodies[0])) is None
    assert cache.get(json_key(bodies[1])) == ANSWER and cache.get(json_key(bodies[2])) == ANSWER


def test_the_byte_bound_holds():
    rng = np.random.default_rng(3)
    bound = 200_000
    store = LruStore(bound)
    for number in range(2000):
        key = int(rng.integers(0, 300)).to_bytes(32, "big")  # repeated keys replace their entry
        value = bytes(int(rng.integers(0, 30_000)))
        store.put(key, value)
        assert store.size == sum(entry_cost(k, v) for k, v in store.entries.items()) <= bound
    assert store.evictions > 0
    before = dict(store.entries)
    assert not store.put(b"big" * 11, bytes(bound))  # alone over the bound: refused, nothing dropped
    assert store.entries == before
    # max_entry_bytes: an answer too large to keep is answered, not stored.
    cache = ResultCache(IDENTITY, LruStore(2**20), max_entry_bytes=100)
    assert not cache.put(json_key(), ANSWER) and cache.get(json_key()) is None


def test_settings_defaults_and_the_environment(monkeypatch):
    shipped = yaml.safe_load((ROOT / "config" / "model-config.yaml").read_text())["handler"]["cache"]
    assert shipped == {"max_bytes": cache_mod.DEFAULT_MAX_BYTES, "max_entry_bytes": cache_mod.DEFAULT_MAX_ENTRY_BYTES,
                       "ttl_s": cache_mod.DEFAULT_TTL_S, "redis_timeout_ms": cache_mod.DEFAULT_REDIS_TIMEOUT_MS,
                       "redis_retry_s": cache_mod.DEFAULT_REDIS_RETRY_S}
    cache = ResultCache.from_settings(shipped, IDENTITY, environ={})
    assert cache.enabled and cache.local.max_bytes == 64 * 2**20 and cache.remote is None
    assert ResultCache.from_settings({}, IDENTITY, environ={}).local.max_bytes == 64 * 2**20
    off = ResultCache.from_settings(shipped, IDENTITY, environ={"PD_CACHE_MAX_BYTES": "0"})
    assert not off.enabled and off.key({"body": JSON_BODY}, "application/json", "application/json") is None
    assert not off.put(None, ANSWER) and off.get(None) is None
    smaller = ResultCache.from_settings(shipped, IDENTITY, environ={"PD_CACHE_MAX_BYTES": "1000"})
    assert smaller.local.max_bytes == 1000
    # A Redis URL that cannot work leaves the worker serving from its own tier, with one line said.
    broken = ResultCache.from_settings(shipped, IDENTITY, environ={"PD_CACHE_URL": "http://not-redis:1/"})
    assert broken.remote is None and broken.local is not None


# --- a real redis-server ------------------------------------------------------------------------

class RedisServer:
    """redis-server on a free loopback port, no persistence; stopped, hung or restarted on request."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make setup` (as root it installs Debian's "
                        "redis-server package; otherwise: apt-get install redis-server)")
        self.binary, self.folder = binary, folder
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, f"redis-server exited with {self.process.returncode}"
                assert time.monotonic() < deadline, "redis-server did not answer PING within 20 s"
                time.sleep(0.05)
        self.client = client
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was paused
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_server(tmp_path):
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.fail("the redis Python package is missing: run `make setup` (requirements.txt)")
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


def shared_cache(url: str, identity: str = IDENTITY, local_bytes: int = 2**20, **redis_settings) -> ResultCache:
    return ResultCache(identity, LruStore(local_bytes), RedisStore(url, **redis_settings))


def cache_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pdseg.cache" and r.levelno >= logging.WARNING]


def test_replicas_share_answers_through_redis_and_versions_do_not_mix(redis_server):
    first, second = shared_cache(redis_server.url), shared_cache(redis_server.url)
    other_version = shared_cache(redis_server.url, identity="pd_segmenter/1.1/0123456789abcdef")
    key = first.key({"body": JSON_BODY}, "application/json", "application/json")
    first.put(key, ANSWER)
    assert second.local.get(key) is None  # not in the second worker's own tier ...
    assert second.get(key) == ANSWER  # ... but in the shared one
    assert second.local.get(key) is not None  # and now kept by the second worker too
    assert other_version.get(other_version.key({"body": JSON_BODY}, "application/json", "application/json")) is None
    png_key = first.key({"body": JSON_BODY}, "application/json", "image/png")
    first.put(png_key, PNG)
    assert second.get(png_key) == PNG
    [stored] = [k for k in redis_server.client.keys("pd-cache:*") if k.endswith(key.hex().encode())]
    assert 3500 < redis_server.client.ttl(stored) <= 3600


def test_redis_entries_expire_after_their_ttl(redis_server):
    writer = ResultCache(IDENTITY, None, RedisStore(redis_server.url, ttl_s=1))
    writer.put(json_key(), ANSWER)
    assert writer.get(json_key()) == ANSWER
    time.sleep(1.6)
    assert writer.get(json_key()) is None


def timed(call, *arguments):
    started = time.monotonic()
    result = call(*arguments)
    return result, time.monotonic() - started


def test_redis_stopped_mid_run_changes_nothing_for_callers(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="pdseg.cache")
    cache = shared_cache(redis_server.url)
    remote_only = ResultCache(IDENTITY, None, RedisStore(redis_server.url))
    cache.put(json_key(), ANSWER)
    assert remote_only.get(json_key()) == ANSWER
    redis_server.kill()
    others = [json_key(JSON_BODY.replace(b"0.6", f"0.{n}".encode())) for n in range(1, 9)]
    for round_ in range(5):
        for key in [json_key(), *others]:
            got, seconds = timed(cache.get, key)
            assert seconds < 0.5, seconds
            if key == json_key() or round_ > 0:
                assert got == ANSWER  # from the worker's own tier
            _, seconds = timed(cache.put, key, ANSWER)
            assert seconds < 0.5, seconds
            got, seconds = timed(remote_only.get, key)
            assert got is None and seconds < 0.5, seconds
    # One line per cache that lost Redis, not one per call.
    lost = cache_warnings(caplog)
    assert len(lost) == 2 and all("failed" in line and "answering without it" in line for line in lost), lost
    assert all(f"127.0.0.1:{redis_server.port}" in line for line in lost)


def test_a_hung_redis_costs_one_short_wait(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="pdseg.cache")
    cache = ResultCache(IDENTITY, LruStore(2**20), RedisStore(redis_server.url, timeout_s=0.1))
    cache.put(json_key(), ANSWER)
    redis_server.pause()  # accepts nothing more, answers nothing: a Redis stuck or far too slow
    try:
        other = json_key(b'{"signal": [1, 2]}')
        got, first = timed(cache.get, other)
        assert got is None and first < 0.5, first
        waits = [timed(cache.get, other)[1] for _ in range(20)] + [timed(cache.put, other, ANSWER)[1]]
        assert max(waits) < 0.05, waits  # Redis is left alone for redis_retry_s (no 0.1 s wait)
        assert cache.get(json_key()) == ANSWER and cache.get(other) == ANSWER
        assert len(cache_warnings(caplog)) == 1 and "Timeout" in cache_warnings(caplog)[0]
    finally:
        redis_server.resume()


def test_redis_is_used_again_once_it_is_back(redis_server, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="pdseg.cache")
    cache = ResultCache(IDENTITY, None, RedisStore(redis_server.url, retry_s=0.3))
    redis_server.kill()
    assert not cache.put(json_key(), ANSWER)
    restarted = RedisServer(tmp_path, port=redis_server.port).start()
    try:
        assert not cache.put(json_key(), ANSWER)  # still inside the back-off
        time.sleep(0.35)
        assert cache.put(json_key(), ANSWER)
        assert ResultCache(IDENTITY, None, RedisStore(restarted.url)).get(json_key()) == ANSWER
        messages = [r.getMessage() for r in caplog.records if r.name == "pdseg.cache"]
        assert sum("failed" in m for m in messages) == 1 and sum("answers again" in m for m in messages) == 1
    finally:
        restarted.kill()


def test_no_redis_at_all_is_a_cache_of_one_worker(caplog):
    caplog.set_level(logging.INFO, logger="pdseg.cache")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    cache = shared_cache(url)
    for _ in range(10):
        cache.put(json_key(), ANSWER)
        assert cache.get(json_key()) == ANSWER
    assert len(cache_warnings(caplog)) == 1


# --- a real TorchServe -----------------------------------------------------------------------

def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def capture(seed: int) -> bytes:
    """A noisy carrier with a few pulses, unlike any other test's request."""
    rng = np.random.default_rng(seed)
    t = np.arange(6000)
    signal_ = 100 * np.sin(2 * np.pi * t / 2000) + rng.normal(0, 0.5, t.size)
    for at in rng.integers(100, 5900, 5):
        signal_[at: at + 20] += 30 * np.exp(-np.arange(20) / 4) * rng.choice([-1, 1])
    return npy(signal_)


def post(server, body: bytes, **headers) -> requests.Response:
    return requests.post(server.predict_url, data=body, timeout=120,
                         headers={"Content-Type": "application/x-npy"} | headers)


def cache_counter(server, name: str) -> float:
    text = requests.get(f"{server.metrics_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def counter_reaches(server, name: str, value: float, timeout: float = 15) -> float:
    """The frontend takes the worker's metrics from its log lines: a moment after the answer."""
    deadline = time.monotonic() + timeout
    while (seen := cache_counter(server, name)) < value and time.monotonic() < deadline:
        time.sleep(0.2)
    return seen


def workers_of(server) -> int:
    [described] = requests.get(f"{server.management_url}/models/pd_segmenter", timeout=10).json()
    return len(described["workers"])


def repeated(server, body: bytes, **headers) -> list:
    """The same request once more than there are workers: each worker keeps its own answers
    (without Redis), so at least two of them reach the same worker and a later one is a hit."""
    return [post(server, body, **headers) for _ in range(workers_of(server) + 1)]


@pytest.mark.server
def test_server_answers_a_repeated_request_from_the_cache(server):
    body = capture(20260101)
    hits, misses = cache_counter(server, "PDCacheHits"), cache_counter(server, "PDCacheMisses")
    first, *again = repeated(server, body)
    assert [r.status_code for r in (first, *again)] == [200] * (1 + len(again)), first.text
    assert first.headers["Cache-Status"] == "pd_segmenter; fwd=miss"
    second = next(r for r in again if r.headers["Cache-Status"] == "pd_segmenter; hit")
    assert all(r.headers["Cache-Status"] in ("pd_segmenter; hit", "pd_segmenter; fwd=miss") for r in again)
    assert all(r.content == first.content for r in again)
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert counter_reaches(server, "PDCacheHits", hits + 1) >= hits + 1
    assert counter_reaches(server, "PDCacheMisses", misses + 1) >= misses + 1
    # Another option, another answer type: their own analyses; asked to, a fresh one.
    other = requests.post(server.predict_url, files={"data": ("c.npy", body)}, data={"threshold": "0.7"}, timeout=120)
    assert other.status_code == 200 and other.headers["Cache-Status"] == "pd_segmenter; fwd=miss"
    assert other.json()["signals"][0]["stats"]["threshold"] == 0.7
    pictures = repeated(server, body, Accept="image/png")
    assert pictures[0].headers["Cache-Status"] == "pd_segmenter; fwd=miss"
    assert "pd_segmenter; hit" in [p.headers["Cache-Status"] for p in pictures[1:]]
    assert all(p.content == pictures[0].content for p in pictures) and pictures[1].content[:8] == b"\x89PNG\r\n\x1a\n"
    assert pictures[1].headers["Content-Type"].startswith("image/png")
    fresh = post(server, body, **{"Cache-Control": "no-cache"})
    assert fresh.headers["Cache-Status"] == "pd_segmenter; fwd=request" and fresh.content == first.content
    # Errors are never kept: the same bad request is refused again, by the decoder.
    bad = [post(server, b"\x93NUMPY broken") for _ in range(2)]
    assert [b.status_code for b in bad] == [400, 400] and "Cache-Status" not in bad[1].headers


def model_log(server) -> str:
    path = server.runtime_dir / "logs" / "model_log.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def ready_pids(server) -> set[int]:
    [described] = requests.get(f"{server.management_url}/models/pd_segmenter", timeout=10).json()
    return {w["pid"] for w in described["workers"] if w["status"] == "READY"}


@pytest.mark.server
def test_server_with_redis_shares_answers_and_survives_redis_stopping(redis_server, tmp_path):
    with LocalServer(environment={"PD_CACHE_URL": redis_server.url},
                     runtime_dir=tmp_path / "torchserve") as server:
        body, later = capture(7), capture(8)
        first = post(server, body)
        assert first.status_code == 200 and first.headers["Cache-Status"] == "pd_segmenter; fwd=miss"
        assert redis_server.client.dbsize() == 1  # the worker stored its answer in Redis
        # New workers (as a new replica would) start with empty tiers of their own: with every
        # worker replaced, the answer can only come from Redis.
        old = ready_pids(server)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while len(new := ready_pids(server) - old) < len(old) or new & old:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.5)
        again = post(server, body)
        assert again.headers["Cache-Status"] == "pd_segmenter; hit" and again.content == first.content
        redis_server.kill()
        for _ in range(3):
            started = time.monotonic()
            repeated, new = post(server, body), post(server, later)
            assert time.monotonic() - started < 10  # no waiting on the dead Redis
            assert repeated.status_code == new.status_code == 200, new.text
            assert repeated.content == first.content
        assert new.json()["signals"][0]["length"] == 6000
        lines = model_log(server).splitlines()
        assert any(f"64 MiB in the worker, Redis at 127.0.0.1:{redis_server.port}/0" in line for line in lines)
        lost = [line for line in lines if "result cache: Redis at" in line and "failed" in line]
        # One line per worker that met the dead Redis (TorchServe tags each line W-<port>), no more.
        by_worker = [re.search(r" (W-\d+)-", line).group(1) for line in lost]
        assert lost and len(by_worker) == len(set(by_worker)) <= len(ready_pids(server)), lost
        assert "redis://" not in model_log(server)  # the URL (it may carry a password) is not logged


def test_unreadable_settings_fall_back_to_defaults_and_the_worker_starts(caplog):
    """A cache is not worth a worker that cannot start: settings that are not numbers, or a
    URL whose client cannot be built, leave the defaults and one log line."""
    environ = {cache_mod.MAX_BYTES_VARIABLE: "64Mi", cache_mod.URL_VARIABLE: "redis://[::1"}
    with caplog.at_level(logging.ERROR):
        cache = cache_mod.ResultCache.from_settings({"ttl_s": None, "max_entry_bytes": "lots"}, "m", environ)
    assert cache.local is not None and cache.local.max_bytes == cache_mod.DEFAULT_MAX_BYTES
    assert cache.remote is None and cache.max_entry_bytes == cache_mod.DEFAULT_MAX_ENTRY_BYTES
    assert any("64Mi" in record.getMessage() for record in caplog.records)
