"""Integration: a real TorchServe started from the real .mar on free loopback ports."""
import io
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest
import requests
from PIL import Image

from pdseg.preprocess import remove_carrier
from training import synthetic
from serve import ROOT, free_port, shipped_model_config, wait_policy

pytestmark = pytest.mark.server


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def post(server, **kwargs):
    return requests.post(server.predict_url, timeout=120, **kwargs)


def regions_of(answer):
    return [[(r["start"], r["end"]) for r in signal["regions"]] for signal in answer["signals"]]


def test_health_and_model_ready(server):
    assert requests.get(f"{server.inference_url}/ping", timeout=10).json()["status"] == "Healthy"
    [described] = requests.get(f"{server.management_url}/models/pd_segmenter", timeout=10).json()
    shipped = shipped_model_config()
    assert described["batchSize"] == shipped["batchSize"] and described["maxBatchDelay"] == shipped["maxBatchDelay"]
    assert [worker["status"] for worker in described["workers"]] == ["READY"] * shipped["minWorkers"]


def test_a_describe_header_changes_no_answer_and_the_customized_description_is_the_models(server, real_captures):
    """A stranger's probe: "describe: True" on a request with a signal got 200 and "null" when
    the request came alone. The management API's customized description is the model's."""
    [described] = requests.get(f"{server.management_url}/models/pd_segmenter", params={"customized": "true"},
                               timeout=10).json()
    assert described["customizedMetadata"]["model"]["name"] == "pd_segmenter"
    body = npy(real_captures[0])
    plain = post(server, data=body, headers={"Content-Type": "application/x-npy", "Cache-Control": "no-store"})
    header = post(server, data=body, headers={"Content-Type": "application/x-npy", "Cache-Control": "no-store",
                                              "describe": "True"})
    assert header.status_code == plain.status_code == 200
    assert regions_of(header.json()) == regions_of(plain.json()) and regions_of(plain.json())[0]
    refused = post(server, data=b'{"signal": [1, NaN, 3]}', headers={"Content-Type": "application/json",
                                                                    "describe": "True"})
    assert refused.status_code == 400 and "error" in refused.json()


def test_every_input_format_gives_the_same_answer(server, real_captures):
    capture = real_captures[0]
    as_json = post(server, json={"signal": capture.tolist()})
    assert as_json.status_code == 200, as_json.text
    answer = as_json.json()
    assert answer["model"] == {"name": "pd_segmenter", "version": "1.0"}
    [signal] = answer["signals"]
    assert signal["index"] == 0 and signal["length"] == 7920 and signal["regions"]
    for key in ("start", "end", "duration", "peak", "polarity", "phase_deg"):
        assert key in signal["regions"][0]
    assert signal["stats"]["carrier"]["detected"] is True
    expected = regions_of(answer)
    as_npy = post(server, data=npy(capture), headers={"Content-Type": "application/x-npy"})
    as_csv = post(server, data=",".join(repr(float(v)) for v in capture), headers={"Content-Type": "text/csv"})
    as_form = post(server, files={"data": ("capture.npy", npy(capture))})
    # JSON as a Windows tool writes it, after a byte-order mark
    as_json_bom = post(server, data=b"\xef\xbb\xbf" + json.dumps({"signal": capture.tolist()}).encode(),
                       headers={"Content-Type": "application/json"})
    for response in (as_npy, as_csv, as_form, as_json_bom):
        assert response.status_code == 200, response.text
        assert regions_of(response.json()) == expected
    as_float32 = post(server, data=capture.astype("<f4").tobytes(), headers={"Content-Type": "application/octet-stream"})
    assert as_float32.status_code == 200
    assert len(regions_of(as_float32.json())[0]) == len(expected[0])


def test_many_signals_of_mixed_lengths_in_one_request(server, real_captures):
    signals = [real_captures[1].tolist(), [0.5], real_captures[2][:1000].tolist(), list(range(4097))]
    response = post(server, json={"signals": signals, "threshold": 0.5, "samples_per_cycle": 3333})
    assert response.status_code == 200, response.text
    answers = response.json()["signals"]
    assert [a["length"] for a in answers] == [7920, 1, 1000, 4097]
    assert [a["index"] for a in answers] == [0, 1, 2, 3]
    assert all(a["stats"]["threshold"] == 0.5 for a in answers)
    alone = post(server, json={"signal": signals[0], "threshold": 0.5, "samples_per_cycle": 3333}).json()
    assert answers[0]["regions"] == alone["signals"][0]["regions"]


