"""From a per-sample probability to PD regions, and what each region reports.

A region is a run of samples whose probability reaches the threshold; runs separated by fewer
than ``min_gap`` samples are one region (a pulse's ringing crosses zero, the probability can
dip for a sample or two), and runs shorter than ``min_length`` are dropped. The same rule
turns the synthetic labels into ground-truth events, so predictions and truth are comparable.
With an extent level below the threshold (hysteresis) the runs are taken at the extent level
and kept when they reach the threshold: see :func:`probability_to_regions`. The served regions'
ends are then fitted to where the signal stands out (:func:`trim_to_signal`).
"""
from __future__ import annotations

import numpy as np

DEFAULT_MIN_GAP = 8
DEFAULT_MIN_LENGTH = 2


def mask_to_regions(mask: np.ndarray, min_gap: int = DEFAULT_MIN_GAP,
                    min_length: int = DEFAULT_MIN_LENGTH) -> np.ndarray:
    """``(k, 2)`` int64 array of [start, end) runs of True in a boolean mask."""
    mask = np.asarray(mask, dtype=bool)
    if mask.size == 0 or not mask.any():
        return np.zeros((0, 2), dtype=np.int64)
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if min_gap > 0 and starts.size > 1:
        keep = (starts[1:] - ends[:-1]) >= min_gap
        starts = np.concatenate(([starts[0]], starts[1:][keep]))
        ends = np.concatenate((ends[:-1][keep], [ends[-1]]))
    long_enough = (ends - starts) >= min_length
    return np.stack((starts[long_enough], ends[long_enough]), axis=1).astype(np.int64)


def probability_to_regions(probability: np.ndarray, threshold: float,
                           min_gap: int = DEFAULT_MIN_GAP,
                           min_length: int = DEFAULT_MIN_LENGTH,
                           extent_threshold: float | None = None) -> np.ndarray:
    """Regions of one signal's probability: with ``extent_threshold`` (below ``threshold``), a
    region is a run at or above the extent level that reaches ``threshold`` somewhere
    (hysteresis). Whether there is an event and where it ends are different questions: the
    probability falls gradually along a pulse's decaying tail and only part way between two
    close pulses, so one level for both either cuts regions short and merges neighbours (a
    high level, with a merge gap wide enough to bridge the dips inside a ringing pulse) or
    reports noise (a low one). Runs that never reach ``threshold`` are not reported."""
    probability = np.asarray(probability)
    if extent_threshold is None or extent_threshold >= threshold:
        return mask_to_regions(probability >= threshold, min_gap, min_length)
    regions = mask_to_regions(probability >= extent_threshold, min_gap, min_length)
    return regions[reaches(regions, probability, threshold)]


def reaches(regions: np.ndarray, probability: np.ndarray, level: float) -> np.ndarray:
    """Boolean per region: whether its highest probability is at or above ``level``."""
    if len(regions) == 0:
        return np.zeros(0, dtype=bool)
    # One reduceat over [start, end) pairs; a sentinel sample makes ``end == length`` valid.
    padded = np.append(np.asarray(probability, dtype=np.float64), -np.inf)
    return np.maximum.reduceat(padded, np.asarray(regions).ravel())[::2] >= level


SIGNIFICANT_DIGITS = 6  # measured magnitudes: beyond this the digits are float noise


def significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (0.44477999999999973 -> 0.44478)."""
    return float(f"{value:.{digits}g}")


def wrapped_degrees(angle: float) -> float:
    """An angle in [0, 360) rounded to 0.01 degree: rounded first, then wrapped, so that 359.996
    is 0.0 and not 360.0 (a 37th bin for whoever bins by ``floor(phase / 10)``)."""
    return round(angle, 2) % 360.0


def describe_regions(regions: np.ndarray, filtered: np.ndarray, probability: np.ndarray,
                     phase_deg: np.ndarray | None = None,
                     sampling_rate_hz: float | None = None) -> list[dict]:
    """JSON-ready facts of each region, amplitudes in the input's units (carrier removed)."""
    described = []
    for start, end in regions.tolist():
        segment = filtered[start:end]
        offset = int(np.argmax(np.abs(segment)))
        peak_index = start + offset
        peak_value = float(segment[offset])
        region = {
            "start": start,
            "end": end,
            "duration": end - start,
            "peak": significant(abs(peak_value)),
            "peak_index": peak_index,
            "polarity": "positive" if peak_value >= 0 else "negative",
            "energy": significant(float(np.sum(segment**2))),
            "score": round(float(np.max(probability[start:end])), 4),
        }
        if phase_deg is not None:
            region["phase_deg"] = wrapped_degrees(float(phase_deg[peak_index]))
        if sampling_rate_hz:
            region["start_s"] = significant(start / sampling_rate_hz, 9)
            region["duration_s"] = significant((end - start) / sampling_rate_hz, 9)
        described.append(region)
    return described


