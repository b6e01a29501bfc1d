"""Far context: what a very loud transient does to the network's answer away from it.

The network's bottleneck attention sees its whole window (4,096 samples, or up to 16,384 for a
signal that fits one window). A transient far louder than the pulses it was trained on (a
10,000-noise-unit discharge, a step of the carrier's amplitude) draws that attention and the
network's probability falls everywhere else in the window: in a 14,000-sample capture, 30 dB
pulses 3,000 samples and more away from such a pulse were found 7 times in 33, with their own
input unchanged (a stranger's probe, docs/model-card.md, Inference: far context).

So where a window holds input over :data:`LOUD_INPUT`, it goes through the network a second time
with that plane limited to it, and the signal's probability is taken from that second pass except
within :data:`NEAR` samples of a loud transient's stretch (its samples that stand out, ringing
included). There the network's own view of the loud transient stands: a burst's pulses are told
from their ringing by how loud each is (with the input limited, the real captures' bursts became
one region each).

A transient that is loud itself gets no help from that: in the real captures, lone wavelets of
hundreds of noise units 2,500 samples after a burst a hundred times louder got no region. Where a
signal holds loud samples, windows of :data:`NEAR_WINDOW` samples around them go through the
network as well, seeing no more than :data:`NEAR_CONTEXT` samples beyond their cores, and the
regions they find are added where they hold a loud sample that no region comes near, beside
another transient :data:`DOMINANCE` times louder, away from an ADC's rails, in signals that no
train was taken out of (:func:`near_regions`, :func:`off_the_rails`, :func:`took_out_a_train`).
"""
from __future__ import annotations

import numpy as np

from .regions import mask_to_regions
from .window import WindowPlan

# The compressed signal plane (asinh of noise units, pdseg.preprocess.compress) over this is loud:
# asinh(74) = 5, about 37 dB. At 6 (201 units), 22-23 of the 33 pulses above were found; at 7
# (548 units), 8-11.
LOUD_INPUT = 5.0
SIGNAL_PLANE = 0  # pdseg.preprocess.PLANES: "signal" first
# Half the network's receptive field (465 samples for the shipped `tiny`, pdseg.model.receptive_field),
# rounded up: beyond it the limited samples reach the output only through the attention.
NEAR = 256


def loud_windows(windows: np.ndarray) -> np.ndarray:
    """Which of ``windows`` (``(count, channels, width)`` network input) hold a loud sample."""
    return np.any(np.abs(windows[:, SIGNAL_PLANE, :]) > LOUD_INPUT, axis=-1)


def calmed(windows: np.ndarray) -> np.ndarray:
    """``windows`` with their signal plane limited to :data:`LOUD_INPUT` (a new array)."""
    limited = np.array(windows, copy=True)
    np.clip(limited[:, SIGNAL_PLANE, :], -LOUD_INPUT, LOUD_INPUT, out=limited[:, SIGNAL_PLANE, :])
    return limited


# A loud transient's own stretch: the samples standing STANDING noise units out (asinh 4 on the
# plane) that follow each other within JOIN samples, from a loud one on. A loud pulse's ringing
# that runs on under the loud level is its own: judged by the calmed pass, which sees the pulse
# held at 74 units, a 1,000-unit oscillation decaying over 300-600 samples got a second region
# from where the near zone ended (a review's probe). White noise passes 4 units once in 16,000
# samples, so the stretch ends soon after the transient does.
STANDING = float(np.arcsinh(4.0))
JOIN = 32


def near_loud(planes: np.ndarray, reach: int = NEAR) -> np.ndarray:
    """Samples of a signal (its ``(channels, length)`` network input) within ``reach`` of the
    stretch of a loud transient (its samples that stand out, joined, see :data:`STANDING`)."""
    loud = np.flatnonzero(np.abs(planes[SIGNAL_PLANE]) > LOUD_INPUT)
    if loud.size == 0:
        return np.zeros(planes.shape[-1], dtype=bool)
    stretches = transient_stretches(planes)  # every loud sample is in one
    holding = np.zeros(len(stretches), dtype=bool)
    holding[np.searchsorted(stretches[:, 0], loud, side="right") - 1] = True
    return within(stretches[holding], reach, planes.shape[-1])


def transient_stretches(planes: np.ndarray) -> np.ndarray:
    """``(k, 2)`` [start, end) stretches of a signal's transients (its network input): samples
    standing :data:`STANDING` out, joined as the region rules join runs, closer than :data:`JOIN`."""
    return mask_to_regions(np.abs(planes[SIGNAL_PLANE]) > STANDING, min_gap=JOIN, min_length=1)


