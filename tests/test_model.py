import json
import threading
import time

import pytest
import torch

from pdseg.model import (PRESETS, OnnxNetwork, TorchThreads, UNet1D, UNetConfig, export_onnx, export_torchscript,
                         flops_per_window, inference_form, load_trained, parameter_count)
from serve import ROOT


def test_predecessor_size_is_constructible_and_exportable(tmp_path):
    network = UNet1D(PRESETS["predecessor"]).eval()
    assert parameter_count(network) == pytest.approx(12.1e6, rel=0.01)
    assert flops_per_window(network, 1024) == pytest.approx(2.72e9, rel=0.01)
    export_torchscript(network, tmp_path / "predecessor.pt", window=1024)
    loaded = torch.jit.load(str(tmp_path / "predecessor.pt"))
    example = torch.randn(1, 1, 1024)
    with torch.no_grad():
        torch.testing.assert_close(loaded(example), network(example), atol=1e-4, rtol=1e-3)


def test_output_is_a_probability_per_sample():
    network = UNet1D(UNetConfig(features=(4, 8), dilations=(1, 2), in_channels=1)).eval()
    with torch.no_grad():
        output = network(torch.randn(3, 1, 64))
    assert output.shape == (3, 64)
    assert float(output.min()) >= 0 and float(output.max()) <= 1


def test_config_round_trip_and_validation():
    for config in PRESETS.values():
        assert UNetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert UNet1D().config == PRESETS["tiny"]  # the default is the shipped size
    with pytest.raises(ValueError):
        UNetConfig(features=(8, 16), dilations=(1,))
    # a record of a variant tried and not shipped is refused, not misread
    for variant in ({"onset_head": True}, {"inputs": ["signal", "relative", "envelope"], "in_channels": 3}):
        with pytest.raises(ValueError):
            UNetConfig.from_dict(PRESETS["tiny"].to_dict() | variant)
    # records written by the training before this release list the fields with their defaults
    assert UNetConfig.from_dict(PRESETS["tiny"].to_dict() | {"onset_head": False, "inputs": None}) == PRESETS["tiny"]


def test_shipped_weights_are_small_and_load():
    network, record = load_trained(ROOT / "model_store" / "weights")
    assert (ROOT / "model_store" / "weights" / "pd_segmenter.state.pt").stat().st_size <= 5e6
    assert 0 < record["threshold"] < 1
    assert record["window"]["window"] % network.config.length_multiple == 0


def test_the_inference_form_computes_the_plain_network_and_is_what_the_export_traces(tmp_path):
    """The served network's slow layers as matrix products (pdseg.model.inference_form): the same
    probabilities as the plain layers, for the shipped weights and for a network of other widths
    with trained-looking (non-zero) biases, and no transposed or 1x1 convolution left in the export."""
    shipped, record = load_trained(ROOT / "model_store" / "weights")
    other = UNet1D(UNetConfig(features=(3, 6, 12), dilations=(1, 2, 3), in_channels=2)).eval()
    torch.manual_seed(7)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    for network, width in ((shipped, 4096), (other, 8 * 37)):
        batch = torch.randn(5, network.config.in_channels, width) * 3
        with torch.no_grad():
            expected, served = network.eval()(batch), inference_form(network)(batch)
        assert served.shape == expected.shape
        assert float((served - expected).abs().max()) < 1e-5
    assert any(isinstance(module, torch.nn.ConvTranspose1d) for module in shipped.modules())  # the original is kept
    export_torchscript(shipped, tmp_path / "m.pt", window=record["window"]["window"])
    graph = str(torch.jit.load(str(tmp_path / "m.pt")).inlined_graph)
    assert "conv_transpose" not in graph and "aten::matmul" in graph
    levels = len(shipped.config.features)
    # only the 3-tap convolutions are left: two a level down, two in the bottleneck, two a level up
    assert graph.count("aten::_convolution") + graph.count("aten::conv1d") == 2 * (levels + 1 + levels)


