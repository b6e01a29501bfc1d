"""Isolated short transients that stand far out of the noise floor, reported whatever the
network says of them.

What the service reports as PD is every transient that stands out of the noise floor and is
not explained by the capture's stationary or phase-locked interference (docs/model-card.md).
By the time this step runs the carrier, the stationary tones and the converter commutation are
out of the signal, and its noise scale is known. The network decides nearly every pulse, but it
leaves some of the shortest under its threshold even far above the floor: at 20 dB it gave 0.95
or more to 65 % of positive one-sample spikes and 9 % of negative ones (the model card's
"One-sample spikes"). A sample :data:`LEVEL` noise units out, in a transient short enough that
no pulse's ringing or a burst explains it (:func:`short`), outside every reported region,
becomes a region of its own, or joins the region within the merge gap of it. On the validation
splits this found as much as a second pass of the network over the negated signal did, at no
network cost, and added no region on any PD-free capture (docs/model-card.md, Inference).
Until 2026-12-07 a loud sample within the merge gap of a region was left to that region, whose
end the network had drawn short of it: a spike of 25 noise units 8-25 samples from one of 60-100
was then in no region (in 16 of 40 draws).
"""
from __future__ import annotations

import numpy as np

from .regions import mask_to_regions

# Noise units a sample stands out by. White Gaussian noise reaches 8 of its sigmas about once
# in 10^15 samples; 7 added no false region on the validation splits either (and found a little
# more: atlas at 20 dB 0.922 against 0.920), 10 found less (0.909). 8 keeps a margin for noise
# with heavier tails than the generators draw.
LEVEL = 8.0
# A capture on an ADC grid whose noise stays under half a step is scaled by that half step
# (preprocess.noise_floor), which its noise never reaches: there a spike of 4 steps reads 7.8
# units after the carrier filter, just under LEVEL. Rounded noise keeps the floor up to about
# 0.45 steps, so 4 steps is 8.9 or more of its sigmas, and a noise sample rounds to 4 steps only
# from 3.5, 7.8 sigmas. A sample QUANTUM_LEVEL steps out is loud there (4 on an integer grid).
QUANTUM_LEVEL = 3.5
# Short: at most SHORT_MOST samples within SHORT_REACH either side stand at half the sample's
# magnitude or more. What the removal of converter commutation leaves of its notches (about 20
# samples at 5-9 units) and the ringing of real bursts are longer; with 6 samples, such
# leftovers became regions on the training generator's PD-free validation captures with
# interference: 0.083 -> 0.101 false alarms per cycle.
SHORT_REACH = 16
SHORT_MOST = 4
SHORT_CHUNK = 65_536  # samples judged at once
# A region runs over the samples next to the loud one that stand at least EXTENT_FRACTION of its
# level and EXTENT_FLOOR noise units out (noise alone passes 2.5 units once in 80 samples), and
# at least EXTENT_LEAST samples past it: a pulse decays after its peak, and its label runs on to
# where its envelope falls to a tenth, which the samples after a spike cannot show in noise
# (samples before it as well: 0.002-0.003 less F1 on two validation tiers).
EXTENT_FRACTION = 0.25
EXTENT_FLOOR = 2.5
EXTENT_LEAST = 1


def loud_level(scale: float, quantum: float = 0.0) -> float:
    """How far out, in the signal's units, a sample is loud: :data:`LEVEL` noise units, or
    :data:`QUANTUM_LEVEL` ADC steps where the scale is the floor of half a step ``quantum``."""
    # The floor is the same float 0.5 * quantum (preprocess.noise_floor), so no tolerance.
    if quantum > 0.0 and scale <= 0.5 * quantum:
        return QUANTUM_LEVEL * quantum
    return LEVEL * scale


def loud_samples(filtered: np.ndarray, scale: float, quantum: float = 0.0) -> np.ndarray:
    """Indices of the samples of ``filtered`` at least :func:`loud_level` out, in either direction."""
    return np.flatnonzero(np.abs(filtered) >= loud_level(scale, quantum))