def within(intervals: np.ndarray, reach: int, length: int) -> np.ndarray:
    """Which of ``length`` samples lie within ``reach`` of one of ``intervals`` (``(k, 2)`` [start, end))."""
    intervals = np.asarray(intervals, dtype=np.int64).reshape(-1, 2)
    steps = np.zeros(length + 1, dtype=np.int64)
    np.add.at(steps, np.clip(intervals[:, 0] - reach, 0, length), 1)
    np.add.at(steps, np.clip(intervals[:, 1] + reach, 0, length), -1)
    return np.cumsum(steps[:-1]) > 0


def blended(own: np.ndarray, calm: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """The probability ``own`` near a signal's loud transients (:func:`near_loud`; ``planes``,
    its network input) and ``calm`` elsewhere; ``own`` itself where the signal has no loud sample."""
    near = near_loud(planes)
    if not near.any() or near.all():
        return own
    return np.where(near, own, calm)


# A second look with near context only. In the real captures the network's answer over a
# burst's loud wavelets (480-1,500 noise units, flat signal either side) fell under the decision
# threshold because of bursts 2,500 samples and more away in the same window (ten wavelets of the
# third capture got no region; the same samples from 3,500 on got one each; a stranger's probe,
# docs/model-card.md, Inference: near context). Windows of NEAR_WINDOW samples see no further
# than NEAR_CONTEXT past their cores, which is what the calmed pass cannot give a transient that is
# loud itself. Over whole captures such windows are worse, not better: they join a burst's
# pulses into one region, as the network does when it cannot see the burst's louder members.
# So they only add regions: one that holds a loud sample that no region holds or comes within the
# merge gap of, and that comes within it of none.
NEAR_WINDOW = 1024
NEAR_CONTEXT = 256
# Shorter signals: their one window (pdseg.window.WindowPlan.width) holds hardly more context.
NEAR_MIN_SIGNAL = 2048
NEAR_PLAN = WindowPlan(window=NEAR_WINDOW, context=NEAR_CONTEXT, max_single=NEAR_WINDOW)


def near_tiles(planes: np.ndarray, reach: int) -> np.ndarray:
    """Indices of the :data:`NEAR_PLAN` windows of a signal (its ``(channels, length)`` network
    input) whose cores hold a loud sample, and of their neighbours, in runs of adjacent windows of
    which a loud sample has a sample :data:`DOMINANCE` times louder within ``reach`` of the run
    (:func:`dwarfed`); none for a signal under :data:`NEAR_MIN_SIGNAL` samples."""
    signal = planes[SIGNAL_PLANE]
    if signal.size < NEAR_MIN_SIGNAL:
        return np.zeros(0, dtype=np.int64)
    magnitude = np.abs(signal)
    tiles = np.unique(np.flatnonzero(magnitude > LOUD_INPUT) // NEAR_PLAN.core)
    if not tiles.size:
        return tiles
    # ... and their neighbours: a wavelet's region ran to the end of its loud samples' core and
    # stopped there while its next, quieter, swings went on (a review's probe: 25 samples of 37-40).
    last = (signal.size - 1) // NEAR_PLAN.core
    tiles = np.unique(np.clip(np.concatenate((tiles - 1, tiles, tiles + 1)), 0, last))
    runs = np.split(tiles, np.flatnonzero(np.diff(tiles) > 1) + 1)
    # A region's ends are fitted to the signal, a few samples past the run's cores at most.
    kept = [run for run in runs if dwarfed(magnitude, run[0] * NEAR_PLAN.core,
                                           min(signal.size, (run[-1] + 1) * NEAR_PLAN.core), reach + JOIN)]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def dwarfed(compressed: np.ndarray, start: int, end: int, reach: int) -> bool:
    """Whether a loud sample of ``[start, end)`` has a sample :data:`DOMINANCE` times louder (in
    noise units; a hundredth less, for the float32 planes) within ``reach`` of that stretch, on a
    signal plane's magnitude ``compressed`` (asinh of noise units).

    A region found on the near windows lies within one run of adjacent ones (their probability is
    zero elsewhere), and :func:`near_regions` adds it only beside a transient that many times its
    peak within ``reach`` of it: a run whose quietest loud sample has none within ``reach`` of the
    run adds nothing. A train of equal pulses over a whole capture (1.5 million samples, the work
    limit's most regions) spent 0.8 s of near windows for none."""
    stretch = compressed[start:end]
    quietest = float(np.min(stretch[stretch > LOUD_INPUT]))
    loudest = float(np.max(compressed[max(0, start - reach): end + reach]))
    return bool(np.sinh(loudest) >= 0.99 * DOMINANCE * np.sinh(quietest))


def near_probability(outputs: np.ndarray, tiles: np.ndarray, length: int) -> np.ndarray:
    """A signal's probability from the network's ``outputs`` over its :data:`NEAR_PLAN` windows
    ``tiles``; zero over the cores of the others."""
    probability = np.zeros(length, dtype=np.float32)
    core = NEAR_PLAN.core
    for tile, output in zip(tiles.tolist(), outputs):
        first = tile * core
        last = min(length, first + core)
        probability[first:last] = np.reshape(output, -1)[NEAR_CONTEXT: NEAR_CONTEXT + last - first]
    return probability


def unheld(planes: np.ndarray, regions: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Loud samples of a signal (its network input) that no region holds or comes within ``gap``
    of, and the samples within ``gap`` of a region."""
    held = within(regions, gap, planes.shape[-1])
    return (np.abs(planes[SIGNAL_PLANE]) > LOUD_INPUT) & ~held, held


def took_out_a_train(conditioned) -> bool:
    """Whether conditioning took a phase-locked or regular train out of the signal (converter
    commutation, what repeats once a cycle, a regular train of its own): what is left of it at its
    slots can stand hundreds of noise units out, and only the network's whole window tells that
    residue from PD (the near windows reported 4-9 such regions in one of the training generator's
    PD-free captures with converter notches). Such a signal gets no near look."""
    return any(train is not None for train in (conditioned.commutation, conditioned.phase_locked,
                                                   conditioned.regular_train))


# ... and only beside another transient DOMINANCE times louder within the network's window
# (``reach``; not the one whose stretch, ringing included, the region lies in): what the network's
# own pass weighed against it. A very loud pulse's ringing stays over the loud level past the
# pulse's own region, and near windows of 512-sample cores reported it as 3-5 regions more (a
# review's probe: 1e4-1e5 units decaying over 300-600 samples). Where nothing dwarfs a loud
# transient, the own pass had the whole window to judge it, and its doubt stands: the near windows
# reported a train of equal transients of 135-175 noise units that the own pass left as a
# converter's (9 regions in one of the training generator's PD-free captures with interference)
# and an overdriven ADC's corners of about 95 units (0.25 -> 2.19 regions per 10,000 samples,
# scripts/overdriven_adc.py).
DOMINANCE = 10.0


def near_regions(found: np.ndarray, regions: np.ndarray, planes: np.ndarray, gap: int,
                 filtered: np.ndarray, reach: int) -> np.ndarray:
    """Of the regions ``found`` on a signal's near probability, those that hold a loud sample no
    one of ``regions`` holds (:func:`unheld`), come within ``gap`` of none of them, and have a
    transient :data:`DOMINANCE` times their peak (``filtered``, the signal) within ``reach``."""
    found = np.asarray(found, dtype=np.int64).reshape(-1, 2)
    if not len(found):
        return found
    loose, held = unheld(planes, regions, gap)
    magnitude = np.abs(filtered)
    length = magnitude.size
    # Each sample's stretch (0: none): a transient's own ringing is no other transient.
    number = np.zeros(length, dtype=np.int64)
    for label, (first, last) in enumerate(transient_stretches(planes).tolist(), start=1):
        number[first:last] = label
    keep = []
    for index, (start, end) in enumerate(found.tolist()):
        if not loose[start:end].any() or held[start:end].any():
            continue
        first, last = max(0, start - reach), min(length, end + reach)
        own = np.unique(number[start:end])
        others = ~np.isin(number[first:last], own[own > 0])
        if np.any(magnitude[first:last][others] >= DOMINANCE * magnitude[start:end].max()):
            keep.append(index)
    return found[keep]


def scored(probability: np.ndarray, near: np.ndarray, regions: np.ndarray, threshold: float) -> np.ndarray:
    """``probability`` with the near probability over each of ``regions`` that it never brings to
    ``threshold`` and the near one does (the regions :func:`near_regions` added): their score is
    the look that found them."""
    probability = np.asarray(probability)
    changed = None
    for start, end in np.asarray(regions, dtype=np.int64).reshape(-1, 2).tolist():
        if end > start and probability[start:end].max() < threshold <= near[start:end].max():
            changed = probability.copy() if changed is None else changed
            changed[start:end] = np.maximum(probability[start:end], near[start:end])
    return probability if changed is None else changed


def off_the_rails(added: np.ndarray, rails: np.ndarray | None, gap: int) -> np.ndarray:
    """``added`` less the regions within ``gap`` of an ADC's rails (``rails``, from
    :func:`pdseg.preprocess.rail_samples`; None: the signal has none). The corners where an
    overdriven capture enters and leaves its rails stand about 95 noise units out; beside loud PD
    the near windows reported them (a review's probe: 5 -> 13 regions over three captures at 1.5
    times full scale with ten pulses of 3,000 units), as the network's own pass does not."""
    if rails is None or not len(added):
        return added
    near_rails = within(mask_to_regions(rails, min_gap=0, min_length=1), gap, rails.size)
    return added[[not near_rails[start:end].any() for start, end in np.asarray(added).tolist()]]
