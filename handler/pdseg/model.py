"""The UNet1D segmentation network: one definition for training, export, serving and tests.

The family is the predecessor's: every encoder level is two dilated 3-tap convolutions
(BatchNorm, ReLU), levels are joined by max-pooling, the bottleneck widens the channels and
applies a gated self-attention over time, and the decoder upsamples with transposed
convolutions and concatenated skip connections. The output is one PD probability per sample.

Width, depth and dilations are configuration (:class:`UNetConfig`); the presets name the
sizes the project uses: the predecessor's (12.1 M parameters, used only as a speed
reference), the ``tiny`` network we ship (the default) and two larger candidates.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import threading
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .preprocess import INPUT_CHANNELS, PLANES


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    features: tuple[int, ...] = (4, 8, 16, 32)
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    in_channels: int = INPUT_CHANNELS
    attention: bool = True

    def __post_init__(self) -> None:
        if len(self.features) != len(self.dilations) or not self.features:
            raise ValueError("features and dilations need the same, non-zero length")

    @property
    def length_multiple(self) -> int:
        """Inputs must be a multiple of this so that every pooling step divides evenly."""
        return 2 ** len(self.features)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "UNetConfig":
        # Records of variants tried and not shipped (an onset head, other planes) name them.
        if values.get("onset_head") or values.get("inputs") not in (None, list(PLANES)):
            raise ValueError("this release serves networks of one output on the planes "
                             f"{PLANES}; the record asks for {values}")
        return cls(
            features=tuple(values["features"]),
            dilations=tuple(values["dilations"]),
            in_channels=int(values.get("in_channels", 1)),
            attention=bool(values.get("attention", True)),
        )


PRESETS = {
    # The FastAPI predecessor's network (one input channel): 12.1 M parameters, 2.72 GFLOP per
    # 1024-sample window. A speed reference only.
    "predecessor": UNetConfig(features=(64, 128, 256, 512), dilations=(1, 2, 4, 8), in_channels=1),
    # Ours take the two conditioned planes (preprocess.PLANES); tiny is shipped.
    "tiny": UNetConfig(features=(4, 8, 16, 32), dilations=(1, 2, 4, 8)),
    "small": UNetConfig(features=(8, 16, 32, 64), dilations=(1, 2, 4, 8)),
    "medium": UNetConfig(features=(16, 32, 64, 128), dilations=(1, 2, 4, 8)),
}


def _conv_pair(in_channels: int, out_channels: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv1d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    )


class GatedSelfAttention1D(nn.Module):
    """Self-attention over time whose contribution starts at zero (gate ``gamma``), so an
    untrained block is the identity and the network learns how much global context helps."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = max(channels // 8, 1)
        self.query = nn.Conv1d(channels, reduced, 1)
        self.key = nn.Conv1d(channels, reduced, 1)
        self.value = nn.Conv1d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        queries = self.query(x).transpose(1, 2)  # (batch, time, reduced)
        keys = self.key(x)  # (batch, reduced, time)
        weights = torch.softmax(torch.bmm(queries, keys), dim=-1)  # (batch, time, time)
        attended = torch.bmm(self.value(x), weights.transpose(1, 2))  # (batch, channels, time)
        return x + self.gamma * attended


