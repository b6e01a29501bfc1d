"""Robust statistics shared by the conditioning steps (:mod:`.preprocess`, :mod:`.tones`):
scales that a minority of pulse samples does not move."""
from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826  # the MAD of Gaussian noise times this is its rms


def mad_sigma(values: np.ndarray, centre: float | None = None) -> float:
    """The rms of Gaussian noise from the median absolute deviation: robust to a minority of
    pulse samples. ``centre`` is the values' median where the caller has it already."""
    centre = float(np.median(values)) if centre is None else centre
    return float(MAD_TO_SIGMA * np.median(np.abs(values - centre)))