def test_multipart_option_fields_apply(server, real_captures):
    response = post(server, files={"data": ("c.npy", npy(real_captures[3]))},
                    data={"threshold": "0.9", "sampling_rate_hz": "1000000"})
    assert response.status_code == 200, response.text
    [signal] = response.json()["signals"]
    assert signal["stats"]["threshold"] == 0.9
    assert all("start_s" in region for region in signal["regions"])


def test_concurrent_requests_each_get_their_own_answer(server):
    rng = np.random.default_rng(99)
    signals = [synthetic.make_capture(rng, length).signal for length in (3000, 7920, 12000, 5000, 7920, 9000, 2000, 16000)]
    # Every round analysed together again, not answered from the result cache (docs/cache.md).
    headers = {"Content-Type": "application/x-npy", "Cache-Control": "no-cache"}
    expected = [regions_of(post(server, data=npy(s), headers=headers).json()) for s in signals]
    with ThreadPoolExecutor(max_workers=len(signals)) as pool:
        for _ in range(3):
            responses = list(pool.map(lambda s: post(server, data=npy(s), headers=headers), signals))
            assert [r.status_code for r in responses] == [200] * len(signals)
            assert [regions_of(r.json()) for r in responses] == expected
            assert [r.json()["signals"][0]["length"] for r in responses] == [s.size for s in signals]


