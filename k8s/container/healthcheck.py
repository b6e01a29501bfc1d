"""Health probe for TorchServe with token authorization on (image HEALTHCHECK, k8s probes).

    healthcheck.py           ready: the model has enough workers in state READY
    healthcheck.py --live    live: the frontend answers the management API for the model

Exit status 0 = healthy, 1 = not; one line on stdout says why (kubectl describe pod shows it).

Why not ``/ping``: it needs the inference key too, and it keeps answering "Healthy" while a
worker process runs, even one that never loaded the model. The management API's model
description lists every worker with its state, so "ready" means what it says.

Keys: TorchServe writes key_file.json into its working directory at start, with a management
key that expires after ``token_expiration_min`` (60 min by default). When that key has expired
(or is about to), or the server rejects it, the probe first re-reads the file (another probe
may have renewed it already) and otherwise renews it through the token API with the API key
(``POST /token?type=management``), which rewrites the file. Only the management key is ever
renewed: the inference key that clients hold is never touched.

Settings (environment): TS_KEY_FILE (key_file.json in the working directory),
TS_MANAGEMENT_URL (http://127.0.0.1:8081), TS_PROBE_MODEL (pd_segmenter),
TS_PROBE_MIN_READY (1), TS_PROBE_TIMEOUT seconds per HTTP call (4).
Standard library only, so it starts fast (``python -I -S`` works).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

KEY_FILE = os.environ.get("TS_KEY_FILE", "key_file.json")
MANAGEMENT_URL = os.environ.get("TS_MANAGEMENT_URL", "http://127.0.0.1:8081").rstrip("/")
MODEL = os.environ.get("TS_PROBE_MODEL", "pd_segmenter")
MIN_READY = int(os.environ.get("TS_PROBE_MIN_READY", "1"))
TIMEOUT = float(os.environ.get("TS_PROBE_TIMEOUT", "4"))
RENEW_MARGIN = dt.timedelta(seconds=30)  # renew a key this close to its expiry
AUTH_REJECTED = {400, 401, 403}  # TorchServe 0.12 answers a bad or expired key with 400


class ProbeError(Exception):
    """Not healthy; the message is the probe's one line of output."""


def read_keys(attempts: int = 3) -> dict:
    """key_file.json as a dict; retried briefly because TorchServe rewrites it in place."""
    for attempt in range(attempts):
        try:
            with open(KEY_FILE, encoding="utf-8") as handle:
                keys = json.load(handle)
            keys["management"]["key"], keys["API"]["key"]  # noqa: B018 - shape check
            return keys
        except FileNotFoundError:
            raise ProbeError(f"no {KEY_FILE} yet: TorchServe has not started") from None
        except (ValueError, KeyError, TypeError):
            if attempt + 1 == attempts:
                raise ProbeError(f"{KEY_FILE} is not a TorchServe key file") from None
            time.sleep(0.2)
    raise AssertionError("unreachable")


def expires_soon(entry: dict) -> bool:
    """True when the key's "expiration time" (a Java Instant, UTC) is within RENEW_MARGIN.
    An unreadable time counts as "not soon": a rejected key is renewed anyway."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", str(entry.get("expiration time", "")))
    if not match:
        return False
    expiry = dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return expiry - dt.datetime.now(dt.timezone.utc) < RENEW_MARGIN


def call(method: str, path: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{MANAGEMENT_URL}{path}", method=method,
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ProbeError(f"management API {MANAGEMENT_URL} does not answer: {reason}") from None


def renew(stale: dict) -> dict:
    """A management key that works: a newer one from the file, or a fresh one from the API."""
    current = read_keys()
    if current["management"]["key"] != stale["management"]["key"] and not expires_soon(current["management"]):
        return current
    status, body = call("POST", "/token?type=management", current["API"]["key"])
    if status != 200:
        raise ProbeError(f"renewing the management key failed: HTTP {status} {body[:200]!r}")
    return read_keys()


def describe_model() -> list:
    keys = read_keys()
    if expires_soon(keys["management"]):
        keys = renew(keys)
    path = f"/models/{MODEL}"
    status, body = call("GET", path, keys["management"]["key"])
    if status in AUTH_REJECTED:
        status, body = call("GET", path, renew(keys)["management"]["key"])
    if status != 200:
        raise ProbeError(f"GET {path}: HTTP {status} {body[:200]!r}")
    try:
        described = json.loads(body)
        described[0]["workers"]  # noqa: B018 - shape check
    except (ValueError, LookupError, TypeError):
        raise ProbeError(f"GET {path}: unexpected answer {body[:200]!r}") from None
    return described


def main(argv: list[str]) -> int:
    live = "--live" in argv
    try:
        described = describe_model()
        model = described[0]
        workers = model["workers"]
        states = ", ".join(sorted(str(worker.get("status")) for worker in workers)) or "none"
        name = f"{model.get('modelName', MODEL)} {model.get('modelVersion', '')}".strip()
        if live:
            print(f"live: frontend answers; {name} workers: {states}")
            return 0
        ready = sum(worker.get("status") == "READY" for worker in workers)
        if ready < MIN_READY:
            raise ProbeError(f"not ready: {ready} of {MIN_READY} required workers READY ({name} workers: {states})")
        print(f"ready: {ready} worker(s) READY ({name})")
        return 0
    except ProbeError as error:
        print(error)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
