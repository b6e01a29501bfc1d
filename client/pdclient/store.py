"""The output folder: what is done survives an interruption, and a rerun skips it.

- ``run.json``: the analysis options of the results kept here (a rerun with other options
  would mix answers to different questions, so it is refused);
- ``results.jsonl``: one line per analysed signal, appended as answers arrive:
  ``{"file", "signal", "model", "answer"}`` with the service's answer for that signal;
- ``failures.jsonl``: this run's failures (rewritten each run; failed signals are tried again);
- ``regions.csv``: one row per region over all results, rebuilt at the end of each run.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterator

RESULTS = "results.jsonl"
FAILURES = "failures.jsonl"
REGIONS = "regions.csv"
RUN = "run.json"
REGION_COLUMNS = ("file", "signal", "start", "end", "duration", "peak", "peak_index", "polarity",
                  "phase_deg", "score", "energy", "start_s", "duration_s")


class SettingsMismatch(ValueError):
    pass


class StoreDamaged(ValueError):
    """The output folder holds files this client cannot read back (not its own, or damaged)."""


def entry_problem(entry) -> str | None:
    """What is wrong with one signal's entry of an answer, or None: each region needs whole
    ``start`` < ``end`` and a number for ``peak`` (a malformed entry was stored, and every later
    run into that folder failed on it)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("regions"), list):
        return "its entry in the answer is not an object with a list of regions"
    for region in entry["regions"]:
        if not isinstance(region, dict):
            return "a region in the answer is not an object"
        start, end, peak = region.get("start"), region.get("end"), region.get("peak")
        if not (type(start) is int and type(end) is int and start < end):
            return "a region in the answer has no whole start before its end"
        if type(peak) not in (int, float):
            return "a region in the answer has no number for its peak"
    return None


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except ValueError:
        return False


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.results_path = self.folder / RESULTS
        self._repair_last_line()
        if (self.folder / RUN).is_file():
            self._kept_analysis()  # a run.json of someone else's: refused before failures.jsonl is touched
        self._results = open(self.results_path, "a", encoding="utf-8")
        self._failures = open(self.folder / FAILURES, "w", encoding="utf-8")

    def _repair_last_line(self) -> None:
        """Drop a line cut short by a killed run, so every line of the file parses; before
        anything is written, refuse a folder this client did not write (a stranger's probe: a
        results.jsonl of someone else's lost its last line, or all of it, before the check)."""
        if not self.results_path.is_file():
            return
        data = self.results_path.read_bytes()
        whole, cut = data[: data.rfind(b"\n") + 1], data[data.rfind(b"\n") + 1:]
        for _ in self.records(whole.decode("utf-8", errors="replace").splitlines()):
            pass  # raises StoreDamaged at the first line that is no result of this client's
        if not cut:
            return
        if not whole or not (self.folder / RUN).is_file() or _is_json(cut):
            # a line this client cut short follows its own lines, after its run.json, and is no JSON
            raise StoreDamaged(f"{self.results_path} does not end as a file this client wrote")
        self.results_path.write_bytes(whole)

    def check_settings(self, analysis: dict) -> None:
        """Record the options on the first run; refuse a rerun that changes them."""
        path = self.folder / RUN
        if path.is_file() and self.results_path.is_file() and self.results_path.stat().st_size:
            kept = self._kept_analysis()
            if kept != analysis:
                raise SettingsMismatch(
                    f"{self.folder} holds results for options {kept}, not {analysis}: "
                    "use another --out folder, or delete this one to start over")
        path.write_text(json.dumps({"analysis": analysis}, indent=2) + "\n")

    def _kept_analysis(self) -> dict:
        path = self.folder / RUN
        try:
            kept = json.loads(path.read_text())["analysis"]
        except (ValueError, KeyError, TypeError):
            raise StoreDamaged(f"{path} is not a run.json this client wrote") from None
        if not isinstance(kept, dict):
            raise StoreDamaged(f"{path} is not a run.json this client wrote")
        return kept

    def records(self, lines=None) -> Iterator[dict]:
        """The results kept (or those of ``lines``, the file's lines)."""
        if lines is None:
            if not self.results_path.is_file():
                return
            with open(self.results_path, encoding="utf-8") as handle:
                yield from self.records(handle)
            return
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise StoreDamaged(f"{self.results_path} line {number} is not JSON") from None
            if (not isinstance(record, dict) or not {"file", "signal", "answer"} <= record.keys()
                    or entry_problem(record["answer"])):
                raise StoreDamaged(f"{self.results_path} line {number} is not a result this client wrote")
            yield record

    def sort_results(self, file_order: list[str]) -> None:
        """Rewrite results.jsonl in file order (as found), then signal order: answers arrive
        in completion order. Replaced whole, so an interruption here loses nothing."""
        rank = {file: number for number, file in enumerate(file_order)}

        def key(record: dict):
            signal = record["signal"]
            return (rank.get(record["file"], len(rank)), record["file"],
                    (0, signal, "") if isinstance(signal, int)
                    else (1, int(signal) if str(signal).isdigit() else -1, str(signal)))  # "9" before "10"

        records = sorted(self.records(), key=key)
        self._results.close()
        temporary = self.results_path.with_suffix(".jsonl.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in records)
        os.replace(temporary, self.results_path)
        self._results = open(self.results_path, "a", encoding="utf-8")

    def done(self) -> dict[str, frozenset]:
        """Per file, the ids (as text) of the signals that have an answer."""
        done: dict[str, set] = {}
        for record in self.records():
            done.setdefault(record["file"], set()).add(str(record["signal"]))
        return {file: frozenset(signals) for file, signals in done.items()}

    def add_result(self, file: str, signal, model: dict, answer: dict) -> None:
        record = {"file": file, "signal": signal, "model": model, "answer": answer}
        self._results.write(json.dumps(record) + "\n")

    def add_failure(self, file: str, signal, status: int | None, message: str) -> None:
        self._failures.write(json.dumps({"file": file, "signal": signal, "status": status, "error": message}) + "\n")

    def flush(self) -> None:
        self._results.flush()
        self._failures.flush()

    def close(self) -> None:
        self._results.close()
        self._failures.close()

    def write_regions_csv(self) -> Path:
        path = self.folder / REGIONS
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REGION_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for record in self.records():
                for region in record["answer"].get("regions", []):
                    writer.writerow({"file": record["file"], "signal": record["signal"], **region})
        return path
