"""Robust statistics shared by the conditioning steps (:mod:`.preprocess`, :mod:`.tones`):
scales that a minority of pulse samples does not move."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

MAD_TO_SIGMA = 1.4826  # the MAD of Gaussian noise times this is its rms


def mad_sigma(values: np.ndarray, centre: float | None = None) -> float:
    """The rms of Gaussian noise from the median absolute deviation: robust to a minority of
    pulse samples. ``centre`` is the values' median where the caller has it already."""
    centre = float(np.median(values)) if centre is None else centre
    return float(MAD_TO_SIGMA * np.median(np.abs(values - centre)))


@lru_cache(maxsize=16)
def spread_positions(size: int, count: int) -> np.ndarray:
    """``count`` positions among ``size``, sorted, drawn once for each size (seeded by it, so a
    signal's result does not depend on what else was analysed) and shared read-only. Every k-th
    sample would see a tone or a carrier at a multiple of 1/k cycles per sample at one phase only."""
    positions = np.sort(np.random.default_rng(size).choice(size, count, replace=False))
    positions.setflags(write=False)  # shared by every call
    return positions
