"""The whole analysis of a batch of signals: condition, window, infer, stitch, find regions.

The network is any callable from a ``(windows, channels, width)`` float32 tensor to
``(windows, width)`` probabilities, or ``(windows, 2, width)`` (PD, onset) for a network with
an onset head: the ONNX Runtime session in the server and in evaluation
(:class:`pdseg.model.OnnxNetwork`), the eager model in training. All windows of all signals go through it together, in chunks that bound memory.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch

from . import phase as phase_mod
from . import preprocess
from .model import UNetConfig
from .regions import (DEFAULT_MIN_GAP, DEFAULT_MIN_LENGTH, describe_regions,
                      drop_ringing_fragments, probability_to_regions, split_at_onsets)
from .window import WindowPlan

Network = Callable[[torch.Tensor], torch.Tensor]
DEFAULT_CHUNK_WINDOWS = 32  # 32 windows of 4,096 samples: ~130 k samples per forward pass


@dataclasses.dataclass
class SignalOptions:
    threshold: float | None = None
    samples_per_cycle: float | None = None
    sampling_rate_hz: float | None = None
    power_frequency_hz: float | None = None

    def period(self) -> float | None:
        if self.samples_per_cycle:
            return float(self.samples_per_cycle)
        if self.sampling_rate_hz and self.power_frequency_hz:
            return float(self.sampling_rate_hz) / float(self.power_frequency_hz)
        return None


@dataclasses.dataclass
class SignalResult:
    conditioned: preprocess.Conditioned
    probability: np.ndarray
    regions: np.ndarray  # (k, 2) [start, end)
    carrier: phase_mod.CarrierFit
    threshold: float
    options: SignalOptions
    onset: np.ndarray | None = None  # onset probability, for a network with an onset head
    extent_threshold: float | None = None  # where regions end (hysteresis); None: threshold

    def phase_deg(self) -> np.ndarray | None:
        return self.carrier.phase_deg(self.conditioned.length)

    def to_json(self, index: int) -> dict:
        length = self.conditioned.length
        regions = describe_regions(self.regions, self.conditioned.filtered, self.probability,
                                   self.phase_deg(), self.options.sampling_rate_hz)
        cycles = (length / self.carrier.samples_per_cycle) if self.carrier.samples_per_cycle else None
        stats = {
            "regions": len(regions),
            "pd_samples": int(sum(r["duration"] for r in regions)),
            "noise_scale": self.conditioned.scale,
            "max_probability": round(float(self.probability.max()), 4) if length else 0.0,
            "threshold": self.threshold,
            "extent_threshold": self.extent_threshold if self.extent_threshold is not None else self.threshold,
            "carrier": self.carrier.to_dict(),
            "cycles": None if cycles is None else round(cycles, 3),
            "regions_per_cycle": None if not cycles else round(len(regions) / cycles, 3),
        }
        return {"index": index, "length": length, "regions": regions, "stats": stats}


def split_outputs(output: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(PD probability, onset probability or None) of one signal's stitched network output."""
    return (output[0], output[1]) if output.ndim == 2 else (output, None)


