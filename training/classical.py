"""The classical baseline: the same carrier-removing high-pass, then a robust amplitude
threshold at ``k`` times the MAD-estimated noise level. What the network must beat."""
from __future__ import annotations

import numpy as np

from pdseg.preprocess import mad_sigma, remove_carrier
from pdseg.regions import DEFAULT_MIN_GAP, mask_to_regions


def detect(raw: np.ndarray, k: float, min_gap: int = DEFAULT_MIN_GAP) -> np.ndarray:
    """``(n, 2)`` [start, end) regions where the carrier-free signal exceeds ``k`` sigma."""
    filtered = remove_carrier(raw)
    sigma = mad_sigma(filtered)
    if sigma <= 0:
        sigma = float(np.finfo(np.float64).tiny)
    return mask_to_regions(np.abs(filtered) > k * sigma, min_gap=min_gap, min_length=1)
