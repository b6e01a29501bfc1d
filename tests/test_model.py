import json

import pytest
import torch

from pdseg.model import (PRESETS, OnnxNetwork, UNet1D, UNetConfig, export_onnx, export_torchscript,
                         flops_per_window, load_trained, parameter_count)
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


@pytest.mark.parametrize("onset_head", [False, True])
def test_output_is_a_probability_per_sample(onset_head):
    network = UNet1D(UNetConfig(features=(4, 8), dilations=(1, 2), onset_head=onset_head)).eval()
    with torch.no_grad():
        output = network(torch.randn(3, 1, 64))
    assert output.shape == ((3, 2, 64) if onset_head else (3, 64))
    assert float(output.min()) >= 0 and float(output.max()) <= 1


def test_config_round_trip_and_validation():
    for config in (PRESETS["small"], PRESETS["tiny-onset"], PRESETS["tiny-envelope"]):
        assert UNetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError):
        UNetConfig(features=(8, 16), dilations=(1,))
    with pytest.raises(ValueError):  # two channels, three planes named
        UNetConfig(in_channels=2, inputs=("signal", "relative", "envelope"))
    for wrong in (("signal", "signal"), ("signal", "spectrogram")):
        with pytest.raises(ValueError):
            UNetConfig(in_channels=2, inputs=wrong)
    # records written before the planes were named: the planes follow from the channel count
    old = {k: v for k, v in PRESETS["tiny-cycle"].to_dict().items() if k != "inputs"}
    assert UNetConfig.from_dict(old).input_planes == PRESETS["tiny-cycle"].input_planes
    assert PRESETS["tiny"].input_planes == ("signal", "relative")
    assert PRESETS["tiny-envelope"].input_planes == ("signal", "relative", "envelope")


def test_shipped_weights_are_small_and_load():
    network, record = load_trained(ROOT / "model_store" / "weights")
    assert (ROOT / "model_store" / "weights" / "pd_segmenter.state.pt").stat().st_size <= 5e6
    assert 0 < record["threshold"] < 1
    assert record["window"]["window"] % network.config.length_multiple == 0


def test_onnx_export_runs_like_the_torch_network_at_any_batch_and_width(tmp_path):
    """What the server runs (the ONNX export in ONNX Runtime) against the eager network:
    other batch sizes and widths than the export's example, one and two threads."""
    network, record = load_trained(ROOT / "model_store" / "weights")
    export_onnx(network, tmp_path / "m.onnx", window=record["window"]["window"])
    batch = torch.randn(3, network.config.in_channels, 8704)
    with torch.no_grad():
        expected = network(batch)
    for threads in (1, 2):
        served = OnnxNetwork(tmp_path / "m.onnx", threads)(batch)
        assert served.shape == expected.shape
        assert float((served - expected).abs().max()) < 1e-4


def test_onnx_export_of_a_network_with_an_onset_head(tmp_path):
    network = UNet1D(PRESETS["tiny-onset"]).eval()
    export_onnx(network, tmp_path / "m.onnx", window=1024)
    batch = torch.randn(2, network.config.in_channels, 2048)
    with torch.no_grad():
        expected = network(batch)
    served = OnnxNetwork(tmp_path / "m.onnx", 1)(batch)
    assert served.shape == expected.shape == (2, 2, 2048)
    assert float((served - expected).abs().max()) < 1e-4