def test_png_answer_decodes(server, real_captures):
    response = post(server, json={"signals": real_captures[:2].tolist()}, headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/png")
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size[0] > 500 and image.size[1] > 400


BAD_REQUESTS = [
    ({"data": b"{broken", "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON"),
    ({"json": {"values": [1, 2]}}, 400, "missing field"),
    ({"json": {"signal": []}}, 400, "empty"),
    ({"data": b'{"signal": [1, NaN, 3]}', "headers": {"Content-Type": "application/json"}}, 400, "NaN"),
    ({"json": {"signal": [1, "two"]}}, 400, "numbers"),
    ({"data": npy(np.zeros((2, 2, 2))), "headers": {"Content-Type": "application/x-npy"}}, 400, "dimensions"),
    ({"data": b"\x93NUMPY broken", "headers": {"Content-Type": "application/x-npy"}}, 400, "malformed .npy"),
    ({"data": b"1,2,x", "headers": {"Content-Type": "text/csv"}}, 400, "numbers"),
    ({"data": b"abc", "headers": {"Content-Type": "application/xml"}}, 415, "unsupported content type"),
    # White noise this small came back as one region over the whole signal: its squares underflow.
    ({"data": npy(1e-200 * np.random.default_rng(0).normal(size=64)), "headers": {"Content-Type": "application/x-npy"}},
     400, "under 1e-100"),
    ({"data": np.zeros(1_500_001, dtype="<f4").tobytes(), "headers": {"Content-Type": "application/octet-stream"}},
     413, "more than the limit of 1,500,000"),
]


@pytest.mark.parametrize("kwargs, status, words", BAD_REQUESTS)
def test_bad_input_gets_a_clear_4xx(server, kwargs, status, words):
    response = post(server, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert words in body["error"] and body["status"] == status


def worker_pids(server):
    [described] = requests.get(f"{server.management_url}/models/pd_segmenter", timeout=10).json()
    return sorted(w["pid"] for w in described["workers"])


def test_bad_requests_do_not_spoil_their_batch_mates(server, real_captures):
    pids = worker_pids(server)
    good = [dict(json={"signal": capture.tolist()}) for capture in real_captures]
    bad = [kwargs for kwargs, _, _ in BAD_REQUESTS[:4]]
    mixed = [item for pair in zip(good, bad) for item in pair]
    with ThreadPoolExecutor(max_workers=len(mixed)) as pool:
        responses = list(pool.map(lambda kwargs: post(server, **kwargs), mixed))
    assert [r.status_code for r in responses[0::2]] == [200] * 4
    assert [r.status_code for r in responses[1::2]] == [400] * 4
    assert requests.get(f"{server.inference_url}/ping", timeout=10).json()["status"] == "Healthy"
    assert worker_pids(server) == pids  # the worker never died on input


def test_text_from_the_request_in_a_message_never_breaks_the_worker(server, real_captures):
    """Found 2026-12-06 by a stranger's probe: the message of a 4xx, which repeats what the request
    sent, went into the status line, which TorchServe's worker frames by its length in characters
    but writes as UTF-8. One accented letter killed the worker and failed its batch-mates with 500;
    a 100,000-character field name made a status line that HTTP clients refuse."""
    pids = worker_pids(server)
    good = [dict(json={"signal": capture.tolist()}) for capture in real_captures]
    bad = [dict(json={"signal": [1.0, 2.0, 3.0], "seuil_é": 0.5}),
           dict(files={"data": ("s.csv", b"1,2,3,4")}, data={"thréshold": "1"}),
           dict(data=b"1,2,3", headers={"Content-Type": "application/é".encode()}),
           dict(json={"signal": [1.0, 2.0, 3.0], "x" * 100_000: 1})]
    mixed = [item for pair in zip(good, bad) for item in pair]
    with ThreadPoolExecutor(max_workers=len(mixed)) as pool:
        responses = list(pool.map(lambda kwargs: post(server, **kwargs), mixed))
    assert [r.status_code for r in responses[0::2]] == [200] * 4
    refused = responses[1::2]
    assert [r.status_code for r in refused] == [400, 400, 415, 400], [r.text[:200] for r in refused]
    assert "'seuil_é'" in refused[0].json()["error"] and "'thréshold'" in refused[1].json()["error"]
    assert refused[0].reason == "Bad Request" and refused[2].reason == "Unsupported Media Type"
    assert worker_pids(server) == pids  # no worker died


def test_the_workers_wait_at_openmp_barriers_without_spinning(server):
    """The server's workers start with OMP_WAIT_POLICY=PASSIVE (scripts/serve.py, as the image):
    read from their own environment, which OpenMP read when torch loaded."""
    for pid in worker_pids(server):
        assert wait_policy(psutil.Process(pid).environ()) == "PASSIVE", pid


def test_one_sample_and_a_full_cycle_at_40_megasamples(server):
    tiny = post(server, json={"signal": [42.0]})
    assert tiny.status_code == 200 and tiny.json()["signals"][0]["regions"] == []
    rng = np.random.default_rng(4)
    long_capture = synthetic.make_capture(rng, 800_000, samples_per_cycle=800_000.0, pd_free=False,
                                          snr_db=26.0, interference=False).signal
    response = post(server, data=npy(long_capture), headers={"Content-Type": "application/x-npy"})
    assert response.status_code == 200, response.text
    [signal] = response.json()["signals"]
    assert signal["length"] == 800_000 and len(signal["regions"]) > 0


def test_real_captures_have_regions_on_their_visible_bursts(server, real_captures):
    response = post(server, data=npy(real_captures), headers={"Content-Type": "application/x-npy"})
    assert response.status_code == 200
    answers = response.json()["signals"]
    assert len(answers) == 4  # the predecessor answered only one of these four
    for capture, answer in zip(real_captures, answers):
        filtered = np.abs(remove_carrier(capture))
        spans = [(r["start"], r["end"]) for r in answer["regions"]]
        # Visible primary spikes: local maxima above half of the capture's largest.
        spikes = [i for i in range(1, filtered.size - 1)
                  if filtered[i] > 0.5 * filtered.max() and filtered[i] == filtered[max(i - 50, 0): i + 50].max()]
        assert spikes
        for spike in spikes:
            assert any(start - 3 <= spike < end + 3 for start, end in spans), (spike, spans)
        for region in answer["regions"]:
            assert 0 <= region["phase_deg"] < 360
        # Quiet stretches: 64-sample blocks whose largest value is under 1 % of the capture's
        # largest, five or more in a row. No region may lie inside one.
        blocks = filtered[: filtered.size // 64 * 64].reshape(-1, 64).max(axis=1) < 0.01 * filtered.max()
        for start, end in spans:
            first, last = start // 64, min((end - 1) // 64, blocks.size - 1)
            around = blocks[max(first - 2, 0): last + 3]
            assert not (around.size >= 5 and around.all()), (start, end)


def test_metrics_endpoint_shows_our_counters(server):
    post(server, json={"signals": [[1.0] * 100, [2.0] * 50]})
    text = requests.get(f"{server.metrics_url}/metrics", timeout=10).text
    for name in ("PDSignalsProcessed", "PDSamplesProcessed", "PDRegionsFound", "PreprocessTime",
                 "InferenceTime", "PostprocessTime", "ts_inference_requests_total"):
        assert f"{name}{{" in text, name
    samples = [line for line in text.splitlines() if line.startswith("PDSamplesProcessed{")]
    assert float(samples[0].rsplit(" ", 1)[1]) >= 150


def test_management_api_scales_workers(server):
    """Down to one worker and back to the archive's count (model-config.yaml)."""
    shipped = shipped_model_config()
    url = f"{server.management_url}/models/pd_segmenter"
    try:
        response = requests.put(url, params={"min_worker": 1, "max_worker": 1, "synchronous": "true"}, timeout=180)
        assert response.status_code == 200, response.text
        [described] = requests.get(url, timeout=10).json()
        assert [w["status"] for w in described["workers"]] == ["READY"]
        assert post(server, json={"signal": [1.0, 2.0, 3.0]}).status_code == 200
    finally:
        requests.put(url, params={"min_worker": shipped["minWorkers"], "max_worker": shipped["maxWorkers"],
                                  "synchronous": "true"}, timeout=180)
    server.wait_ready(workers=shipped["minWorkers"], timeout=120)
    [described] = requests.get(url, timeout=10).json()
    assert sum(w["status"] == "READY" for w in described["workers"]) == shipped["minWorkers"]
    assert post(server, json={"signal": [1.0, 2.0, 3.0]}).status_code == 200


def test_register_api_is_off(server):
    response = requests.post(f"{server.management_url}/models", params={"url": "https://example.invalid/x.mar"}, timeout=10)
    assert response.status_code in (400, 403, 405)


def test_make_serve_runs_beside_another_server_and_stops_on_sigterm(server):
    """scripts/serve.py (what `make serve` runs) on its own ports while the session's server
    is up: no pid-file or socket clash; SIGTERM stops the frontend and its workers."""
    ports = {name: free_port() for name in ("inference", "management", "metrics")}
    environment = os.environ | {f"TS_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "serve.py")], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    log = ROOT / ".run" / f"serve-{ports['inference']}" / "logs" / "ts_log.log"

    def log_tail() -> str:
        return log.read_text(errors="replace")[-3000:] if log.is_file() else "(no ts_log.log)"

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                [described] = requests.get(f"http://127.0.0.1:{ports['management']}/models/pd_segmenter", timeout=2).json()
                if described["workers"] and described["workers"][0]["status"] == "READY":
                    break
            except (requests.RequestException, ValueError):
                pass
            assert process.poll() is None, f"serve.py exited with {process.returncode}:\n{log_tail()}"
            assert time.monotonic() < deadline, f"serve.py not READY within 120 s:\n{log_tail()}"
            time.sleep(0.5)
        answer = requests.post(f"http://127.0.0.1:{ports['inference']}/predictions/pd_segmenter",
                               json={"signal": [1.0, 2.0]}, timeout=30)
        assert answer.status_code == 200
        worker_pid = described["workers"][0]["pid"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not psutil.pid_exists(worker_pid) or psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{ports['inference']}/ping", timeout=2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert requests.get(f"{server.inference_url}/ping", timeout=10).json()["status"] == "Healthy"


def test_a_server_whose_chosen_port_is_taken_starts_again_on_new_ones(tmp_path):
    """A port free when it was chosen can be taken before TorchServe binds it (it failed a CI
    run once: "bind(..) failed: Address already in use"). With its inference port held by
    someone else, a server on ports it chose starts again on new ones and answers there."""
    import socket

    from serve import LocalServer

    server = LocalServer(runtime_dir=tmp_path / "run")
    taken = server.ports["inference"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            server.start().wait_ready()
            assert server.port_retries >= 1 and server.ports["inference"] != taken
            assert requests.get(f"{server.inference_url}/ping", timeout=10).json()["status"] == "Healthy"
        finally:
            server.stop()


def test_a_start_reads_only_the_logs_it_wrote(tmp_path):
    """A second start in the same folder (a port retry, or a rerun) does not take an earlier
    start's "Address already in use" or dead worker for its own: wait_ready read the whole
    ts_log.log, so an old bind failure could send a start that failed for another reason
    round the port retries."""
    from serve import ADDRESS_IN_USE, LocalServer

    server = LocalServer(runtime_dir=tmp_path / "run")
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    (logs / "ts_log.log").write_text(f"bind(..) failed: {ADDRESS_IN_USE}\n")
    (logs / "model_log.log").write_text("Backend worker process died.\n")
    assert ADDRESS_IN_USE in server.log_tail() and "died" in server.log_tail()
    server.mark_logs()
    assert ADDRESS_IN_USE not in server.log_tail() and "died" not in server.log_tail()
    with open(logs / "ts_log.log", "a") as log:
        log.write("Model pd_segmenter loaded.\n")
    assert "loaded" in server.log_tail() and ADDRESS_IN_USE not in server.log_tail()
    (logs / "ts_log.log").write_text("rolled\n")  # shorter than where it stood: read from its start
    assert "rolled" in server.log_tail()
    server.mark_logs()
    (logs / "ts_log.log").rename(logs / "ts_log.log.1")  # rolled over to a new file already longer
    (logs / "ts_log.log").write_text("a new file, longer than the old one was\n")
    assert "a new file" in server.log_tail()


def test_prpd_view_and_request_summary(server, real_captures):
    """Every JSON answer carries the request's summary over all its signals; with
    "view": "prpd" and Accept: image/png the answer is the phase-resolved plot."""
    body = {"signals": real_captures[:2].tolist()}
    answer = post(server, json=body).json()
    summary = answer["summary"]
    assert summary["pulse_count"] == sum(len(signal["regions"]) for signal in answer["signals"]) > 0
    assert len(summary["phase_histogram"]["counts"]) == 36
    assert sum(summary["phase_histogram"]["counts"]) == summary["phase_resolved_pulses"]
    picture = post(server, json=body | {"view": "prpd"}, headers={"Accept": "image/png"})
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    signals_picture = post(server, json=body, headers={"Accept": "image/png"})
    assert signals_picture.content != picture.content
    wrong = post(server, json=body | {"view": "spectrum"})
    assert wrong.status_code == 400 and "view" in wrong.json()["error"]


def test_unknown_options_and_unanswerable_accept_get_their_4xx(server):
    misspelt = post(server, json={"signal": [0.1, 0.2, 5.0, 0.3], "treshold": 0.5})
    assert misspelt.status_code == 400
    message = misspelt.json()["error"]
    assert "'treshold'" in message and "threshold" in message.split("known fields are")[1]
    field = post(server, files={"data": ("s.csv", b"1,2,3,4")}, data={"colour": "red"})
    assert field.status_code == 400 and "'colour'" in field.json()["error"]
    csv_only = post(server, json={"signal": [0.1, 0.2]}, headers={"Accept": "text/csv"})
    assert csv_only.status_code == 406
    assert "application/json, image/png" in csv_only.json()["error"]
    assert csv_only.headers["Content-Type"].startswith("application/json")
    fine = post(server, json={"signal": [0.1, 0.2]}, headers={"Accept": "text/html, */*;q=0.8"})
    assert fine.status_code == 200 and fine.headers["Content-Type"].startswith("application/json")
    preferred = post(server, json={"signal": [0.1, 0.2]}, headers={"Accept": "application/json;q=1, image/png;q=0.1"})
    assert preferred.status_code == 200 and preferred.headers["Content-Type"].startswith("application/json")


def test_what_a_strangers_probe_found_gets_a_4xx_not_a_500(server):
    """Found 2026-12-06 against a real TorchServe: a period of 0 from the two rates (500 from a
    division by zero), one of 1e-308 (500 from a NaN phase), a rate of 1e-310 Hz (Infinity in a
    200's JSON), a gzip body (read as text: "JSON nested 53 levels deep"), and options in an
    uploaded JSON file (dropped without a word)."""
    import gzip
    import json

    signal = [0.1, 0.3, 5.2, 2.0, 0.4, 0.2]
    for rates in ({"sampling_rate_hz": 1e-310, "power_frequency_hz": 1}, {"sampling_rate_hz": 1, "power_frequency_hz": 1e308},
                  {"sampling_rate_hz": 100, "power_frequency_hz": 50}):
        answer = post(server, json={"signal": signal} | rates)
        assert answer.status_code == 400 and "sampling_rate_hz" in answer.json()["error"], answer.text
    body = gzip.compress(json.dumps({"signal": signal}).encode())
    packed = post(server, data=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert packed.status_code == 415 and "uncompressed" in packed.json()["error"]
    upload = post(server, files={"data": ("s.json", json.dumps({"signal": signal, "threshold": 0.6}).encode())})
    assert upload.status_code == 200 and upload.json()["signals"][0]["stats"]["threshold"] == 0.6
    # A form field named like a header: TorchServe files its content type in the headers' mapping.
    field = post(server, files={"data": ("s.csv", b"1,2,3,4"), "content-encoding": ("e.txt", b"gzip", "text/plain")})
    assert field.status_code == 400 and "'content-encoding'" in field.json()["error"], field.text
    far = post(server, json={"signal": signal, "sampling_rate_hz": 40e6, "power_frequency_hz": 50})
    assert far.status_code == 200 and far.json()["signals"][0]["stats"]["carrier"]["detected"] is False


def test_torchscript_and_onnx_archives_give_the_same_regions(server, onnx_server, real_captures):
    """The default archive (frozen TorchScript, loaded by BaseHandler) and the ONNX Runtime one
    (make archive RUNTIME=onnx), each served by a real TorchServe, on the bundled sample
    captures and the real ones: the same regions, and some wherever PD was planted."""
    import json

    planted = [bool(entry["true_events"])
               for entry in json.loads((ROOT / "data" / "sample_captures.json").read_text())]
    captures = list(np.load(ROOT / "data" / "sample_captures.npy")) + list(real_captures)
    for capture, has_pd in zip(captures, planted + [True] * len(real_captures)):
        answers = [post(running, data=npy(capture), headers={"Content-Type": "application/x-npy"})
                   for running in (server, onnx_server)]
        assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
        torchscript, onnx = (regions_of(answer.json()) for answer in answers)
        assert torchscript == onnx and bool(torchscript[0]) == has_pd


def test_a_capture_of_correlated_noise_is_also_analysed_whitened(server, real_captures):
    """Over HTTP, in one request beside a real capture: the independent generator's HFCT
    capture behind AR(1) noise reports its whitening coefficient and finds its pulses (the
    signal as recorded alone finds 12 of 40: docs/model-card.md, Conditioning); the real
    capture, whose scale is the floor, gets no second view and its answer of when sent alone."""
    from evaluate import capture_mask
    from training import independent
    from training.scoring import match_events, truth_events

    capture = independent.tier(30.0, False, "test", 40)[7]
    response = post(server, json={"signals": [capture.signal.tolist(), real_captures[0].tolist()]})
    assert response.status_code == 200, response.text
    coloured, real = response.json()["signals"]
    assert 0.5 <= coloured["stats"]["noise_whitening"] <= 0.95
    regions = np.array([[r["start"], r["end"]] for r in coloured["regions"]]).reshape(-1, 2)
    found = match_events(truth_events(capture_mask(capture), coloured["stats"]["merge_gap"]), regions)
    assert found.true_positive >= 36 and found.false_positive <= 1, found
    assert real["stats"]["noise_whitening"] is None
    alone = post(server, json={"signal": real_captures[0].tolist()}).json()["signals"][0]
    assert real["regions"] == alone["regions"]
