"""A second look, with the signal negated, at loud samples the network left undecided.

The conditioning is exactly odd (the planes of a negated signal are the negated planes), but
the network is not: it gives a one-sample spike of one polarity far less than the same spike
of the other (at 20 dB, probability 0.95 or more for 65 % of positive one-sample spikes and
9 % of negative ones; docs/model-card.md, Known failure modes, "One-sample spikes"). Where a
sample of a short transient stands :data:`LOOK_LOUD` noise units out, away from the regions
the network reported, and its probability stays under the decision threshold within
:data:`UNDECIDED_REACH` samples, the network looks again at the negated signal; where that
look decides for PD within :data:`LOOK_REACH` samples of such a sample, it counts. Everywhere
else the first look stands. Averaged over both polarities everywhere, the network's answer
would cost twice the time; their maximum everywhere raised the false alarms on the training
generator's PD-free validation captures with interference from 0.083 to 0.130 per cycle
(docs/model-card.md).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

LOOK_LOUD = 10.0  # noise units a sample stands out by, to be looked at again
UNDECIDED_REACH = 8  # samples either side in which the first look stayed under the threshold
LOOK_REACH = 1  # samples either side of a looked-at sample where the second look counts
# Only short transients: at most SHORT_MOST samples within SHORT_REACH either side stand half
# LOOK_LOUD out. The ringing of real captures' bursts is loud for many samples; looked at
# again, their captures cost half as much CPU more and got regions the first look gave 0.0.
SHORT_REACH = 16
SHORT_MOST = 8


def undecided_loud_samples(filtered: np.ndarray, scale: float, probability: np.ndarray,
                           threshold: float) -> np.ndarray:
    """Indices of the samples of ``filtered`` at least :data:`LOOK_LOUD` noise units
    (``scale``) out, in either direction, in a short transient (:data:`SHORT_MOST`), with no
    probability at or above ``threshold`` within :data:`UNDECIDED_REACH` samples."""
    loud = np.abs(filtered) >= LOOK_LOUD * scale
    if not loud.any():
        return np.zeros(0, dtype=np.int64)
    undecided = ndimage.maximum_filter1d(probability, 2 * UNDECIDED_REACH + 1, mode="constant") < threshold
    half_loud = (np.abs(filtered) >= 0.5 * LOOK_LOUD * scale).astype(np.float64)
    span = 2 * SHORT_REACH + 1
    short = ndimage.uniform_filter1d(half_loud, span, mode="constant") * span <= SHORT_MOST + 0.5
    return np.flatnonzero(loud & undecided & short)


def away_from(samples: np.ndarray, regions: np.ndarray, gap: int) -> np.ndarray:
    """The sorted ``samples`` not within ``gap`` samples of any of ``regions`` (``(k, 2)``
    [start, end), sorted, as :func:`pdseg.regions.probability_to_regions` gives them): with
    the merge gap there, a decision would only move a reported region's end, and in real
    captures' bursts nearly every loud sample would be looked at again."""
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    if samples.size == 0 or len(regions) == 0:
        return samples
    # The last region whose widened start is at or before each sample; regions are at least
    # the merge gap apart, so a sample past its widened end is clear of every region.
    last = np.searchsorted(regions[:, 0] - gap, samples, side="right") - 1
    clear = (last < 0) | (samples >= regions[np.maximum(last, 0), 1] + gap)
    return samples[clear]


def windows_holding(samples: np.ndarray, core: int, count: int) -> np.ndarray:
    """The tiled windows (of ``count``, each predicting ``core`` samples) that predict the
    samples within :data:`LOOK_REACH` of ``samples``."""
    reach = np.concatenate([samples + offset for offset in range(-LOOK_REACH, LOOK_REACH + 1)])
    return np.unique(np.clip(reach // core, 0, count - 1))


def second_look(probability: np.ndarray, negated: np.ndarray, samples: np.ndarray,
                threshold: float) -> np.ndarray:
    """``probability`` raised to the negated signal's ``negated`` probability where that
    reaches ``threshold`` within :data:`LOOK_REACH` samples of ``samples`` (the looked-at
    samples); elsewhere unchanged. Only a decision counts: the second look's lower values
    joined the regions of dense real bursts across their quieter stretches (real capture 0:
    22 regions became 13)."""
    if samples.size == 0:
        return probability
    near = np.zeros(probability.size, dtype=bool)
    near[samples] = True
    if LOOK_REACH:
        near = ndimage.binary_dilation(near, iterations=LOOK_REACH)
    return np.where(near & (negated >= threshold), np.maximum(probability, negated), probability)


SKIPPED_WARNING = ("some loud samples the network left undecided were not looked at again with the "
                   "signal negated: that would have taken the request over its work limit")
