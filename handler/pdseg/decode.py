"""Turn one HTTP request body into signals and options, or a clear 4xx :class:`InputError`.

Formats (the Content-Type decides):

- ``application/json``: ``{"signal": [...]}`` or ``{"signals": [[...], ...]}`` plus options;
- ``application/x-npy``: a 1-D or 2-D ``.npy`` of integers or floats, rows are signals;
- ``text/csv``: one signal per row; a file of one value a line is one signal, a column;
- ``application/octet-stream``: raw little-endian float32, one signal;
- ``multipart/form-data``: the file in field ``data`` (any format above, told apart by its
  content), options as further fields.

Every request is charged its work (:class:`WorkLimits`): what it costs the worker, counted in
samples. Each format checks what it can before it builds anything large (bracket and comma
counts, the ``.npy`` header), so a request over the limit is refused with 413 before it costs
much; the exact figure is checked once the signals are known.

The functions take bytes and dicts only, so a CLI or a test can call them without a server.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from .pipeline import SignalOptions
from .prpd import VIEWS

# The shipped limits (config/model-config.yaml repeats them; docs/reliability.md has the
# measurements behind them: the worst request they admit stays under 1 GiB and 5 s).
DEFAULT_MAX_WORK = 1_500_000  # sample-equivalents per request
DEFAULT_MAX_SIGNALS = 88  # signals per request
DEFAULT_SIGNAL_OVERHEAD = 14_336  # sample-equivalents each signal costs besides its samples
DEFAULT_PICTURE_PANEL_WORK = 131_072  # sample-equivalents per signal drawn in a PNG answer
PICTURE_PANELS = 8  # signals drawn in a PNG answer at most (render.MAX_PANELS)
DEFAULT_MIN_WINDOW = 1_024  # the network's smallest window: WindowPlan().width(1), 1 sample + 2 x 256 context
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # a .npz archive (numpy.savez) is a zip file
NPZ_MESSAGE = ("the body is a .npz archive (numpy.savez), not a .npy file: send one array saved with "
               "numpy.save, as application/x-npy")
OPTION_FIELDS = ("threshold", "samples_per_cycle", "sampling_rate_hz", "power_frequency_hz")
# {"signals": [[...]]} is two arrays deep inside one object; anything deeper is not ours.
MAX_JSON_DEPTH = 3
# Squares of larger values overflow float64 in the noise estimates; no recorder comes close.
MAX_MAGNITUDE = 1e100
# Squares of a signal this small underflow in the same estimates (below about 1e-154 its noise
# measured as nothing, and the whole signal came back as one region); zeros alone are fine.
MIN_MAGNITUDE = 1e-100
FORM_TYPE = "application/x-www-form-urlencoded"
SUPPORTED_TYPES = ("application/json, application/x-npy, text/csv, application/octet-stream "
                   "or multipart/form-data")


class InputError(ValueError):
    """A problem with what the client sent; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class WorkLimits:
    """What one request may cost the worker.

    Time and memory grow with the samples the network sees and with the number of signals
    (each is filtered, windowed, fitted and described on its own), so a signal costs its
    length, at least the network's smallest window, plus ``signal_overhead``; a PNG answer
    adds ``picture_panel_work`` per signal drawn (matplotlib's time per panel does not
    shrink with the signal). A request may cost ``max_work`` and carry ``max_signals``
    signals."""

    max_work: int = DEFAULT_MAX_WORK
    max_signals: int = DEFAULT_MAX_SIGNALS
    signal_overhead: int = DEFAULT_SIGNAL_OVERHEAD
    picture_panel_work: int = DEFAULT_PICTURE_PANEL_WORK
    min_window: int = DEFAULT_MIN_WINDOW

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], min_window: int = DEFAULT_MIN_WINDOW) -> "WorkLimits":
        """The ``handler`` section of model-config.yaml."""
        return cls(max_work=int(settings.get("max_work_per_request", DEFAULT_MAX_WORK)),
                   max_signals=int(settings.get("max_signals_per_request", DEFAULT_MAX_SIGNALS)),
                   signal_overhead=int(settings.get("signal_overhead_samples", DEFAULT_SIGNAL_OVERHEAD)),
                   picture_panel_work=int(settings.get("picture_panel_samples", DEFAULT_PICTURE_PANEL_WORK)),
                   min_window=int(min_window))

    def signal_work(self, length: int) -> int:
        return max(int(length), self.min_window) + self.signal_overhead

    def work(self, lengths: Sequence[int], picture: bool = False, view: str = "signals") -> int:
        """The work of signals of ``lengths``; with ``picture``, the panels a PNG answer of
        ``view`` draws: each signal up to :data:`PICTURE_PANELS`, or the one phase-resolved plot."""
        panels = (min(len(lengths), PICTURE_PANELS) if view == "signals" else 1) if picture else 0
        return sum(self.signal_work(length) for length in lengths) + panels * self.picture_panel_work

    def _too_much(self, what: str) -> InputError:
        return InputError(
            f"{what}; one request may cost at most {self.max_work:,} sample-equivalents (each signal "
            f"counts its samples, at least {self.min_window:,}, plus {self.signal_overhead:,} for its own "
            f"processing, and {self.picture_panel_work:,} more when drawn in a PNG answer) and carry at most "
            f"{self.max_signals:,} signals: split it into smaller requests",
            status=413)

    def check_signals(self, count: int) -> None:
        if count > self.max_signals:
            raise self._too_much(f"{count:,} signals in one request exceed the limit of {self.max_signals:,}")

    def check_values(self, count: int, what: str) -> None:
        """Before parsing: ``count`` is what the body's separators say it holds, at most a few
        more than its samples; each sample costs at least one sample-equivalent."""
        if count > self.max_work:
            raise self._too_much(f"the body holds about {count:,} {what}, more than the limit of {self.max_work:,}")

    def check(self, lengths: Sequence[int], picture: bool = False, view: str = "signals") -> int:
        """The request's work, or 413 when it is over a limit."""
        self.check_signals(len(lengths))
        work = self.work(lengths, picture, view)
        if work > self.max_work:
            answer = " with a PNG answer" if picture else ""
            signals = f"{len(lengths):,} signal{'s' if len(lengths) != 1 else ''}"
            raise self._too_much(f"the request's {signals} of {sum(lengths):,} samples{answer} "
                                 f"cost {work:,} sample-equivalents, more than the limit of {self.max_work:,}")
        return work


