"""Talking to the PD service: one batch of signals per request, retried only where that helps.

- 503 (queue full, no worker yet), 507 (frontend buffers full) and connection errors: retried
  with exponential backoff
  (``Retry-After`` honoured); a 4xx never is, since the same request would fail the same way.
- 413 for a batch of several signals: split in two and each half sent again; for one signal
  it is that signal's failure, with the service's message (which names the limit).
- 400 from the handler naming one signal of a batch ("signal 3: ..."): that signal fails with
  the message and the rest of the batch is sent again, so that its batch-mates are answered
  (the client checks what it can before sending, :func:`pdclient.inputs.signal_problem`; a
  service configured otherwise may refuse more). A 400 that names no signal (an option) fails
  the whole batch.
- A key from a key file that the server calls invalid (TorchServe answers 400
  ``InvalidKeyException``) is read again once: the key may have been rotated
  (docs/operations.md, "Keys").
"""
from __future__ import annotations

import dataclasses
import io
import json
import random
import re
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import requests

from .batching import Batch, Item
from .store import entry_problem

MODEL_NAME = "pd_segmenter"
# 507: TorchServe's frontend out of body buffers under a burst (docs/reliability.md).
RETRY_STATUSES = frozenset({503, 507})
# Answers that every further request of the run would get too: the run stops.
FATAL_STATUSES = frozenset({401, 403, 404, 405, 415})
INVALID_KEY = "InvalidKeyException"
# How the service names a signal of the request in its message ("... signal 3: ...").
REQUEST_ROW = re.compile(r"^(?:\.npy |CSV )?signal (\d+): ")


class ServiceError(Exception):
    def __init__(self, status: int | None, message: str, gave_up: bool = False, from_handler: bool = True) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.gave_up = gave_up  # retried until the retries ran out: the service is down or swamped
        # False: refused before the handler (TorchServe's HTTP layer or a proxy in front of it),
        # with no JSON ``error`` of the service's own.
        self.from_handler = from_handler

    @property
    def fatal(self) -> bool:
        """Every further request would get the same: the run stops (and a rerun resumes)."""
        return self.gave_up or self.status in FATAL_STATUSES or INVALID_KEY in self.message


@dataclasses.dataclass
class Outcome:
    """What became of each signal of a batch: its answer, or the reason it has none."""
    answers: list[tuple[Item, dict, dict]] = dataclasses.field(default_factory=list)  # item, entry, model
    failures: list[tuple[Item, ServiceError]] = dataclasses.field(default_factory=list)


def read_key(path: Path) -> str:
    """The inference key: a file holding the key itself (a mounted Secret's ``inference``), or
    TorchServe's ``key_file.json``."""
    text = Path(path).read_text().strip()
    if text.startswith("{"):
        return json.loads(text)["inference"]["key"]
    return text


def handler_answered(response: requests.Response) -> bool:
    """Whether the answer is the handler's own JSON error (not TorchServe's or a proxy's)."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("error"))


def error_message(response: requests.Response) -> str:
    """The service's own words: the handler's ``error``, TorchServe's ``message``, or the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason
    if isinstance(body, dict):
        for field in ("error", "message"):
            if body.get(field):
                kind = body.get("type")
                return f"{kind}: {body[field]}" if kind and field == "message" else str(body[field])
    return json.dumps(body)[:500]