# A region's ends are moved in to the outermost samples that stand at least this fraction of its
# peak out of the noise (the label rule: an event lasts while the pulse is at 10 % of its peak),
# at least FLOOR and at most CEILING noise units. An end moves by at most MOST samples, unless the
# stretch past what stands out is longer than MOST plus TAIL_RATIO times what stands out: the
# network's extent runs a few samples past a spike of one or two samples, and in band-limited
# noise it can run on for a hundred; a slow pulse's tail, which the carrier filter takes out
# (truth of 70-240 samples, 70-80 of them left standing), is within that bound and is kept.
TRIM_FRACTION = 0.1
TRIM_FLOOR = 1.0  # noise units
TRIM_CEILING = 5.0  # noise units: a weaker pulse leading a merged region keeps its samples
# (but beside a spike, a pulse under SPIKE_FLOOR goes with the rest of the spike's region)
TRIM_MOST = 8  # samples per end
TRIM_TAIL_RATIO = 2.0  # an unseen stretch longer than this many times the visible part is cut
# A spike: a region whose peak stands SPIKE_LEVEL noise units out (a loud sample, as
# transients.LEVEL) and whose samples at SPIKE_FLOOR units or more span at most SPIKE_MOST. Its
# 10 % level is about one noise unit, which the noise beside it passes every third sample, so
# the visible part ran as long as the network's extent (8-16 samples for a truth of one or two).
# Its region is those samples and up to SPIKE_PAD either side, within the region: the sample of
# its onset and what noise hides of its decay (the isolated transients' extent, added where the
# network gave no region, starts at the loud sample: pdseg.transients).
SPIKE_LEVEL = 8.0  # noise units
SPIKE_FLOOR = 3.0  # noise units: white noise passes it once in a few hundred samples
SPIKE_MOST = 2  # samples
SPIKE_PAD = 1  # samples


def trim_to_signal(regions: np.ndarray, filtered: np.ndarray, scale: float,
                   fraction: float = TRIM_FRACTION, floor: float = TRIM_FLOOR,
                   ceiling: float = TRIM_CEILING, most: int = TRIM_MOST,
                   tail_ratio: float = TRIM_TAIL_RATIO, spikes: bool = True) -> np.ndarray:
    """``regions`` with each end moved in to the outermost sample of the carrier-free signal
    ``filtered`` whose magnitude reaches ``fraction`` of the region's peak, kept between
    ``floor`` and ``ceiling`` noise units (``scale``). The network's probability spreads a few
    samples either side of a short spike, where the label of a one-sample pulse is one or two
    samples long; the signal shows where it stands out.

    An end moves by at most ``most`` samples, unless the stretch beyond the visible part (from
    the first to the last sample at the level) is longer than ``most`` plus ``tail_ratio``
    times that part: then it moves all the way in. The bound keeps the tail the network
    extends past what the carrier filter left of a slow pulse (a 100-sample decay is over
    within 80 samples of its onset after it); the exception cuts the long extent that
    band-limited noise after a short pulse draws (``[364, 412]`` for the 6-sample event
    ``[365, 370]`` becomes ``[365, 370]``). A region
    whose peak is under ``floor`` is kept as it is. Then, with ``spikes``, a spike's region
    (:data:`SPIKE_LEVEL`) becomes its samples at :data:`SPIKE_FLOOR` noise units or more and
    :data:`SPIKE_PAD` either side (:func:`spike_extent`). Only the regions' own samples are read."""
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    trimmed = regions.copy()
    for index, (start, end) in enumerate(regions.tolist()):
        segment = np.abs(filtered[start:end])
        if segment.size == 0:
            continue
        level = scale * max(floor, min(fraction * float(segment.max()) / scale, ceiling))
        above = np.flatnonzero(segment >= level)
        if above.size == 0:
            continue
        first, last = int(above[0]), int(above[-1]) + 1  # the visible part, [first, last)
        unseen_allowed = most + tail_ratio * (last - first)
        lead, tail = first, (end - start) - last
        new_start = start + (lead if lead > unseen_allowed else min(lead, most))
        new_end = end - (tail if tail > unseen_allowed else min(tail, most))
        trimmed[index] = (new_start, new_end)
        if spikes:
            trimmed[index] = spike_extent(int(new_start), int(new_end), filtered, scale)
    return trimmed


def spike_extent(start: int, end: int, filtered: np.ndarray, scale: float) -> tuple[int, int]:
    """The region [start, end) of ``filtered`` cut to its spike, where it holds one: a peak
    :data:`SPIKE_LEVEL` noise units (``scale``) out, and its samples at :data:`SPIKE_FLOOR` or
    more spanning at most :data:`SPIKE_MOST`; with up to :data:`SPIKE_PAD` samples either side
    (never past the region's ends). Any other region as it is."""
    units = np.abs(filtered[start:end]) / scale
    if units.size == 0 or not units.max() >= SPIKE_LEVEL:  # NaN: as it is
        return start, end
    standing = np.flatnonzero(units >= SPIKE_FLOOR)
    if standing[-1] + 1 - standing[0] > SPIKE_MOST:
        return start, end
    return max(start, start + int(standing[0]) - SPIKE_PAD), min(end, start + int(standing[-1]) + 1 + SPIKE_PAD)