def work_groups(works: Sequence[int], max_work: int) -> list[list[int]]:
    """Split a batch into consecutive groups of requests costing at most ``max_work`` each
    (a request over it alone forms its own group). The handler runs one group at a time, so
    a full batch of the largest requests needs the memory of one, not of eight."""
    groups: list[list[int]] = []
    total = 0
    for index, work in enumerate(works):
        if not groups or total + work > max_work:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += work
    return groups


@dataclasses.dataclass
class DecodedRequest:
    signals: list[np.ndarray]
    options: SignalOptions
    work: int = 0
    view: str = "signals"  # what a PNG answer shows: the signals, or the phase-resolved plot


def parse_view(value: Any) -> str:
    """The ``view`` option (JSON field or multipart field): one of :data:`VIEWS`."""
    if value is None:
        return VIEWS[0]
    text = _as_text(value).strip().lower() if isinstance(value, (bytes, bytearray, str)) else None
    if text not in VIEWS:
        raise InputError(f'option "view" must be one of {", ".join(VIEWS)}')
    return text


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def _as_text(value: Any) -> str:
    raw = _as_bytes(value)
    if raw is not None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"body is not UTF-8 text: {error}") from None
    return str(value)


def _finite_signal(values: Any, where: str) -> np.ndarray:
    try:
        with np.errstate(invalid="ignore"):  # a NaN cast from another dtype: refused just below
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: values must all be numbers within the float64 range") from None
    if array.ndim != 1:
        raise InputError(f"{where}: a signal must be a flat list of numbers")
    if array.size == 0:
        raise InputError(f"{where}: signal is empty")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise InputError(f"{where}: sample {bad} is NaN or infinite")
    magnitudes = np.abs(array)
    bad = int(np.argmax(magnitudes))
    largest = float(magnitudes[bad])
    if largest > MAX_MAGNITUDE:
        raise InputError(f"{where}: sample {bad} is {array[bad]:g}; magnitudes above {MAX_MAGNITUDE:g} "
                         "are not supported (rescale the signal: its regions do not depend on its units)")
    if 0.0 < largest < MIN_MAGNITUDE:
        raise InputError(f"{where}: the largest magnitude is {largest:g}; signals whose largest magnitude is under "
                         f"{MIN_MAGNITUDE:g} are not supported (rescale the signal: its regions do not depend on its units)")
    return array


_JSON_NUMBER_TYPES = frozenset({int, float})


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _json_signal(values: Any, where: str) -> np.ndarray:
    """A JSON list of numbers; true/false, strings and null are refused, not coerced."""
    if not isinstance(values, list):
        raise InputError(f"{where}: must be a list of numbers")
    if not set(map(type, values)) <= _JSON_NUMBER_TYPES:
        index, value = next((i, v) for i, v in enumerate(values) if type(v) not in _JSON_NUMBER_TYPES)
        if isinstance(value, list):
            raise InputError(f"{where}: a signal must be a flat list of numbers")
        raise InputError(f"{where}: sample {index} is {_json_kind(value)}; values must all be numbers")
    return _finite_signal(values, where)


# Every byte but the four JSON brackets, for bytes.translate (C speed, no copy of the rest).
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[list(b"[{")] = 1
_BRACKET_STEP[list(b"]}")] = -1
_DEPTH_CHUNK = 1 << 20


