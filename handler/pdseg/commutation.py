"""Converter commutation: equal transients at the same place in every sixth of the AC cycle.

A six- or twelve-pulse converter on the same supply notches the voltage 6 or 12 times per
cycle, each notch the same, at fixed phases. Any one notch alone has a PD-like shape; what
tells the train from PD is that it is phase-locked, equal and regular (docs/model-card.md, "What
the service reports as PD"). Before the network sees a signal, this step takes out what repeats
identically in every sixth of the carrier's cycle: the median over all sixths of the capture
(6- and 12-pulse trains both repeat there). PD wanders in phase and size from cycle to cycle,
so it holds a given spot of a sixth in a minority of them and the median leaves it alone.

Nothing is removed unless the capture shows a carrier (its period comes from
:func:`pdseg.phase.fit_carrier`), holds at least :data:`MIN_SLOTS` sixths (a whole cycle),
and the median stands :data:`TEMPLATE_LEVEL` noise units out in most of them
(:data:`MIN_MATCHING_SHARE`). The carrier fit's period is up to a sample or two off at times;
over dozens of sixths that would smear the median, so the slot length is refined on the signal
itself: each sixth is lined up against the median of the first few by cross-correlation, and a
straight line through those lags gives the length. A long capture is taken in stretches of
:data:`CHUNK_SLOTS` sixths, each refined on its own.

The same median over whole cycles (``slots_per_cycle=1``, at least :data:`MIN_CYCLES` of them)
takes out what else repeats identically once a cycle: the carrier filter's residue at the
corners of a clipped or flat-topped carrier, two or four smooth bumps a cycle at fixed phases,
which a network that reports smooth pulses as PD would report (docs/model-card.md, Conditioning).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from .robust import MAD_TO_SIGMA

SLOTS_PER_CYCLE = 6
# Sixths a capture must hold for a train to be looked for: one whole cycle, the standard PD
# acquisition window, counts 5 whole sixths where the fitted period is a sample long or the
# capture a sample short. With 8 (1.3 cycles), the training generator's PD-free validation
# captures of 4,000 samples with interference got 1.55 false alarms per cycle (0.48 with 5:
# what is left is captures under one cycle, whose period is fitted less well).
MIN_SLOTS = 5
MIN_CYCLES = 6  # whole cycles, where the median is taken over cycles (4 took PD out)
# Once a cycle, PD clustered at a phase can make a median too: what is taken out there must be
# the same in most cycles, within this many noise units (rms over the median's core).
IDENTICAL_LEVEL = 2.0
TEMPLATE_LEVEL = 4.0  # noise units the median must reach somewhere ...
SUPPORT_LEVEL = 1.0  # noise units: where the median is subtracted ...
SUPPORT_MARGIN = 4  # ... widened by this many samples each side
MIN_MATCHING_SHARE = 0.6  # ... with this share of sixths holding a transient 0.5-2 times its size
FIRST_SLOTS = 16  # sixths whose median the others are lined up against
MAX_LAG = 8  # samples a sixth may lie off the carrier fit's grid
GLANCE_SLOTS = 8  # sixths of the quick look for a train
CHUNK_SLOTS = 64  # sixths per independently refined stretch of a long capture


@dataclasses.dataclass(frozen=True)
class Train:
    """A phase-locked train found in one stretch: slot length (samples) and the median slot."""
    slot: float
    template: np.ndarray

    def to_dict(self) -> dict:
        """What the answer says of it: the sixth's length and the train's largest excursion
        (input units, carrier removed)."""
        return {"samples_per_sixth": round(self.slot, 3),
                "peak": float(f"{float(np.max(np.abs(self.template))):.6g}")}

    def cycle_dict(self) -> dict:
        """The same for a pattern repeating once a cycle."""
        return {"samples_per_cycle": round(self.slot, 3),
                "peak": float(f"{float(np.max(np.abs(self.template))):.6g}")}


def _slots(filtered: np.ndarray, start: float, slot: float, count: int, order: int = 1,
           width: int | None = None) -> np.ndarray:
    """``count`` slots of ``slot`` samples from ``start``, each resampled onto ``width`` whole
    samples (``floor(slot)`` by default): ``(count, width)``."""
    width = int(slot) if width is None else width
    positions = start + np.arange(count)[:, None] * slot + np.arange(width)[None, :]
    # Only the stretch the slots cover is interpolated (the spline's prefilter runs over all it is given).
    low = max(int(np.floor(positions.min())) - 8, 0)
    high = min(int(np.ceil(positions.max())) + 9, filtered.size)
    values = ndimage.map_coordinates(filtered[low:high], [positions.ravel() - low], order=order,
                                     mode="nearest", prefilter=order > 1)
    return values.reshape(count, width)


def _refine(filtered: np.ndarray, start: float, slot: float, count: int, min_slots: int = MIN_SLOTS) -> float:
    """The slot length that lines the slots up: each slot's lag against the median slot (the
    peak of their cross-correlation, to a fraction of a sample), a straight line through the
    lags of the slots that hold the transient, twice."""
    width = int(slot)
    lags = np.arange(-MAX_LAG, MAX_LAG + 1)
    numbers = np.arange(count, dtype=np.float64)
    for _ in range(2):
        template = np.median(_slots(filtered, start, slot, min(count, FIRST_SLOTS), width=width), axis=0)
        wide = _slots(filtered, start - MAX_LAG, slot, count, width=width + 2 * MAX_LAG)
        correlation = np.stack([wide[:, MAX_LAG + lag: MAX_LAG + lag + width] @ template for lag in lags], axis=1)
        best = np.clip(np.argmax(correlation, axis=1), 1, lags.size - 2)
        rows = np.arange(count)
        left, centre, right = (correlation[rows, best - 1], correlation[rows, best], correlation[rows, best + 1])
        curvature = left - 2 * centre + right
        offset = np.divide(0.5 * (left - right), curvature, out=np.zeros(count), where=curvature < 0)
        lag = lags[best] + np.clip(offset, -0.5, 0.5)
        holds = centre > 0.5 * float(template @ template)
        if holds.sum() < max(min_slots // 2, 2):
            return slot
        slope, intercept = np.polyfit(numbers[holds], lag[holds], 1)
        near = holds & (np.abs(lag - (intercept + slope * numbers)) < 1.0)
        if near.sum() >= max(min_slots // 2, 2):
            slope = np.polyfit(numbers[near], lag[near], 1)[0]
        slot += float(slope)
    return slot


def _spread_across_slots(slots: np.ndarray, median: np.ndarray) -> float:
    """The noise level the slots show about their median: at each spot of a slot, the MAD
    across slots (sigma-scaled); the median over spots (PD in a few of them does not move it)."""
    deviation = np.median(np.abs(slots - median), axis=0) * MAD_TO_SIGMA
    return float(np.median(deviation))


def find_train(filtered: np.ndarray, scale: float, start: float, slot: float, count: int,
               min_slots: int = MIN_SLOTS, identical: bool = False) -> Train | None:
    """The phase-locked train in ``count`` slots from ``start``, or None where there is none:
    the median slot stands under :data:`TEMPLATE_LEVEL` noise units, or most slots do not hold
    a transient like it."""
    # A quick look first: over a few slots the fit's slot drifts by at most a couple of
    # samples, which halves no notch; most captures stop here.
    few = _slots(filtered, start, slot, min(count, GLANCE_SLOTS))
    glance = np.median(few, axis=0)
    # A dense train (twelve a cycle of a short cycle) fills most of the noise estimate's blocks
    # and raises it up to threefold; the spread across slots at one spot of them holds none of it.
    scale = min(scale, _spread_across_slots(few, glance))
    peak = float(np.max(np.abs(glance)))
    if peak < 0.5 * TEMPLATE_LEVEL * scale:
        return None
    # ... and at least half of those few hold one of about its size (PD bursts over a third of
    # every cycle can raise the median of a few, not make them equal).
    core = np.abs(glance) > 0.5 * peak
    size = few[:, core] @ glance[core] / float(glance[core] @ glance[core])
    if np.mean((size > 0.4) & (size < 2.5)) < 0.5:
        return None
    slot = _refine(filtered, start, slot, count, min_slots)
    slots = _slots(filtered, start, slot, count, order=3)
    template = np.median(slots, axis=0)
    peak = float(np.max(np.abs(template)))
    if peak < TEMPLATE_LEVEL * scale:
        return None
    core = np.abs(template) > 0.5 * peak
    size = slots[:, core] @ template[core] / float(template[core] @ template[core])
    if np.mean((size > 0.5) & (size < 2.0)) < MIN_MATCHING_SHARE:
        return None
    if identical:
        residual = np.sqrt(np.median((slots[:, core] - template[core]) ** 2, axis=1))
        if np.median(residual) > IDENTICAL_LEVEL * scale:
            return None
    support = ndimage.binary_dilation(np.abs(template) > SUPPORT_LEVEL * scale, iterations=SUPPORT_MARGIN)
    return Train(slot, np.where(support, template, 0.0))


def _subtract(filtered: np.ndarray, start: int, end: int, origin: float, train: Train) -> None:
    total_length = filtered.size
    """Take ``train`` out of ``filtered[start:end]`` in place, its slots counted from
    ``origin``: in each slot that holds a transient 0.5-2 times the median's where the median
    stands out (one where the converter paused keeps what it has)."""
    samples = np.arange(start, end, dtype=np.float64)
    within = (samples - origin) % train.slot
    # The median slot is a whole number of samples, a fraction short of the slot: pad it.
    periodic = np.concatenate((train.template, train.template[:3]))
    model = ndimage.map_coordinates(periodic, [within], order=3, mode="nearest")
    core = np.abs(model) > 0.5 * np.max(np.abs(train.template))
    slot_index = np.floor((samples - origin) / train.slot).astype(np.int64)
    slot_index -= int(np.floor((start - origin) / train.slot))
    part = filtered[start:end]
    shared = np.bincount(slot_index[core], weights=(part * model)[core], minlength=slot_index.max() + 1)
    own = np.bincount(slot_index[core], weights=(model * model)[core], minlength=slot_index.max() + 1)
    size = np.divide(shared, own, out=np.zeros_like(shared), where=own > 0)
    first = np.floor((start - origin) / train.slot)
    slot_start = origin + (first + np.arange(size.size)) * train.slot
    whole = (slot_start >= 0) & (slot_start + train.slot <= total_length)
    equal = ((size > 0.5) & (size < 2.0))[slot_index]
    # In a slot cut by the capture's end the carrier filter's edge has bent the notch over its
    # last samples: there a sample is only lowered, never pushed the other way.
    lowers = np.abs(part - model) < np.abs(part)
    part -= np.where(equal & (whole[slot_index] | lowers), model, 0.0)


def _min_slots(slots_per_cycle: int) -> int:
    return MIN_SLOTS if slots_per_cycle > 1 else MIN_CYCLES


def can_look(length: int, samples_per_cycle: float | None, slots_per_cycle: int = SLOTS_PER_CYCLE,
             min_slots: int | None = None) -> bool:
    """Whether a capture of ``length`` samples with this carrier period holds enough slots
    (``min_slots``; by default :data:`MIN_SLOTS` sixths, or :data:`MIN_CYCLES` cycles) for a
    train to be looked for."""
    if not samples_per_cycle:
        return False
    slot = samples_per_cycle / slots_per_cycle
    least = _min_slots(slots_per_cycle) if min_slots is None else min_slots
    return int(length // slot) >= least and int(slot) >= 2


def single_stretch(length: int, slot: float) -> bool:
    """Whether :func:`remove_commutation` takes a signal of ``length`` samples in one stretch of
    sixths of ``slot`` samples (one train from its first sixth to its last)."""
    return int(length // slot) < 2 * CHUNK_SLOTS


def remove_commutation(filtered: np.ndarray, scale: float, samples_per_cycle: float | None,
                       slots_per_cycle: int = SLOTS_PER_CYCLE) -> tuple[np.ndarray, Train | None]:
    """``filtered`` (carrier removed, noise ``scale``) with its converter commutation taken out
    (a new array) and the train found in its first stretch; ``filtered`` itself and None where
    none is found or no carrier period is known. ``slots_per_cycle`` 1: what repeats once a
    cycle instead."""
    if not can_look(filtered.size, samples_per_cycle, slots_per_cycle):
        return filtered, None
    least = _min_slots(slots_per_cycle)
    slot = samples_per_cycle / slots_per_cycle
    total = int(filtered.size // slot)
    chunks = max(1, total // CHUNK_SLOTS)
    counts = [CHUNK_SLOTS] * (chunks - 1) + [total - CHUNK_SLOTS * (chunks - 1)]
    first = find_train(filtered, scale, 0.0, slot, counts[0], least, identical=slots_per_cycle == 1)
    if first is None:
        return filtered, None
    cleaned = filtered.copy()
    bounds = [int(np.ceil(chunk * CHUNK_SLOTS * first.slot)) for chunk in range(chunks)] + [filtered.size]
    for chunk, count in enumerate(counts):
        origin = chunk * CHUNK_SLOTS * first.slot
        train = first if chunk == 0 else find_train(filtered, scale, origin, first.slot, count, least,
                                                    identical=slots_per_cycle == 1)
        if train is not None:
            _subtract(cleaned, bounds[chunk], bounds[chunk + 1], origin, train)
    return cleaned, first
