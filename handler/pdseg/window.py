"""Cut signals into network windows and stitch the per-sample output back.

Long signals are tiled: windows of ``window`` samples whose cores (``window - 2 * context``
samples) tile the signal exactly, each flanked by ``context`` samples that only give the
network something to look at (the convolutions see about ±230 samples; the bottleneck
attention sees the whole window). Every sample is predicted once, by a window in which it sits
at least ``context`` samples from an edge: no edge artefacts, and only ``2 * context /
window`` (12.5 %) extra work instead of the 100 % of 50 % overlap.

A signal that fits, with its context, into one window of at most ``max_single`` samples gets
exactly one window, sized to it in steps of ``size_step`` (a 7,920-sample capture costs one
8,704-sample window instead of three 4,096-sample ones). Beyond the signal's ends the input is
zero, the value of a quiet, carrier-free stretch after conditioning; the pipeline shows a
signal shorter than a standard window amid its own noise instead (:meth:`WindowPlan.margins`,
``preprocess.planes_amid_own_noise``).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DEFAULT_WINDOW = 4096
DEFAULT_CONTEXT = 256
DEFAULT_MAX_SINGLE = 16384
SIZE_STEP = 512  # few distinct window sizes: batches group well, kernels are reused


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    window: int = DEFAULT_WINDOW
    context: int = DEFAULT_CONTEXT
    max_single: int = DEFAULT_MAX_SINGLE
    size_step: int = SIZE_STEP

    def __post_init__(self) -> None:
        if self.context < 0 or self.core <= 0:
            raise ValueError("need 0 <= context < window / 2")
        if self.window % self.size_step or self.max_single % self.size_step:
            raise ValueError("window and max_single must be multiples of size_step")

    @property
    def core(self) -> int:
        return self.window - 2 * self.context

    def _tiles(self, length: int) -> int:
        return max(1, -(-length // self.core))

    def width(self, length: int) -> int:
        """Window width used for a signal of ``length`` samples."""
        single = -(-(length + 2 * self.context) // self.size_step) * self.size_step
        if single <= self.max_single and single <= self._tiles(length) * self.window:
            return max(single, self.size_step)
        return self.window

    def margins(self, length: int) -> tuple[int, int] | None:
        """Samples before and after a signal of ``length`` samples in its one window; None for
        a tiled signal."""
        if self.count(length) != 1:
            return None
        return self.context, self.width(length) - self.context - length

    def count(self, length: int) -> int:
        """Windows needed for a signal of ``length`` samples (at least one)."""
        return 1 if self.width(length) != self.window else self._tiles(length)

    def cut(self, samples: np.ndarray) -> np.ndarray:
        """Windows of one signal: ``(count, width)`` for 1-D samples, ``(count, channels,
        width)`` for ``(channels, length)``."""
        length = samples.shape[-1]
        leading = samples.shape[:-1]
        width = self.width(length)
        if width != self.window or self._tiles(length) == 1:
            single = np.zeros((1, *leading, width), dtype=samples.dtype)
            single[..., self.context: self.context + length] = samples
            return single
        count = self._tiles(length)
        padded = np.zeros((*leading, self.context + count * self.core + self.context), dtype=samples.dtype)
        padded[..., self.context: self.context + length] = samples
        windows = sliding_window_view(padded, self.window, axis=-1)[..., :: self.core, :][..., :count, :]
        return np.moveaxis(windows, -2, 0)

    def stitch(self, outputs: np.ndarray, length: int) -> np.ndarray:
        """Inverse of :meth:`cut` for the network's ``(count, width)`` output (``(length,)``
        back) or ``(count, outputs, width)`` (``(outputs, length)`` back)."""
        if outputs.shape[0] == 1:
            return np.ascontiguousarray(outputs[0, ..., self.context: self.context + length])
        cores = np.moveaxis(outputs[..., self.context: self.context + self.core], 0, -2)
        return np.ascontiguousarray(cores).reshape(*cores.shape[:-2], -1)[..., :length]
