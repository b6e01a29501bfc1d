"""pd-analyse against the suite's real TorchServe: every input format, a folder, batching and
413 splitting, resume after an interruption; a loopback stub in front of it for 503s, 4xx
and keys."""
import http.server
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as parquet
import pytest
import requests
import yaml

from pdclient import cli
from pdclient.service import Service
from serve import ROOT, free_port

pytestmark = pytest.mark.server

SAMPLES = np.load(ROOT / "data" / "sample_captures.npy")  # (6, 10000) float32, PD in 5 of 6


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def service_answer(server, array) -> list[dict]:
    """The service's own answer for these rows, one request: what the client must reproduce."""
    response = requests.post(server.predict_url, data=npy(np.atleast_2d(array)),
                             headers={"Content-Type": "application/x-npy"}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["signals"]


def results(out: Path) -> dict[tuple[str, str], dict]:
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    keyed = {(Path(r["file"]).name, str(r["signal"])): r for r in lines}
    assert len(keyed) == len(lines), "a signal was recorded twice"
    return keyed


def analyse(url: str, *args) -> int:
    return cli.main([*map(str, args), "--url", url, "--no-progress"])


def test_every_format_in_a_folder_gives_the_service_answer(server, tmp_path):
    folder = tmp_path / "captures"
    (folder / "deeper").mkdir(parents=True)
    vsb = np.clip(SAMPLES / np.abs(SAMPLES).max() * 127, -128, 127).astype(np.int8)
    np.save(folder / "rows.npy", SAMPLES[:3])
    np.save(folder / "one.npy", SAMPLES[3].astype(np.float64))
    np.savetxt(folder / "deeper" / "rows.csv", SAMPLES[[4, 5]].astype(np.float64), delimiter=",", fmt="%.17g")
    np.savetxt(folder / "deeper" / "column.csv", SAMPLES[0].astype(np.float64), fmt="%.17g")
    SAMPLES[1].astype("<f4").tofile(folder / "deeper" / "raw.f32")
    # An oscilloscope's export: labels, then time (evenly spaced) and value.
    times = -1e-6 + 2.5e-9 * np.arange(SAMPLES.shape[1])
    (folder / "deeper" / "scope.csv").write_text("Time,Ampl\n" + "".join(
        f"{time:.6e},{value:.17g}\n" for time, value in zip(times, SAMPLES[4].astype(np.float64))))
    # The VSB layout: one int8 column per signal, named by its signal id.
    parquet.write_table(pa.table({str(1000 + i): vsb[i] for i in range(6)}), folder / "vsb.parquet")
    parquet.write_table(pa.table({"a": SAMPLES[2], "b": SAMPLES[3]}), folder / "deeper" / "float.parquet")
    (folder / "notes.txt").write_text("not a signal file: skipped inside a folder")
    out = tmp_path / "out"

    assert analyse(server.inference_url, folder, "--out", out) == 0

    expected = {
        "rows.npy": dict(zip("012", service_answer(server, SAMPLES[:3]))),
        "one.npy": {"0": service_answer(server, SAMPLES[3].astype(np.float64))[0]},
        "rows.csv": dict(zip("01", service_answer(server, SAMPLES[[4, 5]].astype(np.float64)))),
        "column.csv": {"0": service_answer(server, SAMPLES[0].astype(np.float64))[0]},
        "scope.csv": {"0": service_answer(server, SAMPLES[4].astype(np.float64))[0]},
        "raw.f32": {"0": service_answer(server, SAMPLES[1])[0]},
        "vsb.parquet": {str(1000 + i): answer for i, answer in enumerate(service_answer(server, vsb))},
        "float.parquet": dict(zip("ab", service_answer(server, SAMPLES[[2, 3]]))),
    }
    got = results(out)
    assert set(got) == {(file, signal) for file, answers in expected.items() for signal in answers}
    for (file, signal), record in got.items():
        assert record["answer"]["regions"] == expected[file][signal]["regions"], (file, signal)
        assert record["answer"]["length"] == 10_000 and record["model"]["name"] == "pd_segmenter"
    # Put back in order: per file as found (a folder's files by name, then its subfolders), then per signal.
    order = [(Path(r["file"]).name, str(r["signal"])) for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())]
    assert order == [("one.npy", "0"), *[("rows.npy", s) for s in "012"], *[("vsb.parquet", str(1000 + i)) for i in range(6)],
                     ("column.csv", "0"), ("float.parquet", "a"), ("float.parquet", "b"), ("raw.f32", "0"),
                     ("rows.csv", "0"), ("rows.csv", "1"), ("scope.csv", "0")]
    rows = (out / "regions.csv").read_text().splitlines()
    assert rows[0].startswith("file,signal,start,end,duration,peak,peak_index,polarity,phase_deg,score")
    assert len(rows) - 1 == sum(len(r["answer"]["regions"]) for r in got.values()) > 0
    assert (out / "report.html").stat().st_size > 0 and (out / "prpd.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture
def posts(monkeypatch):
    """Rows of every request the client sends (a spy: the requests still go out)."""
    sent = []
    original = Service.post

    def spy(self, array):
        sent.append(array.shape[0])
        return original(self, array)

    monkeypatch.setattr(Service, "post", spy)
    return sent


def test_a_large_file_goes_as_several_requests_of_whole_signals(server, tmp_path, posts):
    signals = np.concatenate([SAMPLES, SAMPLES[:3] * 0.5])  # 9 signals
    np.save(tmp_path / "many.npy", signals)
    out = tmp_path / "out"
    assert analyse(server.inference_url, tmp_path / "many.npy", "--out", out, "--max-signals-per-request", 4,
                   "--samples-per-cycle", 3333, "--concurrency", 2) == 0
    assert sorted(posts) == [1, 4, 4]
    alone = requests.post(server.predict_url, files={"data": ("x.npy", npy(signals))},
                          data={"samples_per_cycle": "3333"}, timeout=120).json()["signals"]
    got = results(out)
    for index, answer in enumerate(alone):
        assert got[("many.npy", str(index))]["answer"]["regions"] == answer["regions"]


def service_work_limit() -> int:
    """The archive's limit on one request's work (samples plus each signal's overhead)."""
    settings = yaml.safe_load((ROOT / "config" / "model-config.yaml").read_text())["handler"]
    return int(settings.get("max_work_per_request", settings.get("max_samples_per_request", 0)))


def test_413_splits_the_batch_and_a_signal_over_the_limit_fails_naming_it(server, tmp_path, posts, capsys):
    limit = service_work_limit()
    noise = np.random.default_rng(1).normal(size=(5, int(limit * 1.03) // 5)).astype(np.float32)  # over it together
    np.save(tmp_path / "five.npy", noise)
    np.save(tmp_path / "huge.npy", np.zeros(limit + 1, dtype=np.float32))
    out = tmp_path / "out"
    # A client budget above the service's limit, so the service's 413 decides.
    code = analyse(server.inference_url, tmp_path / "five.npy", tmp_path / "huge.npy", "--out", out,
                   "--max-samples-per-request", 10 * limit, "--concurrency", 1)
    assert code == 1
    assert posts == [5, 2, 3, 1]  # refused, then the halves; the single signal once, never split or retried
    assert {key for key in results(out)} == {("five.npy", str(i)) for i in range(5)}
    [failure] = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["file"].endswith("huge.npy") and failure["signal"] == 0 and failure["status"] == 413
    assert f"limit of {limit:,}" in failure["error"] and "this signal alone is over the service's limit" in failure["error"]
    assert "huge.npy signal 0: HTTP 413" in capsys.readouterr().err


def test_a_signal_the_service_refuses_fails_alone_and_its_batch_mates_are_answered(server, posts):
    """The service names the first signal it refuses ('.npy signal 1: ...'); it refused the whole
    request, and every signal sent with that one failed with a message naming another's row (a
    stranger's probe: 0 of 6 analysed). Now that signal fails with its own message and the rest
    go again."""
    from pdclient.batching import Batch, Item

    tiny = SAMPLES[1].astype(np.float64) * 1e-110  # under the service's smallest magnitude
    batch = Batch([Item("a.npy", 0, SAMPLES[0]), Item("a.npy", 1, tiny), Item("a.npy", 2, SAMPLES[2])])
    outcome = Service(server.inference_url, {}).analyse(batch)
    assert posts == [3, 2]
    assert [item.signal for item, _, _ in outcome.answers] == [0, 2]
    assert [entry["regions"] for _, entry, _ in outcome.answers] == [
        entry["regions"] for entry in service_answer(server, SAMPLES[[0, 2]])]
    [(item, error)] = outcome.failures
    assert item.signal == 1 and error.status == 400
    assert error.message.startswith("the largest magnitude is")  # not the request's ".npy signal 1: "


def test_signals_of_magnitudes_the_service_refuses_fail_before_any_request(server, tmp_path, posts, capsys):
    for name, rows in (("good.npy", SAMPLES[:3]), ("tiny.npy", SAMPLES[3:4].astype(np.float64) * 1e-110),
                       ("huge.npy", SAMPLES[4:5].astype(np.float64) * 1e105)):
        np.save(tmp_path / name, rows)
    out = tmp_path / "out"
    assert analyse(server.inference_url, tmp_path / "good.npy", tmp_path / "tiny.npy", tmp_path / "huge.npy",
                   "--out", out) == 1
    assert sum(posts) == 3  # the good signals only
    assert set(results(out)) == {("good.npy", str(i)) for i in range(3)}
    err = capsys.readouterr().err
    assert "tiny.npy signal 0: the largest magnitude is" in err and "huge.npy signal 0: sample" in err


def test_bodies_stay_under_the_body_limit_and_a_signal_over_it_fails_naming_it(server, tmp_path, posts):
    """float64 rows that the work budget would take four at a time (a budget of 3,000,000: the
    shipped one, half of it kept for views, takes two) travel three at a time, within
    TorchServe's 8 MiB body limit (config.properties), with no 413 round trip; a long float64
    signal that float32 holds exactly travels as float32 and gets the same answer; one that it
    does not hold fails with a message that names the body limit."""
    rows = np.random.default_rng(2).normal(size=(6, 300_000))  # 2.4 MB each
    np.save(tmp_path / "rows.npy", rows)
    exact = np.random.default_rng(4).normal(size=1_200_000).astype(np.float32)
    np.save(tmp_path / "exact.npy", exact.astype(np.float64))  # 9.6 MB as float64, 4.8 MB as float32
    np.save(tmp_path / "long.npy", np.random.default_rng(3).normal(size=1_200_000))  # 9.6 MB
    out = tmp_path / "out"
    assert analyse(server.inference_url, tmp_path / "rows.npy", tmp_path / "exact.npy", tmp_path / "long.npy",
                   "--out", out, "--concurrency", 1, "--max-samples-per-request", 3_000_000) == 1
    assert posts == [3, 3, 1, 1]
    got = results(out)
    assert set(got) == {("rows.npy", str(i)) for i in range(6)} | {("exact.npy", "0")}
    alone = requests.post(server.predict_url, files={"data": ("x.npy", npy(exact.astype(np.float64)))},
                          timeout=120)
    assert alone.status_code == 413  # as float64 the body is over the limit ...
    alone = requests.post(server.predict_url, files={"data": ("x.npy", npy(exact))}, timeout=120).json()["signals"][0]
    assert got[("exact.npy", "0")]["answer"]["regions"] == alone["regions"]  # ... as float32 the same signal
    [failure] = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["file"].endswith("long.npy") and failure["status"] == 413
    assert "body limit" in failure["error"] and "float32" in failure["error"], failure["error"]


class Stub:
    """A loopback HTTP server in front of the real one: ``answer(stub, request)`` returns
    (status, JSON body) to answer itself, or None to pass the request on."""

    def __init__(self, upstream: str, answer):
        self.upstream, self.answer = upstream, answer
        self.seen: list[dict] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.seen.append(dict(self.headers))
                own = stub.answer(stub, self.headers)
                if own is None:
                    passed = requests.post(stub.upstream + self.path, data=body, timeout=120,
                                           headers={"Content-Type": self.headers["Content-Type"]})
                    status, payload = passed.status_code, passed.content
                else:
                    status, payload = own[0], json.dumps(own[1]).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()


def test_503_for_a_while_is_retried_with_backoff(server, tmp_path):
    np.save(tmp_path / "two.npy", SAMPLES[:2])
    out = tmp_path / "out"

    def busy_three_times(stub, headers):
        return (503, {"code": 503, "type": "ServiceUnavailableException", "message": "busy"}) \
            if len(stub.seen) <= 3 else None

    with Stub(server.inference_url, busy_three_times) as stub:
        started = time.monotonic()
        assert analyse(stub.url, tmp_path / "two.npy", "--out", out) == 0
        elapsed = time.monotonic() - started
    assert len(stub.seen) == 4
    assert elapsed > 0.75 * (0.5 + 1 + 2)  # backoff doubles from 0.5 s (±20 % jitter)
    assert len(results(out)) == 2
    assert "<td>requests retried (503, connection)</td><td>3</td>" in (out / "report.html").read_text()


def test_4xx_is_never_retried_and_each_failure_carries_the_service_message(server, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "a.npy", SAMPLES[:2])
    np.save(folder / "b.npy", SAMPLES[2:3, :5000])
    out = tmp_path / "out"

    def refuse(stub, headers):
        return 400, {"error": "option \"threshold\" must lie between 0 and 1", "status": 400}

    with Stub(server.inference_url, refuse) as stub:
        assert analyse(stub.url, folder, "--out", out) == 1
    assert len(stub.seen) == 2  # one request per batch (two lengths), none repeated
    err = capsys.readouterr().err
    for where in ("a.npy signal 0", "a.npy signal 1", "b.npy signal 0"):
        assert f"{where}: HTTP 400: option \"threshold\" must lie between 0 and 1" in err
    assert len((out / "failures.jsonl").read_text().splitlines()) == 3


def test_connection_errors_are_retried_then_reported(tmp_path, capsys):
    np.save(tmp_path / "a.npy", SAMPLES[:1])
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    assert analyse(nobody_listens, tmp_path / "a.npy", "--out", tmp_path / "out", "--retries", 2) == 1
    err = capsys.readouterr().err
    assert "a.npy signal 0: connection failed" in err and "gave up after 2 retries" in err
    # told when retrying starts, not only once the retries have run out (a stranger's probe)
    assert err.index("retrying, with backoff, up to 2 times") < err.index("gave up after 2 retries")


def test_token_is_sent_and_a_rotated_key_file_is_read_again(server, tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", SAMPLES[:1])
    key_file = tmp_path / "inference"
    key_file.write_text("old-key-0123456789\n")
    invalid = (400, {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed"})

    def rotate_once(stub, headers):
        if headers.get("Authorization") == "Bearer new-key-0123456789":
            return None
        key_file.write_text(json.dumps({"inference": {"key": "new-key-0123456789"}}))  # TorchServe's key_file.json
        return invalid

    with Stub(server.inference_url, rotate_once) as stub:
        assert analyse(stub.url, tmp_path / "a.npy", "--out", tmp_path / "out1", "--token-file", key_file) == 0
    assert [h.get("Authorization") for h in stub.seen] == ["Bearer old-key-0123456789", "Bearer new-key-0123456789"]

    monkeypatch.setenv("PD_TOKEN", "env-key-0123456789")
    with Stub(server.inference_url, lambda stub, headers: None if headers.get("Authorization") == "Bearer env-key-0123456789" else invalid) as stub:
        assert analyse(stub.url, tmp_path / "a.npy", "--out", tmp_path / "out2") == 0


def test_unreadable_inputs_fail_one_by_one_and_the_rest_is_analysed(server, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    with_nan = SAMPLES[:3].copy()
    with_nan[1, 7] = np.nan
    np.save(folder / "nan.npy", with_nan)
    np.save(folder / "cube.npy", np.zeros((2, 2, 2)))
    # Found 2026-12-06 by a stranger's probe: a column of text crashed the whole run before anything
    # was sent, true/false columns were sent as numbers, and a null was reported at sample 0.
    with_null = SAMPLES[4].astype(float).tolist()
    with_null[1234] = None
    flags = [True] * SAMPLES.shape[1]
    flags[3] = None  # true/false with a null: an object column
    parquet.write_table(pa.table({"a": SAMPLES[2], "label": ["x"] * SAMPLES.shape[1], "flag": [True] * SAMPLES.shape[1],
                                  "gap": with_null, "flags": flags}), folder / "mixed.parquet")
    (tmp_path / "capture.wav").write_bytes(b"RIFF")
    out = tmp_path / "out"
    assert analyse(server.inference_url, folder, tmp_path / "capture.wav", tmp_path / "missing.npy", "--out", out) == 1
    err = capsys.readouterr().err
    assert "nan.npy signal 1: sample 7 is NaN" in err
    assert "cube.npy: .npy has 3 dimensions" in err
    assert "capture.wav: unsupported file type .wav" in err and "missing.npy: no such file or folder" in err
    assert "mixed.parquet signal label: values are of type str (object), not numbers" in err
    assert "mixed.parquet signal flag: values are true/false (bool), not numbers" in err
    assert "mixed.parquet signal gap: sample 1234 is NaN, infinite or missing" in err
    assert "mixed.parquet signal flags: values are of type bool (object), not numbers" in err
    assert set(results(out)) == {("nan.npy", "0"), ("nan.npy", "2"), ("mixed.parquet", "a")}
    assert "Failures (8)" in (out / "report.html").read_text()
    with pytest.raises(SystemExit) as stop:  # --out naming a file: a usage error, not a traceback
        cli.main(["--url", server.inference_url, str(folder / "nan.npy"), "--out", str(tmp_path / "capture.wav")])
    assert stop.value.code == 2 and "is a file: name a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # ... or a file on its path (a review's probe)
        cli.main(["--url", server.inference_url, str(folder / "nan.npy"), "--out", str(tmp_path / "capture.wav" / "sub")])
    assert stop.value.code == 2 and "cannot be made" in capsys.readouterr().err


def test_a_rerun_with_other_options_is_refused(server, tmp_path):
    np.save(tmp_path / "a.npy", SAMPLES[:1])
    url = server.inference_url
    assert analyse(url, tmp_path / "a.npy", "--out", tmp_path / "out", "--threshold", 0.5) == 0
    assert analyse(url, tmp_path / "a.npy", "--out", tmp_path / "out", "--threshold", 0.6) == 2
    assert analyse(url, tmp_path / "a.npy", "--out", tmp_path / "out", "--threshold", 0.5) == 0


def test_an_interrupted_run_keeps_its_results_and_a_rerun_does_the_rest(server, tmp_path):
    count = 400
    signals = np.tile(SAMPLES[:, :2000], (count // 6 + 1, 1))[:count]
    np.save(tmp_path / "many.npy", signals)
    out = tmp_path / "out"
    command = [str(Path(sys.executable).parent / "pd-analyse"), str(tmp_path / "many.npy"), "--url", server.inference_url,
               "--out", str(out), "--max-signals-per-request", "1", "--concurrency", "1"]
    # As from a terminal: Ctrl-C's default action, also where this suite was started in the
    # background (a shell starts background jobs with SIGINT ignored, and children inherit it).
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    results_file = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if results_file.is_file() and len(results_file.read_text().splitlines()) >= 10:
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGINT)
    err = first.communicate(timeout=120)[1]
    assert first.returncode == 130, err
    assert "signal/s" in err  # the progress bar, with its rate
    kept = len(results_file.read_text().splitlines())
    assert 10 <= kept < count
    assert (out / "report.html").is_file() and "interrupted" in (out / "report.html").read_text()

    second = subprocess.run(command + ["--no-progress"], stderr=subprocess.PIPE, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{kept} already analysed" in second.stderr and f"{count - kept} to go" in second.stderr
    assert f"{count - kept} signals analysed, 0 failed" in second.stderr
    assert set(results(out)) == {("many.npy", str(i)) for i in range(count)}
    assert len((out / "regions.csv").read_text().splitlines()) - 1 == sum(
        len(r["answer"]["regions"]) for r in results(out).values())


def test_the_report_says_which_signals_were_also_seen_whitened():
    from pdclient.report import build_report

    def record(signal, whitening):
        stats = {"cycles": None, "regions_per_cycle": None, "tones_removed": [], "commutation_removed": None,
                 "noise_whitening": whitening}
        return {"file": "f.npy", "signal": signal, "model": {"name": "pd_segmenter", "version": "1.0"},
                "answer": {"length": 16384, "regions": [], "stats": stats}}

    page, _, _ = build_report([record(0, 0.812), record(1, None)], {}, [], lambda file, signal: None)
    assert "<th>also seen whitened (coefficient)</th>" in page
    assert "<td>none</td><td>none</td><td>none</td><td>none</td><td>0.812</td><td>no</td></tr>" in page
    assert "<td>none</td><td>none</td><td>none</td><td>none</td><td>no</td><td>no</td></tr>" in page


def test_the_report_says_which_signals_had_a_once_a_cycle_pattern_taken_out():
    """stats.phase_locked_removed (what repeats identically every cycle, a clipped carrier's
    corners): its largest excursion in the table's row, "none" where nothing was taken out."""
    from pdclient.report import build_report

    def record(signal, repeating):
        stats = {"cycles": 8.0, "regions_per_cycle": 0.0, "tones_removed": [], "commutation_removed": None,
                 "phase_locked_removed": repeating, "noise_whitening": None}
        return {"file": "f.npy", "signal": signal, "model": {"name": "pd_segmenter", "version": "1.0"},
                "answer": {"length": 26664, "regions": [], "stats": stats}}

    page, _, _ = build_report([record(0, {"samples_per_cycle": 3333.0, "peak": 1234.5}), record(1, None)],
                              {}, [], lambda file, signal: None)
    assert "<th>once-a-cycle pattern removed (peak, " in page
    assert "<td>none</td><td>none</td><td>1234.5</td><td>none</td><td>no</td><td>no</td></tr>" in page
    assert "<td>none</td><td>none</td><td>none</td><td>none</td><td>no</td><td>no</td></tr>" in page


def test_the_report_says_which_signals_had_a_regular_train_taken_out():
    """stats.regular_train_removed (equal transients at a spacing no carrier explains): its
    spacing in the table's row; "none" where nothing was taken out, or where an answer from a
    release before the step has no such entry."""
    from pdclient.report import build_report

    def record(signal, regular):
        stats = {"cycles": None, "regions_per_cycle": None, "tones_removed": [], "commutation_removed": None,
                 "phase_locked_removed": None, "noise_whitening": None}
        if regular != "absent":
            stats["regular_train_removed"] = regular
        return {"file": "f.npy", "signal": signal, "model": {"name": "pd_segmenter", "version": "1.0"},
                "answer": {"length": 8192, "regions": [], "stats": stats}}

    page, _, _ = build_report([record(0, {"samples_apart": 97.3, "peak": 29.5}), record(1, None),
                               record(2, "absent")], {}, [], lambda file, signal: None)
    assert "<th>regular train removed (samples apart)</th>" in page
    assert "<td>none</td><td>none</td><td>none</td><td>97.3</td><td>no</td><td>no</td></tr>" in page
    assert page.count("<td>none</td><td>none</td><td>none</td><td>none</td><td>no</td><td>no</td></tr>") == 2


def report_record(signal: int, key: str, value, tones_removed=()) -> dict:
    """One signal's record as the client stores it, for the report's table: an answer whose
    stats hold ``value`` under ``key`` ("absent": no such key, as from a release before it)."""
    stats = {"cycles": 12.0, "regions_per_cycle": 0.0,
             "tones_removed": [{"cycles_per_sample": frequency} for frequency in tones_removed],
             "commutation_removed": None, "phase_locked_removed": None,
             "regular_train_removed": None, "noise_whitening": None}
    if value != "absent":
        stats[key] = value
    return {"file": "f.npy", "signal": signal, "model": {"name": "pd_segmenter", "version": "1.0"},
            "answer": {"length": 40000, "regions": [], "stats": stats}}


def test_the_report_says_which_signals_had_a_clipped_carrier_restored():
    """stats.clipped_carrier_restored (a limiter's plateaus given back the carrier's course):
    the plateaus in the table's last column; "no" where none were, or where an answer from a
    release before the step has no such entry."""
    from pdclient.report import build_report

    restored = {"plateaus": 23, "corners": 46, "levels": [-150000.0, 150000.0]}
    records = [report_record(index, "clipped_carrier_restored", value)
               for index, value in enumerate((restored, None, "absent"))]
    page, _, _ = build_report(records, {}, [], lambda file, signal: None)
    assert "<th>clipped carrier restored (plateaus)</th>" in page
    assert "<td>none</td><td>none</td><td>none</td><td>none</td><td>none</td><td>none</td><td>no</td><td>23</td></tr>" in page
    assert page.count("<td>none</td><td>none</td><td>none</td><td>none</td><td>none</td><td>none</td><td>no</td><td>no</td></tr>") == 2


@pytest.mark.parametrize("key, value, header, row, empty", [
    ("tone_bursts_removed",
     [{"cycles_per_sample": 0.0625, "start": 1152, "end": 5760},
      {"cycles_per_sample": 0.1875, "start": 20000, "end": 40000}],
     "tone bursts removed (cycles/sample at samples)",
     "<td>0.25</td><td>0.0625 at 1152-5760, 0.1875 at 20000-40000</td><td>none</td><td>none</td>",
     "<td>0.25</td><td>none</td><td>none</td><td>none</td>"),
    ("wandering_tones_removed", [{"cycles_per_sample": 0.15, "deviation_cycles_per_sample": 0.00781}],
     "wandering tones removed (cycles/sample ± deviation)",
     "<td>0.25</td><td>none</td><td>0.15 ± 0.00781</td><td>none</td>",
     "<td>0.25</td><td>none</td><td>none</td><td>none</td>"),
])
def test_the_report_lists_the_tone_bursts_and_wandering_tones_taken_out(key, value, header, row, empty):
    """stats.tone_bursts_removed (each burst's frequency and the samples it was on) and
    stats.wandering_tones_removed (each tone's middle and deviation), in the columns after the
    stationary tones; "none" where there was none or where an answer from a release before the
    step has no such entry."""
    from pdclient.report import build_report

    records = [report_record(index, key, entry, tones_removed=(0.25,))
               for index, entry in enumerate((value, [], "absent"))]
    page, _, _ = build_report(records, {}, [], lambda file, signal: None)
    assert f"<th>{header}</th>" in page
    assert row in page
    assert page.count(empty) == 2


def test_the_client_body_budget_matches_the_shipped_body_limit():
    """Every profile carries one max_request_size, the reliability scripts read the same, and
    the client's body budget stays just under it (room for the multipart form)."""
    import re

    from bad_inputs import MAX_REQUEST_SIZE
    from pdclient.batching import Budget

    profiles = [ROOT / "config" / "config.properties", ROOT / "config" / "local.properties",
                ROOT / "k8s" / "base" / "config.properties", ROOT / "k8s" / "kserve" / "config.properties"]
    limits = {int(re.search(r"^max_request_size=(\d+)$", path.read_text(), re.M).group(1)) for path in profiles}
    assert limits == {MAX_REQUEST_SIZE}
    assert 0 < MAX_REQUEST_SIZE - Budget().max_body_bytes <= 128 * 1024


def test_requests_keep_room_for_every_signals_view():
    """A stranger's probe: 60 carrier-free captures of 20,000 samples went in one request, filled
    to the service's work limit, and the service left out the slower view that finds their broad
    pulses (361 regions one per request, 31 so). A request's signals now take at most half the
    budget; a signal over that travels alone."""
    import numpy as np

    from pdclient.batching import Budget, Item, batches

    budget = Budget()
    items = [Item("bumps.npy", index, np.zeros(20_000, np.float32)) for index in range(60)]
    sent = list(batches(items, budget))
    assert len(sent) > 1 and sum(len(batch.items) for batch in sent) == 60
    assert all(2 * batch.cost <= budget.max_cost for batch in sent)
    assert max(len(batch.items) for batch in sent) == budget.max_cost // Budget.with_view(20_000)
    [alone] = batches([Item("long.npy", 0, np.zeros(1_000_000, np.float32))], budget)
    assert len(alone.items) == 1


def test_one_sample_signals_go_one_a_request_and_an_f32_of_another_type_fails(tmp_path):
    """A review, 2026-12-08: twenty one-sample signals were stacked as a (20, 1) .npy, which the
    service now reads as one signal, a column, and all twenty failed ("answer has 1 signals for
    20 sent"). And a .f32 file holding float64 or int16 samples was read as float32 and sent,
    where the service refuses the same bytes sent raw."""
    from pdclient import inputs
    from pdclient.batching import Budget, Item, batches

    sent = list(batches([Item("row.parquet", str(index), np.array([0.5 * index])) for index in range(20)], Budget()))
    assert [len(batch.items) for batch in sent] == [1] * 20
    pairs = list(batches([Item("a.npy", index, np.array([0.5, 1.0])) for index in range(20)], Budget()))
    assert [len(batch.items) for batch in pairs] == [20]  # two samples and more still go together
    codes = np.round(np.random.default_rng(3).normal(0, 3, 4000)) + 2048
    for dtype, words in (("<f8", "float64"), ("<i2", "integer samples")):
        codes.astype(dtype).tofile(tmp_path / "codes.f32")
        with pytest.raises(inputs.InputFileError, match=f"does not read as float32 samples: .*{words}"):
            list(inputs.iter_signals(inputs.InputFile(tmp_path / "codes.f32", "codes.f32")))
    codes.astype("<f4").tofile(tmp_path / "codes.f32")
    [(_, values)] = inputs.iter_signals(inputs.InputFile(tmp_path / "codes.f32", "codes.f32"))
    assert values.size == 4000


def test_a_csv_with_a_missing_value_is_refused_not_shifted(tmp_path):
    """An empty value, or a blank line inside a column of values, would move every later sample
    one place earlier (and the regions with them); blank lines before and after are fine, as is a
    delimiter after a row's last value."""
    from pdclient import inputs

    def signals(name: str, text: str):
        path = tmp_path / name
        path.write_text(text)
        return [values.tolist() for _, values in inputs.iter_signals(inputs.InputFile(path, name))]

    assert signals("rows.csv", "\ufeff1,2,3,\n\n4,5,,\n") == [[1.0, 2.0, 3.0], [4.0, 5.0]]
    assert signals("column.csv", "\n1\n2\n3\n\n") == [[1.0, 2.0, 3.0]]
    # a line of labels, over a column or over time and value (the service's rule, pdseg.decode)
    assert signals("labelled.csv", "Ampl\n1\n2\n3\n") == [[1.0, 2.0, 3.0]]
    assert signals("scope.csv", "Time,Ampl\n0.0,5\n1e-9,6\n2e-9,7\n") == [[5.0, 6.0, 7.0]]
    assert signals("unlabelled.csv", "".join(f"{k}e-9,{k % 3}\n" for k in range(20))) == [[k % 3 for k in range(20)]]
    assert signals("pairs.csv", "1,2\n3,4\n") == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(inputs.InputFileError, match="time evenly spaced"):
        signals("repeated.csv", "Time,Ampl\n0,1\n1,2\n1,3\n")
    with pytest.raises(inputs.InputFileError, match="value 1 is empty"):
        signals("gap.csv", "1,,3\n")
    with pytest.raises(inputs.InputFileError, match="line 3 is blank inside a column"):
        signals("blank.csv", "1\n2\n\n4\n5\n")
    # refused when the file is counted, before any of its rows is sent
    late = tmp_path / "late.csv"
    late.write_text("1,2,3\n4,5,6\n7,,9\n10,11,12\n")
    with pytest.raises(inputs.InputFileError, match="line 3: value 1 is empty"):
        inputs.count_signals(inputs.InputFile(late, "late.csv"))
    late.write_text("1,2,3\n4,5,6\n7,x,9\n")
    with pytest.raises(inputs.InputFileError, match="line 3: values must all be numbers"):
        inputs.count_signals(inputs.InputFile(late, "late.csv"))


@pytest.mark.parametrize("options, words", [
    (["--samples-per-cycle", "2"], "at least 3 samples"),
    (["--power-frequency-hz", "50"], "needs --sampling-rate-hz"),
    (["--samples-per-cycle", "1000", "--sampling-rate-hz", "40e6", "--power-frequency-hz", "50"], "two periods"),
    (["--sampling-rate-hz", "0.5"], "at least 1 Hz"),
    (["--sampling-rate-hz", "1", "--power-frequency-hz", "1e-320"], "(and finite)"),
])
def test_period_options_the_service_would_refuse_are_refused_before_any_request(tmp_path, capsys, options, words):
    np.save(tmp_path / "one.npy", np.zeros(100))
    with pytest.raises(SystemExit) as stop:
        cli.main(["--url", "http://127.0.0.1:9", str(tmp_path / "one.npy"), "--out",
                  str(tmp_path / "out"), *options])
    assert stop.value.code == 2 and words in capsys.readouterr().err


def test_odd_files_fail_one_by_one_with_a_reason_and_never_end_the_run(server, tmp_path, capsys):
    """A stranger's probe of the client (2026-12-06, night): a Parquet file with two columns of one
    name ended the whole run with a traceback; files without signals passed in silence; a file
    named .npy that is not one was said to hold pickled data; a value of "1_000" was read where the
    service refuses it; a named pipe in the folder blocked the run before it began; and a second
    run in the captures' own folder read its earlier regions.csv as a capture."""
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "good.npy", SAMPLES[:1])
    table = pa.Table.from_arrays([pa.array(SAMPLES[1]), pa.array(SAMPLES[2])], names=["dup", "dup"])
    parquet.write_table(table, folder / "dup.parquet")
    (folder / "empty.csv").write_text("")
    (folder / "blank.csv").write_text("\n\n")
    np.save(folder / "none.npy", np.zeros((0, 100)))
    (folder / "text.npy").write_text("1,2,3\n")
    (folder / "underscore.csv").write_text("1_000,2,3\n")
    os.mkfifo(folder / "live.csv")
    out = folder / "results"  # inside the folder analysed
    for attempt in range(2):
        # In a process of its own: where the pipe blocks the client, it is stopped, not the suite.
        done = subprocess.run([sys.executable, "-m", "pdclient", str(folder), "--out", str(out), "--no-progress",
                               "--url", server.inference_url], capture_output=True, text=True, timeout=120,
                              env=os.environ | {"PYTHONPATH": str(ROOT / "client")})
        assert done.returncode == 1, done.stderr[-2000:]
        err = done.stderr
        assert "dup.parquet: could not be read (KeyError" in err
        for name in ("empty.csv", "blank.csv", "none.npy"):
            assert f"{name}: holds no signals" in err
        assert "text.npy: not a .npy file" in err and "pickle" not in err
        assert "underscore.csv: CSV line 1: values must all be plain numbers" in err
        failed = [line for line in err.splitlines() if line.startswith("FAILED")]
        assert len(failed) == 6 and not any(name in line for line in failed
                                            for name in ("live.csv", "regions.csv", "results.jsonl"))
        assert set(results(out)) == {("good.npy", "0")}


def test_a_malformed_answer_or_a_damaged_output_folder_is_named_not_a_traceback(server, tmp_path, capsys):
    np.save(tmp_path / "a.npy", SAMPLES[:1])
    out = tmp_path / "out"
    with Stub(server.inference_url, lambda stub, headers: (200, {"signals": [None]})) as stub:
        assert analyse(stub.url, tmp_path / "a.npy", "--out", out) == 1
    assert "not an object with a list of regions" in capsys.readouterr().err and not results(out)
    # nothing malformed was kept: the same folder then takes the real answer
    assert analyse(server.inference_url, tmp_path / "a.npy", "--out", out) == 0 and len(results(out)) == 1
    (out / "results.jsonl").write_text('{"someone": "else"}\n')
    assert analyse(server.inference_url, tmp_path / "a.npy", "--out", out) == 2
    assert "line 1 is not a result this client wrote" in capsys.readouterr().err
    (out / "results.jsonl").unlink()  # a foreign results.jsonl is named first; now a foreign run.json alone
    (out / "run.json").write_text("{not json")
    assert analyse(server.inference_url, tmp_path / "a.npy", "--out", out) == 2
    assert "is not a run.json this client wrote" in capsys.readouterr().err
    key_folder = tmp_path / "key"
    key_folder.mkdir()
    assert analyse(server.inference_url, tmp_path / "a.npy", "--out", tmp_path / "out2", "--token-file", key_folder) == 2
    assert "cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("option,value,words", [("--retries", "-1", "retries are 0 or more"),
                                                ("--timeout", "inf", "positive, finite"),
                                                ("--url", "127.0.0.1:8080", "http:// or https://"),
                                                ("--url", "http://127.0.0.1:8080/predictions/pd_segmenter",
                                                 "without the path"),
                                                ("--threshold", "abc", "'abc' is not a number"),
                                                ("--concurrency", "2.5", "'2.5' is not a whole number"),
                                                ("--max-samples-per-request", "10", "at least 15,360")])
def test_options_that_could_only_fail_every_request_are_refused_at_once(tmp_path, capsys, option, value, words):
    np.save(tmp_path / "a.npy", SAMPLES[:1])
    arguments = [str(tmp_path / "a.npy"), "--out", str(tmp_path / "out"), option, value]
    if option != "--url":
        arguments += ["--url", "http://127.0.0.1:1"]
    with pytest.raises(SystemExit) as stop:  # the parser alone: before, --retries -1 retried for ever
        cli.build_parser().parse_args(arguments)
    assert stop.value.code == 2 and words in capsys.readouterr().err


def test_the_services_warnings_are_told_and_shown_in_the_report(server, tmp_path, capsys):
    np.save(tmp_path / "a.npy", SAMPLES[:2])
    out = tmp_path / "out"
    assert analyse(server.inference_url, tmp_path / "a.npy", "--out", out, "--samples-per-cycle", 4000) == 0
    assert "2 signals carry warnings from the service" in capsys.readouterr().err
    page = (out / "report.html").read_text()
    assert "Warnings from the service (2 signals)" in page and "differs by more than 5%" in page


def test_a_folder_the_client_did_not_write_is_refused_before_anything_in_it_changes(tmp_path):
    """A stranger's probe: a results.jsonl of someone else's lost its last line, or all of it
    (one line without a final newline), before the check that it was the client's own."""
    from pdclient.store import ResultStore, StoreDamaged

    for name, text in (("one", '{"someone": "else"}'), ("two", '{"a": 1}\n{"b": 2}'),
                       ("cut", '{"file": "x.npy", "signal": 0, "answer": {"regions": []}}\n{"file": "x.n')):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.jsonl").write_text(text)
        (folder / "failures.jsonl").write_text("theirs\n")
        with pytest.raises(StoreDamaged):  # "cut" has no run.json: not a run of this client
            ResultStore(folder)
        assert (folder / "results.jsonl").read_text() == text and (folder / "failures.jsonl").read_text() == "theirs\n"
    # a line this client's killed run cut short, after its run.json: dropped, the rest kept
    (tmp_path / "cut" / "run.json").write_text('{"analysis": {}}\n')
    store = ResultStore(tmp_path / "cut")
    assert [record["file"] for record in store.records()] == ["x.npy"]
    store.close()
    (tmp_path / "cut" / "run.json").write_text('{"analysis": 3}\n')
    with pytest.raises(StoreDamaged, match="run.json"):
        ResultStore(tmp_path / "cut")


def test_the_output_folder_as_the_input_folder_is_not_read_back(tmp_path):
    """A stranger's probe: ``pd-analyse caps --out caps`` run again read its own regions.csv."""
    from pdclient.inputs import discover

    np.save(tmp_path / "a.npy", SAMPLES[:1])
    (tmp_path / "regions.csv").write_text("file,signal,start,end\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "regions.csv").write_text("1\n2\n")  # a capture of that name elsewhere is read
    found, _ = discover([str(tmp_path)], leave_out=tmp_path)
    assert sorted(Path(source.name).relative_to(tmp_path).as_posix() for source in found) == ["a.npy", "sub/regions.csv"]


def test_ctrl_c_or_sigterm_while_the_report_is_written_waits_for_it(monkeypatch):
    """A stranger's probe: SIGTERM in the run's last seconds killed it before report.html was
    written (left stale against the new regions.csv), and Ctrl-C there gave a traceback."""
    import os
    import signal

    written = []

    def finish(run, settings):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        written.append("report.html")
        return []

    monkeypatch.setattr(cli, "finish", finish)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert cli.finish_whatever_comes(None, {}) == ([], True) and written == ["report.html"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_a_signal_over_the_work_limit_is_refused_before_its_body_is_sent():
    """A stranger's probe: a 3,000,000-sample float32 capture was uploaded (12 MB) for a 413 that
    spoke of float64 signals and named neither the limit nor what to do."""
    from pdclient.batching import DEFAULT_MAX_COST, SIGNAL_OVERHEAD

    longest = DEFAULT_MAX_COST - SIGNAL_OVERHEAD
    assert cli.too_long(np.zeros(longest, dtype=np.float32), DEFAULT_MAX_COST) is None
    message = cli.too_long(np.zeros(3_000_000, dtype=np.float32), DEFAULT_MAX_COST)
    assert f"up to {longest:,} samples" in message and "cut the capture into parts" in message


def test_a_file_of_many_signals_of_a_sample_or_two_fails_naming_its_layout(tmp_path):
    """A stranger's probe: a column vector saved as rows, (10,000, 1), and a time,value CSV whose
    times were printed too coarsely to rise evenly, became 10,000 signals of 1-2 samples: no
    region, exit 0."""
    from pdclient import inputs

    np.save(tmp_path / "pairs.npy", np.zeros((10_000, 2)))
    (tmp_path / "coarse.csv").write_text("".join(f"{k // 10 * 1e-4:.4f},{k % 7}\n" for k in range(2_000)))
    for name, words in (("pairs.npy", "10,000 signals of at most 2 samples each (.npy of shape (10000, 2))"),
                        ("coarse.csv", "2,000 signals of at most 2 samples each (CSV rows)")):
        with pytest.raises(inputs.InputFileError, match=re.escape(words)):
            inputs.count_signals(inputs.InputFile(tmp_path / name, name))
    np.save(tmp_path / "few.npy", np.zeros((15, 2)))  # a few short rows stay rows
    assert inputs.count_signals(inputs.InputFile(tmp_path / "few.npy", "few.npy")) == 15
    # one column is one signal, as the service reads it (2026-12-08; refused as 10,000 before)
    column = np.arange(10_000.0).reshape(-1, 1)
    np.save(tmp_path / "column_vector.npy", column)
    source = inputs.InputFile(tmp_path / "column_vector.npy", "column_vector.npy")
    assert inputs.count_signals(source) == 1
    assert [values.tolist() for _, values in inputs.iter_signals(source)] == [column[:, 0].tolist()]
    assert inputs.load_signal(source, 0).tolist() == column[:, 0].tolist()