def test_onnx_export_runs_like_the_torch_network_at_any_batch_and_width(tmp_path):
    """The ONNX archive's network (ONNX Runtime) against the eager network: other batch sizes
    and widths than the export's example, one and two threads."""
    network, record = load_trained(ROOT / "model_store" / "weights")
    export_onnx(network, tmp_path / "m.onnx", window=record["window"]["window"])
    batch = torch.randn(3, network.config.in_channels, 8704)
    with torch.no_grad():
        expected = network(batch)
    for threads in (1, 2):
        served = OnnxNetwork(tmp_path / "m.onnx", threads)(batch)
        assert served.shape == expected.shape
        assert float((served - expected).abs().max()) < 1e-4


def test_a_large_call_is_shared_over_threads_by_its_windows_with_the_same_output(tmp_path):
    """ThreadPolicy: a call from parallel_from_samples on runs in parts of its windows, each on
    a thread of its own with one intra-op thread, and gives what one call on all windows gives
    (to float32 rounding: batches of other sizes may take other kernels); a smaller call, and one the caller keeps on one thread, runs whole here."""
    network, record = load_trained(ROOT / "model_store" / "weights")
    export_torchscript(network, tmp_path / "m.pt", window=record["window"]["window"])
    module = torch.jit.load(str(tmp_path / "m.pt")).eval()
    seen: list[tuple[str, int, int]] = []

    class Recorded(torch.nn.Module):
        def forward(self, windows):
            seen.append((threading.current_thread().name, torch.get_num_threads(), windows.shape[0]))
            return module(windows)

    policy = TorchThreads(Recorded(), threads=2, parallel_from_samples=4 * 4096)
    windows = torch.randn(5, network.config.in_channels, 4096)
    with torch.inference_mode():
        whole = module(windows)
        shared = policy(windows)
        torch.testing.assert_close(shared, whole, rtol=0, atol=1e-6)
        assert sorted(count for _, _, count in seen) == [2, 3]
        assert len({name for name, _, _ in seen}) == 2 and {threads for _, threads, _ in seen} == {1}
        seen.clear()
        torch.testing.assert_close(policy(windows[:3]), whole[:3], rtol=0, atol=1e-6)  # under parallel_from_samples
        torch.testing.assert_close(policy(windows, one_thread=True), whole, rtol=0, atol=1e-6)
        assert [(threads, count) for _, threads, count in seen] == [(1, 3), (1, 5)]
        assert {name for name, _, _ in seen} == {threading.current_thread().name}
    assert policy.calls_by_threads == {2: 1, 1: 2}


def test_a_call_shared_over_more_threads_than_it_has_windows_and_a_failing_part():
    """A part holds one window at least (four threads, two windows: two parts); where a part
    fails, the call raises once every other part is done, and the next call runs."""
    seen, finished = [], []

    class Recorded(torch.nn.Module):
        def forward(self, windows):
            seen.append((threading.current_thread().name, windows.shape[0]))
            if failing and threading.current_thread() is threading.main_thread():
                raise RuntimeError("the first part fails")
            if failing:
                time.sleep(0.3)
                finished.append(windows.shape[0])
            return windows[:, 0] * 2.0

    policy = TorchThreads(Recorded(), threads=4, parallel_from_samples=0)
    windows = torch.randn(2, 2, 64)
    failing = False
    with torch.inference_mode():
        torch.testing.assert_close(policy(windows), windows[:, 0] * 2.0)
    assert sorted(count for _, count in seen) == [1, 1] and len({name for name, _ in seen}) == 2
    assert policy.calls_by_threads == {2: 1}
    failing = True
    with torch.inference_mode(), pytest.raises(RuntimeError, match="first part fails"):
        policy(torch.randn(3, 2, 64))
    assert sorted(finished) == [1, 1]  # both other parts ran to their end before the call raised
    failing = False
    with torch.inference_mode():
        assert policy(windows).shape == (2, 64)
