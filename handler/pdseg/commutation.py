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
:data:`CHUNK_SLOTS` sixths, each refined on its own, on :data:`CHUNK_THREADS` threads.

The same median over whole cycles (``slots_per_cycle=1``, at least :data:`MIN_CYCLES` of them)
takes out what else repeats identically once a cycle: the carrier filter's residue at the
corners of a clipped or flat-topped carrier, two or four smooth bumps a cycle at fixed phases,
which a network that reports smooth pulses as PD would report (docs/model-card.md, Conditioning).
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
from scipy import ndimage, stats

from .robust import MAD_TO_SIGMA

SLOTS_PER_CYCLE = 6
# Sixths a capture must hold for a train to be looked for: one whole cycle, the standard PD
# acquisition window, counts 5 whole sixths where the fitted period is a sample long or the
# capture a sample short. With 8 (1.3 cycles), the training generator's PD-free validation
# captures of 4,000 samples with interference got 1.55 false alarms per cycle (0.48 with 5:
# what is left is captures under one cycle, whose period is fitted less well).
MIN_SLOTS = 5
FIRST_MIN_SLOTS = 8  # as the step began (1.3 cycles), for the shipped weights' fine-tuning rows
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
# A slot of 2 or 3 samples holds no notch, and its stretches' bounds ran past the end (a review).
MIN_SLOT_SAMPLES = 4
GLANCE_SLOTS = 8  # sixths of the quick look for a train
CHUNK_SLOTS = 64  # sixths per independently refined stretch of a long capture


@dataclasses.dataclass(frozen=True)
class Train:
    """A phase-locked train found in one stretch: slot length (samples) and the median slot;
    ``alternating``: the slots of one half-cycle hold the template, those of the next its
    negative (:func:`half_cycle_signs`, from slot ``alternating - 1``), else 0."""
    slot: float
    template: np.ndarray
    alternating: int = 0
    offset: float = 0.0  # samples from the stretch's start to its first slot's (alternating trains)
    misfit: float = 0.0  # mean over the slots of their squared difference from the median slot

    def described(self, length_name: str) -> dict:
        """What the answer says of it: its slot's length under ``length_name`` and the train's
        largest excursion (input units, carrier removed)."""
        return {length_name: round(self.slot, 3), "peak": float(f"{float(np.max(np.abs(self.template))):.6g}")}

    def to_dict(self) -> dict:
        """A commutation train: the sixth's length (and, where the notches change sign with the
        half-cycle, ``"toward_zero": true``)."""
        described = self.described("samples_per_sixth")
        return described | {"toward_zero": True} if self.alternating else described

    def spacing_dict(self) -> dict:
        """A regular train at a spacing of its own (no carrier explained it)."""
        return self.described("samples_apart")

    def cycle_dict(self) -> dict:
        """A pattern repeating once a cycle."""
        return self.described("samples_per_cycle")


# Converter notches on a line voltage pull it toward zero: the three sixths of one half-cycle
# hold a notch of one sign, the next three of the other. Looked for, as such a train, only where
# the sixths hold no train of one sign (a stranger's probe: 6-10 false regions a cycle;
# docs/model-card.md, Conditioning).
HALF_CYCLE_SLOTS = 3


QUIET_SPAN = 16  # samples: where the median sixth is quietest over this many, the sixths begin
FLIP_REACH = 0.15  # of a sixth (9 degrees): how far from the carrier's zero crossing that spot may lie
REFINE_REACH = 0.05  # of the carrier fit's slot: the most the lags may move it (0.1 % is usual)
FINE_ROUNDS = 2  # rounds of the first-order refinement (the second moves it by a thousandth)
FINE_CORE = 0.1  # of the median slot's peak: where its slope is read
FINE_OUTLIER = 0.05  # samples off the lags' line, at least, for a slot to be left out of it
FINE_LEAST = 1e-3  # samples: a smaller move of the slot is not taken
# A notch in nearly every sixth: a clipped carrier's corners, which also mirror each other from
# one half-cycle to the next, lie in at most two of every three sixths.
ALTERNATING_MATCHING_SHARE = 0.9


def _half_cycle_starts(filtered: np.ndarray, scale: float, start: float, slot: float,
                       count: int, flip_at: float | None = None) -> list[tuple[float, int]]:
    """Where the sixths of an alternating train may begin, and the number of the first: the spot
    of the median sixth that is quietest, so that no notch, nor the carrier filter's echo of it
    75 samples off, straddles the flip of sign; and the numbering under which the first few
    sixths hold most of their median (one numbering a sixth off signs two of every six wrongly,
    and its median can stand as high). ``flip_at``: a sample where the line voltage crosses zero
    (the carrier fit's), where the notches change sign: the quietest spot within
    :data:`FLIP_REACH` of a sixth of it is a second candidate. None where no numbering gives a
    median of the few first sixths that could be a train (:func:`find_train`'s quick look), as
    for most captures."""
    def best_glance(begin: float, available: int) -> tuple[np.ndarray, np.ndarray, int]:
        few = _slots(filtered, begin, slot, min(available, GLANCE_SLOTS))
        signed = [few * half_cycle_signs(few.shape[0], first)[:, None] for first in range(HALF_CYCLE_SLOTS)]
        glances = [np.median(values, axis=0) for values in signed]
        held = [float(np.mean(values @ glance)) / max(float(glance @ glance), 1e-300)
                for values, glance in zip(signed, glances)]
        first = int(np.argmax(held))
        return signed[first], glances[first], first

    few, glance, _ = best_glance(start, count)
    if np.max(np.abs(glance)) < 0.5 * TEMPLATE_LEVEL * min(scale, _spread_across_slots(few, glance)):
        return []
    quiet = ndimage.uniform_filter1d(np.abs(glance), QUIET_SPAN, mode="wrap")
    shifts = [int(np.argmin(quiet))]
    if flip_at is not None:
        # Twelve notches a cycle leave a quiet spot between the two of each sixth as well, a
        # quarter-cycle from any flip: counted from there, one sixth in three held notches of
        # both signs and no train was found (a stranger's probe: 35 regions in 3 cycles). Near
        # the zero crossing is a candidate, not the rule: six notches a cycle close to it leave
        # their quiet spot further off (a review: 55-104 units left where 3-5 were).
        spots = np.arange(quiet.size, dtype=np.float64)
        apart = np.abs((spots - (flip_at - start)) % slot)
        near = int(np.argmin(np.where(np.minimum(apart, slot - apart) <= FLIP_REACH * slot, quiet, np.inf)))
        if near != shifts[0]:
            shifts.append(near)
    return [(start + shift, best_glance(start + shift, count - 1 if shift > 0 else count)[2]) for shift in shifts]


