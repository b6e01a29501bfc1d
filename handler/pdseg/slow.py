"""A slower view of a carrier-free capture, for smooth pulses wider than the network's eye.

A pulse a few tens of samples wide with no sharp edge (a UHF sensor's envelope detector, a
band-limited front end sampled fast) loses most of itself to the carrier filter, whose
baseline follows anything slower than about 0.012 cycles per sample: a Gaussian bump of 16
samples' sigma keeps 13 % of its spectrum at 0.02, reaches the network as a shallow Mexican
hat, and was found 1 time in 50 at 26 dB (docs/model-card.md, Known failure modes). The same
capture decimated by :data:`FACTOR` shows that bump with a sigma of 4 samples, a shape the
network finds, and with its noise halved by the anti-alias filter.

The view is conditioned as a signal of its own (:func:`pdseg.preprocess.condition`), and its
regions, mapped back, are added only where the capture's own view has no region within the
merge gap: it adds pulses, never moves or joins what the full-rate view found, whose ends are
finer. Only in captures whose conditioning fitted no carrier (HFCT, UHF and antenna sensors
filter it out): decimated, a 3,333-sample carrier's cycle is 833 samples, near where the
carrier filter's baseline stops following a strong one.
"""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from . import whiten

FACTOR = 4
SKIPPED_WARNING = ("the signal shows no carrier, but its slower view (smooth pulses wider than about 10 "
                   "samples) was not analysed: that would have taken the request over its work limit")
MIN_SAMPLES = 1024  # samples of the capture: shorter ones' views would be windows of under 256


CARRIER_LIMIT = 1000.0  # noise units: the most the carrier filter may take (peak to peak) for a view


def wanted(conditioned) -> bool:
    """Whether a conditioned capture (:class:`pdseg.preprocess.Conditioned`) gets a slower view:
    at least :data:`MIN_SAMPLES` long, no carrier fitted and none too short a stretch to fit
    (what the carrier filter took spans at most :data:`CARRIER_LIMIT` noise units; a 40 dB
    smooth pulse gives it 100), and no train of transients taken out (commutation, what repeats
    once a cycle, a regular train: decimated, a train is no longer the same train, and the
    view reported what the capture's own view had rightly taken out), and no wandering tone
    taken out."""
    if conditioned.length < MIN_SAMPLES or (conditioned.carrier is not None and conditioned.carrier.detected):
        return False
    if any(train is not None for train in (conditioned.commutation, conditioned.phase_locked, conditioned.regular_train)):
        return False
    # Correlated noise (asked directly: the whitened view is only looked for from 2,176 samples):
    # decimated, its slow swings stood out as pulses.
    if conditioned.whitening is not None or conditioned.view_skipped or correlated(conditioned.filtered):
        return False
    # A wandering tone near the anti-alias filter's edge comes out of it amplitude-modulated by
    # its own wander, which no step of the view takes out: 750-sample regions of noise.
    if conditioned.wandering_tones:
        return False
    taken = conditioned.raw - conditioned.filtered
    return float(np.ptp(taken)) <= CARRIER_LIMIT * conditioned.scale


def correlated(filtered: np.ndarray) -> bool:
    """Whether noise this correlated would get a whitened view (:func:`pdseg.whiten.whitening_coefficient`)."""
    return whiten.whitening_coefficient(filtered) is not None


def decimated(raw: np.ndarray) -> np.ndarray:
    """``raw`` low-passed (zero phase, FIR) and kept every :data:`FACTOR`-th sample. Beyond its
    ends the filter sees the line through them, not zeros: an offset of 50 noise units came out
    of zero padding as an edge the view reported."""
    return sps.resample_poly(np.asarray(raw, dtype=np.float64), 1, FACTOR, padtype="line")


