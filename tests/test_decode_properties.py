"""Property-based fuzzing of the request decoders (Hypothesis; no server).

Whatever body arrives under whatever content type, decode_request either returns signals
that are finite, 1-D, non-empty float64 within the work limits, or raises InputError with a
4xx: never another exception (which the handler would answer with 500). Accepted JSON holds
only numbers (nothing coerced), and the formats agree on the values they carry.

`make test` runs a few hundred bodies per property; `make reliability` runs the
"reliability" profile (HYPOTHESIS_PROFILE, tests/conftest.py): thousands in all.
"""
import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pdseg.decode import (MAX_MAGNITUDE, MIN_MAGNITUDE, NPY_KINDS, TIME_VALUE_MIN_ROWS, InputError, WorkLimits,
                           decode_request, evenly_spaced, other_sample_type, work_groups)

# Small limits, so that generated bodies reach them.
LIMITS = WorkLimits(max_work=4_000, max_signals=6, signal_overhead=100, picture_panel_work=500, min_window=16)
CONTENT_TYPES = ["application/json", "text/json", "application/x-npy", "application/npy", "text/csv",
                 "text/plain", "application/octet-stream", "multipart/form-data; boundary=x",
                 "application/x-www-form-urlencoded", "application/xml", "", None]


def decode_or_4xx(row, content_type, picture=False):
    """The property every body must have; returns the decoded request or None."""
    try:
        decoded = decode_request(row, content_type, LIMITS, picture)
    except InputError as error:
        assert 400 <= error.status < 500 and error.message
        return None
    assert decoded.signals, "accepted without signals"
    for signal in decoded.signals:
        assert signal.dtype == np.float64 and signal.ndim == 1 and signal.size > 0
        assert np.all(np.isfinite(signal))
    assert len(decoded.signals) <= LIMITS.max_signals
    assert decoded.work == LIMITS.work([s.size for s in decoded.signals], picture, decoded.view) <= LIMITS.max_work
    return decoded


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2_000), content_type=st.sampled_from(CONTENT_TYPES),
       picture=st.booleans())
@example(body=b"[" * 5_000 + b"]" * 5_000, content_type="application/json", picture=False)
@example(body=b'{"signal": [' + b"9" * 5_000 + b"]}", content_type="application/json", picture=False)
@example(body=b"\x93NUMPY\x01\x00", content_type="application/x-npy", picture=False)
def test_any_bytes_decode_or_get_a_4xx(body, content_type, picture):
    decode_or_4xx({"body": body}, content_type, picture)
    decode_or_4xx({"data": body, "threshold": body[:8]}, "multipart/form-data; boundary=x", picture)


JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda children: st.lists(children, max_size=6)
                           | st.dictionaries(st.text(max_size=6), children, max_size=4), max_leaves=40)
NUMBERS = st.integers(min_value=-10**6, max_value=10**6) | st.floats(allow_nan=False, allow_infinity=False,
                                                                      width=64)


@st.composite
def json_requests(draw):
    """Mostly well-formed requests with a few wrong parts, and arbitrary JSON values."""
    signal = st.lists(NUMBERS | JSON_SCALARS if draw(st.booleans()) else NUMBERS, max_size=50)
    shape = draw(st.sampled_from(["signal", "signals", "both", "neither", "any"]))
    if shape == "any":
        return draw(JSON_VALUES)
    document = {}
    if shape in ("signal", "both"):
        document["signal"] = draw(signal | JSON_VALUES)
    if shape in ("signals", "both"):
        document["signals"] = draw(st.lists(signal | JSON_VALUES, max_size=8) | JSON_VALUES)
    for option in ("threshold", "samples_per_cycle", "sampling_rate_hz", "power_frequency_hz"):
        if draw(st.booleans()):
            document[option] = draw(NUMBERS | JSON_SCALARS)
    return document


def numbers_only(values) -> bool:
    return isinstance(values, list) and all(type(v) in (int, float) for v in values)


@given(document=json_requests(), as_text=st.booleans())
def test_json_accepts_only_numbers_and_keeps_them(document, as_text):
    body = json.dumps(document).encode() if as_text else document
    decoded = decode_or_4xx({"body": body}, "application/json")
    if decoded is None:
        return
    sent = [document["signal"]] if "signal" in document else document["signals"]
    assert all(numbers_only(values) for values in sent), "a non-number was accepted"
    for values, signal in zip(sent, decoded.signals):
        assert signal.tolist() == [float(v) for v in values]


@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-+eE \t\r\nnaifNAIF_x١")), max_size=300))
def test_csv_text_decodes_or_gets_a_4xx(text):
    decoded = decode_or_4xx({"body": text.encode()}, "text/csv")
    if decoded is not None:
        rows = [line for line in text.splitlines() if line.strip()]
        values = [[cell.strip() for cell in row.rstrip(" \t,").split(",")] for row in rows]
        # a first line of labels (every value there, none a number, each with a letter) names the columns
        labelled = len(rows) > 1 and all(cell and not is_float(cell) and any(c.isalpha() for c in cell)
                                         for cell in values[0])
        data = values[1:] if labelled else values
        pairs = all(len(cells) == 2 for cells in data)
        if (len(data) > 1 or labelled) and all(len(cells) == 1 for cells in data):
            # one value a line: one signal, a column
            assert [signal.size for signal in decoded.signals] == [len(data)]
        elif pairs and (labelled or len(data) >= TIME_VALUE_MIN_ROWS) \
                and evenly_spaced(np.array([float(cells[0]) for cells in data])):
            # time, value: one signal, the second column
            assert [signal.tolist() for signal in decoded.signals] == [[float(cells[1]) for cells in data]]
        else:
            assert not labelled, "a line of labels over rows was accepted"
            assert [signal.size for signal in decoded.signals] == [len(cells) for cells in values]
        numbers = "".join(rows[1:] if labelled else rows)  # labels may hold any text ("time_s")
        assert "_" not in numbers and "١" not in numbers


