"""Signal files on disk: find them, count their signals, and read them one signal at a time.

Formats, told by extension: ``.npy`` (1-D: one signal; 2-D: rows are signals), ``.csv`` (one
signal per row, as the service reads CSV; a file of single values per line is one signal, a
column, and so is a time,value table, :class:`CsvLayout`), ``.f32`` (raw little-endian float32, one signal) and ``.parquet`` (the VSB layout: each
column one signal, named by its column). Reading is lazy, so a file larger than memory streams.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from pdseg import decode

EXTENSIONS = (".npy", ".csv", ".f32", ".parquet")
OUTPUT_FILES = ("regions.csv",)  # what the client writes into --out that reads as a capture
# Parquet columns are read this many values at a time: whole columns, bounded memory.
PARQUET_VALUES_PER_READ = 8_000_000


class InputFileError(ValueError):
    """A file that cannot be read as signals at all."""


@dataclasses.dataclass(frozen=True)
class InputFile:
    path: Path
    name: str  # how results and reports name it: the path as given, or under the given folder

    @property
    def kind(self) -> str:
        return self.path.suffix.lower()


def discover(inputs: list[str], leave_out: Path | None = None) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Files to analyse (folders walked recursively, sorted) and (name, reason) of inputs
    that are not signal files. A folder's walk leaves out ``leave_out`` (the client's own
    output folder: its regions.csv was read as a capture on a second run) and what is not a
    plain file (a named pipe blocked the run before it began)."""
    found: list[InputFile] = []
    rejected: list[tuple[str, str]] = []
    skipped = leave_out.resolve() if leave_out is not None else None
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            for root, folders, files in os.walk(path):
                folders[:] = sorted(folder for folder in folders if (Path(root) / folder).resolve() != skipped)
                # --out may be the walked folder itself: its own files are no captures
                own = OUTPUT_FILES if Path(root).resolve() == skipped else ()
                for file_name in sorted(files):
                    child = Path(root) / file_name
                    if child.suffix.lower() in EXTENSIONS and child.is_file() and file_name not in own:
                        found.append(InputFile(child, str(child)))
        elif path.exists() and not path.is_file():
            rejected.append((str(path), "not a plain file (a pipe, a socket or a device): copy it to a file"))
        elif path.is_file():
            if path.suffix.lower() in EXTENSIONS:
                found.append(InputFile(path, str(path)))
            else:
                rejected.append((str(path), f"unsupported file type {path.suffix or '(none)'}: "
                                            f"use {', '.join(EXTENSIONS)}"))
        else:
            rejected.append((str(path), "no such file or folder"))
    return found, rejected


# --- per format --------------------------------------------------------------------------


