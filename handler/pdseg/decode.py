"""Turn one HTTP request body into signals and options, or a clear 4xx :class:`InputError`.

Formats (the Content-Type decides):

- ``application/json``: ``{"signal": [...]}`` or ``{"signals": [[...], ...]}`` plus options;
- ``application/x-npy``: a 1-D or 2-D ``.npy`` of any real dtype, rows are signals;
- ``text/csv``: one signal per row;
- ``application/octet-stream``: raw little-endian float32, one signal;
- ``multipart/form-data``: the file in field ``data`` (any format above, told apart by its
  content), options as further fields.

The functions take bytes and dicts only, so a CLI or a test can call them without a server.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
from typing import Any, Mapping

import numpy as np

from .pipeline import SignalOptions

DEFAULT_MAX_SAMPLES = 4_000_000  # per request: 5 cycles at 40 MS/s / 50 Hz (~32 MB as float64)
NPY_MAGIC = b"\x93NUMPY"
OPTION_FIELDS = ("threshold", "samples_per_cycle", "sampling_rate_hz", "power_frequency_hz")


class InputError(ValueError):
    """A problem with what the client sent; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass
class DecodedRequest:
    signals: list[np.ndarray]
    options: SignalOptions


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"body is not UTF-8 text: {error}") from None
    return str(value)


def _finite_signal(values: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: values must all be numbers") from None
    if array.ndim != 1:
        raise InputError(f"{where}: a signal must be a flat list of numbers")
    if array.size == 0:
        raise InputError(f"{where}: signal is empty")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise InputError(f"{where}: sample {bad} is NaN or infinite")
    return array


def _rows(array: np.ndarray, where: str) -> list[np.ndarray]:
    if array.dtype.kind not in "biuf":
        raise InputError(f"{where}: dtype {array.dtype} is not a real number type")
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim > 2:
        raise InputError(f"{where}: {array.ndim} dimensions; send 1-D (one signal) or 2-D (rows are signals)")
    rows = [array] if array.ndim == 1 else list(array)
    if not rows:
        raise InputError(f"{where}: no signals")
    return [_finite_signal(row, f"{where} signal {index}") for index, row in enumerate(rows)]


def decode_json(body: Any) -> tuple[list[np.ndarray], dict]:
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(_as_text(body))
        except json.JSONDecodeError as error:
            raise InputError(f"malformed JSON: {error}") from None
    if not isinstance(body, Mapping):
        raise InputError('JSON body must be an object with "signal" or "signals"')
    if "signal" in body and "signals" in body:
        raise InputError('give either "signal" or "signals", not both')
    if "signal" in body:
        raw = [body["signal"]]
    elif "signals" in body:
        raw = body["signals"]
        if not isinstance(raw, list) or not raw:
            raise InputError('"signals" must be a non-empty list of signals')
    else:
        raise InputError('missing field: "signal" (one signal) or "signals" (a list of signals)')
    signals = []
    for index, values in enumerate(raw):
        if not isinstance(values, list):
            raise InputError(f"signal {index}: must be a list of numbers")
        signals.append(_finite_signal(values, f"signal {index}"))
    return signals, {key: body[key] for key in OPTION_FIELDS if key in body}


def decode_npy(payload: bytes) -> list[np.ndarray]:
    try:
        array = np.load(io.BytesIO(bytes(payload)), allow_pickle=False)
    except Exception as error:  # numpy raises several types for a broken header or size
        raise InputError(f"malformed .npy: {error}") from None
    if not isinstance(array, np.ndarray):
        raise InputError("malformed .npy: expected one array")
    return _rows(array, ".npy")


def decode_csv(payload: Any) -> list[np.ndarray]:
    lines = [line.strip() for line in _as_text(payload).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise InputError("CSV body is empty")
    signals = []
    for number, line in enumerate(lines):
        cells = [cell.strip() for cell in line.split(",")]
        try:
            values = [float(cell) for cell in cells if cell != ""]
        except ValueError:
            raise InputError(f"CSV row {number}: values must all be numbers") from None
        signals.append(_finite_signal(values, f"CSV row {number}"))
    return signals


def decode_float32(payload: bytes) -> list[np.ndarray]:
    payload = bytes(payload)
    if len(payload) % 4:
        raise InputError(f"octet-stream body of {len(payload)} bytes is not whole float32 samples")
    return [_finite_signal(np.frombuffer(payload, dtype="<f4"), "octet-stream")]


def _sniff(payload: Any) -> list[np.ndarray]:
    """A multipart file field: its own content type is not forwarded, so tell by content."""
    if isinstance(payload, (bytes, bytearray)) and bytes(payload[:6]) == NPY_MAGIC:
        return decode_npy(payload)
    if isinstance(payload, (dict, list)):
        return decode_json(payload if isinstance(payload, dict) else {"signals": payload})[0]
    text = _as_text(payload).lstrip()
    if text.startswith("{"):
        return decode_json(text)[0]
    return decode_csv(text)


def parse_options(values: Mapping[str, Any]) -> SignalOptions:
    parsed: dict[str, float] = {}
    for key in OPTION_FIELDS:
        if key not in values or values[key] is None:
            continue
        raw = values[key]
        try:
            number = float(_as_text(raw) if isinstance(raw, (bytes, bytearray)) else raw)
        except (TypeError, ValueError):
            raise InputError(f'option "{key}" must be a number') from None
        if not math.isfinite(number) or number <= 0:
            raise InputError(f'option "{key}" must be a positive number')
        if key == "threshold" and not 0 < number < 1:
            raise InputError('option "threshold" must lie between 0 and 1')
        parsed[key] = number
    if parsed.get("samples_per_cycle", 3) < 3:
        raise InputError('option "samples_per_cycle" must be at least 3')
    return SignalOptions(**parsed)


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decode_request(row: Mapping[str, Any], content_type: str | None,
                   max_samples: int = DEFAULT_MAX_SAMPLES) -> DecodedRequest:
    """One TorchServe request row (``body``/``data`` plus multipart fields) to signals."""
    kind = base_type(content_type)
    body = row.get("body", row.get("data"))
    options: dict = {}
    if kind == "multipart/form-data":
        payload = row.get("data")
        if payload is None:
            raise InputError('multipart upload needs the signal file in field "data"')
        signals = _sniff(payload)
        options = {key: row[key] for key in OPTION_FIELDS if key in row}
    elif body is None:
        raise InputError("request has no body")
    elif kind in ("application/json", "text/json") or isinstance(body, dict):
        signals, options = decode_json(body)
    elif kind in ("application/x-npy", "application/npy"):
        signals = decode_npy(body)
    elif kind in ("text/csv", "text/plain") and kind:
        signals = decode_csv(body)
    elif kind == "application/octet-stream":
        signals = decode_float32(body)
    else:
        raise InputError(
            f"unsupported content type {kind or '(none)'}: use application/json, application/x-npy, "
            "text/csv, application/octet-stream or multipart/form-data", status=415)
    total = sum(signal.size for signal in signals)
    if total > max_samples:
        raise InputError(f"{total} samples in one request exceed the maximum of {max_samples}", status=413)
    return DecodedRequest(signals=signals, options=parse_options(options))
