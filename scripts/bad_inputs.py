"""The fuzz corpus: named bad requests, each with the 4xx the service must answer.

Used by tests/test_reliability.py (every case against a real TorchServe) and by
scripts/reliability.py (the table in docs/reliability.md). Every content type is covered:
malformed and truncated bodies, wrong types, NaN/Inf, nesting, lying .npy headers, pickles,
wrong dtypes, empty bodies, oversized requests and wrong encodings. The five cases of issue #15
are named ``issue15_*``.

A case is sent as it is: ``headers`` and ``body`` bytes (multipart bodies are built here, so
nothing is left to a client library). ``frontend`` marks the one answer that comes from
TorchServe's HTTP layer, not the handler: a body over ``max_request_size`` gets 413 with an
empty body and the connection closed.
"""
from __future__ import annotations

import dataclasses
import io
import json
import pickle
import re
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np

from pdseg.decode import WorkLimits

ROOT = Path(__file__).resolve().parents[1]
# TorchServe's limit on a body (config/local.properties; config.properties has the same).
MAX_REQUEST_SIZE = int(re.search(r"^max_request_size=(\d+)", (ROOT / "config" / "local.properties").read_text(),
                                 re.M).group(1))
BOUNDARY = "pdfuzzboundary7MA4YWxkTrZu0gW"


@dataclasses.dataclass(frozen=True)
class BadInput:
    name: str
    content_type: str | None
    body: bytes
    status: int  # the answer expected
    words: str = ""  # must appear in the JSON error message
    frontend: bool = False  # answered by TorchServe's frontend (empty body), not the handler
    extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type} if self.content_type else {}
        return headers | dict(self.extra_headers)


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple, version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy header as numpy writes it, for whatever dtype and shape it should claim."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    length_bytes = 2 if version == (1, 0) else 4
    total = 6 + 2 + length_bytes + len(text) + 1
    padded = text + b" " * ((64 - total % 64) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(padded).to_bytes(length_bytes, "little") + padded


def multipart(fields: dict[str, bytes], files: dict[str, bytes]) -> tuple[str, bytes]:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value)
    for name, value in files.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + value)
    body = b"\r\n".join(parts) + f"\r\n--{BOUNDARY}--\r\n".encode()
    return f"multipart/form-data; boundary={BOUNDARY}", body


def _json(value) -> bytes:
    return json.dumps(value).encode()