def json_answer(response: requests.Response) -> dict:
    """A 200's JSON object, or a fatal :class:`ServiceError` naming what came instead (an HTML
    page from a proxy or a wrong address was shown as a JSONDecodeError, batch after batch)."""
    try:
        answer = response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise ServiceError(None, f"answered 200 with no JSON ({kind}): is --url the service's inference "
                                 "address?", gave_up=True) from None
    if not isinstance(answer, dict):
        raise ServiceError(None, "answered 200 with JSON that is not an object: is --url the service's "
                                 "inference address?", gave_up=True)
    return answer


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class Service:
    def __init__(self, url: str, options: dict, token: str | None = None, key_file: Path | None = None,
                 timeout: float = 300.0, retries: int = 8, backoff_s: float = 0.5, max_backoff_s: float = 30.0) -> None:
        self.predict_url = f"{url.rstrip('/')}/predictions/{MODEL_NAME}"
        self.options = {key: str(value) for key, value in options.items() if value is not None}
        self.key_file = key_file
        self.token = token if token is not None else (read_key(key_file) if key_file else None)
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.retried = 0  # requests sent again after a 503 or connection error (for the summary)
        # Told of the run's first retry (the problem, the retries left): without it a service that
        # is not there meant a minute and more of silence before any message.
        self.on_first_retry: Callable[[str, int], None] | None = None
        self._retry_told = threading.Event()
        self._local = threading.local()  # one HTTP session (connection pool) per thread

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_backoff_s)
        # Jitter keeps concurrent clients from coming back in step.
        return min(self.backoff_s * 2**attempt, self.max_backoff_s) * random.uniform(0.8, 1.2)

    def _send(self, body: bytes) -> requests.Response:
        return self._session().post(self.predict_url, files={"data": ("signals.npy", body, "application/x-npy")},
                                    data=self.options, headers=self._headers(), timeout=self.timeout)

    def post(self, array: np.ndarray) -> dict:
        """One request: the JSON answer, or :class:`ServiceError` once retrying is over."""
        body = npy_bytes(array)
        attempt = 0
        key_reread = False
        while True:
            response = None
            try:
                response = self._send(body)
            except requests.Timeout as error:
                if not isinstance(error, requests.ConnectTimeout):
                    # The service may still be working on it: sending it again doubles its load.
                    raise ServiceError(None, f"no answer within {self.timeout:g} s (--timeout)") from None
                problem = f"connection timed out: {error}"
            except requests.ConnectionError as error:
                problem = f"connection failed: {getattr(error.args[0] if error.args else None, 'reason', error)}"
            else:
                if response.status_code == 200:
                    return json_answer(response)
                problem = error_message(response)
                if response.status_code not in RETRY_STATUSES:
                    if INVALID_KEY in problem and self.key_file and not key_reread:
                        key_reread = True  # once: a key that is still refused stays refused
                        self.token = read_key(self.key_file)
                        continue
                    raise ServiceError(response.status_code, problem, from_handler=handler_answered(response))
            if attempt == self.retries:
                raise ServiceError(response.status_code if response is not None else None,
                                   f"{problem} (gave up after {self.retries} retries)", gave_up=True)
            self.retried += 1
            if self.on_first_retry is not None and not self._retry_told.is_set():
                self._retry_told.set()
                self.on_first_retry(problem, self.retries)
            time.sleep(self._delay(attempt, response))
            attempt += 1

    def analyse(self, batch: Batch) -> Outcome:
        """Answers for every signal of ``batch``; a 413 splits it until each part fits, and a
        signal refused by name fails alone while the rest are sent again."""
        outcome = Outcome()
        while True:  # not recursion: a service allowing thousands of signals could refuse each
            try:
                answer = self.post(batch.stacked())
                break
            except ServiceError as error:
                named = REQUEST_ROW.match(error.message) if error.status == 400 and error.from_handler else None
                if named is None or int(named.group(1)) >= len(batch.items):
                    return self._refused(batch, error, outcome)
                # The request's row is not the file's: the item names its own signal.
                refused = int(named.group(1))
                outcome.failures.append((batch.items[refused], ServiceError(400, error.message[named.end():])))
                batch = Batch([item for number, item in enumerate(batch.items) if number != refused])
                if not batch.items:
                    return outcome
        return self._answered(batch, answer, outcome)

    def _refused(self, batch: Batch, error: ServiceError, outcome: Outcome) -> Outcome:
        """``outcome`` with what became of ``batch``, which the service refused with ``error``."""
        if error.status == 413 and len(batch.items) > 1:
            for half in batch.halves():
                part = self.analyse(half)
                outcome.answers += part.answers
                outcome.failures += part.failures
            return outcome
        if error.status == 413:
            if not error.from_handler:
                # TorchServe's HTTP layer (or a proxy's body limit) before the handler: the
                # body, not the work, is too large.
                dtype = batch.items[0].values.dtype
                error = ServiceError(413, f"its body ({sum(item.values.nbytes for item in batch.items) / 2**20:.1f} MiB as "
                                          f"{dtype}) is over the service's body limit (max_request_size, "
                                          "8 MiB as shipped)" + (": a float64 signal over ~1,040,000 samples whose "
                                          "values float32 does not hold exactly cannot be sent"
                                          if dtype == np.float64 else ": cut the capture into parts"))
            else:
                error = ServiceError(413, f"{error.message} (this signal alone is over the service's limit)")
        outcome.failures += [(item, error) for item in batch.items]
        return outcome

    @staticmethod
    def _answered(batch: Batch, answer: dict, outcome: Outcome) -> Outcome:
        """``outcome`` with the service's ``answer`` for every signal of ``batch``."""
        entries = answer.get("signals", [])
        if not isinstance(entries, list) or len(entries) != len(batch.items):
            count = len(entries) if isinstance(entries, list) else "no list of"
            error = ServiceError(200, f"answer has {count} signals for {len(batch.items)} sent")
            outcome.failures += [(item, error) for item in batch.items]
            return outcome
        model = answer.get("model", {})
        for item, entry in zip(batch.items, entries):
            problem = entry_problem(entry)
            if problem:
                outcome.failures.append((item, ServiceError(200, problem)))
            else:
                outcome.answers.append((item, entry, model if isinstance(model, dict) else {}))
        return outcome