def half_cycle_signs(count: int, first: int) -> np.ndarray:
    """+1 or -1 for ``count`` sixths from the one numbered ``first``: the sign flips every
    :data:`HALF_CYCLE_SLOTS` sixths, the flip before sixth 0."""
    numbers = np.arange(first, first + count)
    return np.where((numbers // HALF_CYCLE_SLOTS) % 2 == 0, 1.0, -1.0)


def _slots(filtered: np.ndarray, start: float, slot: float, count: int, order: int = 1,
           width: int | None = None, signs: np.ndarray | None = None) -> np.ndarray:
    """``count`` slots of ``slot`` samples from ``start``, each resampled onto ``width`` whole
    samples (``floor(slot)`` by default): ``(count, width)``."""
    width = int(slot) if width is None else width
    positions = start + np.arange(count)[:, None] * slot + np.arange(width)[None, :]
    # Only the stretch the slots cover is interpolated (the spline's prefilter runs over all it is given).
    low = max(int(np.floor(positions.min())) - 8, 0)
    high = min(int(np.ceil(positions.max())) + 9, filtered.size)
    values = ndimage.map_coordinates(filtered[low:high], [positions.ravel() - low], order=order,
                                     mode="nearest", prefilter=order > 1).reshape(count, width)
    return values if signs is None else values * signs[:count, None]


def _refine(filtered: np.ndarray, start: float, slot: float, count: int, min_slots: int = MIN_SLOTS,
            signs: np.ndarray | None = None) -> float:
    """The slot length that lines the slots up: each slot's lag against the median slot (the
    peak of their cross-correlation, to a fraction of a sample), a straight line through the
    lags of the slots that hold the transient, twice."""
    width = int(slot)
    lags = np.arange(-MAX_LAG, MAX_LAG + 1)
    numbers = np.arange(count, dtype=np.float64)
    for _ in range(2):
        template = np.median(_slots(filtered, start, slot, min(count, FIRST_SLOTS), width=width, signs=signs), axis=0)
        wide = _slots(filtered, start - MAX_LAG, slot, count, width=width + 2 * MAX_LAG, signs=signs)
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


def _refine_finely(filtered: np.ndarray, start: float, slot: float, count: int,
                   signs: np.ndarray | None = None) -> float:
    """:func:`_refine`'s slot length made exact to a hundredth of a sample or better: each slot's
    lag behind the median slot to first order (its difference from the median against the
    median's slope, over where the median stands out; slots read by cubic interpolation), and a
    straight line through those lags, fitted again without the slots more than
    :data:`FINE_OUTLIER` off it (a slot cut by the carrier filter's end fit, PD on a notch).

    The cross-correlation's peak, read off three lags of linearly interpolated slots, left the
    slot 0.01-0.02 samples off: over 18 sixths of notches 500 noise units deep, the outer ones
    were subtracted 0.1-0.3 samples astray, and 4-10 units of each stood as PD (a stranger's
    probe: 11-14 regions in 3 cycles, none with the exact slot)."""
    width = int(slot)
    numbers = np.arange(count, dtype=np.float64)
    for _ in range(FINE_ROUNDS):
        slots = _slots(filtered, start, slot, count, order=3, width=width, signs=signs)
        template = np.median(slots, axis=0)
        slope = np.gradient(template)
        core = np.abs(template) > FINE_CORE * float(np.max(np.abs(template)))
        energy = float(slope[core] @ slope[core])
        if not energy > 0.0:
            return slot
        lags = -((slots[:, core] - template[core]) @ slope[core]) / energy
        size = slots[:, core] @ template[core] / max(float(template[core] @ template[core]), 1e-300)
        keep = (size > 0.5) & (size < 2.0)
        if keep.sum() < 3:
            return slot
        # The median of the pairwise slopes first: a least-squares line leans toward the outliers.
        slope_ts, intercept_ts, _, _ = stats.theilslopes(lags[keep], numbers[keep])
        off = np.abs(lags - (intercept_ts + slope_ts * numbers))
        keep &= off <= max(FINE_OUTLIER, 3.0 * MAD_TO_SIGMA * float(np.median(off[keep])))
        if keep.sum() < 3:
            return slot
        # A slot that lags its predecessor by more each time is longer than the grid's.
        slot += float(np.polyfit(numbers[keep], lags[keep], 1)[0])
    return slot


def _core_misfit(slots: np.ndarray, template: np.ndarray) -> float:
    """How far the slots lie from their median where it stands out: the median over slots of
    their squared difference there (what tells two slot lengths apart; over the whole slot the
    noise drowns it)."""
    core = np.abs(template) > FINE_CORE * float(np.max(np.abs(template)))
    return float(np.median(np.sum((slots[:, core] - template[core]) ** 2, axis=1)))


def _spread_across_slots(slots: np.ndarray, median: np.ndarray) -> float:
    """The noise level the slots show about their median: at each spot of a slot, the MAD
    across slots (sigma-scaled); the median over spots (PD in a few of them does not move it)."""
    deviation = np.median(np.abs(slots - median), axis=0) * MAD_TO_SIGMA
    return float(np.median(deviation))


def find_train(filtered: np.ndarray, scale: float, start: float, slot: float, count: int,
               min_slots: int = MIN_SLOTS, identical: bool = False, refined: bool = True,
               alternating: bool = False, flip_at: float | None = None, fine: bool = True) -> Train | None:
    """The phase-locked train in ``count`` slots from ``start``, or None where there is none:
    the median slot stands under :data:`TEMPLATE_LEVEL` noise units, or most slots do not hold
    a transient like it. ``refined`` False: the median slot one sample short where the slot is a
    hair under a whole number, as before 2026-12-06 night (the shipped weights' fine-tuning
    rows). ``alternating``: a train whose sixths change sign with the half-cycle
    (:func:`half_cycle_signs`), which half-cycle begins where as the quick look shows it best,
    near ``flip_at`` (a zero crossing of the line voltage) where that is known. ``fine``: the slot
    refined further (:func:`_refine_finely`) where ``refined``."""
    if not alternating:
        return _train_from(filtered, scale, start, slot, count, min_slots, identical, refined, fine=fine)
    trains = []
    for begin, first in _half_cycle_starts(filtered, scale, start, slot, count, flip_at):
        offset = begin - start
        fewer = count - (1 if offset > 0 else 0)  # the last sixth would run past the stretch
        if fewer >= min_slots:
            found = _train_from(filtered, scale, begin, slot, fewer, min_slots, identical, refined,
                                half_cycle_signs(fewer, first), first, offset, fine)
            if found is not None:
                trains.append(found)
    # Of two starts, the one whose signed sixths lie closest to their median.
    return min(trains, key=lambda train: train.misfit) if trains else None


def _train_from(filtered: np.ndarray, scale: float, start: float, slot: float, count: int, min_slots: int,
                identical: bool, refined: bool, signs: np.ndarray | None = None, first: int = 0,
                offset: float = 0.0, fine: bool = True) -> Train | None:
    """:func:`find_train` from ``start``, the slots multiplied by ``signs`` (an alternating train
    whose first slot is numbered ``first``, ``offset`` samples into the stretch)."""
    alternating = signs is not None
    # A quick look first: over a few slots the fit's slot drifts by at most a couple of
    # samples, which halves no notch; most captures stop here.
    few = _slots(filtered, start, slot, min(count, GLANCE_SLOTS), signs=signs)
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
    given, slot = slot, _refine(filtered, start, slot, count, min_slots, signs)
    # Lags that no train lines up moved a 64-sample window's sixth of 11.4 samples to -0.05
    # (the atlas at 40 dB, read with the sign flipped): no such train, rather than no answer.
    if not abs(slot - given) <= REFINE_REACH * given:
        return None
    accepted = _accepted(filtered, scale, start, slot, count, identical, refined, signs)
    if accepted is None:
        return None
    if refined and fine:
        # Only for a train found: on a capture of one cycle's noise its sixths of 133,333 samples
        # were read four times more (0.75 s) for none.
        finer = _refine_finely(filtered, start, slot, count, signs)
        # Kept only where it moves the slot by a thousandth of a sample or more (less drifts a
        # sixth of 64 by under 0.07 samples) and the sixths lie closer to their median for it: it
        # is right to first order only (a box notch's slope is two spikes), and a slot moved a hair
        # under a whole number reads the capture's last sixth as whole, which left 20 samples of a
        # box train's end.
        if abs(finer - slot) >= FINE_LEAST and abs(finer - given) <= REFINE_REACH * given:
            again = _accepted(filtered, scale, start, finer, count, identical, refined, signs)
            if again is not None and _core_misfit(*again) < _core_misfit(*accepted):
                slot, accepted = finer, again
    slots, template = accepted
    support = ndimage.binary_dilation(np.abs(template) > SUPPORT_LEVEL * scale, iterations=SUPPORT_MARGIN)
    misfit = float(np.mean(np.sum((slots - template) ** 2, axis=1)))
    return Train(slot, np.where(support, template, 0.0), first + 1 if alternating else 0, offset, misfit)


def _accepted(filtered: np.ndarray, scale: float, start: float, slot: float, count: int, identical: bool,
              refined: bool, signs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The slots at this slot length and their median, where they pass as a train (the median
    stands :data:`TEMPLATE_LEVEL` noise units out, enough slots hold a transient of its size, and
    with ``identical`` each about as the median); else None."""
    # Every whole sample a slot holds: a slot refined to a hair under a whole number (499.9999)
    # kept one sample less, and its subtraction read that last sample off the next notch's start.
    slots = _slots(filtered, start, slot, count, order=3, width=int(np.ceil(slot)) if refined else None, signs=signs)
    template = np.median(slots, axis=0)
    peak = float(np.max(np.abs(template)))
    if peak < TEMPLATE_LEVEL * scale:
        return None
    core = np.abs(template) > 0.5 * peak
    size = slots[:, core] @ template[core] / float(template[core] @ template[core])
    if np.mean((size > 0.5) & (size < 2.0)) < (ALTERNATING_MATCHING_SHARE if signs is not None else MIN_MATCHING_SHARE):
        return None
    if identical:
        residual = np.sqrt(np.median((slots[:, core] - template[core]) ** 2, axis=1))
        if np.median(residual) > IDENTICAL_LEVEL * scale:
            return None
    return slots, template


def _subtract(filtered: np.ndarray, start: int, end: int, origin: float, train: Train,
              refined: bool = True) -> None:
    """Take ``train`` out of ``filtered[start:end]`` in place, its slots counted from
    ``origin``: in each slot that holds a transient 0.5-2 times the median's where the median
    stands out (one where the converter paused keeps what it has). ``refined`` False: the median
    slot padded with its own first samples, as before 2026-12-06 night."""
    total_length = filtered.size
    samples = np.arange(start, end, dtype=np.float64)
    within = (samples - origin) % train.slot
    # The median slot's samples lie at 0, 1, ... and again a slot later: the whole places past its
    # end are read between those (a slot a fraction over a whole number put its start up to a
    # sample early there).
    width = train.template.size
    nodes = np.concatenate((np.arange(width, dtype=np.float64), train.slot + np.arange(4)))
    again = np.take(train.template, np.arange(4), mode="wrap")
    periodic = np.concatenate((train.template, np.interp(width + np.arange(3), nodes,
                                                         np.concatenate((train.template, again)))
                               if refined else np.take(train.template, np.arange(3), mode="wrap")))
    model = ndimage.map_coordinates(periodic, [within], order=3, mode="nearest")
    core = np.abs(model) > 0.5 * np.max(np.abs(train.template))
    slot_index = np.floor((samples - origin) / train.slot).astype(np.int64)
    slot_index -= int(np.floor((start - origin) / train.slot))
    if train.alternating:
        model = model * half_cycle_signs(int(slot_index.max()) + 1, int(np.floor((start - origin) / train.slot))
                                         + train.alternating - 1)[slot_index]
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
    return int(length // slot) >= least and int(slot) >= MIN_SLOT_SAMPLES


def single_stretch(length: int, slot: float) -> bool:
    """Whether :func:`remove_commutation` takes a signal of ``length`` samples in one stretch of
    sixths of ``slot`` samples (one train from its first sixth to its last)."""
    return int(length // slot) < 2 * CHUNK_SLOTS


def remove_commutation(filtered: np.ndarray, scale: float, samples_per_cycle: float | None,
                       slots_per_cycle: int = SLOTS_PER_CYCLE,
                       refined: bool = True, alternating: bool = False,
                       flip_at: float | None = None) -> tuple[np.ndarray, Train | None]:
    """``filtered`` (carrier removed, noise ``scale``) with its converter commutation taken out
    (a new array) and the train found in its first stretch; ``filtered`` itself and None where
    none is found or no carrier period is known. ``slots_per_cycle`` 1: what repeats once a
    cycle instead. ``refined`` False: as the shipped weights' fine-tuning rows were conditioned
    (2026-12-04, morning): trains from :data:`FIRST_MIN_SLOTS` sixths, and slots and stretches as
    before 2026-12-06 night (:func:`find_train`, :func:`_subtract`; each stretch from its
    fractional start). ``alternating``: sixths whose notches change sign with the half-cycle
    (:func:`find_train`); each stretch is looked at alone, with identical notches only;
    ``flip_at``: a sample where the line voltage crosses zero, where they change sign."""
    least = _min_slots(slots_per_cycle) if refined or slots_per_cycle == 1 else FIRST_MIN_SLOTS
    if not can_look(filtered.size, samples_per_cycle, slots_per_cycle, least):
        return filtered, None
    slot = samples_per_cycle / slots_per_cycle
    total = int(filtered.size // slot)
    chunks = max(1, total // CHUNK_SLOTS)
    counts = [CHUNK_SLOTS] * (chunks - 1) + [total - CHUNK_SLOTS * (chunks - 1)]
    identical = slots_per_cycle == 1 or alternating
    # Not once a cycle: over a few cycles the first-order line moved a good period by 0.007 samples
    # and a capture's last cycle came out a hair short of whole, whose subtraction then only
    # lowered samples (a review: 2.2 -> 5.0 units left over 10 cycles).
    fine = slots_per_cycle > 1
    first = find_train(filtered, scale, 0.0, slot, counts[0], least, identical=identical,
                       refined=refined, alternating=alternating, flip_at=flip_at, fine=fine)
    if first is None:
        return filtered, None
    cleaned = filtered.copy()
    # Each stretch starts on a whole sample, as the first does: from a fractional start its slots
    # were read between samples, which smoothed a sharp notch's edges, and its subtraction left
    # them standing (10 % of an 80-unit notch, 700 false regions in 600,000 samples).
    place = round if refined else np.ceil
    bounds = [int(place(chunk * CHUNK_SLOTS * first.slot)) for chunk in range(chunks)] + [filtered.size]
    if first.alternating and chunks > 1:
        # The stretches begin where the first begins its sixths, at the median sixth's quietest
        # spot: begun elsewhere, a notch's echo before it lay in the stretch before, whose
        # subtraction leaves a slot alone where its notch lies beyond the stretch (4 units left).
        bounds[1:-1] = [int(place(first.offset + chunk * CHUNK_SLOTS * first.slot)) for chunk in range(1, chunks)]
        counts[-1] -= 1

    def take_out(chunk: int) -> None:
        origin = bounds[chunk] if refined else chunk * CHUNK_SLOTS * first.slot
        train = first if chunk == 0 else find_train(filtered, scale, origin, first.slot, counts[chunk], least,
                                                    identical=identical, refined=refined, alternating=alternating,
                                                    flip_at=flip_at, fine=fine)
        if train is not None:
            _subtract(cleaned, bounds[chunk], bounds[chunk + 1], origin + train.offset, train, refined)

    # Once the first stretch has set the slot, each stretch reads only ``filtered`` and writes
    # only its own samples of ``cleaned``: the stretches run on CHUNK_THREADS threads, whose
    # interpolation and medians run without the GIL.
    if chunks > 1 and CHUNK_THREADS > 1:
        list(_chunk_threads().map(take_out, range(chunks)))
    else:
        for chunk in range(chunks):
            take_out(chunk)
    return cleaned, first


# Threads that a long capture's stretches are shared over: a capture with a carrier leaves the
# worker's second core idle while it is conditioned (its slower view is given up at a glance).
# The answer is the same on any number: each stretch is computed as it would be alone.
CHUNK_THREADS = 2
_chunk_pool: ThreadPoolExecutor | None = None
_chunk_pool_lock = threading.Lock()


def _chunk_threads() -> ThreadPoolExecutor:
    global _chunk_pool
    with _chunk_pool_lock:
        if _chunk_pool is None:
            _chunk_pool = ThreadPoolExecutor(max_workers=CHUNK_THREADS, thread_name_prefix="commutation")
        return _chunk_pool


# A regular train that no carrier explains: equal transients at one fixed spacing, whatever it
# is. A sensor that filters the carrier out (HFCT, UHF, antenna) still records a converter's
# notches, 6 or 12 a cycle, and a switched-mode supply or a clock puts an edge into the signal
# at its own rate; with no carrier in the capture, the step above has no period to look at, and
# every such edge was reported as PD. Here the spacing comes from the transients themselves (the
# spacing most often found between a transient and one of the next few of its size), and the
# transients on that grid must pass what PD does not: on a straight line of times within a
# fraction of a sample, and of one size (docs/model-card.md, Conditioning).
REGULAR_MIN_PULSES = 6  # transients on the grid, at least: one cycle of a six-pulse converter ...
REGULAR_LINED_UP = 4  # ... of which this many far enough from the ends to be lined up on their whole window
REGULAR_MIN_SPACING = 24  # samples: closer, a train is a tone's business (pdseg.tones)
REGULAR_NEIGHBOURS = 4  # spacings are counted between each transient and this many that follow it (PD may lie between)
REGULAR_JOIN = 8  # samples: loud samples closer than this are one transient
REGULAR_CENTRE = 2  # samples either side of a run that its energy's centre is taken over
REGULAR_FIT_ROUNDS = 8  # rounds of the grid's line, each over the transients the last one reached
REGULAR_CANDIDATES = 3  # spacings tried, the most frequent first
REGULAR_JITTER = 1.5  # samples off the grid's line, at most, for a transient to be on it ...
REGULAR_STRAY = 4.0  # ... and those of its size within this many samples count in its tests too
REGULAR_DOMINANCE = 0.5  # of the transients of its size within its span, at least, lie on the grid
REGULAR_BETWEEN = 0.5  # ... and fewer than this share of it at a half or a third of the spacing
# The tests that PD fails, as bounds that a source wandering by REGULAR_PD_JITTER samples, or
# varying in size by REGULAR_PD_SPREAD, passes by chance in at most REGULAR_PD_CHANCE of its
# captures (a chi-square bound on the rms of n transients, tighter the fewer there are), and
# never looser than REGULAR_TIMING_SPREAD and REGULAR_SIZE_SPREAD.
REGULAR_PD_JITTER = 0.5  # samples, rms
REGULAR_PD_SPREAD = 0.2  # relative, rms
REGULAR_PD_CHANCE = 0.01
REGULAR_TIMING_SPREAD = 0.35  # samples, rms about the line, lined up on their shapes
REGULAR_SIZE_SPREAD = 0.1  # relative, rms about the median size (the noise's share included: a weak train stays)
REGULAR_TRIM = 10  # one transient in this many, the farthest out, is left out of those rms (PD on a few)
REGULAR_CYCLE_MATCH = 0.02  # of a cycle: a spacing this close to whole cycles is once a cycle
REGULAR_CARRIER_PARTS = 4  # ... and up to this many a cycle, the carrier's own shape
REGULAR_EDGE = 8  # samples at either end of the median transient that must be back in the noise ...
REGULAR_EDGE_LEVEL = 2.0  # ... within this many noise units (else it is longer than its window)
REGULAR_TRAINS = 3  # trains taken out one after the other (a second supply, or what a multiple's grid left)
REGULAR_PHASE_BINS = 8  # a sharp transient sampled an eighth of a sample later is another shape ...
REGULAR_PHASE_BINS_MOST = 32  # ... and finer where there are enough transients (REGULAR_BIN_FILL a part)
REGULAR_BIN_FILL = 8
REGULAR_BIN_LEAST = 3  # ... where that many share an eighth; fewer take the median of all, moved by their own fraction
REGULAR_OWN_SHARE = 10  # members of a part from which one's own share of their median is left in
REGULAR_OWN_TIME = 0.25  # samples a transient's own time may move its median off the line's
REGULAR_MISFIT = 2.0  # noise units, rms over the median's support: a transient it leaves more of holds more (PD on it)
REGULAR_HALF_WIDTH = 64  # samples either side of a transient's centre, at most (half the spacing) ...
REGULAR_WIDE_HALF_WIDTH = 96  # ... or this many where the median transient does not fit in those
REGULAR_MAX_SHIFT = 2  # samples a transient's centre may lie off the median's


@dataclasses.dataclass(frozen=True)
class Transients:
    """The loud transients of a signal: where each is centred (samples, fractional) and its
    peak magnitude."""
    position: np.ndarray
    peak: np.ndarray


def loud_transients(filtered: np.ndarray, scale: float) -> Transients:
    """Each run of samples :data:`TEMPLATE_LEVEL` noise units out (runs closer than
    :data:`REGULAR_JOIN` samples are one): the centre of its energy, over the run and
    :data:`REGULAR_CENTRE` samples either side (to a fraction of a sample: a flat top or a
    ringing transient's two largest lobes of either sign put the largest sample anywhere among
    them), and its largest magnitude."""
    magnitude = np.abs(filtered)
    loud = np.flatnonzero(magnitude >= TEMPLATE_LEVEL * scale)
    if loud.size < REGULAR_MIN_PULSES:
        return Transients(np.zeros(0), np.zeros(0))
    starts = np.flatnonzero(np.concatenate(([True], np.diff(loud) > REGULAR_JOIN)))
    ends = np.concatenate((starts[1:], [loud.size])) - 1
    peak = np.maximum.reduceat(magnitude[loud], starts)
    first = np.maximum(loud[starts] - REGULAR_CENTRE, 0)
    last = np.minimum(loud[ends] + REGULAR_CENTRE + 1, filtered.size)
    # The samples of every span in one array (spans are a few per cent of a signal at most).
    lengths = last - first
    span_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    samples = np.repeat(first - span_starts, lengths) + np.arange(lengths.sum())
    energy = (filtered[samples] / scale) ** 2  # in noise units: no magnitude over- or underflows
    centre = np.add.reduceat(samples * energy, span_starts) / np.add.reduceat(energy, span_starts)
    return Transients(centre, peak)


def loud_count(filtered: np.ndarray, scale: float) -> int:
    """How many samples of ``filtered`` stand :data:`TEMPLATE_LEVEL` noise units out."""
    return int(np.count_nonzero(np.abs(filtered) >= TEMPLATE_LEVEL * scale))


def _spacing_candidates(found: Transients, length: int) -> list[int]:
    """Whole-sample spacings that at least :data:`REGULAR_MIN_PULSES` - 1 pairs of transients of
    one size (within a factor 2, either sign) show, the most frequent first, each after its
    whole fractions that are frequent too."""
    position, peak = found.position, found.peak
    spacings = []
    for ahead in range(1, REGULAR_NEIGHBOURS + 1):
        if position.size <= ahead:
            break
        gap = position[ahead:] - position[:-ahead]
        ratio = peak[ahead:] / peak[:-ahead]
        alike = (ratio > 0.5) & (ratio < 2.0) & (gap >= REGULAR_MIN_SPACING)
        alike &= gap <= length // (REGULAR_MIN_PULSES - 1)
        spacings.append(gap[alike])
    if not spacings:
        return []
    gaps = np.rint(np.concatenate(spacings)).astype(np.int64)
    if gaps.size < REGULAR_MIN_PULSES - 1:
        return []
    counts = np.bincount(gaps)
    near = np.convolve(counts, np.ones(3), mode="same")  # a fractional spacing splits over two bins
    frequent = []
    for spacing in np.argsort(-near, kind="stable"):
        if near[spacing] < REGULAR_MIN_PULSES - 1 or len(frequent) == REGULAR_CANDIDATES:
            break
        if all(abs(int(spacing) - other) > 2 for other in frequent):
            frequent.append(int(spacing))
    # A train at one spacing pairs as often at its multiples: its whole fractions are tried first.
    candidates = []
    for spacing in frequent:
        for fraction in range(REGULAR_NEIGHBOURS, 0, -1):
            part = int(round(spacing / fraction))
            if (part >= REGULAR_MIN_SPACING and near[part] >= REGULAR_MIN_PULSES - 1
                    and all(abs(part - other) > 2 for other in candidates)):
                candidates.append(part)
    return candidates


@dataclasses.dataclass(frozen=True)
class _Grid:
    """A line of times ``first + slot * k`` through transients of one size: which transients lie
    on it within :data:`REGULAR_JITTER` (``on_grid``), which others of their size lie within
    :data:`REGULAR_STRAY` (``strays``), and the line's place number of each transient."""
    first: float
    slot: float
    on_grid: np.ndarray
    strays: np.ndarray
    number: np.ndarray

    def times(self, numbers: np.ndarray) -> np.ndarray:
        return self.first + self.slot * numbers


# _grid's answer where transients of one size pair at the spacing but no line holds enough of them.
NO_LINE = "no line"


def _grid(found: Transients, spacing: int) -> _Grid | str | None:
    """The line through the transients of one size that lie on a grid of about ``spacing``
    samples; None where too few pair at that spacing, :data:`NO_LINE` where enough do but no
    straight line of times holds :data:`REGULAR_MIN_PULSES` of them."""
    position = found.position.astype(np.float64)
    size = found.peak
    members = np.zeros(position.size, dtype=bool)
    gaps = []
    # Each transient with those about a spacing later, however many lie between: a converter
    # notch's own side lobes and a noise bump filled the next four places of a 12-pulse train in
    # a capture shorter than a cycle, and its notches were reported as PD.
    first = np.searchsorted(position, position + spacing - 1.5, side="left")
    beyond = np.searchsorted(position, position + spacing + 1.5, side="right")
    for offset in range(int(np.max(beyond - first, initial=0))):
        early = np.flatnonzero(first + offset < beyond)
        late = first[early] + offset
        gap = position[late] - position[early]
        ratio = size[late] / size[early]
        paired = (ratio > 0.5) & (ratio < 2.0)
        members[early[paired]] = True
        members[late[paired]] = True
        gaps.append(gap[paired])
    if members.sum() < REGULAR_MIN_PULSES:
        return None
    # The loudest of them: a transient's own side lobes repeat at the same spacing.
    louder = size[members][size[members] >= np.median(size[members])]
    members &= (size > 0.5 * np.median(louder)) & (size < 2.0 * np.median(louder))
    if members.sum() < REGULAR_MIN_PULSES:
        return NO_LINE
    slot = float(np.median(np.concatenate(gaps)))
    # From the middle transient outwards: the line's slope improves as the transients it holds
    # reach farther, and a spacing a tenth of a sample off is a sample off ten transients away.
    anchor = float(np.median(position[members]))
    anchor = position[members][np.argmin(np.abs(position[members] - anchor))]
    chosen = np.zeros_like(members)
    for _ in range(REGULAR_FIT_ROUNDS):
        number = np.round((position - anchor) / slot)
        grown = members & (np.abs(position - anchor - number * slot) <= 2.0)
        if grown.sum() < REGULAR_MIN_PULSES or np.unique(number[grown]).size < grown.sum():
            return NO_LINE
        if np.array_equal(grown, chosen):
            break
        chosen = grown
        slot, anchor = np.polyfit(number[chosen], position[chosen], 1)
    number = np.round((position - anchor) / slot)
    residual = position - anchor - number * slot
    # Every transient on the grid, whatever its size: those of another size count against it.
    on_grid = np.abs(residual) <= REGULAR_JITTER
    if on_grid.sum() < REGULAR_MIN_PULSES:
        return NO_LINE
    typical = np.median(size[on_grid])
    strays = (~on_grid & (np.abs(residual) <= REGULAR_STRAY)
              & (size > 0.5 * typical) & (size < 2.0 * typical))
    return _Grid(float(anchor), float(slot), on_grid, strays, number)


def remove_regular_train(filtered: np.ndarray, scale: float, samples_per_cycle: float | None = None,
                         wide: bool = False) -> tuple[np.ndarray, list[Train]]:
    """``filtered`` with the regular trains of equal transients taken out (a new array; up to
    :data:`REGULAR_TRAINS` of them, one after the other, each kept only where it leaves fewer
    loud samples), and the trains (each one's ``slot`` its spacing, its ``template`` the median
    transient); ``filtered`` itself and no train where there is none. A train at whole cycles
    of the capture's carrier (``samples_per_cycle``), or 2-4 times a cycle, is left to the
    once-a-cycle step (:func:`remove_commutation` with ``slots_per_cycle`` 1), which takes the
    whole cycle's pattern (:func:`_carrier_shape`); one whose transients outlast their window
    (:data:`REGULAR_HALF_WIDTH`, or with ``wide`` :data:`REGULAR_WIDE_HALF_WIDTH`) is left as it
    is."""
    cleaned, trains = filtered, []
    loud = loud_count(filtered, scale)
    for _ in range(REGULAR_TRAINS):
        candidate, train = _remove_one_regular_train(cleaned, scale, samples_per_cycle, wide)
        if train is None:
            break
        left = loud_count(candidate, scale)
        if left >= loud:
            break
        cleaned, loud = candidate, left
        trains.append(train)
    return cleaned, trains


def _carrier_shape(spacing: float, samples_per_cycle: float | None) -> bool:
    """Whether ``spacing`` is whole cycles of the carrier, or a half, third or quarter of one:
    a clipped, flat-topped or triangular carrier's corners, which the once-a-cycle step takes out
    with the rest of the cycle's pattern."""
    if not samples_per_cycle:
        return False
    cycles = spacing / samples_per_cycle
    if round(cycles) >= 1 and abs(cycles - round(cycles)) < REGULAR_CYCLE_MATCH:
        return True
    per_cycle = samples_per_cycle / spacing
    return round(per_cycle) <= REGULAR_CARRIER_PARTS and abs(per_cycle - round(per_cycle)) < REGULAR_CYCLE_MATCH * per_cycle


def _remove_one_regular_train(filtered: np.ndarray, scale: float, samples_per_cycle: float | None,
                              wide: bool = False) -> tuple[np.ndarray, Train | None]:
    found = loud_transients(filtered, scale)
    if found.position.size < REGULAR_MIN_PULSES:
        return filtered, None
    # Spacings whose transients paired but failed: at a multiple, a few of them that happen to be
    # alike are no train either (PD of one source, every second or third of it).
    unequal: list[float] = []
    for spacing in _spacing_candidates(found, filtered.size):
        if any(_multiple(spacing, other) for other in unequal):
            continue
        grid = _grid(found, spacing)
        if grid is None:
            continue
        if isinstance(grid, str):
            unequal.append(float(spacing))
            continue
        if _carrier_shape(grid.slot, samples_per_cycle):
            continue
        if not _holds_the_train(found, grid):
            unequal.append(grid.slot)
            continue
        fit = _fit_transients(filtered, scale, grid, found, wide)
        if fit is None:
            continue
        if not fit.equal_and_regular():
            unequal.append(grid.slot)
            continue
        return fit.subtracted_from(filtered), Train(grid.slot, fit.template)
    return filtered, None


def _holds_the_train(found: Transients, grid: _Grid) -> bool:
    """Whether the grid's transients fill most of its places between the first and the last
    (:data:`MIN_MATCHING_SHARE`), are most of those of their size in that span
    (:data:`REGULAR_DOMINANCE`), and few of their size lie halfway or a third of the way
    between its places (a source at a whole fraction of the spacing)."""
    numbers = grid.number[grid.on_grid]
    places = numbers.max() - numbers.min() + 1
    if grid.on_grid.sum() < MIN_MATCHING_SHARE * places:
        return False
    size = float(np.median(found.peak[grid.on_grid]))
    span = found.position[grid.on_grid][[0, -1]]
    alike = ((found.peak > 0.5 * size) & (found.peak < 2.0 * size)
             & (found.position >= span[0]) & (found.position <= span[1]))
    if grid.on_grid.sum() < REGULAR_DOMINANCE * alike.sum():
        return False
    offset = (found.position[alike] - grid.first) / grid.slot
    part = offset - np.floor(offset)
    between = np.zeros(part.size, dtype=bool)
    for fraction in (1 / 3, 1 / 2, 2 / 3):
        between |= np.abs(part - fraction) * grid.slot <= REGULAR_STRAY
    return between.sum() < REGULAR_BETWEEN * grid.on_grid.sum()


def _multiple(spacing: float, of: float) -> bool:
    times = round(spacing / of)
    return times >= 2 and abs(spacing - times * of) <= 2.0 * times


def _pd_bound(spread: float, count: int, least: float) -> float:
    """The rms of ``count`` values about their fit (``count - 2`` degrees of freedom) under which
    PD spread by ``spread`` (rms) falls in only :data:`REGULAR_PD_CHANCE` of captures; ``least``
    where that is lower (a machine's train is not held to a noise it cannot beat)."""
    freedom = max(count - 2, 1)
    return min(least, spread * float(np.sqrt(stats.chi2.ppf(REGULAR_PD_CHANCE, freedom) / freedom)))


def _trimmed_rms(values: np.ndarray) -> float:
    """The rms of ``values`` less the farthest out, one in :data:`REGULAR_TRIM`."""
    kept = np.sort(np.abs(values))[: values.size - values.size // REGULAR_TRIM]
    return float(np.sqrt(np.mean(kept**2)))


def _lags(segments_at: Callable[[np.ndarray], np.ndarray], centres: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Each transient's time against ``template`` (samples): the peak of their cross-correlation
    over whole shifts of up to :data:`REGULAR_MAX_SHIFT`, then a parabola's fraction."""
    shifts = np.arange(-REGULAR_MAX_SHIFT, REGULAR_MAX_SHIFT + 1)
    correlation = np.stack([segments_at(centres + shift) @ template for shift in shifts], axis=1)
    best = np.clip(np.argmax(correlation, axis=1), 1, shifts.size - 2)
    rows = np.arange(centres.size)
    left, middle, right = correlation[rows, best - 1], correlation[rows, best], correlation[rows, best + 1]
    curvature = left - 2 * middle + right
    return shifts[best] + np.clip(np.divide(0.5 * (left - right), curvature, out=np.zeros(centres.size),
                                            where=curvature < 0), -0.5, 0.5)


def _robust_line(numbers: np.ndarray, times: np.ndarray) -> np.ndarray:
    """A straight line through ``times`` against ``numbers``, fitted again without those more
    than half a sample off it (PD riding on a transient pulls its time), at ``numbers``."""
    line = np.polyval(np.polyfit(numbers, times, 1), numbers)
    close = np.abs(times - line) <= 0.5
    if close.sum() >= REGULAR_LINED_UP and np.unique(numbers[close]).size >= 2:
        line = np.polyval(np.polyfit(numbers[close], times[close], 1), numbers)
    return line


def _segments(filtered: np.ndarray, centres: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return filtered[centres[:, None] + offsets[None, :]]


@dataclasses.dataclass(frozen=True)
class _Fit:
    """The transients of a regular train lined up on the grid's line: the whole sample nearest
    each one's time, the median transient each is taken to be (:data:`REGULAR_PHASE_BINS`),
    over which samples, and which are 0.5-2 times that size; the grid's places too near an end
    to be lined up, with each one's time, and the median of all (input units); the rms of the
    times about a line (samples) and of the sizes about their median (relative), with the
    bounds they must keep (:func:`_pd_bound`)."""
    centres: np.ndarray
    models: np.ndarray
    half: int
    support: np.ndarray
    equal: np.ndarray
    end_times: np.ndarray
    template: np.ndarray
    timing: float
    timing_bound: float
    size_spread: float
    size_bound: float

    def equal_and_regular(self) -> bool:
        return self.timing <= self.timing_bound and self.size_spread <= self.size_bound

    def subtracted_from(self, filtered: np.ndarray) -> np.ndarray:
        cleaned = filtered.copy()
        offsets = np.arange(-self.half, self.half + 1)
        # Windows do not overlap: the centres lie on the line, half a window under half the spacing.
        cleaned[self.centres[self.equal, None] + offsets] -= np.where(self.support, self.models[self.equal], 0.0)
        # A place cut by an end: the median at the line's time, lined up on what the end leaves
        # (whole samples), where it is 0.5-2 times its size there, and only where it lowers a sample.
        for time in self.end_times:
            centre = int(np.rint(time))
            model_at = ndimage.shift(self.template, time - centre, order=3, mode="nearest")
            best = None
            for shift in range(-REGULAR_MAX_SHIFT, REGULAR_MAX_SHIFT + 1):
                positions = centre + shift + offsets
                kept = (positions >= 0) & (positions < filtered.size) & self.support
                model = model_at[kept]
                own = float(model @ model)
                if own > 0:
                    shared = float(cleaned[positions[kept]] @ model)
                    if best is None or shared / np.sqrt(own) > best[0] / np.sqrt(best[1]):
                        best = (shared, own, positions[kept], model)
            if best is not None and 0.5 < best[0] / best[1] < 2.0:
                part, model = cleaned[best[2]], best[3]
                cleaned[best[2]] = np.where(np.abs(part - model) < np.abs(part), part - model, part)
        return cleaned


def _fit_transients(filtered: np.ndarray, scale: float, grid: _Grid, found: Transients,
                    wide: bool = False) -> _Fit | None:
    """The grid's transients lined up on its line; None where the median transient stands under
    :data:`TEMPLATE_LEVEL` noise units, outlasts its window (:data:`REGULAR_HALF_WIDTH` samples
    either side, then, with ``wide``, :data:`REGULAR_WIDE_HALF_WIDTH`), or most transients are not
    0.5-2 times its size.

    Each transient is placed at the line's time, not at its own: PD riding on some of them would
    pull their own times one way and into one group. Those whose line times fall within the
    same eighth of a sample (:data:`REGULAR_PHASE_BINS`) get the median of their own on whole
    samples: a fractional spacing samples a sharp transient differently from one to the next,
    and one median interpolated onto every fraction leaves half of such a transient. A
    transient that the median leaves much of (:data:`REGULAR_MISFIT`) takes no part in its
    group's median. The sums run in noise units, so that no magnitude the service accepts
    overflows or underflows them."""
    slot = grid.slot
    narrower = 0
    # A converter notch comes out of the carrier filter with side lobes 55-76 samples either side
    # (the baseline's window): where they stand at the window's edges, a wider window, once.
    for half_width in (REGULAR_HALF_WIDTH, REGULAR_WIDE_HALF_WIDTH) if wide else (REGULAR_HALF_WIDTH,):
        half = int(min(half_width, (slot - 1) // 2 - REGULAR_MAX_SHIFT))
        if half < 4 or half <= narrower:
            return None
        narrower = half
        offsets = np.arange(-half, half + 1)
        reach = half + REGULAR_MAX_SHIFT
        numbers = grid.number[grid.on_grid]
        times = grid.times(numbers)
        centres = np.rint(times).astype(np.int64)
        inside = (centres - reach >= 0) & (centres + reach < filtered.size)
        if inside.sum() < REGULAR_LINED_UP:
            return None
        centres, times, numbers = centres[inside], times[inside], numbers[inside]
        fraction = times - centres
        segments = _segments(filtered, centres, offsets) / scale
        template = np.median(segments, axis=0)
        peak = float(np.max(np.abs(template)))
        edges = np.concatenate((template[:REGULAR_EDGE], template[-REGULAR_EDGE:]))
        if peak < TEMPLATE_LEVEL:
            return None
        if np.max(np.abs(edges)) <= REGULAR_EDGE_LEVEL:
            break
    else:
        return None

    def segments_at(where: np.ndarray) -> np.ndarray:
        return _segments(filtered, where, offsets) / scale

    # Each transient's own time against the median (whole samples, then a parabola's fraction),
    # and the line through those times (the energy centres that found the grid wander with the
    # noise and with a sharp transient's sampling): the line's times place the transients, so
    # that PD riding on a few, which pulls their own times, moves none of them.
    lag = _lags(segments_at, centres, template)
    measured = centres + lag
    line = _robust_line(numbers, measured)
    timing_residual = measured - line
    centres = np.rint(line).astype(np.int64)
    fraction = line - centres
    if not np.all((centres - reach >= 0) & (centres + reach < filtered.size)):
        return None
    segments = segments_at(centres)
    template = np.median(segments, axis=0)
    peak = float(np.max(np.abs(template)))
    core = np.abs(template) > 0.5 * peak
    lag = _lags(segments_at, centres, template)
    # The median transient moved to each one's own time (within a quarter of a sample of the
    # line's, which PD riding on it does not pull further), or the median of its part of a
    # sample where enough share it, and what that leaves of each.
    predicted = fraction - np.median(fraction)
    own_time = predicted + np.clip(lag - predicted, -REGULAR_OWN_TIME, REGULAR_OWN_TIME)

    def moved(members: np.ndarray) -> np.ndarray:
        return np.stack([ndimage.shift(template, own_time[member], order=3, mode="nearest") for member in members])

    def projection(members: np.ndarray, models: np.ndarray) -> np.ndarray:
        return (np.sum(segments[members][:, core] * models[:, core], axis=1)
                / np.maximum(np.sum(models[:, core] ** 2, axis=1), 1e-12))

    bins = int(np.clip(centres.size // REGULAR_BIN_FILL, REGULAR_PHASE_BINS, REGULAR_PHASE_BINS_MOST))
    phase_bin = np.minimum(np.floor((fraction + 0.5) * bins), bins - 1).astype(np.int64)
    parts = [np.flatnonzero(phase_bin == number) for number in range(bins)]
    spread_over = ndimage.binary_dilation(np.abs(template) > SUPPORT_LEVEL, iterations=SUPPORT_MARGIN)
    misfit = np.zeros(centres.size)
    for members in parts:
        if members.size:
            first = (np.broadcast_to(np.median(segments[members], axis=0), (members.size, offsets.size))
                     if members.size >= REGULAR_BIN_LEAST else moved(members))
            left = segments[members] - projection(members, first)[:, None] * first
            misfit[members] = np.sqrt(np.mean(left[:, spread_over] ** 2, axis=1))
    models = np.empty_like(segments)
    size = np.empty(centres.size)
    for members in parts:
        if members.size == 0:
            continue
        fitting = members[misfit[members] <= REGULAR_MISFIT]
        if fitting.size < REGULAR_BIN_LEAST:
            models[members] = moved(members)
            size[members] = projection(members, models[members])
            continue
        models[members] = np.median(segments[fitting], axis=0)
        size[members] = projection(members, models[members])
        if fitting.size < REGULAR_OWN_SHARE:
            # Each one's size against the others of its part (its own would make it 1 among few).
            for member in members:
                others = fitting[fitting != member]
                if others.size >= 2:
                    reference = np.median(segments[others], axis=0)
                    size[member] = projection(np.array([member]), reference[None])[0]
    equal = (size > 0.5) & (size < 2.0)
    if np.mean(equal) < MIN_MATCHING_SHARE:
        return None
    # The tests PD fails, over the transients on the line and the strays of their size beside it.
    strays = found.position[grid.strays]
    stray_offsets = strays - grid.times(grid.number[grid.strays])
    timing_residual = np.concatenate((timing_residual, stray_offsets))
    count = timing_residual.size
    relative = size / np.median(size) - 1.0
    spread = _trimmed_rms(relative)
    end_numbers = np.arange(np.floor((-reach - grid.first) / slot), np.ceil((filtered.size + reach - grid.first) / slot) + 1)
    end_times = grid.times(end_numbers)
    end_centres = np.rint(end_times)
    near_end = ((end_centres + half >= 0) & (end_centres - half < filtered.size)
                & ~((end_centres - reach >= 0) & (end_centres + reach < filtered.size)))
    support = ndimage.binary_dilation(np.abs(template) > SUPPORT_LEVEL, iterations=SUPPORT_MARGIN)
    return _Fit(centres, models * scale, half, support, equal, end_times[near_end],
                np.where(support, template, 0.0) * scale,
                _trimmed_rms(timing_residual), _pd_bound(REGULAR_PD_JITTER, count, REGULAR_TIMING_SPREAD),
                spread, _pd_bound(REGULAR_PD_SPREAD, relative.size, REGULAR_SIZE_SPREAD))