def is_float(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


NPY_DTYPES = (hnp.integer_dtypes() | hnp.unsigned_integer_dtypes() | hnp.floating_dtypes()
              | hnp.boolean_dtypes() | hnp.complex_number_dtypes() | hnp.datetime64_dtypes()
              | hnp.byte_string_dtypes(max_len=4) | hnp.unicode_string_dtypes(max_len=4))


@given(array=hnp.arrays(NPY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40)),
       cut=st.integers(min_value=0, max_value=64), flip=st.integers(min_value=0, max_value=255),
       mutate=st.sampled_from(["none", "truncate", "extend", "flip_header", "flip_data"]))
@example(array=np.array([[1.0, 1.0], [5e-324, 0.0]]), cut=0, flip=0, mutate="none")  # one row under 1e-100
@example(array=np.array([[1.0], [5e-324]]), cut=0, flip=0, mutate="none")  # one column: one signal
def test_npy_of_any_dtype_shape_and_damage(array, cut, flip, mutate):
    body = npy_bytes(array)
    header = body.index(b"\n") + 1
    if mutate == "truncate":
        body = body[: max(0, len(body) - 1 - cut)]
    elif mutate == "extend":
        body += bytes([flip]) * (cut + 1)
    elif mutate == "flip_header":
        position = min(cut + 8, header - 1)
        body = body[:position] + bytes([flip]) + body[position + 1:]
    elif mutate == "flip_data" and len(body) > header:
        position = header + cut % (len(body) - header)
        body = body[:position] + bytes([flip]) + body[position + 1:]
    decoded = decode_or_4xx({"body": body}, "application/x-npy")
    if mutate == "none":
        # rows are signals; a 1-D array, and one column of several rows, is one signal
        rows = array.reshape(1, -1) if array.ndim < 2 or (array.shape[1] == 1 and array.shape[0] > 1) else array
        fits = (array.dtype.kind in NPY_KINDS and array.ndim <= 2 and array.size > 0
                and np.all(np.isfinite(array.astype(np.float64)))
                and np.all(np.abs(array.astype(np.float64)) <= MAX_MAGNITUDE)
                and not any(0.0 < np.max(np.abs(row.astype(np.float64))) < MIN_MAGNITUDE for row in rows)
                and LIMITS.work([rows.shape[1]] * rows.shape[0]) <= LIMITS.max_work
                and rows.shape[0] <= LIMITS.max_signals)
        assert (decoded is not None) == bool(fits)
        if decoded is not None:
            assert [s.tolist() for s in decoded.signals] == rows.astype(np.float64).tolist()


@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=200))
@example(values=[0.0, 5.0] * 8)  # as float64 whole numbers read: octet-stream refuses it
@example(values=[0.0] * 15 + [3.0])  # one spike: read as it is
def test_every_format_carries_the_same_values(values):
    """JSON, .npy, CSV, raw float32 and a multipart upload of the same float32 samples decode
    to the same signal; a raw float32 body that reads as another sample type
    (:func:`pdseg.decode.other_sample_type`) is refused with a 400 instead."""
    samples = np.asarray(values, dtype="<f4")
    expected = samples.astype(np.float64).tolist()
    bodies = [({"body": json.dumps({"signal": expected}).encode()}, "application/json"),
              ({"body": npy_bytes(samples)}, "application/x-npy"),
              ({"body": ",".join(repr(v) for v in expected).encode()}, "text/csv"),
              ({"body": samples.tobytes()}, "application/octet-stream"),
              ({"data": npy_bytes(samples)}, "multipart/form-data; boundary=x")]
    for row, content_type in bodies:
        decoded = decode_or_4xx(row, content_type)
        if content_type == "application/octet-stream" and other_sample_type(samples):
            assert decoded is None
        elif LIMITS.work([samples.size]) > LIMITS.max_work:
            assert decoded is None
        else:
            assert decoded is not None and decoded.signals[0].tolist() == expected, content_type


@given(works=st.lists(st.integers(min_value=1, max_value=5_000), max_size=12),
       limit=st.integers(min_value=1, max_value=6_000))
def test_work_groups_keep_order_and_stay_under_the_limit(works, limit):
    groups = work_groups(works, limit)
    assert [index for group in groups for index in group] == list(range(len(works)))
    for group in groups:
        assert len(group) == 1 or sum(works[i] for i in group) <= limit
    for first, second in zip(groups, groups[1:]):  # a group ends only where the next would not fit
        assert sum(works[i] for i in first) + works[second[0]] > limit


@pytest.mark.parametrize("picture", [False, True])
def test_the_limits_count_what_a_request_costs(picture):
    limits = WorkLimits()  # the shipped values
    one_long = limits.work([1_000_000], picture)
    assert one_long == 1_000_000 + limits.signal_overhead + (limits.picture_panel_work if picture else 0)
    tiny = limits.work([1] * 100, picture)
    assert tiny == 100 * (limits.min_window + limits.signal_overhead) + (8 if picture else 0) * limits.picture_panel_work
    # short signals reach the signal cap before the work limit
    assert math.floor(limits.max_work / (limits.min_window + limits.signal_overhead)) > limits.max_signals