def view_length(length: int) -> int:
    """The samples of :func:`decimated` of a capture of ``length`` samples."""
    return -(-int(length) // FACTOR)


END_SAMPLES = 16  # view samples at either end whose regions are not taken


def to_full_rate(regions: np.ndarray, view_length: int, length: int) -> np.ndarray:
    """Regions ``[start, end)`` of a view of ``view_length`` samples as regions of the capture
    of ``length`` samples, but for those within :data:`END_SAMPLES` of the view's ends: there a
    strong tone near the anti-alias filter's edge, which the line beyond an end does not hold,
    left a step the view reported (2 PD-free captures of the independent generator's 80)."""
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    inside = (regions[:, 0] >= END_SAMPLES) & (regions[:, 1] <= view_length - END_SAMPLES)
    return np.clip(regions[inside] * FACTOR, 0, length)


def as_full_rate(added: np.ndarray, probability: np.ndarray, filtered: np.ndarray,
                 view_probability: np.ndarray, view_filtered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probability and the signal a capture's answer describes, over the regions its slower
    view ``added`` (:func:`added_regions`): the view's probability and filtered signal, each of
    its samples held for :data:`FACTOR` samples, where the capture's own show next to nothing of
    such a pulse (a region scored 0.02, its peak a third of the pulse's, of the wrong sign).
    Elsewhere both are the capture's own."""
    added = np.asarray(added, dtype=np.int64).reshape(-1, 2)
    if not len(added):
        return probability, filtered
    length = filtered.size
    held_probability = np.repeat(view_probability, FACTOR)[:length]
    held_signal = np.repeat(view_filtered, FACTOR)[:length]
    probability, described = probability.copy(), filtered.copy()
    for start, end in added.tolist():
        probability[start:end] = np.maximum(probability[start:end], held_probability[start:end])
        described[start:end] = held_signal[start:end]
    return probability, described


# The view's own carrier filter echoes a loud transient: its baseline (a quintic over 151 view
# samples) holds a copy of it, 1-4 % of its height, about 75 view samples (300 samples) before
# and after it (docs/model-card.md, Known failure modes). The capture's own view has the same
# echo 75 samples off, within the loud pulse's reach; the slower view's lay in plain noise and
# was reported (a stranger's probe: ringing pulses of 300-1,000 noise units without a carrier,
# a region 296 samples before nearly every one). A view region is taken for such an echo where
# a transient ECHO_RATIO times its height stands at the echo's distance from it.
ECHO_LAG = 75  # view samples: half the carrier filter's baseline window
ECHO_REACH = 8  # view samples either side of the lag (the echo is the window's outermost taps)
ECHO_RATIO = 10.0


def without_echoes(view_regions: np.ndarray, view_filtered: np.ndarray) -> np.ndarray:
    """``view_regions`` (view samples) but those over an echo of a transient :data:`ECHO_RATIO`
    times their own peak, :data:`ECHO_LAG` (± :data:`ECHO_REACH`) view samples away."""
    view_regions = np.asarray(view_regions, dtype=np.int64).reshape(-1, 2)
    magnitude = np.abs(np.asarray(view_filtered, dtype=np.float64))
    kept = []
    for start, end in view_regions.tolist():
        own = float(magnitude[start:end].max()) if end > start else 0.0
        beside = [magnitude[max(low, 0): max(high, 0)] for low, high in
                  ((start - ECHO_LAG - ECHO_REACH, end - ECHO_LAG + ECHO_REACH),
                   (start + ECHO_LAG - ECHO_REACH, end + ECHO_LAG + ECHO_REACH))]
        loudest = max((float(part.max()) for part in beside if part.size), default=0.0)
        kept.append(not loudest >= ECHO_RATIO * own)
    return view_regions[np.asarray(kept, dtype=bool)] if kept else view_regions


def added_regions(regions: np.ndarray, view_regions: np.ndarray, min_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """``regions`` with those of ``view_regions`` (full-rate samples) that lie farther than
    ``min_gap`` samples from every one of them, in order, and the ones added."""
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    view_regions = np.asarray(view_regions, dtype=np.int64).reshape(-1, 2)
    apart = ~np.any((regions[None, :, 0] < view_regions[:, None, 1] + min_gap)
                    & (regions[None, :, 1] + min_gap > view_regions[:, None, 0]), axis=1)
    added = view_regions[apart]
    if not len(added):
        return regions, added
    joined = np.concatenate((regions, added))
    return joined[np.argsort(joined[:, 0], kind="stable")], added