class UNet1D(nn.Module):
    """Input ``(batch, in_channels, length)``, ``length`` a multiple of
    ``config.length_multiple``; output ``(batch, length)`` probabilities."""

    def __init__(self, config: UNetConfig = PRESETS["tiny"]) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleList()
        channels = config.in_channels
        for width, dilation in zip(config.features, config.dilations):
            self.encoders.append(_conv_pair(channels, width, dilation))
            channels = width
        bottleneck = config.features[-1] * 2
        self.bottleneck = _conv_pair(config.features[-1], bottleneck, 1)
        self.attention = GatedSelfAttention1D(bottleneck) if config.attention else nn.Identity()
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for width in reversed(config.features):
            self.upsamplers.append(nn.ConvTranspose1d(width * 2, width, kernel_size=2, stride=2))
            self.decoders.append(_conv_pair(width * 2, width, 1))
        self.head = nn.Conv1d(config.features[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool1d(x, 2)
        x = self.attention(self.bottleneck(x))
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            x = decoder(torch.cat((skip, upsample(x)), dim=1))
        return self.head(x).squeeze(1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_window(model: nn.Module, window: int) -> int:
    """Floating-point operations (multiply and add counted apart) of one forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    example = torch.zeros(1, model.config.in_channels, window)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    return int(counter.get_total_flops())


class _PointwiseProduct(nn.Module):
    """A 1x1 convolution as a matrix product: oneDNN took about 40 times as long for the output
    layer's (4.5 against 0.11 ms over 32 windows of 4,096 samples, one thread) and 4 times as
    long for the attention's three (1.5 against 0.4 ms over 16 windows)."""

    def __init__(self, pointwise: nn.Conv1d) -> None:
        super().__init__()
        assert pointwise.kernel_size == (1,) and pointwise.stride == (1,) and pointwise.groups == 1
        self.weight = nn.Parameter(pointwise.weight.detach()[:, :, 0].clone(), requires_grad=False)
        self.bias = nn.Parameter(pointwise.bias.detach()[:, None].clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.weight, x) + self.bias


class _ProductUpsampler(nn.Module):
    """A transposed convolution whose stride is its kernel (the taps never overlap) as one matrix
    product, each output channel's taps then interleaved: the same sums, in about two thirds of
    the time on the served network's narrow layers."""

    def __init__(self, upsampler: nn.ConvTranspose1d) -> None:
        super().__init__()
        in_channels, out_channels, taps = upsampler.weight.shape
        assert upsampler.stride == (taps,) and upsampler.padding == (0,) and upsampler.dilation == (1,)
        self.out_channels, self.taps = out_channels, taps
        weight = upsampler.weight.detach().permute(1, 2, 0).reshape(out_channels * taps, in_channels)
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)
        self.bias = nn.Parameter(upsampler.bias.detach()[:, None].clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length = x.shape[0], x.shape[2]
        taps = torch.matmul(self.weight, x).reshape(batch, self.out_channels, self.taps, length)
        return taps.transpose(2, 3).reshape(batch, self.out_channels, self.taps * length) + self.bias


def inference_form(model: UNet1D) -> UNet1D:
    """A copy of ``model`` (in eval mode) that computes the same function with the layers that
    oneDNN runs slowly at the served network's widths (the 1x1 convolutions and the transposed
    ones) written as matrix products: what the exports trace. Training, and the predecessor's
    speed reference, keep the plain layers."""
    served = copy.deepcopy(model).eval()
    served.head = _PointwiseProduct(model.head)
    if isinstance(served.attention, GatedSelfAttention1D):
        for name in ("query", "key", "value"):
            setattr(served.attention, name, _PointwiseProduct(getattr(model.attention, name)))
    served.upsamplers = nn.ModuleList(_ProductUpsampler(upsampler) for upsampler in model.upsamplers)
    return served


def export_torchscript(model: UNet1D, path: Path, window: int = 4096) -> None:
    """Trace the :func:`inference_form`, freeze (folds BatchNorm into the convolutions) and save
    for inference: what the default archive carries and BaseHandler loads."""
    model = inference_form(model)
    example = torch.zeros(2, model.config.in_channels, window)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
        frozen = torch.jit.freeze(traced)
    path.parent.mkdir(parents=True, exist_ok=True)
    frozen.save(str(path))


def export_onnx(model: UNet1D, path: Path, window: int = 4096) -> None:
    """ONNX export of the :func:`inference_form` with free batch and width axes, for ONNX Runtime
    (archives built with ``make archive RUNTIME=onnx``; docs/benchmarks.md compares the
    runtimes). Needs the ``onnx`` package, a build-time dependency only."""
    model = inference_form(model)
    example = torch.zeros(2, model.config.in_channels, window)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17,
                          input_names=["signal"], output_names=["probability"],
                          dynamic_axes={"signal": {0: "windows", 2: "width"},
                                        "probability": {0: "windows", 1: "width"}})


class ThreadPolicy:
    """How a network call uses the worker's cores: calls on fewer than ``parallel_from_samples``
    samples run on one thread, whose convolutions are too short for a second one to pay (on a
    small pod its wait holds up the frontend and the next batch: tail latency,
    docs/benchmarks.md); larger ones are cut by windows into ``threads`` parts, each run on one
    intra-op thread of a thread of its own. ``calls_by_threads`` counts the calls made on each
    number of threads.

    Why parts rather than intra-op threads: the workers' OpenMP threads sleep at a barrier
    (``OMP_WAIT_POLICY=PASSIVE``, docs/operations.md), and the tiny network's every layer ends in
    one, so a second intra-op thread gained little. Parts share no barrier: the long capture's
    224 windows took 114 instead of 137 ms in TorchScript (``scripts/profile_stages.py``) and
    82 instead of 105 in ONNX Runtime, with the same probabilities to the bit
    (docs/benchmarks.md, 2026-12-06 afternoon). A window's output does not depend on the others
    in its call, but for float32 rounding where a batch of another size takes other kernels
    (up to 1.5e-6 between parts of one window and a call on two)."""

    def __init__(self, threads: int = 1, parallel_from_samples: int = 0) -> None:
        self.threads = max(1, int(threads))
        self.parallel_from_samples = int(parallel_from_samples)
        self.calls_by_threads: dict[int, int] = {}
        self._count_lock = threading.Lock()  # calls may come from several threads (a slower view's)
        self._parts: ThreadPoolExecutor | None = None

    def threads_for(self, windows, one_thread: bool = False) -> int:
        """The threads for a call on ``windows``; one where the caller asks (``one_thread``: the
        other core is busy with its own part of the same request, :class:`pdseg.pipeline.Segmenter`)
        and where there is a single window to run."""
        few = one_thread or windows.shape[0] * windows.shape[-1] < self.parallel_from_samples
        threads = 1 if few else min(self.threads, windows.shape[0])  # a part holds a window at least
        with self._count_lock:
            self.calls_by_threads[threads] = self.calls_by_threads.get(threads, 0) + 1
        return threads

    def __call__(self, windows: torch.Tensor, one_thread: bool = False) -> torch.Tensor:
        threads = self.threads_for(windows, one_thread)
        if threads == 1:
            return self.run_on_one_thread(windows, part=False)
        if self._parts is None:
            self._parts = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="network-part")
        bounds = [round(windows.shape[0] * part / threads) for part in range(threads + 1)]
        others = [self._parts.submit(self._part, windows[start:end]) for start, end in zip(bounds[1:-1], bounds[2:])]
        try:
            first = self.run_on_one_thread(windows[: bounds[1]], part=True)
        finally:
            # No part outlives the call (the caller's network lock): a failure here waits for them.
            futures.wait(others)
        return torch.cat([first] + [other.result() for other in others])

    def _part(self, windows: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # thread-local: the caller's does not reach this thread
            return self.run_on_one_thread(windows, part=True)

    def run_on_one_thread(self, windows: torch.Tensor, part: bool) -> torch.Tensor:
        """The network on ``windows`` on the calling thread, on one intra-op thread; ``part``: a
        part of a larger call."""
        raise NotImplementedError


class TorchThreads(ThreadPolicy):
    """A TorchScript network (the module BaseHandler loaded, unchanged) on threads by the
    :class:`ThreadPolicy`."""

    def __init__(self, module: torch.nn.Module, threads: int = 1, parallel_from_samples: int = 0) -> None:
        super().__init__(threads, parallel_from_samples)
        self.module = module

    def run_on_one_thread(self, windows: torch.Tensor, part: bool) -> torch.Tensor:
        # Each thread that runs the network sets its own count (a thread takes the process's
        # last setting as its default when it first uses torch, then keeps its own).
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        return self.module(windows)


class OnnxNetwork(ThreadPolicy):
    """An ONNX Runtime session called like the torch network: ``(windows, channels, width)``
    float32 tensor in, ``(windows, width)`` probabilities out.

    Every call, or part of one (:class:`ThreadPolicy`), runs on one intra-op thread, and a
    session's ``run`` may be called from several threads at once. Large calls' parts get a
    session of their own without a memory arena: it would keep every size it ever served;
    small calls, the latency-critical ones, keep theirs, which stays small."""

    def __init__(self, path: str | Path, threads: int = 1, parallel_from_samples: int = 0) -> None:
        super().__init__(threads, parallel_from_samples)
        # Both have one intra-op thread (the names are older than the parts): ``session`` serves
        # large calls' parts, ``single_thread_session`` whole calls.
        self.session = self._session(path, arena=self.parallel_from_samples <= 0)
        self.single_thread_session = (self._session(path, arena=True)
                                      if self.threads > 1 and self.parallel_from_samples > 0 else self.session)

    @staticmethod
    def _session(path: str | Path, arena: bool):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Without the arena (and its per-shape memory plans) freed buffers go back to malloc,
        # which the handler trims after large batches; with it, the worker's RSS grew by
        # ~120 MiB under the benchmark.
        options.enable_cpu_mem_arena = arena
        options.enable_mem_pattern = arena
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_on_one_thread(self, windows: torch.Tensor, part: bool) -> torch.Tensor:
        array = windows.detach().cpu().numpy().astype("float32", copy=False)
        session = self.session if part else self.single_thread_session
        return torch.from_numpy(session.run(None, {"signal": array})[0])


def load_trained(weights_dir: Path, name: str = "pd_segmenter") -> tuple[UNet1D, dict]:
    """Load the shipped state dict and its record (config, threshold, scores)."""
    record = json.loads((weights_dir / f"{name}.json").read_text())
    model = UNet1D(UNetConfig.from_dict(record["architecture"]))
    state = torch.load(weights_dir / f"{name}.state.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval(), record


def receptive_field(config: UNetConfig) -> int:
    """Samples of input that can influence one output through the convolutions alone."""
    field, scale = 1, 1
    for dilation in config.dilations:
        field += 2 * 2 * dilation * scale
        scale *= 2
    field += 2 * 2 * scale
    for _ in config.dilations:
        scale //= 2
        field += 2 * 2 * scale
    return field


def describe(config: UNetConfig, window: int = 1024) -> dict:
    model = UNet1D(config)
    return {
        "parameters": parameter_count(model),
        "flops_per_window": flops_per_window(model, window),
        "window": window,
        "receptive_field": receptive_field(config),
    }


def _cli(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Print size and cost of the model presets")
    parser.add_argument("--window", type=int, default=1024)
    args = parser.parse_args(argv)
    for name, config in PRESETS.items():
        print(name, describe(config, args.window))


if __name__ == "__main__":
    _cli()
