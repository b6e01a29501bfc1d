"""Which CPU inference optimisations pay off for the shipped network, at what accuracy cost?

    python scripts/optimise_check.py

Variants: eager fp32; traced + frozen TorchScript fp32 (the default archive); frozen +
``torch.jit.optimize_for_inference``; bf16 autocast (oneDNN uses AVX-512 BF16 / AMX where the
CPU has them); ONNX Runtime fp32 (the ``make archive RUNTIME=onnx`` archive) and ONNX Runtime
with dynamic int8 quantisation (ConvInteger). Speed is pure inference on 16 windows of 4,096 samples, 2 threads, median of
repeats; accuracy is event F1 on a fixed synthetic set and the largest probability change
against fp32. Prints a Markdown table (pasted into docs/benchmarks.md).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import _bootstrap
import numpy as np
import torch

from pdseg.model import export_torchscript, load_trained
from pdseg.pipeline import Segmenter
from pdseg.regions import mask_to_regions
from pdseg.window import WindowPlan
from training import synthetic
from training.scoring import EventCounts, match_events


class Bf16(torch.nn.Module):
    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner(x).float()


class OnnxRuntimeNetwork:
    """An ONNX export of the eager network run by ONNX Runtime, called like the torch one."""

    def __init__(self, eager, channels: int, folder: Path, int8: bool = False) -> None:
        import onnxruntime
        path = folder / "model.onnx"
        if not path.exists():
            torch.onnx.export(eager, (torch.randn(2, channels, 4096),), str(path), dynamo=False,
                              input_names=["x"], output_names=["p"], opset_version=17,
                              dynamic_axes={"x": {0: "batch", 2: "width"}, "p": {0: "batch", 1: "width"}})
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            quantized = folder / "model-int8.onnx"
            quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QUInt8)
            path = quantized
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"x": batch.numpy()})[0])


def speed(network, channels: int, window: int, repeats: int = 7) -> float:
    batch = torch.randn(16, channels, window)
    with torch.inference_mode():
        for _ in range(2):
            network(batch)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            network(batch)
            times.append(time.perf_counter() - started)
    return 16 * window / statistics.median(times)


def main() -> None:
    _bootstrap.command_line(__doc__)
    torch.set_num_threads(2)
    eager, record = load_trained(_bootstrap.ROOT / "model_store" / "weights")
    plan = WindowPlan(**record["window"])
    with tempfile.TemporaryDirectory() as folder:
        export_torchscript(eager, Path(folder) / "m.pt", window=plan.window)
        frozen = torch.jit.load(str(Path(folder) / "m.pt"))
        optimised = torch.jit.optimize_for_inference(torch.jit.load(str(Path(folder) / "m.pt")))
    variants = {"eager fp32": eager, "TorchScript frozen fp32": frozen,
                "frozen + optimize_for_inference": optimised, "bf16 autocast (eager)": Bf16(eager)}
    onnx_folder = tempfile.TemporaryDirectory()
    try:
        eager.eval()
        variants["ONNX Runtime fp32 (served)"] = OnnxRuntimeNetwork(eager, eager.config.in_channels, Path(onnx_folder.name))
        variants["ONNX Runtime dynamic int8"] = OnnxRuntimeNetwork(eager, eager.config.in_channels,
                                                                   Path(onnx_folder.name), int8=True)
    except ImportError as missing:
        print(f"(ONNX Runtime variants skipped: {missing.name} is not installed)")
    captures = []
    for snr in (20.0, 10.0):
        for interference in (False, True):
            captures += list(synthetic.evaluation_set(snr, interference, 6, 16384, seed=99))
    reference = None
    print("| variant | samples/s (pure inference) | event F1 | max |Δp| vs fp32 |")
    print("|---|---|---|---|")
    for name, network in variants.items():
        segmenter = Segmenter.from_record(network, record)
        results = segmenter.analyse([c.signal for c in captures])
        counts = EventCounts()
        for capture, result in zip(captures, results):
            counts.add(match_events(mask_to_regions(capture.mask), result.regions))
        probabilities = np.concatenate([r.probability for r in results])
        if reference is None:
            reference = probabilities
        delta = float(np.abs(probabilities - reference).max())
        rate = speed(network, eager.config.in_channels, plan.window)
        print(f"| {name} | {rate:,.0f} | {counts.f1:.4f} | {delta:.2e} |")


if __name__ == "__main__":
    main()
