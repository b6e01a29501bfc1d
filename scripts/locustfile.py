"""Load for scripts/reliability.py (soak, worker kill, slow clients): locust, headless.

    locust -f scripts/locustfile.py --headless -u 8 -r 8 -t 60s --host http://127.0.0.1:8080

Each simulated client sends, back to back, a mix of what the service sees: the bundled sample
captures as .npy, JSON and CSV, several at once, a file upload with options, a PNG answer, a
longer capture, and bad requests that must get their 4xx. A bad request answered with its 4xx
counts as a success; anything else unexpected is a failure.

Environment: PD_LOAD_TOKEN (inference key, when the server wants one), PD_LOAD_LOG (a file to
append one JSON line per request to: start time, duration, name, status, error),
PD_LOAD_TIMEOUT (seconds before a request counts as hung; 60).
"""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from locust import FastHttpUser, constant, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_inputs import multipart  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PATH = "/predictions/pd_segmenter"
TIMEOUT = float(os.environ.get("PD_LOAD_TIMEOUT", "60"))
AUTH = {"Authorization": f"Bearer {os.environ['PD_LOAD_TOKEN']}"} if os.environ.get("PD_LOAD_TOKEN") else {}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


CAPTURES = np.load(ROOT / "data" / "sample_captures.npy").astype(np.float64)
LONG = np.tile(CAPTURES[0], 20)  # 200,000 samples: past the handler's malloc_trim threshold
FORM_TYPE, FORM_BODY = multipart({"threshold": b"0.6"}, {"data": _npy(CAPTURES[:2])})
# name: (content type, body, expected status, extra headers)
REQUESTS = {
    "npy capture": ("application/x-npy", _npy(CAPTURES[1]), 200, {}),
    "json capture": ("application/json", json.dumps({"signal": CAPTURES[2].tolist()}).encode(), 200, {}),
    "csv capture": ("text/csv", ",".join(map(repr, CAPTURES[3].tolist())).encode(), 200, {}),
    "npy 6 captures": ("application/x-npy", _npy(CAPTURES), 200, {}),
    "multipart upload": (FORM_TYPE, FORM_BODY, 200, {}),
    "png answer": ("application/x-npy", _npy(CAPTURES[4]), 200, {"Accept": "image/png"}),
    "npy 200k samples": ("application/x-npy", _npy(LONG), 200, {}),
    "bad: booleans": ("application/json", b'{"signal": [true, false]}', 400, {}),
    "bad: nested": ("application/json", b"[" * 3000 + b"]" * 3000, 400, {}),
    "bad: form-encoded": ("application/x-www-form-urlencoded", b"signal=1,2,3", 415, {}),
    "bad: too many signals": ("application/json", json.dumps({"signals": [[0.5, 0.5]] * 300}).encode(), 413, {}),
}
WEIGHTS = {"npy capture": 6, "json capture": 4, "csv capture": 1, "npy 6 captures": 2, "multipart upload": 1,
           "png answer": 1, "npy 200k samples": 1, "bad: booleans": 1, "bad: nested": 1,
           "bad: form-encoded": 1, "bad: too many signals": 1}


@events.request.add_listener
def _log(request_type, name, response_time, response_length, response=None, exception=None,
         start_time=None, **kwargs):
    path = os.environ.get("PD_LOAD_LOG")
    if not path:
        return
    status = getattr(response, "status_code", 0) if response is not None else 0
    with open(path, "a") as log:
        log.write(json.dumps({"start": start_time, "ms": response_time, "name": name, "status": status,
                              "error": None if exception is None else f"{type(exception).__name__}: {exception}"})
                  + "\n")


def _send(user: FastHttpUser, name: str) -> None:
    content_type, body, expected, extra = REQUESTS[name]
    # The mix repeats a few bodies: each is analysed again, as distinct captures would be,
    # rather than answered from the result cache (docs/cache.md); answers are still stored.
    headers = AUTH | {"Content-Type": content_type, "Cache-Control": "no-cache"} | extra
    with user.client.post(PATH, data=body, headers=headers, name=name, catch_response=True) as response:
        if response.status_code != expected:
            response.failure(f"expected {expected}, got {response.status_code}: {str(response.text)[:200]}")
        elif expected != 200 and "application/json" not in (response.headers.get("Content-Type") or ""):
            response.failure("a 4xx without a JSON message")
        else:
            response.success()


class ServiceClient(FastHttpUser):
    wait_time = constant(0)
    network_timeout = TIMEOUT
    connection_timeout = 10.0

    @task
    def mixed(self) -> None:
        names = list(WEIGHTS)
        weights = np.array([WEIGHTS[name] for name in names], dtype=float)
        _send(self, names[np.random.default_rng().choice(len(names), p=weights / weights.sum())])