def corpus(max_work: int = WorkLimits.max_work, max_signals: int = WorkLimits.max_signals) -> list[BadInput]:
    """The cases, for the given limits (by default the shipped ones, config/model-config.yaml)."""
    J, N, C, F = "application/json", "application/x-npy", "text/csv", "application/octet-stream"
    good_npy = npy(np.arange(100, dtype="<f8"))
    upload_type, upload_body = multipart({}, {"data": good_npy})
    cases = [
        # --- issue #15 ---------------------------------------------------------------------
        BadInput("issue15_40000_one_sample_signals", J, _json({"signals": [[0.5]] * 40_000}), 400, "one sample each"),
        BadInput("issue15_600000_one_sample_signals", J, _json({"signals": [[0.5]] * 600_000}), 400, "one sample each"),
        BadInput("issue15_40000_two_sample_signals", J, _json({"signals": [[0.5, 0.5]] * 40_000}), 413, "signals"),
        BadInput("issue15_nested_10000", J, b"[" * 10_000 + b"]" * 10_000, 400, "nested"),
        BadInput("issue15_nested_10000_in_signal", J, b'{"signal": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
                 400, "nested"),
        BadInput("issue15_booleans", J, b'{"signal": [true, false, true]}', 400, "sample 0 is true"),
        BadInput("issue15_numeric_strings", J, b'{"signal": ["1.5", "2", "3"]}', 400, "sample 0 is a string"),
        BadInput("issue15_form_encoded", "application/x-www-form-urlencoded", b"signal=1,2,3", 415, "curl -d"),
        BadInput("issue15_over_max_request_size", C, b"0," * (MAX_REQUEST_SIZE // 2 + 1), 413, frontend=True),
        # --- JSON ----------------------------------------------------------------------------
        BadInput("json_malformed", J, b"{broken", 400, "malformed JSON"),
        # The message repeats the field's name; in the status line it broke the worker's frame.
        BadInput("json_accented_unknown_field", J, _json({"signal": [1, 2, 3], "seuil_\u00e9": 0.5}), 400, "seuil_\u00e9"),
        BadInput("json_very_long_unknown_field", J, _json({"signal": [1, 2, 3], "x" * 100_000: 1}), 400,
                 "(100,000 characters)"),
        # Every name repeated made a 1.5 MB message, which the frontend cut off mid-answer.
        BadInput("json_20000_unknown_fields", J, _json({"signal": [1, 2, 3]} | {f"x{i}": 1 for i in range(20_000)}),
                 400, "and 19,992 more"),
        BadInput("multipart_accented_field", *multipart({"thr\u00e9shold": b"1"}, {"data": b"1,2,3"}), 400,
                 "thr\u00e9shold"),
        BadInput("json_truncated", J, b'{"signal": [1, 2, 3', 400, "malformed JSON"),
        BadInput("json_empty_body", J, b"", 400, "no body"),
        BadInput("json_top_level_list", J, b"[1, 2, 3]", 400, "must be an object"),
        BadInput("json_missing_field", J, _json({"values": [1, 2]}), 400, "missing field"),
        BadInput("json_both_fields", J, _json({"signal": [1], "signals": [[1]]}), 400, "not both"),
        BadInput("json_empty_signal", J, _json({"signal": []}), 400, "empty"),
        BadInput("json_empty_signals", J, _json({"signals": []}), 400, "non-empty"),
        BadInput("json_signals_not_a_list", J, _json({"signals": 5}), 400, "non-empty list"),
        BadInput("json_column_of_one_sample_signals", J, _json({"signals": [[0.5]] * 60}), 400, "one sample each"),
        BadInput("json_signal_is_a_string", J, _json({"signal": "1,2,3"}), 400, "list of numbers"),
        BadInput("json_signal_is_an_object", J, _json({"signal": {"a": 1}}), 400, "list of numbers"),
        BadInput("json_null_sample", J, b'{"signal": [1, null, 3]}', 400, "sample 1 is null"),
        BadInput("json_nan", J, b'{"signal": [1, NaN, 3]}', 400, "NaN"),
        BadInput("json_infinity", J, b'{"signal": [1, -Infinity]}', 400, "NaN or infinite"),
        BadInput("json_float_overflow", J, b'{"signal": [1e400]}', 400, "NaN or infinite"),
        BadInput("json_integer_too_large_for_float", J, b'{"signal": [1' + b"0" * 400 + b"]}", 400, "float64"),
        BadInput("json_magnitude_over_1e100", J, b'{"signal": [0, 1e101, 2]}', 400, "magnitudes above 1e+100"),
        # Its squares underflow: white noise of 1e-200 came back as one region over the whole signal.
        BadInput("npy_largest_magnitude_under_1e-100", N, npy(np.array([0.0, 3e-200, -1e-201])), 400, "under 1e-100"),
        BadInput("json_integer_of_5000_digits", J, b'{"signal": [' + b"7" * 5000 + b"]}", 400, "malformed JSON"),
        BadInput("json_signal_of_lists", J, _json({"signal": [[1, 2]]}), 400, "flat list"),
        BadInput("json_nested_4_deep", J, _json({"signals": [[[1]]]}), 400, "nested"),
        BadInput("json_utf16", J, json.dumps({"signal": [1, 2]}).encode("utf-16"), 400, "UTF-8"),
        BadInput("json_latin1_bytes", J, b'{"signal": [1], "note": "\xe9t\xe9"}', 400, "UTF-8"),
        # A byte-order mark is read past (Windows tools write one); what follows it must still be JSON.
        BadInput("json_utf8_bom_then_no_json", J, b'\xef\xbb\xbf{"signal": [1, 2]', 400, "malformed JSON"),
        BadInput("json_threshold_out_of_range", J, _json({"signal": [1, 2], "threshold": 2}), 400, "threshold"),
        BadInput("json_threshold_boolean", J, _json({"signal": [1, 2], "threshold": True}), 400, "threshold"),
        BadInput("json_threshold_string", J, _json({"signal": [1, 2], "threshold": "0.5"}), 400, "threshold"),
        BadInput("json_negative_sampling_rate", J, _json({"signal": [1, 2], "sampling_rate_hz": -1}), 400,
                 "sampling_rate_hz"),
        BadInput("json_samples_per_cycle_below_3", J, _json({"signal": [1, 2], "samples_per_cycle": 2}), 400,
                 "samples_per_cycle"),
        BadInput("json_field_given_twice", J, b'{"signal": [1, 2, 3], "signal": [4, 5, 6, 7]}', 400,
                 "given more than once"),
        BadInput("json_power_frequency_without_rate", J, _json({"signal": [1, 2], "power_frequency_hz": 50}), 400,
                 "needs"),
        BadInput("json_two_different_periods", J, _json({"signal": [1, 2], "samples_per_cycle": 1000,
                                                          "sampling_rate_hz": 40e6, "power_frequency_hz": 50}), 400,
                 "two periods"),
        BadInput("json_too_many_signals", J, _json({"signals": [[1.0, 2.0]] * (max_signals + 1)}), 413, "signals"),
        BadInput("json_too_many_samples", J, b'{"signal": [' + b"0," * (max_work + 8) + b"0]}", 413, "limit"),
        BadInput("json_too_much_work_in_short_signals", J,
                 _json({"signals": [[0.0] * 8000] * (max_work // 8000)}), 413, "sample-equivalents"),
        # --- .npy ----------------------------------------------------------------------------
        BadInput("npy_garbage", N, b"garbage", 400, "malformed .npy"),
        BadInput("npy_broken_header", N, b"\x93NUMPY broken", 400, "malformed .npy"),
        BadInput("npy_truncated_data", N, good_npy[: len(good_npy) - 100], 400, "promises"),
        BadInput("npy_extra_data", N, good_npy + b"\x00" * 16, 400, "promises"),
        BadInput("npy_header_claims_a_billion_samples", N, npy_header("<f8", (10**9,)) + b"\x00" * 64, 413, "limit"),
        BadInput("npy_header_claims_a_few_too_many", N, npy_header("<f8", (1000,)) + b"\x00" * 800, 400, "promises"),
        BadInput("npy_header_negative_shape", N, npy_header("<f8", (-5,)) + b"\x00" * 8, 400, "whole number"),
        # Two negative sizes promise a positive byte count; a bool passes for an int (both were 500s).
        BadInput("npy_header_two_negative_sizes", N, npy_header("<f8", (-2, -3)) + b"\x00" * 48, 400, "whole number"),
        BadInput("npy_header_bool_size", N, npy_header("<f8", (True,)) + b"\x00" * 8, 400, "whole number"),
        BadInput("npy_pickled_objects", N, npy(np.array([1, "a", None], dtype=object), allow_pickle=True), 400,
                 "not an integer or floating-point"),
        BadInput("npy_plain_pickle", N, pickle.dumps({"signal": [1, 2, 3]}), 400, "malformed .npy"),
        BadInput("npy_3_dimensions", N, npy(np.zeros((2, 2, 2))), 400, "3 dimensions"),
        BadInput("npy_bool", N, npy(np.array([True, False])), 400, "not an integer or floating-point"),
        BadInput("npy_complex", N, npy(np.array([1 + 2j, 3j])), 400, "not an integer or floating-point"),
        BadInput("npy_strings", N, npy(np.array(["1.5", "2"])), 400, "not an integer or floating-point"),
        BadInput("npy_structured", N, npy(np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")])), 400,
                 "not an integer or floating-point"),
        BadInput("npy_datetime", N, npy(np.array(["2024-01-01"], dtype="datetime64[D]")), 400,
                 "not an integer or floating-point"),
        BadInput("npy_infinity", N, npy(np.array([1.0, np.inf])), 400, "NaN or infinite"),
        BadInput("npy_nan_float16", N, npy(np.array([1.0, np.nan], dtype="<f2")), 400, "NaN or infinite"),
        BadInput("npy_empty", N, npy(np.zeros(0)), 400, "empty"),
        BadInput("npy_zero_rows", N, npy(np.zeros((0, 5))), 400, "no signals"),
        BadInput("npy_version_3", N, npy_header("<f8", (2,), (3, 0)) + b"\x00" * 16, 400, "version"),
        BadInput("npy_too_many_rows", N, npy(np.zeros((max_signals + 1, 4), dtype="<f4")), 413, "signals"),
        BadInput("npy_too_many_samples_float16", N, npy(np.zeros(max_work + 1, dtype="<f2")), 413, "limit"),
        # --- CSV -----------------------------------------------------------------------------
        BadInput("csv_letters", C, b"1,2,x", 400, "numbers"),
        BadInput("csv_labels_over_one_row", C, b"a,b\n1,2", 400, "line of labels"),
        BadInput("csv_nan", C, b"1,nan,3", 400, "NaN"),
        BadInput("csv_infinity", C, b"1,inf", 400, "NaN"),
        BadInput("csv_only_blank_lines", C, b"\n \n\n", 400, "empty"),
        BadInput("csv_underscore_digits", C, b"1_000,2", 400, "plain numbers"),
        BadInput("csv_arabic_indic_digits", C, "١٢٣,4".encode(), 400, "plain numbers"),
        BadInput("csv_latin1_bytes", C, b"1,2\n3,\xe94", 400, "UTF-8"),
        BadInput("csv_too_many_rows", C, b"1,2,3\n" * (max_signals + 1), 413, "signals"),
        # A column with decimal commas of one digit, no leading zero to tell it by (2026-12-08).
        BadInput("csv_whole_number_pairs", C, "".join(f"{10 + k % 5},{k % 10}\n" for k in range(60)).encode(),
                 400, "two whole numbers"),
        BadInput("csv_too_many_cells", C, b"0," * (max_work + 1), 413, "limit"),
        BadInput("csv_empty_value", C, b"1,2,,4,5", 400, "value 2 is empty"),
        # A row ends at a line break only (a form feed or U+2028 had split it into two signals).
        BadInput("csv_form_feed_in_a_row", C, b"1,2,3,4\x0c5,6,7,8", 400, "row 0"),
        BadInput("csv_line_separator_in_a_row", C, "1,2,3,4\u20285,6,7,8".encode(), 400, "row 0"),
        # --- raw float32 ---------------------------------------------------------------------
        BadInput("float32_partial_sample", F, b"\x00\x00\x80", 400, "float32"),
        BadInput("float32_nan", F, np.array([1, np.nan], dtype="<f4").tobytes(), 400, "NaN"),
        BadInput("float32_infinity", F, np.array([np.inf], dtype="<f4").tobytes(), 400, "NaN"),
        BadInput("float32_too_many_samples", F, np.zeros(max_work + 1, dtype="<f4").tobytes(), 413, "limit"),
        BadInput("float32_body_is_a_npy_file", F, good_npy, 400, "application/x-npy"),
        # Other sample types sent as float32 were answered 200 at twice or half the length (2026-12-08).
        BadInput("float32_body_of_float64_codes", F, (np.arange(64.0) % 9 + 2040).astype("<f8").tobytes(), 400,
                 "float64"),
        BadInput("float32_body_of_int16_codes", F, (np.arange(64) % 9 + 2040).astype("<i2").tobytes(), 400,
                 "integer samples"),
        # --- multipart -----------------------------------------------------------------------
        BadInput("multipart_without_data_field", *multipart({"threshold": b"0.5"}, {}), 400, 'field "data"'),
        # The frontend splits a multipart body only under a lower-case type with its boundary.
        BadInput("multipart_upper_case_type", upload_type.upper().replace(BOUNDARY.upper(), BOUNDARY), upload_body,
                 400, "could not be split into its fields"),
        BadInput("multipart_wrong_boundary", "multipart/form-data; boundary=other", upload_body,
                 400, "could not be split into its fields"),
        BadInput("multipart_garbage_file", *multipart({}, {"data": b"\x00\xff\x10garbage"}), 400, "UTF-8"),
        BadInput("multipart_bad_threshold", *multipart({"threshold": b"high"}, {"data": good_npy}), 400,
                 "threshold"),
        BadInput("multipart_npy_3_dimensions", *multipart({}, {"data": npy(np.zeros((2, 2, 2)))}), 400,
                 "dimensions"),
        BadInput("multipart_empty_file", *multipart({}, {"data": b""}), 400, 'field "data" is empty'),
        BadInput("multipart_nested_json_file", *multipart({}, {"data": b'{"signal": ' + b"[" * 5000 + b"]" * 5000
                                                                + b"}"}), 400, "nested"),
        # --- content types -------------------------------------------------------------------
        BadInput("no_content_type", None, b'{"signal": [1, 2, 3]}', 415, "unsupported content type"),
        BadInput("xml", "application/xml", b"<signal>1</signal>", 415, "unsupported content type"),
        BadInput("png_upload", "image/png", b"\x89PNG\r\n\x1a\n", 415, "unsupported content type"),
    ]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