def _json_depth(payload: bytes) -> int:
    """The deepest nesting of arrays and objects, counting brackets in strings too (our
    bodies have none there). Chunked, so a 64 MiB body costs a few MiB, not 256."""
    steps = np.frombuffer(payload.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    deepest = depth = 0
    for first in range(0, steps.size, _DEPTH_CHUNK):
        running = np.cumsum(_BRACKET_STEP[steps[first: first + _DEPTH_CHUNK]], dtype=np.int64) + depth
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
    return deepest


def _guard_json_text(payload: bytes, limits: WorkLimits) -> None:
    """What the parse would build, bounded before it is built: nesting, arrays (signals)
    and values (samples) are counted in the raw bytes."""
    depth = _json_depth(payload)
    if depth > MAX_JSON_DEPTH:
        raise InputError(f"JSON nested {depth} levels deep: a signal is a flat list of numbers, "
                         '{"signal": [...]} or {"signals": [[...], ...]}')
    arrays = payload.count(b"[") - 1  # one array holds the signals
    # n samples in any number of signals, with k options, take n - 1 + k commas.
    values = payload.count(b",") + 1 - len(OPTION_FIELDS)
    if arrays > limits.max_signals and values <= arrays + 1:
        # No more values than arrays: a column of one capture, [[v], [v], ...], which "split it
        # into smaller requests" would only cut into more one-sample signals (a review).
        raise InputError(one_sample_signals_message(arrays))
    limits.check_signals(arrays)
    limits.check_values(values, "values")


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object's fields, 400 where one is given twice: a parser keeps the last, and the
    signal or option the sender meant may be the first."""
    fields = dict(pairs)
    if len(fields) != len(pairs):
        repeated = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise InputError(f"JSON field {_shown_name(repeated)} is given more than once")
    return fields


def _parsed_json(body: Any, limits: WorkLimits) -> Any:
    """``body`` parsed where it is JSON text (bytes or str), after the guard on its size and
    depth; as it is otherwise (TorchServe parsed it already)."""
    raw = _as_bytes(body)
    if raw is None and not isinstance(body, str):
        return body
    raw = raw if raw is not None else body.encode("utf-8", "surrogatepass")
    _guard_json_text(raw, limits)
    try:
        # A byte-order mark, as Windows tools write one, is not part of the JSON (CSV bodies and
        # multipart JSON files already read past it).
        return json.loads(_as_text(raw).removeprefix("\ufeff"), object_pairs_hook=_unique_fields)
    except InputError:
        raise
    except json.JSONDecodeError as error:
        if b"\x00" in raw[:64]:
            # UTF-16 or -32 text (NUL bytes between ASCII characters) read as UTF-8.
            raise InputError("malformed JSON: the body holds NUL bytes, as UTF-16 or UTF-32 text does; "
                             "send JSON as UTF-8") from None
        raise InputError(f"malformed JSON: {error}") from None
    except RecursionError:  # belt and braces: the depth guard should have caught it
        raise InputError("malformed JSON: nested too deeply") from None
    except ValueError as error:
        if "int_max_str_digits" in str(error):  # Python's advice, which a caller cannot follow
            raise InputError("malformed JSON: a number of more than 4,300 digits") from None
        raise InputError(f"malformed JSON: {error}") from None


def one_sample_signals_message(count: int) -> str:
    return (f'"signals" holds {count:,} signals of one sample each: a column of one capture? send it as one '
            'signal, {"signal": [...]}')


def decode_json(body: Any, limits: WorkLimits = WorkLimits()) -> tuple[list[np.ndarray], dict]:
    body = _parsed_json(body, limits)
    if not isinstance(body, Mapping):
        raise InputError('JSON body must be an object with "signal" or "signals"')
    if "signal" in body and "signals" in body:
        raise InputError('give either "signal" or "signals", not both')
    if "signal" in body:
        raw_signals = [body["signal"]]
    elif "signals" in body:
        raw_signals = body["signals"]
        if not isinstance(raw_signals, list) or not raw_signals:
            raise InputError('"signals" must be a non-empty list of signals')
        if not any(isinstance(values, list) for values in raw_signals):
            # One flat list of numbers: a signal sent under the wrong name, not 300 signals (413).
            raise InputError('"signals" is a list of signals, each a list of numbers; '
                             'one signal goes in "signal": {"signal": [...]}')
    else:
        raise InputError('missing field: "signal" (one signal) or "signals" (a list of signals)')
    check_fields(body, ("signal", "signals"))
    if len(raw_signals) > 1 and all(isinstance(values, list) and len(values) == 1 for values in raw_signals):
        # A column ([[v], [v], ...], as a one-column table is listed) read as signals of one
        # sample each lost every pulse without a word (a stranger's probe).
        raise InputError(one_sample_signals_message(len(raw_signals)))
    limits.check_signals(len(raw_signals))
    limits.check([len(values) if isinstance(values, list) else 0 for values in raw_signals])
    signals = [_json_signal(values, f"signal {index}") for index, values in enumerate(raw_signals)]
    options = {key: body[key] for key in OPTION_FIELDS + ("view",) if key in body}
    for key, value in options.items():
        if key == "view":
            continue
        if value is not None and type(value) not in _JSON_NUMBER_TYPES:
            raise InputError(f'option "{key}" must be a number, not {_json_kind(value)}')
    return signals, options


# Integer and floating-point dtypes; bool, complex, strings, objects, dates and records are not
# sample values.
NPY_KINDS = "iuf"


def decode_npy(payload: Any, limits: WorkLimits = WorkLimits()) -> list[np.ndarray]:
    """The header is read and checked against the body's length and the limits before any
    array is made; the data are then viewed in place, never pickled or allocated twice."""
    payload = _as_bytes(payload) or b""
    if payload[:len(ZIP_MAGIC)] == ZIP_MAGIC:
        raise InputError(NPZ_MESSAGE)
    stream = io.BytesIO(payload)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise InputError(f"malformed .npy: format version {version[0]}.{version[1]} is not supported (1.0 or 2.0)")
    except InputError:
        raise
    except Exception as error:  # numpy raises several types for a broken magic or header
        raise InputError(f"malformed .npy: {error}") from None
    if dtype.kind not in NPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise InputError(f".npy: dtype {dtype} is not an integer or floating-point type")
    if len(shape) > 2:
        raise InputError(f".npy: {len(shape)} dimensions; send 1-D (one signal) or 2-D (rows are signals)")
    # numpy's header reader takes any int, True and -3 included: a size it cannot lay out.
    if not all(type(size) is int and size >= 0 for size in shape):
        raise InputError(f"malformed .npy: shape {shape!r}; each size must be a whole number, 0 or more")
    rows, columns = (1, shape[0]) if len(shape) == 1 else (1, 1) if not shape else shape
    # One column (MATLAB's and pandas' export of one capture): one signal, as a CSV column is;
    # as rows it was that many signals of one sample and the capture's pulses were lost (a
    # stranger's probe).
    as_column = len(shape) == 2 and columns == 1 and rows > 1
    if as_column:
        rows, columns = 1, shape[0]
    if rows == 0:
        raise InputError(".npy: no signals")
    if columns == 0:
        raise InputError(".npy signal 0: signal is empty")
    limits.check_signals(rows)
    limits.check([columns] * rows)
    data_bytes = rows * columns * dtype.itemsize
    if len(payload) - stream.tell() != data_bytes:
        raise InputError(f"malformed .npy: the header promises {data_bytes:,} bytes of data "
                         f"({'x'.join(map(str, shape)) or 'scalar'} {dtype}), the body has {len(payload) - stream.tell():,}")
    array = np.frombuffer(payload, dtype=dtype, count=rows * columns, offset=stream.tell())
    if as_column:
        array = array.reshape(1, columns)  # one column is laid out alike in either order
    else:
        array = array.reshape((rows, columns) if not fortran_order else (columns, rows))
        if fortran_order:
            array = array.T
    return [_finite_signal(row, f".npy signal {index}") for index, row in enumerate(array)]


CSV_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def decode_csv(payload: Any, limits: WorkLimits = WorkLimits()) -> list[np.ndarray]:
    # A spreadsheet's "CSV UTF-8" export starts with a byte-order mark: not part of the numbers.
    text = _as_text(payload).removeprefix("\ufeff")
    if text.lstrip().startswith("{"):
        # A JSON body sent as text was told its row 0 held no numbers (a stranger's probe).
        raise InputError("the body is JSON sent as CSV text: send it with Content-Type application/json")
    # Every line break counts (a body of bare carriage returns passed this check, a stranger's probe).
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    limits.check_values(text.count(",") + breaks + 1, "cells")
    # Rows end at a line break only: str.splitlines() also splits at form feeds, vertical tabs,
    # U+2028 and others, and made two signals of one row.
    numbered = [(line_number, line) for line_number, line in
                enumerate(line.strip() for line in CSV_LINE_BREAK.split(text)) if line]
    if not numbered:
        raise InputError("CSV body is empty")
    labelled = len(numbered) > 1 and is_label_line(numbered[0][1])
    value_lines = numbered[1:] if labelled else numbered
    after_labels = text.find(numbered[0][1]) + len(numbered[0][1]) if labelled else 0
    if (len(value_lines) > 1 or labelled) and not _SECOND_VALUE.search(text, after_labels):
        # One value a line is one signal, a column, as an instrument exports a capture (and as
        # the client reads such a file): as rows it was as many signals of one sample each.
        return [_csv_column(value_lines)]
    if labelled or len(value_lines) >= TIME_VALUE_MIN_ROWS:
        table = _time_value_table(value_lines)
        if table is not None:
            return [table]
        if labelled:
            for line_number, line in value_lines:  # a value that is no number is named first
                for cell in _csv_cells(line):
                    _csv_number(cell, f"CSV line {line_number + 1}")
            raise InputError("a CSV with a line of labels must hold one value a line (one signal) or two, "
                             "time and value, with the time evenly spaced (times printed with too few "
                             "digits repeat or jump: print more, or send the value column alone and give "
                             "sampling_rate_hz)")
    rows = [_csv_cells(line) for _, line in numbered]
    if decimal_commas(rows):
        raise InputError("these lines look like one column of numbers written with decimal commas (0,1234): "
                         "write decimals with a point (0.1234); commas separate values")
    if len(rows) >= TIME_VALUE_MIN_ROWS and whole_number_pairs(rows):
        raise InputError(f"{len(rows):,} lines of two whole numbers each: as rows they are as many signals of two "
                         "samples, no capture; a column with decimal commas (11,2)? write decimals with a point; "
                         "a time,value table? its first column must rise evenly")
    try:
        limits.check_signals(len(rows))
    except InputError as error:
        if not all(len(cells) == 2 for cells in rows):
            raise
        raise InputError(error.message + "; these lines of two values each were read as rows (signals of two "
                         "samples): a time,value table is one signal only where its first column rises evenly",
                         error.status) from None
    signals = []
    for number, cells in enumerate(rows):
        if "" in cells:
            # Dropped, it would move every later sample one place earlier, and the regions with them.
            raise InputError(f"CSV row {number}: value {cells.index('')} is empty; every sample must be given")
        values = [_csv_number(cell, f"CSV row {number}") for cell in cells]
        signals.append(_finite_signal(values, f"CSV row {number}"))
    return signals


# A comma with a value after it on its line: a row of two values or more (commas and blanks
# after a row's last value end it).
_SECOND_VALUE = re.compile(r",[^\S\r\n]*[^,\s]")
# What ends a one-value line's value: blanks and the commas a spreadsheet pads a row with.
_PADDING = "," + "".join(chr(code) for code in range(0x3001) if chr(code).isspace())


# An oscilloscope's export: a time column and a value column, often under a line of labels
# ("Time,Ampl"). As rows it was that many signals of two samples each, the times among them.
TIME_VALUE_MIN_ROWS = 16  # fewer lines of two values stay rows (signals of two samples)
TIME_STEP_TOLERANCE = 0.05  # of the median step: how far a step may stray ...
TIME_ROUNDING = 5e-6  # ... plus this share of the largest time (its printed digits' rounding)


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_ZERO_PADDED = re.compile(r"[+-]?0[0-9]+")


def whole_number_pairs(rows: list[list[str]]) -> bool:
    """Whether every row is two whole numbers, the first not zero-padded (a fixed-width table of
    two ADC channels pads it): a column with decimal commas of other digits than
    :func:`decimal_commas` tells (11,2 12,2 10,3), which read as rows gave a 200 of 60 signals of
    two samples and no region (a stranger's probe)."""
    return all(len(cells) == 2 and all(_WHOLE_NUMBER.fullmatch(cell) for cell in cells)
               and not _ZERO_PADDED.fullmatch(cells[0]) for cells in rows)


def decimal_commas(rows: list[list[str]]) -> bool:
    """Whether CSV rows are a column of numbers with decimal commas, as a European spreadsheet
    writes them: several lines of two whole numbers each, some second one with a leading zero
    (0,0567) or some first one a negative zero (-0,5), which no whole number is written with;
    not where a first one is zero-padded too (0007,0513: a fixed-width integer table). Read as
    rows, a 60-line capture became 60 signals of two samples and its pulse was lost without a
    word (a stranger's probe)."""
    return (len(rows) >= 2 and whole_number_pairs(rows)
            and any(_ZERO_PADDED.fullmatch(cells[1]) or cells[0] == "-0" for cells in rows))


def is_label_line(line: str) -> bool:
    """Whether a CSV line is a line of labels: every value is there, none is a number and each
    holds a letter (``1;2;3``, numbers under another separator, is no label)."""
    cells = _csv_cells(line)
    if "" in cells or not all(any(character.isalpha() for character in cell) for cell in cells):
        return False
    for cell in cells:
        try:
            float(cell)
            return False
        except ValueError:
            pass
    return True


def separator_hint(cell: str) -> str:
    """What to add to "values must all be numbers" for a value that holds another separator."""
    for separator, name in ((";", "';'"), ("\t", "a tab")):
        if separator in cell:
            return f" (values are separated by commas, with a point for decimals; this line uses {name})"
    return ""


def evenly_spaced(times: np.ndarray) -> bool:
    """Whether ``times`` rise at one step, within :data:`TIME_STEP_TOLERANCE` of it plus
    :data:`TIME_ROUNDING` of the largest time (the rounding of a time printed to six digits)."""
    if times.size < 2 or not np.all(np.isfinite(times)):
        return False
    steps = np.diff(times)
    step = float(np.median(steps))
    if not step > 0.0:
        return False
    allowed = TIME_STEP_TOLERANCE * step + TIME_ROUNDING * float(np.max(np.abs(times)))
    # the line through the ends, not the first time alone: a rounded step drifts over many lines
    expected = times[0] + (times[-1] - times[0]) * np.arange(times.size) / (times.size - 1)
    return bool(np.all(steps >= -allowed) and np.max(np.abs(times - expected)) <= allowed)


def _time_value_table(numbered: list[tuple[int, str]]) -> np.ndarray | None:
    """The value column of lines of two values each whose first rises evenly (time, value), or
    None where the lines are not such a table."""
    lines = [line.rstrip(_PADDING) for _, line in numbered]
    if any(line.count(",") != 1 for line in lines):  # stops at the first row of other width
        return None
    cells = [cell.strip() for line in lines for cell in line.split(",")]
    if "" in cells:
        return None
    try:
        table = np.array(_plain_floats(cells), dtype=np.float64).reshape(-1, 2)
    except ValueError:
        return None
    if not evenly_spaced(table[:, 0]):
        return None
    return _finite_signal(table[:, 1], "CSV value column")


def _plain_floats(cells: list[str]) -> list[float]:
    """The cells as floats, in one pass; ValueError where any is no plain ASCII number (float()
    alone also reads "1_000" and other digits)."""
    joined = "".join(cells)
    if not joined.isascii() or "_" in joined:
        raise ValueError("not plain ASCII numbers")
    return [float(cell) for cell in cells]


def _csv_column(numbered: list[tuple[int, str]]) -> np.ndarray:
    """One signal of the single values of ``numbered`` lines (no blank one among them); in one
    pass over all the values (a column of 1.5 million took 2.5 s a value at a time)."""
    gaps = [first + 1 for (first, _), (second, _) in zip(numbered, numbered[1:]) if second != first + 1]
    if gaps:
        raise InputError(f"CSV line {gaps[0] + 1} is blank inside a column of values; every sample must be given")
    cells = [line.rstrip(_PADDING) for _, line in numbered]
    try:
        values = _plain_floats(cells)
    except ValueError:
        for (line_number, _), cell in zip(numbered, cells):
            _csv_number(cell, f"CSV line {line_number + 1}")  # raises, naming the first bad line
        raise
    return _finite_signal(values, "CSV column")


def _csv_cells(line: str) -> list[str]:
    """A CSV line's values (delimiters after the last one, as a spreadsheet pads short rows,
    end the row)."""
    cells = [cell.strip() for cell in line.split(",")]
    while len(cells) > 1 and cells[-1] == "":
        cells.pop()
    return cells


def _csv_number(cell: str, where: str) -> float:
    # float() also reads "1_000" and non-ASCII digits; a capture's numbers are plain ASCII.
    if not cell.isascii() or "_" in cell:
        raise InputError(f"{where}: values must all be plain numbers (ASCII, no '_')")
    try:
        return float(cell)
    except ValueError:
        raise InputError(f"{where}: values must all be numbers{separator_hint(cell)}") from None


def decode_float32(payload: Any, limits: WorkLimits = WorkLimits()) -> list[np.ndarray]:
    payload = _as_bytes(payload) or b""
    if payload[:len(NPY_MAGIC)] == NPY_MAGIC:
        # Its header is padded to whole 64 bytes, so read as float32 it would pass for samples.
        raise InputError("the octet-stream body is a .npy file: send it with Content-Type application/x-npy "
                         "(application/octet-stream is raw little-endian float32 samples)")
    if len(payload) % 4:
        raise InputError(f"octet-stream body of {len(payload)} bytes is not whole float32 samples")
    if payload:
        limits.check([len(payload) // 4])
    samples = np.frombuffer(payload, dtype="<f4")
    other = other_sample_type(samples)
    if other:
        raise InputError(f"the octet-stream body does not read as float32 samples: {other}; "
                         "application/octet-stream is raw little-endian float32 (or send a .npy, "
                         "which names its type, as application/x-npy)")
    return [_finite_signal(samples, "octet-stream")]


OTHER_TYPE_MIN_SAMPLES = 8  # float32 samples: fewer are too few to tell another type by
# Integer samples read as float32 pairs: the upper 16 bits of 12-bit codes (up to 4,095) make
# an exponent that leaves every value under 2.6e-29, which no capture in any unit reaches.
INTEGER_LOOKING_MAGNITUDE = 1e-28


def other_sample_type(samples: np.ndarray) -> str:
    """What a float32 view of a body shows of another sample type, or "": float64 samples
    (every other float32 exactly zero and at least half of the others not, as the low halves of
    whole numbers are; or two NaN or infinities or more, all among the even float32s, where the
    float64 view has none), or
    integer samples (at least half the values nonzero, and every one under
    :data:`INTEGER_LOOKING_MAGNITUDE`, as ADC codes read in pairs are). Read as float32 they
    gave a 200 of twice or half the length and no region (a stranger's probe). A mostly zero
    signal (one spike) is read as it is."""
    if samples.size < OTHER_TYPE_MIN_SAMPLES:
        return ""
    finite = np.isfinite(samples)
    if samples.size % 2 == 0:
        if not np.any(samples[0::2] != 0) and 2 * np.count_nonzero(samples[1::2]) >= samples.size // 2:
            return ("every other float32 is exactly zero, as float64 samples of whole numbers read (or two "
                    "interleaved channels, one of them silent: send one)")
        bad = np.flatnonzero(~finite)
        # float64's low halves (the even float32s) hold its NaN-looking bit patterns; a capture's
        # own NaN is one sample anywhere, and is named as such (a review)
        if bad.size >= 2 and not np.any(bad % 2):
            wide = samples.view("<f8")
            with np.errstate(over="ignore"):
                if np.all(np.isfinite(wide)) and float(np.max(np.abs(wide))) <= MAX_MAGNITUDE:
                    return "it holds NaN or infinite values as float32 but none as float64"
    magnitudes = np.abs(samples[finite & (samples != 0)])
    if np.all(finite) and 2 * magnitudes.size >= samples.size and float(np.max(magnitudes)) < INTEGER_LOOKING_MAGNITUDE:
        return f"every value is under {INTEGER_LOOKING_MAGNITUDE:g}, as integer samples read in pairs"
    return ""


def _sniff(payload: Any, limits: WorkLimits) -> tuple[list[np.ndarray], dict]:
    """A multipart file field: its own content type is not forwarded, so tell by content.
    Returns the signals and the options a JSON file carries beside them."""
    if isinstance(payload, (bytes, bytearray)) and not payload:
        raise InputError('the multipart file in field "data" is empty')
    if isinstance(payload, (bytes, bytearray)) and bytes(payload[:6]) == NPY_MAGIC:
        return decode_npy(payload, limits), {}
    if isinstance(payload, (bytes, bytearray)) and bytes(payload[:len(ZIP_MAGIC)]) == ZIP_MAGIC:
        raise InputError(NPZ_MESSAGE)
    if isinstance(payload, (dict, list)):
        return decode_json(payload if isinstance(payload, dict) else {"signals": payload}, limits)
    try:
        text = _as_text(payload).removeprefix("\ufeff").lstrip()
    except InputError:
        raise InputError('the multipart file in field "data" is neither .npy nor UTF-8 text (JSON or CSV): '
                         "send raw float32 samples as the body with Content-Type application/octet-stream") from None
    if text.startswith("{"):
        return decode_json(text, limits)
    if text.startswith("["):
        # A JSON list of signals, read as a parsed one is above (it was read as CSV, and the
        # message spoke of CSV rows).
        parsed = _parsed_json(text, limits)
        return decode_json({"signals": parsed} if isinstance(parsed, list) else parsed, limits)
    return decode_csv(text, limits), {}


def check_fields(fields: Mapping[str, Any], carriers: tuple[str, ...]) -> None:
    """400 for a field the service does not know (a misspelt option would otherwise be
    ignored without a word), naming the known ones."""
    known = carriers + OPTION_FIELDS + ("view",)
    unknown = sorted(str(key) for key in fields if key not in known)
    if unknown:
        shown = ", ".join(map(_shown_name, unknown[:SHOWN_NAMES]))
        if len(unknown) > SHOWN_NAMES:
            shown += f" and {len(unknown) - SHOWN_NAMES:,} more"
        raise InputError(f"unknown field{'s' if len(unknown) > 1 else ''} {shown}: known fields are {', '.join(known)}")


# Unknown names a message repeats: 20,000 of them made a 1.5 MB message, which the frontend cut off.
SHOWN_NAMES = 8


SHOWN_NAME_CHARACTERS = 64  # of a field name that a message repeats


def _shown_name(name: str) -> str:
    """``name`` as a message repeats it: quoted, and cut where it is longer than
    :data:`SHOWN_NAME_CHARACTERS` (a name of 100,000 characters came back whole)."""
    if len(name) <= SHOWN_NAME_CHARACTERS:
        return repr(name)
    return f"{name[:SHOWN_NAME_CHARACTERS]!r}... ({len(name):,} characters)"


ANSWER_TYPES = ("application/json", "image/png")
# Times in the answer (start_s, duration_s) are samples over this rate: far below it they
# overflow to infinity, which JSON cannot carry.
MIN_SAMPLING_RATE_HZ = 1.0
# samples_per_cycle and sampling_rate_hz / power_frequency_hz given together must agree this
# closely (a rate rounded to a few digits, 49.95 Hz for 50): further apart, which one the sender
# meant is a guess.
PERIOD_AGREEMENT = 0.01


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    """An ``Accept`` header's media ranges and their quality values (RFC 9110: 1 where none is
    given or it is unreadable, 0 outside 0-1)."""
    ranges = []
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    number = float(value)
                except ValueError:
                    continue  # unreadable: as if none were given, as before quality values counted
                if math.isnan(number):
                    continue  # "nan" is no number either (it was read as outside 0-1: a 406)
                quality = number if 0.0 <= number <= 1.0 else 0.0
        ranges.append((media.lower(), quality))
    return ranges


def answer_type(accept: str | None) -> str:
    """The answer's content type for an ``Accept`` header: of JSON and PNG, the one the header
    gives the higher quality (its most specific range that matches: ``image/png``,
    ``image/*``, ``*/*``); a tie goes to PNG where the header names it, else to JSON. No
    header: JSON. Neither acceptable (absent or q=0): 406."""
    ranges = dict(_accept_ranges(accept or ""))  # a repeated range: its last quality
    if not ranges:
        return "application/json"

    def quality(media: str) -> float:
        kind = media.split("/")[0]
        for candidate in (media, f"{kind}/*", "*/*"):
            if candidate in ranges:
                return ranges[candidate]
        return 0.0

    json_quality, png_quality = quality("application/json"), quality("image/png")
    if max(json_quality, png_quality) <= 0.0:
        raise InputError(f"cannot answer {accept!r}: this service offers {', '.join(ANSWER_TYPES)}", status=406)
    if png_quality > json_quality or (png_quality == json_quality and "image/png" in ranges):
        return "image/png"
    return "application/json"


def parse_options(values: Mapping[str, Any]) -> SignalOptions:
    parsed: dict[str, float] = {}
    for key in OPTION_FIELDS:
        if key not in values or values[key] is None:
            continue
        raw = values[key]
        if isinstance(raw, bool):
            raise InputError(f'option "{key}" must be a number, not {_json_kind(raw)}')
        try:
            text = _as_text(raw) if isinstance(raw, (bytes, bytearray)) else raw
            # as in CSV: float() also reads "1_000" and non-ASCII digits
            if isinstance(text, str) and (not text.isascii() or "_" in text):
                raise ValueError(text)
            number = float(text)
        except (TypeError, ValueError, OverflowError, InputError):
            raise InputError(f'option "{key}" must be a number (plain ASCII, no \'_\')') from None
        if not math.isfinite(number):
            raise InputError(f'option "{key}" must be a finite number, not {text!r}'[:200])
        if number <= 0:
            raise InputError(f'option "{key}" must be a positive number')
        if key == "threshold" and not 0 < number < 1:
            raise InputError('option "threshold" must be over 0 and under 1 (1 would report nothing)')
        parsed[key] = number
    if parsed.get("samples_per_cycle", 3) < 3:
        raise InputError('option "samples_per_cycle" must be at least 3')
    if parsed.get("sampling_rate_hz", MIN_SAMPLING_RATE_HZ) < MIN_SAMPLING_RATE_HZ:
        raise InputError(f'option "sampling_rate_hz" must be at least {MIN_SAMPLING_RATE_HZ:g} Hz')
    if "power_frequency_hz" in parsed and "sampling_rate_hz" not in parsed:
        raise InputError('option "power_frequency_hz" needs "sampling_rate_hz": the period is their ratio '
                         '(add sampling_rate_hz, or leave power_frequency_hz out)')
    if {"sampling_rate_hz", "power_frequency_hz"} <= set(parsed):
        derived = parsed["sampling_rate_hz"] / parsed["power_frequency_hz"]
        given = parsed.get("samples_per_cycle")
        if given is not None and abs(derived - given) > PERIOD_AGREEMENT * given:
            raise InputError(f'"samples_per_cycle" {given:g} and sampling_rate_hz / power_frequency_hz '
                             f'({derived:.6g}) give two periods: send one of them')
        # The period these two give is held to the rule samples_per_cycle is held to.
        if given is None and not 3 <= derived < math.inf:
            raise InputError(f'sampling_rate_hz / power_frequency_hz gives {derived:.3g} samples per cycle: '
                             "it must be at least 3 (and finite)")
    return SignalOptions(**parsed)


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def check_content_encoding(content_encoding: str | None) -> None:
    """415 for a body with a ``Content-Encoding`` (gzip, ...): it would be read as garbled text."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity"):
        raise InputError(f"Content-Encoding {content_encoding!r} is not supported: send the body uncompressed",
                         status=415)


def decode_request(row: Mapping[str, Any], content_type: str | None,
                   limits: WorkLimits = WorkLimits(), picture: bool = False,
                   content_encoding: str | None = None) -> DecodedRequest:
    """One TorchServe request row (``body``/``data`` plus multipart or form fields) to
    signals, its work (with a PNG answer if ``picture``) checked against ``limits``; a body
    with a ``Content-Encoding`` (gzip, ...) is refused: it would be read as garbled text."""
    check_content_encoding(content_encoding)
    kind = base_type(content_type)
    body = row.get("body", row.get("data"))
    options: dict = {}
    if kind == FORM_TYPE:
        # curl -d sends this type; TorchServe turns such a body into fields, so it would
        # otherwise arrive as "no body".
        raise InputError(
            f"a form-encoded body ({FORM_TYPE}, what curl -d sends without a Content-Type) is not a "
            f"signal: send {SUPPORTED_TYPES}, e.g. curl -H 'Content-Type: application/json' "
            "-d '{\"signal\": [1, 2, 3]}', or --data-binary @capture.npy -H 'Content-Type: application/x-npy'",
            status=415)
    if kind == "multipart/form-data":
        payload = row.get("data")
        if payload is None and not set(row) - {"body"}:
            # TorchServe's frontend splits a multipart body into fields only where the type is
            # spelt in lower case and the body matches its boundary; otherwise it passes the body on.
            raise InputError("the multipart body could not be split into its fields: write the type "
                             "multipart/form-data in lower case with the boundary the body uses, and send the "
                             "body whole (curl -F data=@capture.npy does both)")
        if payload is None:
            raise InputError('multipart upload needs the signal file in field "data"')
        check_fields(row, ("data",))
        signals, options = _sniff(payload, limits)
        fields = {key: row[key] for key in OPTION_FIELDS + ("view",) if key in row}
        both = sorted(key for key in set(options) & set(fields) if options[key] is not None)
        if both:
            raise InputError(f"option{'s' if len(both) > 1 else ''} {', '.join(map(repr, both))} given twice: "
                             "in the uploaded JSON file and as a form field")
        options = options | fields
    elif body is None or (_as_bytes(body) is not None and not body):
        raise InputError("request has no body")
    elif kind in ("application/json", "text/json") or isinstance(body, dict):
        signals, options = decode_json(body, limits)
    elif kind in ("application/x-npy", "application/npy"):
        signals = decode_npy(body, limits)
    elif kind in ("text/csv", "text/plain"):
        signals = decode_csv(body, limits)
    elif kind == "application/octet-stream":
        signals = decode_float32(body, limits)
    else:
        raise InputError(f"unsupported content type {kind or '(none)'}: use {SUPPORTED_TYPES}", status=415)
    view = parse_view(options.pop("view", None))
    work = limits.check([signal.size for signal in signals], picture, view)
    return DecodedRequest(signals=signals, options=parse_options(options), work=work, view=view)
