"""The handler in-process: TorchServe's MockContext for loading, its real Context (with one
RequestProcessor per request, as the worker builds it) for batches of mixed requests."""
import io
import json
import threading
import logging
import uuid
import zipfile

import numpy as np
import pytest
import torch
import yaml
from ts.context import Context, RequestProcessor
from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl
from ts.torch_handler.unit_tests.test_utils.mock_context import MockContext

from conftest import ARCHIVE, ROOT
from pd_handler import PDSegmenterHandler
from pdseg import context, preprocess
from pdseg.pipeline import Segmenter
from pdseg.decode import PICTURE_PANELS, WorkLimits
from serve import METRICS_CONFIG

original_analyse = Segmenter.analyse


def load_handler(archive_path, model_dir):
    with zipfile.ZipFile(archive_path) as archive:  # the real .mar, unpacked as TorchServe does
        archive.extractall(model_dir)
    manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
    context = MockContext(model_pt_file=manifest["model"]["serializedFile"], model_dir=str(model_dir),
                          model_file=None, model_name="pd_segmenter", model_yaml_config_file="model-config.yaml")
    context.manifest = manifest
    loaded = PDSegmenterHandler()
    loaded.initialize(context)
    loaded.model_dir = model_dir
    return loaded


@pytest.fixture(scope="module")
def handler(tmp_path_factory):
    return load_handler(ARCHIVE, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def onnx_handler(tmp_path_factory, onnx_model_store):
    return load_handler(onnx_model_store / "pd_segmenter.mar", tmp_path_factory.mktemp("onnx-model"))


def test_a_worker_is_warm_before_its_first_request(tmp_path, monkeypatch):
    """What a cold worker's first request used to pay (the short signals' noise calibration: 3.4 s
    for signals of many lengths under 128 samples) is done in initialize, before TorchServe
    reports the worker ready."""
    preprocess._ringing_calibration.cache_clear()
    calls = []
    monkeypatch.setattr(Segmenter, "analyse", lambda self, signals, *rest, **options: calls.append(
        [len(signal) for signal in signals]) or original_analyse(self, signals, *rest, **options))
    fresh = load_handler(ARCHIVE, tmp_path)
    assert calls and any(len(signals) for signals in calls)  # the network ran before any request
    before = preprocess._ringing_calibration.cache_info()
    signals = [np.random.default_rng(length).standard_normal(length)
               for length in range(preprocess.RINGING_MIN_SAMPLES, preprocess.RINGING_MAX_SAMPLES)]
    fresh.segmenter.analyse(signals)
    after = preprocess._ringing_calibration.cache_info()
    assert after.misses == before.misses and after.hits > before.hits


def test_the_archive_carries_torchscript_weights_and_exactly_the_handler_code(handler):
    """What `unzip -l model_store/pd_segmenter.mar` shows: frozen TorchScript weights, loaded by
    BaseHandler itself; the small serving record and config; as code, every file of handler/
    and no other."""
    with zipfile.ZipFile(ARCHIVE) as archive:
        names = set(archive.namelist())
    handler_dir = ROOT / "handler"
    code = {str(path.relative_to(handler_dir)) for path in handler_dir.rglob("*.py")}
    assert {name for name in names if name.endswith(".py")} == code
    assert {"pd_segmenter.pt", "pd_segmenter.json", "model-config.yaml", "MAR-INF/MANIFEST.json"} <= names
    assert not {name for name in names if name.endswith((".onnx", ".state.pt"))}
    assert isinstance(handler.model.module, torch.jit.ScriptModule)  # BaseHandler's, on our threads
    settings = yaml.safe_load((handler.model_dir / "model-config.yaml").read_text())["handler"]
    assert handler.model.threads == settings["torch_threads"] and torch.get_num_threads() == 1
    record = json.loads((handler.model_dir / "pd_segmenter.json").read_text())
    assert "validation" not in record and {"threshold", "postprocess", "window", "architecture"} <= set(record)
    assert (handler.model_dir / "pd_segmenter.json").stat().st_size < 4096


def batch_context(handler, headers):
    metrics = MetricsCacheYamlImpl(config_file_path=str(METRICS_CONFIG))
    metrics.initialize_cache()
    metrics.set_request_ids({index: str(uuid.uuid4()) for index in range(len(headers))})
    metrics.model_name = "pd_segmenter"
    manifest = json.loads((handler.model_dir / "MAR-INF" / "MANIFEST.json").read_text())
    context = Context("pd_segmenter", str(handler.model_dir), manifest, len(headers), None, "0.12.0",
                      metrics=metrics)
    context.request_processor = [RequestProcessor(h) for h in headers]
    return context


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_model_info_and_threshold_come_from_the_archive(handler):
    record = json.loads((handler.model_dir / "pd_segmenter.json").read_text())
    assert handler.segmenter.threshold == record["threshold"]
    assert handler.model_info == {"name": "pd_segmenter", "version": "1.0"}
    # model-config.yaml carries the limits decode.py documents, measured in docs/reliability.md
    assert handler.limits == WorkLimits(min_window=handler.segmenter.plan.width(1)) == WorkLimits()
    assert (handler.limits.max_work, handler.limits.max_signals) == (1_500_000, 88)


def test_mixed_batch_bad_requests_get_4xx_and_good_ones_answers(handler, real_captures):
    rows = [
        {"body": {"signal": real_captures[0].tolist()}},
        {"body": b"{oops"},
        {"body": npy(real_captures[1:3])},
        {"body": b"\x00\x01"},
        {"body": "1,2,3"},
        {"body": {"signal": [1.0, float("nan")]}},
    ]
    headers = [{"Content-Type": "application/json"}, {"Content-Type": "application/json"},
               {"content-type": "application/x-npy"}, {"Content-Type": "video/mp4"},
               {"Content-Type": "text/csv"}, {"Content-Type": "application/json"}]
    context = batch_context(handler, headers)
    outputs = handler.handle(rows, context)
    assert len(outputs) == len(rows)
    statuses = [context.get_response_status(i)[0] for i in range(len(rows))]
    assert statuses == [200, 400, 200, 415, 200, 400]
    assert "malformed JSON" in outputs[1]["error"] and "unsupported content type" in outputs[3]["error"]
    assert "NaN" in outputs[5]["error"]
    # The status line holds the standard reason, never the message (which repeats the request's
    # text, and which TorchServe's worker frames by characters but writes as UTF-8).
    assert [context.get_response_status(i)[1] for i in (1, 3, 5)] == ["Bad Request", "Unsupported Media Type",
                                                                       "Bad Request"]
    assert [s["length"] for s in outputs[0]["signals"]] == [7920]
    assert [s["length"] for s in outputs[2]["signals"]] == [7920, 7920]
    assert outputs[4]["signals"][0]["length"] == 3
    # The same capture answered alone, in another batch, gets the same regions (analysed
    # again, not taken from the result cache).
    alone = handler.handle([rows[0]], batch_context(handler, [headers[0] | {"Cache-Control": "no-cache"}]))[0]
    assert alone["signals"][0]["regions"] == outputs[0]["signals"][0]["regions"]


def test_a_request_for_an_explanation_is_refused_alone(handler, real_captures):
    """TorchServe marks a request to /explanations with the header explain: True. BaseHandler
    read it off the batch's first request and explained the whole batch, which this model
    cannot: every batch-mate got 503. Now that request alone gets a 404 with a message."""
    rows = [{"body": {"signal": real_captures[0].tolist()}}] * 3
    headers = [{"Content-Type": "application/json", "explain": "True"}, {"Content-Type": "application/json"},
               {"Content-Type": "application/json", "explain": "True"}]
    context = batch_context(handler, headers)
    outputs = handler.handle(rows, context)
    assert [context.get_response_status(i)[0] for i in range(3)] == [404, 200, 404]
    assert "no explanations" in outputs[0]["error"] and "/predictions/pd_segmenter" in outputs[2]["error"]
    assert [s["length"] for s in outputs[1]["signals"]] == [7920]


def test_a_clients_own_explain_or_describe_header_changes_nothing_for_its_batch(handler, real_captures):
    """A review: TorchServe's own "explain" key decides, not a client's "Explain" merged into the
    headers; and a "describe: True" header on the batch's first request made BaseHandler answer
    the whole batch with one description (503 for all). TorchServe's describe call comes alone."""
    rows = [{"body": {"signal": real_captures[0].tolist()}}] * 3
    headers = [{"Content-Type": "application/json", "describe": "True"},
               {"Content-Type": "application/json", "explain": "False", "Explain": "True"},
               {"Content-Type": "application/json"}]
    context = batch_context(handler, headers)
    outputs = handler.handle(rows, context)
    assert len(outputs) == 3 and [context.get_response_status(i)[0] for i in range(3)] == [200, 200, 200]
    assert all([s["length"] for s in output["signals"]] == [7920] for output in outputs)


@pytest.mark.parametrize("batch", [1, 3])
def test_a_signal_with_a_describe_header_is_analysed_and_torchserves_describe_call_described(handler, batch):
    """A stranger's probe: a request with a signal and "describe: True" was answered 200 with
    "null" when it came alone (BaseHandler's describe path), and analysed when batched. The
    signal is analysed either way (NaN refused with a 400, as without the header); TorchServe's
    own describe call (no body) gets the model's description, beside whatever shares its batch."""
    rows = [{"body": {"signal": [0.1, 0.3, 5.2, 2.0, 0.4] * 20}}, {"body": {"signal": [1.0, float("nan")]}}, {}]
    headers = [{"Content-Type": "application/json", "describe": "True"}] * 3
    for first in range(3):
        picked = [(rows + rows)[first + k] for k in range(batch)]
        context = batch_context(handler, headers[:batch])
        outputs = handler.handle(picked, context)
        for index, (row, output) in enumerate(zip(picked, outputs)):
            status = context.get_response_status(index)[0]
            if not row:
                assert status == 200 and output == {"model": handler.model_info}
            elif np.isnan(row["body"]["signal"]).any():
                assert status == 400 and "error" in output
            else:
                assert status == 200 and [s["length"] for s in output["signals"]] == [100]


def test_png_answer(handler, real_captures):
    context = batch_context(handler, [{"Content-Type": "application/json", "Accept": "image/png"}])
    [png] = handler.handle([{"body": {"signal": real_captures[0].tolist()}}], context)
    assert bytes(png[:8]) == b"\x89PNG\r\n\x1a\n"
    assert context.get_response_content_type(0) == "image/png"


def test_custom_metrics_are_emitted(handler, caplog):
    caplog.set_level(logging.INFO, logger="ts.metrics.caching_metric")
    context = batch_context(handler, [{"Content-Type": "application/json"}])
    handler.handle([{"body": {"signals": [[1.0] * 10, [2.0] * 20]}}], context)
    lines = [record.getMessage() for record in caplog.records]
    def value(name):
        [line] = [line for line in lines if line.startswith(f"[METRICS]{name}.")]
        return float(line.split(":", 1)[1].split("|", 1)[0])
    assert value("PDSignalsProcessed") == 2
    assert value("PDSamplesProcessed") == 30
    assert value("PDRegionsFound") >= 0
    for stage in ("PreprocessTime", "InferenceTime", "PostprocessTime"):
        assert value(stage) > 0


@pytest.mark.parametrize("runtime", ["torchscript", "onnx"])
def test_small_batches_run_on_one_thread_large_ones_on_all(runtime, request, real_captures, monkeypatch):
    """parallel_from_samples (model-config.yaml), in both archives: a network call on fewer
    samples runs on one thread, a larger one is shared over torch_threads threads by its
    windows; the regions do not depend on which."""
    handler = request.getfixturevalue("handler" if runtime == "torchscript" else "onnx_handler")
    network = handler.model
    assert network.threads == 2 and network.parallel_from_samples == 131072
    headers = [{"Content-Type": "application/x-npy", "Cache-Control": "no-cache"}]  # every call analysed
    request = [{"body": npy(real_captures[0])}]
    network.calls_by_threads.clear()
    single = handler.handle(request, batch_context(handler, headers))[0]
    assert network.calls_by_threads == {1: 2}  # its window and calmed copy; then its windows of near context
    # 269,280 samples: windows in chunks of 131,072 samples, and past TRIM_FROM_SAMPLES
    network.calls_by_threads.clear()
    ran = []
    run_on_one_thread = network.run_on_one_thread

    def recorded(windows, part):
        ran.append((threading.current_thread().name, windows.shape[0], part))
        return run_on_one_thread(windows, part)

    monkeypatch.setattr(network, "run_on_one_thread", recorded)
    tiled = np.tile(real_captures[0], 34)
    large = handler.handle([{"body": npy(tiled)}], batch_context(handler, headers))[0]
    monkeypatch.undo()
    assert large["signals"][0]["length"] == 269_280
    # 76 windows of 4,096, and again those that hold a very loud sample (pdseg.context), in chunks
    # of 32: each in two parts of 16 on two threads, what is left whole on the caller's; then the
    # windows of near context around the loud samples, 1,024 samples each, in chunks of 128 alike
    segmenter = handler.segmenter
    conditioned = segmenter.condition(tiled)
    loud = int(context.loud_windows(segmenter.windows(conditioned)).sum())
    assert 0 < loud <= 76
    full, rest = divmod(76 + loud, 32)
    near_step = segmenter.chunk_windows * segmenter.plan.window // context.NEAR_WINDOW
    near = int(context.near_tiles(conditioned.network_input, segmenter.plan.window).size)
    assert near_step == 128 and near > 0
    near_full, near_rest = divmod(near, near_step)
    on_one = bool(rest) + bool(near_rest)
    assert network.calls_by_threads == {2: full + near_full} | ({1: on_one} if on_one else {})
    assert sorted((count, part) for _, count, part in ran) == sorted(
        [(rest, False)] * bool(rest) + [(16, True)] * (2 * full)
        + [(near_rest, False)] * bool(near_rest) + [(near_step // 2, True)] * (2 * near_full))
    assert len({name for name, _, part in ran if part}) == 2
    configured = network.parallel_from_samples
    pair = [{"body": {"signals": [real_captures[0].tolist()] * 2}}]
    try:
        network.parallel_from_samples = 0  # both signals' windows in one call, shared over both threads
        network.calls_by_threads.clear()
        parallel = handler.handle(pair, batch_context(handler, [{"Content-Type": "application/json",
                                                                   "Cache-Control": "no-cache"}]))[0]
        assert network.calls_by_threads == {2: 2}  # then both signals' windows of near context in one
        network.calls_by_threads.clear()
        # One window and its calmed copy (a real capture holds very loud samples): shared too, and
        # its windows of near context.
        handler.handle(request, batch_context(handler, headers))
        assert network.calls_by_threads == {2: 2}
        network.calls_by_threads.clear()
        # A quiet capture with a carrier (no slower view, no loud sample): one window, nothing to share.
        samples = np.arange(real_captures[0].size)
        quiet = np.random.default_rng(3).normal(size=samples.size) + 1e4 * np.sin(2 * np.pi * samples / 3333.0)
        handler.handle([{"body": npy(quiet)}], batch_context(handler, headers))
        assert network.calls_by_threads == {1: 1}
    finally:
        network.parallel_from_samples = configured
    assert [answer["regions"] for answer in parallel["signals"]] == [single["signals"][0]["regions"]] * 2


def test_a_long_carrier_free_captures_slower_view_starts_beside_its_conditioning(handler, monkeypatch):
    """view_ahead_from_samples (model-config.yaml): a carrier-free capture that long has its
    slower view made and run through the network on the second thread; the answer is the one
    without (PD_VIEW_AHEAD_FROM_SAMPLES=0 turns it off)."""
    settings = yaml.safe_load((handler.model_dir / "model-config.yaml").read_text())["handler"]
    segmenter = handler.segmenter
    assert segmenter.view_ahead_from == settings["view_ahead_from_samples"] == 131072
    rng = np.random.default_rng(4)
    signal = rng.normal(size=400_000)
    t = np.arange(-64, 65)
    for at in range(30_000, 400_000, 90_000):
        signal[at + t] += 20.0 * np.exp(-0.5 * (t / 16) ** 2)  # smooth pulses only the view finds
    headers = [{"Content-Type": "application/x-npy", "Cache-Control": "no-cache"}]
    before = dict(segmenter.views_ahead)
    handler.model.calls_by_threads.clear()
    ahead = handler.handle([{"body": npy(signal)}], batch_context(handler, headers))[0]
    assert {key: segmenter.views_ahead[key] - before[key] for key in before} == {"started": 1, "given_up": 0, "run": 1}
    # the capture's 112 windows in 3 calls of 32 on two threads and 16 on one; the view's 28 once, on one
    assert handler.model.calls_by_threads == {2: 3, 1: 2}
    try:
        segmenter.view_ahead_from = None
        handler.model.calls_by_threads.clear()
        after = handler.handle([{"body": npy(signal)}], batch_context(handler, headers))[0]
        assert handler.model.calls_by_threads == {2: 4, 1: 1}  # the view's windows with the capture's
    finally:
        segmenter.view_ahead_from = settings["view_ahead_from_samples"]
    assert segmenter.views_ahead["started"] - before["started"] == 1
    assert [r["start"] for r in ahead["signals"][0]["regions"]] == [r["start"] for r in after["signals"][0]["regions"]]
    assert ahead["signals"][0]["regions"] == after["signals"][0]["regions"]
    assert len(ahead["signals"][0]["regions"]) == 5
    for value in ("0", "-5"):
        monkeypatch.setenv("PD_VIEW_AHEAD_FROM_SAMPLES", value)
        assert load_handler(ARCHIVE, handler.model_dir.parent / f"view-ahead{value}").segmenter.view_ahead_from is None


def test_a_worker_whose_openmp_threads_would_spin_says_so_at_start(handler, monkeypatch, caplog):
    """OMP_WAIT_POLICY is read by OpenMP before the handler loads: the handler can only warn."""
    caplog.set_level(logging.WARNING, logger="pd_handler")
    for value, warned in (("", True), ("ACTIVE", True), ("passive", False), ("PASSIVE", False)):
        monkeypatch.setenv("OMP_WAIT_POLICY", value)
        caplog.clear()
        load_handler(ARCHIVE, handler.model_dir.parent / f"wait-policy-{value or 'unset'}")
        assert any("OMP_WAIT_POLICY is not PASSIVE" in record.getMessage() for record in caplog.records) == warned, value


def test_a_batch_is_analysed_in_groups_of_at_most_one_requests_work(handler):
    """Eight requests of the largest size in one batch: the network sees one request's windows
    at a time (its calls never carry more than one request's samples), and every request is
    answered."""
    largest = handler.limits.max_work - handler.limits.signal_overhead
    plan, chunk = handler.segmenter.plan, handler.segmenter.chunk_windows
    while plan.count(largest) % chunk == 0:  # each request must end in a part-filled call (below)
        largest -= plan.core
    rows = [{"body": np.zeros(largest, dtype="<f4").tobytes()} for _ in range(3)]
    headers = [{"Content-Type": "application/octet-stream"}] * 3
    seen = []
    network = handler.model
    original = network.__call__

    class Recording:
        def __getattr__(self, name):
            return getattr(network, name)

        def __call__(self, windows):
            seen.append(windows.shape[0])
            return original(windows)

    handler.segmenter.network = Recording()
    try:
        context = batch_context(handler, headers)
        outputs = handler.handle(rows, context)
    finally:
        handler.segmenter.network = network
    assert [context.get_response_status(i)[0] for i in range(3)] == [200] * 3
    assert [output["signals"][0]["length"] for output in outputs] == [largest] * 3
    windows = plan.count(largest)
    assert windows % chunk  # each request ends in a part-filled call ...
    assert seen == ([chunk] * (windows // chunk) + [windows % chunk]) * 3  # ... so none mixes two


def test_png_answers_are_charged_per_panel():
    from pdseg.render import MAX_PANELS

    assert PICTURE_PANELS == MAX_PANELS


def test_conditioning_a_signal_again_is_charged_against_the_requests_room(handler):
    """A pulse cut by an end beside a converter train conditions its signal again (pdseg.preprocess),
    charged to what the request's work limit leaves: in a request filling two thirds of the limit
    with such signals, the first ones are checked again and the last find no room left (their
    warnings say so); a signal alone is always checked."""
    from reliability import _notched_carrier_cut_ends
    from pdseg.preprocess import ENDS_UNCHECKED_WARNING

    rng = np.random.default_rng(3)
    length = 2260
    count = (2 * handler.limits.max_work // 3) // handler.limits.signal_work(length)
    signals = np.stack([_notched_carrier_cut_ends(rng, length) for _ in range(count)])
    headers = [{"Content-Type": "application/x-npy", "Cache-Control": "no-cache"}] * 2
    context = batch_context(handler, headers)
    outputs = handler.handle([{"body": npy(signals)}, {"body": npy(signals[-1:])}], context)
    assert [context.get_response_status(i)[0] for i in range(2)] == [200, 200]
    unchecked = [ENDS_UNCHECKED_WARNING in signal.get("warnings", []) for signal in outputs[0]["signals"]]
    assert not unchecked[0] and unchecked[-1]
    assert unchecked == sorted(unchecked)  # the room runs out, it does not come back
    assert ENDS_UNCHECKED_WARNING not in outputs[1]["signals"][0].get("warnings", [])