def _npy(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            # numpy's own words for such a file speak of pickled data and allow_pickle
            raise InputFileError("not a .npy file (it does not start as one): is it named for what it holds?")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # numpy raises several types for a broken header
        raise InputFileError(f"not a readable .npy: {error}") from None
    if array.ndim not in (1, 2):
        raise InputFileError(f".npy has {array.ndim} dimensions; 1-D (one signal) or 2-D (rows are signals)")
    if array.dtype.kind not in "biuf":
        raise InputFileError(f".npy dtype {array.dtype} is not a real number type")
    if array.ndim == 2 and array.shape[1] == 1 and array.shape[0] > 1:
        return array[:, 0]  # one column (MATLAB's, pandas' export of a capture): one signal, as the service reads it
    return array


def _csv_cells(line: str, number: int) -> list[str]:
    """A CSV line's values (none for a blank line), as the service reads a row: a delimiter
    after the last value ends it; an empty value anywhere else is refused, since dropping it
    would move every later sample one place earlier."""
    cells = [cell.strip() for cell in line.strip().split(",")]
    if cells == [""]:
        return []
    while len(cells) > 1 and cells[-1] == "":
        cells.pop()
    if "" in cells:
        raise InputFileError(f"CSV line {number + 1}: value {cells.index('')} is empty; every sample must be given")
    return cells


def _csv_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of every line of a CSV file, no values for a blank one."""
    with open(path, encoding="utf-8-sig") as handle:  # a spreadsheet's "CSV UTF-8" starts with a BOM
        for number, line in enumerate(handle):
            yield number, _csv_cells(line, number)


def _csv_values(number: int, cells: list[str]) -> np.ndarray:
    # As the service reads them (pdseg.decode): float() alone also takes "1_000" and other digits.
    if any(not cell.isascii() or "_" in cell for cell in cells):
        raise InputFileError(f"CSV line {number + 1}: values must all be plain numbers (ASCII, no '_')")
    try:
        return np.asarray([float(cell) for cell in cells], dtype=np.float64)
    except ValueError:
        hint = decode.separator_hint(",".join(cells))
        raise InputFileError(f"CSV line {number + 1}: values must all be numbers{hint}") from None


def _csv_rows(path: Path, labelled: bool = False) -> Iterator[np.ndarray]:
    first = True
    for number, cells in _csv_lines(path):
        if cells:
            if not (first and labelled):
                yield _csv_values(number, cells)
            first = False


@dataclasses.dataclass(frozen=True)
class CsvLayout:
    """How a CSV file's lines make signals, by the service's rule (:func:`pdseg.decode.decode_csv`):
    ``rows`` signals, one per line; or one signal, a ``column`` of one value a line or the
    second column of a ``time_value`` table; ``labelled``: its first line names the columns."""
    rows: int
    kind: str  # "rows", "column" or "time_value"
    labelled: bool = False
    widest: int = 0  # the most values of a row

    @property
    def signals(self) -> int:
        return self.rows if self.kind == "rows" else 1


def _csv_shape(path: Path, check_values: bool = True) -> CsvLayout:
    """The file's :class:`CsvLayout`, in one pass. What would refuse the file part way through
    its rows is refused here, before any of them is sent: an empty value, a blank line between
    the values of a column (either would move every later sample) and, with ``check_values``, a
    value that is no number."""
    rows, single, pairs, widest = 0, True, True, 0
    labelled = False
    times: list[float] = []
    blank = gap = None  # the first blank line after a value; the first such line a value follows
    for number, cells in _csv_lines(path):
        if not cells:
            blank = number if blank is None and rows else blank
            continue
        if rows == 0 and not labelled and decode.is_label_line(",".join(cells)):
            labelled = True
            continue
        gap = blank if gap is None else gap
        blank = None
        if check_values or (pairs and len(cells) == 2):
            values = _csv_values(number, cells)
            if pairs and len(cells) == 2:
                times.append(float(values[0]))
        rows += 1
        widest = max(widest, len(cells))
        single = single and len(cells) == 1
        pairs = pairs and len(cells) == 2
    if single and rows > 1 and gap is not None:
        raise InputFileError(f"CSV line {gap + 1} is blank inside a column of values; every sample must be given")
    if labelled and rows == 0:
        labelled, rows, single = False, 1, True  # one line of text: a row, refused as the service refuses it
    if single and (rows > 1 or labelled):
        return CsvLayout(rows, "column", labelled)
    if pairs and (labelled or rows >= decode.TIME_VALUE_MIN_ROWS) and decode.evenly_spaced(np.asarray(times)):
        return CsvLayout(rows, "time_value", labelled)
    if labelled:
        raise InputFileError("a CSV with a line of labels must hold one value a line (one signal) or two, "
                             "time and value, with the time evenly spaced")
    return CsvLayout(rows, "rows", widest=widest)


def _parquet(path: Path):
    import pyarrow.parquet as parquet  # only needed for Parquet input

    try:
        return parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InputFileError(f"not a readable Parquet file: {error}") from None


def _column_values(column) -> np.ndarray:
    # A numeric column's nulls become NaN where they are (reported as a bad sample, by its own
    # index); any other column keeps its kind, which signal_problem names.
    return column.to_numpy()


# A file of many signals of a sample or two is a capture laid out the other way (a column vector
# saved as rows, a time,value table whose times are printed too coarsely to rise evenly): a
# stranger's probe sent 10,000 of them, and got no region and exit 0.
TINY_SIGNAL = 2  # samples
TINY_SIGNALS_FROM = 16  # signals in one file


def _tiny_signals(count: int, widest: int, layout: str) -> None:
    if count >= TINY_SIGNALS_FROM and widest <= TINY_SIGNAL:
        raise InputFileError(f"{count:,} signals of at most {widest} sample{'s' if widest > 1 else ''} each "
                             f"({layout}): a capture laid out the other way? Save a capture 1-D (or one "
                             "row a signal); a time,value CSV is read as one signal where its times rise evenly")


def count_signals(source: InputFile) -> int:
    if source.kind == ".npy":
        array = _npy(source.path)
        if array.ndim == 2:
            _tiny_signals(array.shape[0], array.shape[1], f".npy of shape {array.shape}")
        return 1 if array.ndim == 1 else array.shape[0]
    if source.kind == ".csv":
        layout = _csv_shape(source.path)
        if layout.kind == "rows":
            _tiny_signals(layout.rows, layout.widest, "CSV rows")
        return layout.signals
    if source.kind == ".parquet":
        return len(_parquet(source.path).schema_arrow.names)
    return 1  # .f32


def iter_signals(source: InputFile, skip: frozenset = frozenset()) -> Iterator[tuple[int | str, np.ndarray]]:
    """(signal id, values) of each signal whose id (as text) is not in ``skip``; ids are row
    numbers, or column names for Parquet."""
    if source.kind == ".npy":
        array = _npy(source.path)
        rows = [array] if array.ndim == 1 else array
        for index, row in enumerate(rows):
            if str(index) not in skip:
                yield index, np.asarray(row)
    elif source.kind == ".csv":
        layout = _csv_shape(source.path, check_values=False)  # the rows' values are read just below
        if layout.kind != "rows":
            if "0" not in skip:
                rows = list(_csv_rows(source.path, layout.labelled))
                yield 0, (np.concatenate(rows) if layout.kind == "column" else np.array([row[1] for row in rows]))
            return
        for index, row in enumerate(_csv_rows(source.path)):
            if str(index) not in skip:
                yield index, row
    elif source.kind == ".f32":
        if "0" not in skip:
            yield 0, _f32(source.path)
    elif source.kind == ".parquet":
        yield from _parquet_signals(source.path, skip)
    else:
        raise InputFileError(f"unsupported file type {source.kind}")


def _f32(path: Path) -> np.ndarray:
    size = path.stat().st_size
    if size % 4:
        raise InputFileError(f"{size} bytes is not whole float32 samples")
    samples = np.fromfile(path, dtype="<f4")
    other = decode.other_sample_type(samples)
    if other:  # what the service says of the same bytes sent raw
        raise InputFileError(f"does not read as float32 samples: {other}; save a .npy, which names its type")
    return samples


def _parquet_signals(path: Path, skip: frozenset) -> Iterator[tuple[str, np.ndarray]]:
    table_file = _parquet(path)
    names = [name for name in table_file.schema_arrow.names if name not in skip]
    rows = max(table_file.metadata.num_rows, 1)
    step = max(1, PARQUET_VALUES_PER_READ // rows)
    for first in range(0, len(names), step):
        chunk = table_file.read(columns=names[first:first + step])
        for name in chunk.column_names:
            yield name, _column_values(chunk.column(name))


def load_signal(source: InputFile, signal: int | str) -> np.ndarray:
    """One signal again, for a report's picture."""
    if source.kind == ".parquet":
        return _column_values(_parquet(source.path).read(columns=[str(signal)]).column(0))
    if source.kind == ".npy":
        array = _npy(source.path)
        return np.asarray(array if array.ndim == 1 else array[int(signal)])
    for index, values in iter_signals(source):
        if index == signal:
            return values
    raise InputFileError(f"signal {signal} is not in {source.name}")


# What a column or array of another kind than integers or floats holds (numpy's dtype kinds); the
# service refuses them too (a .npy of booleans or complex numbers).
_KINDS = {"b": "true/false", "c": "complex", "M": "dates or times", "m": "durations", "U": "text",
          "S": "bytes", "V": "records"}


def signal_problem(values: np.ndarray) -> str | None:
    """What the service would refuse in this signal, found before sending it."""
    if values.size == 0:
        return "signal is empty"
    if values.dtype.kind == "O":  # Parquet's text, decimals, lists, and true/false with nulls
        first = next((value for value in values.flat if value is not None), None)
        return f"values are of type {type(first).__name__} ({values.dtype}), not numbers"
    if values.dtype.kind not in "iuf":
        return f"values are {_KINDS.get(values.dtype.kind, 'of another kind')} ({values.dtype}), not numbers"
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        return f"sample {bad} is NaN, infinite or missing"
    # The service's own bounds (pdseg.decode): sent, such a signal failed every signal of its
    # request with it (a stranger's probe: 0 of 6 analysed for one signal of 4e-101).
    magnitudes = np.abs(values.astype(np.float64, copy=False))
    bad = int(np.argmax(magnitudes))
    largest = float(magnitudes[bad])
    if largest > decode.MAX_MAGNITUDE:
        return (f"sample {bad} is {float(values[bad]):g}; magnitudes above {decode.MAX_MAGNITUDE:g} are not "
                "supported (rescale the signal: its regions do not depend on its units)")
    if 0.0 < largest < decode.MIN_MAGNITUDE:
        return (f"the largest magnitude is {largest:g}; signals whose largest magnitude is under "
                f"{decode.MIN_MAGNITUDE:g} are not supported (rescale the signal: its regions do not depend on its units)")
    return None