class Segmenter:
    def __init__(self, network: Network, threshold: float = 0.5, plan: WindowPlan | None = None,
                 chunk_windows: int = DEFAULT_CHUNK_WINDOWS, min_gap: int = DEFAULT_MIN_GAP,
                 min_length: int = DEFAULT_MIN_LENGTH, fragment_ratio: float = 0.0,
                 fragment_reach: int = 0, onset_threshold: float = 0.0,
                 extent_threshold: float | None = None,
                 planes: tuple[str, ...] = preprocess.DEFAULT_PLANES) -> None:
        self.network = network
        self.threshold = threshold
        self.plan = plan or WindowPlan()
        self.chunk_windows = chunk_windows
        self.min_gap = min_gap
        self.min_length = min_length
        self.fragment_ratio = fragment_ratio
        self.fragment_reach = fragment_reach
        self.onset_threshold = onset_threshold
        self.extent_threshold = extent_threshold
        self.planes = tuple(planes)

    @classmethod
    def from_record(cls, network: Network, record: dict, **overrides) -> "Segmenter":
        """The segmenter a trained model's record (``pd_segmenter.json``) describes."""
        postprocess = record.get("postprocess", {})
        settings = {"threshold": float(record["threshold"]), "plan": WindowPlan(**record["window"]),
                    "min_gap": int(postprocess.get("min_gap", DEFAULT_MIN_GAP)),
                    "min_length": int(postprocess.get("min_length", DEFAULT_MIN_LENGTH)),
                    "fragment_ratio": float(postprocess.get("fragment_ratio", 0.0)),
                    "fragment_reach": int(postprocess.get("fragment_reach", 0)),
                    "onset_threshold": float(postprocess.get("onset_threshold", 0.0)),
                    "extent_threshold": (None if postprocess.get("extent_threshold") is None
                                         else float(postprocess["extent_threshold"])),
                    "planes": (UNetConfig.from_dict(record["architecture"]).input_planes
                                if "architecture" in record else preprocess.DEFAULT_PLANES)}
        return cls(network, **(settings | overrides))

    def probabilities(self, conditioned: Sequence[preprocess.Conditioned]) -> list[np.ndarray]:
        """Per-sample PD probability for each conditioned signal, ``(length,)`` (``(2, length)``:
        PD and onset, with an onset head). Windows of equal width, from all signals, go
        through the network together in chunks of about ``chunk_windows`` standard windows'
        worth of samples."""
        pieces = [self.plan.cut(item.network_input) for item in conditioned]
        outputs: list[np.ndarray] = [np.empty(0)] * len(pieces)
        by_width: dict[int, list[int]] = {}
        for index, piece in enumerate(pieces):
            by_width.setdefault(piece.shape[-1], []).append(index)
        with torch.inference_mode():
            for width, members in by_width.items():
                windows = np.concatenate([pieces[i] for i in members], axis=0)
                step = max(1, self.chunk_windows * self.plan.window // width)
                chunks = [self.network(torch.from_numpy(np.ascontiguousarray(windows[first: first + step]))).numpy()
                          for first in range(0, windows.shape[0], step)]
                results = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)
                first = 0
                for index in members:
                    count = pieces[index].shape[0]
                    outputs[index] = results[first: first + count]
                    first += count
        return [self.plan.stitch(output, item.length) for output, item in zip(outputs, conditioned)]

    def condition(self, raw: np.ndarray, option: SignalOptions | None = None) -> preprocess.Conditioned:
        """One signal conditioned for this network's input planes (a cycle difference over the
        caller's period if one is given)."""
        return preprocess.condition(raw, self.planes, option.period() if option else None)

    def analyse(self, signals: Sequence[np.ndarray],
                options: Sequence[SignalOptions] | None = None) -> list[SignalResult]:
        options = list(options) if options is not None else [SignalOptions() for _ in signals]
        conditioned = [self.condition(raw, option) for raw, option in zip(signals, options)]
        return self.finish(conditioned, self.probabilities(conditioned), options)

    def extent_for(self, threshold: float) -> float:
        """The level where regions end for a decision ``threshold``: the model's extent level,
        or the threshold itself where that is lower (a caller's low threshold is never undone)."""
        return threshold if self.extent_threshold is None else min(self.extent_threshold, threshold)

    def regions(self, probability: np.ndarray, filtered: np.ndarray,
                threshold: float | None = None) -> np.ndarray:
        """The region rules on one signal's network output (``(length,)``, or ``(2, length)``
        with an onset head): decision threshold and extent level, merge gap, shortest region,
        onset cuts, ringing fragments."""
        threshold = self.threshold if threshold is None else threshold
        extent = self.extent_for(threshold)
        probability, onset = split_outputs(probability)
        regions = probability_to_regions(probability, threshold, self.min_gap, self.min_length, extent)
        if onset is not None:
            regions = split_at_onsets(regions, probability, onset, extent, self.onset_threshold)
        return drop_ringing_fragments(regions, filtered, self.fragment_ratio, self.fragment_reach)

    def finish(self, conditioned: Sequence[preprocess.Conditioned],
               probabilities: Sequence[np.ndarray],
               options: Sequence[SignalOptions]) -> list[SignalResult]:
        results = []
        for item, probability, option in zip(conditioned, probabilities, options):
            threshold = self.threshold if option.threshold is None else float(option.threshold)
            regions = self.regions(probability, item.filtered, threshold)
            probability, onset = split_outputs(probability)
            carrier = item.carrier or phase_mod.fit_carrier(item.raw, item.filtered, item.scale,
                                                            option.period())
            results.append(SignalResult(item, probability, regions, carrier, threshold, option, onset,
                                        self.extent_for(threshold)))
        return results