def short(filtered: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Which of ``samples`` belong to a short transient: at most :data:`SHORT_MOST` samples
    within :data:`SHORT_REACH` either side stand at half its magnitude or more. Half its own,
    not half the level: beside a spike 100 noise units out, what a tone's removal leaves at
    4-7 units does not make it long."""
    if samples.size == 0:
        return np.zeros(0, dtype=bool)
    magnitude = np.pad(np.abs(filtered), SHORT_REACH)
    windows = np.lib.stride_tricks.sliding_window_view(magnitude, 2 * SHORT_REACH + 1)
    result = np.zeros(samples.size, dtype=bool)
    # In chunks: a signal that is loud everywhere would otherwise copy 33 values per sample.
    for first in range(0, samples.size, SHORT_CHUNK):
        chosen = samples[first: first + SHORT_CHUNK]
        counts = np.count_nonzero(windows[chosen] >= 0.5 * magnitude[chosen + SHORT_REACH, None], axis=1)
        result[first: first + SHORT_CHUNK] = counts <= SHORT_MOST
    return result


def away_from(samples: np.ndarray, regions: np.ndarray, gap: int) -> np.ndarray:
    """The sorted ``samples`` not within ``gap`` samples of any of ``regions`` (``(k, 2)``
    [start, end), sorted and at least ``gap`` apart, as the region rules give them)."""
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    if samples.size == 0 or len(regions) == 0:
        return samples
    # The last region whose widened start is at or before each sample; regions are at least
    # the gap apart, so a sample past its widened end is clear of every region.
    last = np.searchsorted(regions[:, 0] - gap, samples, side="right") - 1
    clear = (last < 0) | (samples >= regions[np.maximum(last, 0), 1] + gap)
    return samples[clear]


def extent(units: np.ndarray, sample: int) -> tuple[int, int]:
    """[start, end) of the transient around ``sample`` in ``units`` (|signal| in noise units):
    the neighbours at :data:`EXTENT_FRACTION` of its level and :data:`EXTENT_FLOOR` out, within
    :data:`SHORT_REACH`, and at least :data:`EXTENT_LEAST` samples after it."""
    level = max(EXTENT_FLOOR, EXTENT_FRACTION * float(units[sample]))
    first = max(0, sample - SHORT_REACH)
    last = min(units.size, sample + SHORT_REACH + 1)
    below = np.flatnonzero(units[first: sample] < level)
    start = first + (int(below[-1]) + 1 if below.size else 0)
    below = np.flatnonzero(units[sample + 1: last] < level)
    end = sample + 1 + (int(below[0]) if below.size else last - sample - 1)
    return start, min(units.size, max(end, sample + 1 + EXTENT_LEAST))


def isolated_transients(filtered: np.ndarray, scale: float, reported: np.ndarray,
                        quantum: float = 0.0) -> np.ndarray:
    """``(k, 2)`` [start, end) regions of the short transients of ``filtered`` that stand
    :func:`loud_level` out outside every region of ``reported``."""
    if scale <= 0 or filtered.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    samples = away_from(loud_samples(filtered, scale, quantum), reported, 0)
    samples = samples[short(filtered, samples)]  # most signals have no candidate left here
    if samples.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    units = np.abs(filtered) / scale
    return np.array([extent(units, sample) for sample in samples.tolist()], dtype=np.int64).reshape(-1, 2)


def with_isolated_transients(reported: np.ndarray, filtered: np.ndarray, scale: float, gap: int,
                             quantum: float = 0.0) -> np.ndarray:
    """``reported`` regions with the isolated transients of ``filtered`` added, regions closer
    than ``gap`` joined as the region rules join them (a transient beside a region joins it);
    ``quantum``: the capture's ADC step."""
    reported = np.asarray(reported, dtype=np.int64).reshape(-1, 2)
    found = isolated_transients(filtered, scale, reported, quantum)
    if len(found) == 0:
        return reported
    mask = np.zeros(filtered.size, dtype=bool)
    for start, end in np.concatenate((reported, found)).tolist():
        mask[start:end] = True
    return mask_to_regions(mask, min_gap=gap, min_length=1)
