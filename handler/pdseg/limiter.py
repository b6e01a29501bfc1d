"""A carrier clipped flat by a limiter: its plateaus put back on the carrier's course before
the carrier filter.

A limiter (or an amplifier driven into saturation) ahead of the digitiser cuts the carrier at
a level. The capture then holds flat plateaus, with the recording's noise and any pulse on
them, joined to the carrier's flanks at sharp corners, twice each half-cycle. The carrier
filter (a local quintic and a high-pass) follows neither corner: each leaves a transient of up
to hundreds of noise units at the same phases every cycle, and its tail hides pulses on the
plateau (docs/model-card.md, Conditioning: a carrier clipped by a limiter). The corners are
interference locked to the carrier, never PD.

Each plateau gets back what the limiter took: a quintic that meets both flanks with the
level's value and the flanks' own slope and curvature where they cross the level (from a
quadratic fitted to each flank), added to the plateau's samples. A plateau at a capture's end
continues its one flank's quadratic. The plateau's noise and pulses stay as recorded; the
carrier filter then sees a smooth curve, which its local quintic follows exactly.

A capture holds such a plateau where, at one of its extremes, at least :data:`PLATEAU_RUN`
samples in a row lie within :data:`PLATEAU_BAND` noise units of one level (gaps of up to
:data:`PLATEAU_GAP` samples, a pulse on the plateau, bridged), with no trend over them, at
least :data:`LEVEL_SEPARATION` noise units from the middle of the capture's range, and met by
a flank that reaches the level with a clean quadratic course. Noise, pulses and unclipped
carriers show none of these together. Everything is in units of the capture's own noise, and
the top and bottom are treated alike, so the result is the same for ``-raw`` or ``2 * raw``.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from .robust import mad_sigma, spread_positions

PLATEAU_RUN = 32  # samples: the shortest plateau
PLATEAU_BAND = 4.0  # noise units about the level
PLATEAU_GAP = 48  # samples: a shorter gap in a plateau is a pulse on it
PLATEAU_SHARE = 0.005  # of the samples: the quantile at each extreme where a plateau's level is looked for
PLATEAU_FLATNESS = 2.0  # noise units: the most a quadratic over the plateau's samples may rise or fall
LEVEL_SEPARATION = 20.0  # noise units from the middle of the range: a level nearer is the noise's own
FLANK = 24  # samples of flank fitted at a corner
FLANK_MISFIT = 1.5  # noise units: the largest rms residual of a flank's own quadratic
FLANK_REACH = 8.0  # noise units: how far the flank must move away from the level over its samples
KIND_SHARED = 3  # corners of a kind whose median course a corner with a spoilt flank may take
SECOND_CHANCES = 0.2  # of the corners: the most whose flanks may fail their own fit
# Bounded work: more runs at the levels than MAX_PLATEAUS, or than one per RUN_SPACING samples
# (a carrier period under 2 * RUN_SPACING, 50 Hz sampled under 51 kS/s), and the capture is
# left as recorded. A request's signals then hold at most its work limit / RUN_SPACING runs.
MAX_PLATEAUS = 2048
RUN_SPACING = 512
RESTORED_SHARE = 0.9  # of the plateaus: fewer restored, and none is
MIN_PLATEAUS = 2  # a limiter cuts every peak: one flat stretch alone is no sign of one
CORNER_ASYMMETRY = 3.0  # the most a plateau's two corners' slopes may differ by (a factor)
# The carrier filter's largest output for a corner whose slope changes by one unit a sample
# (tests/test_limiter.py checks it against pdseg.preprocess.carrier_filter), and the least
# height in noise units that makes a corner worth restoring. The training generator clips a
# fifth of its carriers, whose corners then stand some 4-30 noise units out after the filter:
# the network learnt to leave those, and the once-a-cycle step takes out what they leave.
KINK_GAIN = 4.0
KINK_TRAINED = 100.0
LEVEL_SAMPLES = 8192  # at most this many samples, drawn at random, give the levels and the noise
NOISE_DIFFERENCES = 2048  # at most this many third differences give the noise
# ... of which at least this share lie within the band of a level the capture is held at (two
# plateaus of the shortest in an 8,192-sample window; a limiter on a 3,333-sample period holds a
# few per cent to two thirds of the samples at its levels)
HELD_SHARE = 2 * PLATEAU_RUN / LEVEL_SAMPLES


CLIPPED_WARNING = ("the carrier is clipped flat (a limiter, or an input driven past its range): its "
                   "plateaus were given back the carrier's course before filtering; pulses that drove "
                   "the signal further past the limit were cut by it, and pulses at a plateau's corners "
                   "may be missed")


@dataclasses.dataclass
class Restoration:
    """A clipped capture with its plateaus restored: the signal, and per restored plateau its
    level and corner times (sub-sample; a plateau at a capture's end has one)."""
    signal: np.ndarray
    plateaus: list[tuple[float, tuple[float, ...]]]

    @property
    def corners(self) -> int:
        return sum(len(times) for _, times in self.plateaus)

    def to_dict(self) -> dict:
        levels = sorted({level for level, _ in self.plateaus})
        return {"plateaus": len(self.plateaus), "corners": self.corners,
                "levels": [float(f"{level:.6g}") for level in levels]}


def _noise(raw: np.ndarray) -> float:
    """The rms of the white noise, from the MAD of third differences (corners and the carrier
    barely move them) at up to :data:`LEVEL_SAMPLES` places, those that touch a sample at the
    capture's extreme values left out: an ADC's rails hold no noise, and where a carrier
    overdrives it they are half of the samples or more."""
    if raw.size < 8:
        return 0.0
    highest, lowest = raw.max(), raw.min()
    if raw.size - 3 <= LEVEL_SAMPLES:
        differences = np.diff(raw, 3)
        on_rail = (raw == highest) | (raw == lowest)
        touched = on_rail[:-3] | on_rail[1:-2] | on_rail[2:-1] | on_rail[3:]
    else:
        window = raw[spread_positions(raw.size - 3, LEVEL_SAMPLES)[:, None] + np.arange(4)]
        differences = window[:, 3] - 3.0 * window[:, 2] + 3.0 * window[:, 1] - window[:, 0]
        touched = np.any((window == highest) | (window == lowest), axis=1)
    if np.count_nonzero(~touched) >= max(64, differences.size // 8):
        differences = differences[~touched]
    # every k-th of them: 2,048 give the noise to a few per cent, at a quarter of the time of 8,192
    return mad_sigma(differences[:: -(-differences.size // NOISE_DIFFERENCES)]) / np.sqrt(20.0)


def _runs(mask: np.ndarray) -> np.ndarray:
    """``[start, stop)`` of the runs of True in ``mask``, those apart by at most
    :data:`PLATEAU_GAP` samples joined, of at least :data:`PLATEAU_RUN` samples."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    if edges.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    starts, stops = edges[0::2], edges[1::2]
    keep = np.concatenate(([True], starts[1:] - stops[:-1] > PLATEAU_GAP))
    joined = np.column_stack((starts[keep], np.concatenate((stops[np.flatnonzero(keep)[1:] - 1], stops[-1:]))))
    return joined[joined[:, 1] - joined[:, 0] >= PLATEAU_RUN]


def _flat(values: np.ndarray, level: float, sigma: float) -> bool:
    """Whether the samples of a plateau within the band (its pulses left out) show no trend:
    the means of its thirds within :data:`PLATEAU_FLATNESS` noise units of each other (a
    carrier's rounded peak, which lies in the band for a hundred samples where the carrier is
    small, rises and falls across them)."""
    inside = np.flatnonzero(np.abs(values - level) <= PLATEAU_BAND * sigma)
    if inside.size < PLATEAU_RUN:
        return False
    thirds = [float(np.mean(values[part])) for part in np.array_split(inside, 3)]
    return max(thirds) - min(thirds) <= PLATEAU_FLATNESS * sigma


@lru_cache(maxsize=2)
def _flank_fit(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The times of a flank's samples from its plateau's edge, the quadratic's design over them
    and its least-squares solution (coefficients highest first, as numpy's polynomials)."""
    t = np.arange(-FLANK, 0, dtype=np.float64) if side < 0 else np.arange(0, FLANK, dtype=np.float64)
    design = np.vander(t, 3)
    solve = np.linalg.pinv(design)
    for array in (t, design, solve):
        array.setflags(write=False)
    return t, design, solve


def _crossings(a: np.ndarray, b: np.ndarray, c: np.ndarray, low: float, high: float) -> np.ndarray:
    """Per row, the root of ``a t^2 + b t + c`` in [``low``, ``high``] nearest -0.5 (where the
    corner lies between the plateau's edge sample and the flank's), NaN where none is."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(b * b - 4.0 * a * c)
        candidates = np.stack(((-b - root) / (2.0 * a), (-b + root) / (2.0 * a),
                               np.where(b != 0.0, -c / b, np.nan)))
    linear = np.abs(a) * FLANK < 1e-9 * np.abs(b)  # a straight flank: the quadratic's roots are ill-conditioned
    candidates[:2, linear] = np.nan
    candidates[2, ~linear] = np.nan
    candidates[(candidates < low) | (candidates > high) | ~np.isfinite(candidates)] = np.nan
    distance = np.where(np.isnan(candidates), np.inf, np.abs(candidates + 0.5))
    best = np.argmin(distance, axis=0)
    return candidates[best, np.arange(candidates.shape[1])]


def _corners(raw: np.ndarray, edges: np.ndarray, side: int, levels: np.ndarray, tops: np.ndarray,
             sigma: float) -> list[tuple[float, float, float] | None]:
    """For each plateau edge, where the flank beside it crosses the plateau's level, and the
    flank's slope and curvature there: from a quadratic fitted to :data:`FLANK` samples, all
    flanks at once, refitted without the samples over 4 noise units from it where a pulse
    lies on the flank (a cubic, closer to a strong carrier's course over them, gave corners
    noisy enough to be reported). ``side`` -1: the flank before the plateau (ending at its
    edge), +1: after it (from its edge). None where that flank is no clean carrier's course
    towards the level."""
    found: list[tuple[float, float, float] | None] = [None] * len(edges)
    first = edges - FLANK if side < 0 else edges
    usable = np.flatnonzero((first >= 0) & (first + FLANK <= raw.size))
    if usable.size == 0:
        return found
    t, design, solve = _flank_fit(side)
    values = raw[first[usable, None] + np.arange(FLANK)] - levels[usable, None]
    inward = np.where(tops[usable, None], -values, values)  # the flank lies inside the level
    coefficients = values @ solve.T  # (flanks, 3), highest power first
    residual = values - coefficients @ design.T
    kept = np.ones(values.shape, dtype=bool)
    # Flanks with a sample over 4 units from their fit (a pulse on them) are refitted without it.
    for row in np.flatnonzero(np.any(np.abs(residual) > 4.0 * sigma, axis=1)).tolist():
        keep = np.ones(FLANK, dtype=bool)
        for _ in range(3):
            within = np.abs(residual[row]) <= 4.0 * sigma
            if within.sum() < 0.75 * FLANK or np.array_equal(within, keep):
                break
            keep = within
            coefficients[row] = np.polyfit(t[keep], values[row, keep], 2)
            residual[row] = values[row] - design @ coefficients[row]
        kept[row] = keep
    counts = kept.sum(axis=1)
    misfit = np.sqrt(np.sum(np.where(kept, residual, 0.0) ** 2, axis=1) / np.maximum(counts, 1))
    good = ((np.max(inward, axis=1) >= FLANK_REACH * sigma) & (counts >= 0.75 * FLANK)
            & (misfit <= FLANK_MISFIT * sigma))
    low, high = (-2.5, FLANK / 4) if side < 0 else (-FLANK / 4 - 1.0, 1.5)
    a, b, c = coefficients.T
    at = _crossings(a, b, c, low, high)
    slope = 2.0 * a * at + b
    # towards the plateau: rising into a top one from before it, falling from it after it
    towards = np.where(tops[usable], slope * side < 0, slope * side > 0)
    for row in np.flatnonzero(good & np.isfinite(at) & towards).tolist():
        found[int(usable[row])] = (float(edges[usable[row]]) + float(at[row]), float(slope[row]), 2.0 * float(a[row]))
    return found


def _quintic(span: float, start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """Coefficients (lowest first, in the time from the first corner) of the quintic that is 0
    with the given slope and curvature at 0 and at ``span``."""
    h = span
    system = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 2, 0, 0, 0],
                       [1, h, h**2, h**3, h**4, h**5], [0, 1, 2 * h, 3 * h**2, 4 * h**3, 5 * h**4],
                       [0, 0, 2, 6 * h, 12 * h**2, 20 * h**3]], dtype=np.float64)
    return np.linalg.solve(system, np.array([0.0, start[0], start[1], 0.0, end[0], end[1]]))


def _flank_model(lag: np.ndarray, shape: tuple[float, float]) -> np.ndarray:
    """A flank ``lag`` samples from its corner, less the level: its slope and curvature there."""
    slope, curvature = shape
    return lag * (slope + 0.5 * curvature * lag)


def _flank(raw: np.ndarray, plateau_edge: int, side: int, level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The :data:`FLANK` samples beside a plateau's edge (times, values less the level)."""
    first = plateau_edge - FLANK if side < 0 else plateau_edge
    if first < 0 or first + FLANK > raw.size:
        return None
    return np.arange(first, first + FLANK, dtype=np.float64), raw[first: first + FLANK] - level


def _corner_time(times: np.ndarray, values: np.ndarray, side: int, plateau_edge: int, sigma: float,
                 shape: tuple[float, float]) -> float | None:
    """When a flank reaches its plateau's level, given the slope and curvature ``shape`` that
    the capture's corners of its kind share: the time that the most flank samples agree with
    (least median of squares over a grid of sub-sample times), then least squares over those
    it explains within 4 noise units (a pulse on the flank left out). None where fewer than
    half agree."""
    low, high = (-2.5, FLANK / 4) if side < 0 else (-FLANK / 4 - 1.0, 1.5)
    at = plateau_edge + 0.5 * (low + high)
    for step, grid in ((0.1, np.arange(low, high, 0.1) + plateau_edge), (0.005, None)):
        if grid is None:
            grid = at + np.arange(-0.1, 0.1, step)
        residual = values[None, :] - _flank_model(times[None, :] - grid[:, None], shape)
        at = float(grid[int(np.argmin(np.median(np.abs(residual), axis=1)))])
    slope, curvature = shape
    for _ in range(4):  # Gauss-Newton in the one unknown
        lag = times - at
        residual = values - _flank_model(lag, shape)
        agree = np.abs(residual) <= 4.0 * sigma
        if agree.sum() < FLANK // 2:
            return None
        gradient = -(slope + curvature * lag)  # of the course, by the corner's time
        at += float(np.sum(residual[agree] * gradient[agree]) / np.sum(gradient[agree] ** 2))
    return at if plateau_edge + low <= at <= plateau_edge + high else None


def _course(start: int, stop: int, before: tuple[float, float, float] | None,
            after: tuple[float, float, float] | None,
            template: tuple[float, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]] | None:
    """The samples of the plateau ``[start, stop)`` from its corners ``before`` and ``after``
    (time, slope, curvature; None: the plateau runs to the capture's start or end), what the
    limiter took from each, and the corners' times. Between two corners a quintic that meets
    both. A plateau cut by the capture's end takes the course of a whole plateau of its kind
    (``template``: its span and quintic), aligned at its one corner: a flank's own quadratic
    continued overshoots the carrier by half as much again at a plateau's middle. None where
    there is no such plateau to follow."""
    if before is not None and after is not None:
        if after[0] - before[0] < 1.0:
            return None
        samples = np.arange(int(np.ceil(before[0])), int(np.floor(after[0])) + 1)
        return (samples, np.polynomial.polynomial.polyval(samples - before[0], _quintic(
            after[0] - before[0], before[1:], after[1:])), (before[0], after[0]))
    if template is None or (before is None and after is None):
        return None
    span, coefficients = template
    if before is not None:  # on to the capture's end
        samples = np.arange(int(np.ceil(before[0])), stop)
        lag, times = samples - before[0], (before[0],)
    else:  # back to its start
        samples = np.arange(start, int(np.floor(after[0])) + 1)
        lag, times = span - (after[0] - samples), (after[0],)
    excess = np.where((lag >= 0.0) & (lag <= span), np.polynomial.polynomial.polyval(lag, coefficients), 0.0)
    return samples, excess, times


def restore(raw: np.ndarray) -> Restoration | None:
    """``raw`` with each limiter plateau given back the carrier's course (see the module's
    docstring); None where the capture shows fewer than :data:`MIN_PLATEAUS`, or corners no
    sharper than the training's (:data:`KINK_TRAINED`), or where under :data:`RESTORED_SHARE`
    of its plateaus can be restored: the corners left would differ from cycle to cycle, and
    what repeats once a cycle is taken out only where it repeats (:mod:`pdseg.commutation`). A
    corner whose flank a pulse spoils takes the slope and curvature of the capture's other
    corners of its kind."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size < 2 * FLANK + PLATEAU_RUN or not np.all(np.isfinite(raw)):
        return None
    sigma = _noise(raw)
    if not sigma > 0.0:
        return None  # a noise-free record: its rails are pdseg.preprocess.rail_samples' to handle
    looked_at = raw if raw.size <= LEVEL_SAMPLES else raw[spread_positions(raw.size, LEVEL_SAMPLES)]
    low, high = np.quantile(looked_at, (PLATEAU_SHARE, 1.0 - PLATEAU_SHARE))
    middle = 0.5 * (low + high)
    if high - low < 2.0 * LEVEL_SEPARATION * sigma:
        return None  # the noise's own range, or a carrier too small for sharp corners
    plateaus = []  # (top, level, start, stop)
    runs = 0  # runs at a level, flat or not: what a restoration in part is counted against
    for top, quantile in ((True, high), (False, low)):
        near = looked_at[np.abs(looked_at - quantile) <= 2.0 * PLATEAU_BAND * sigma]
        if near.size == 0:
            continue
        level = float(np.median(near))
        if abs(level - middle) < LEVEL_SEPARATION * sigma:
            continue
        # From the samples looked at (all of a signal up to LEVEL_SAMPLES): whether the capture
        # is held at this level for a share of its samples and rarely goes past it.
        beyond = looked_at > level + 6.0 * sigma if top else looked_at < level - 6.0 * sigma
        held = np.abs(looked_at - level) <= PLATEAU_BAND * sigma
        if np.count_nonzero(beyond) > 0.01 * looked_at.size or np.count_nonzero(held) < HELD_SHARE * looked_at.size:
            continue
        found = _runs((raw >= level - PLATEAU_BAND * sigma) & (raw <= level + PLATEAU_BAND * sigma))
        found = found[(found[:, 0] >= FLANK) | (found[:, 1] <= raw.size - FLANK)]
        runs += len(found)
        if runs > min(MAX_PLATEAUS, raw.size / RUN_SPACING):
            return None  # a carrier period too short for plateaus to be a limiter's
        plateaus += [(top, level, start, stop) for start, stop in found.tolist()
                     if _flat(raw[start:stop], level, sigma)]
    if not plateaus:
        return None
    # Each plateau's corners, from their own flanks where they can; the others from their kind's.
    tops = np.array([top for top, _, _, _ in plateaus])
    levels = np.array([level for _, level, _, _ in plateaus])
    starts = np.array([start for _, _, start, _ in plateaus])
    stops = np.array([stop for _, _, _, stop in plateaus])
    corners = {}
    # A plateau within a flank of the capture's start or end runs to it: its one corner is fitted.
    for side, edges, needed in ((-1, starts, starts >= FLANK), (+1, stops, stops <= raw.size - FLANK)):
        for index, corner in enumerate(_corners(raw, edges, side, levels, tops, sigma)):
            if needed[index]:
                corners[index, side] = corner
    # A corner whose own flank failed (a pulse on it) gets a second chance: the median course
    # of the capture's corners of its kind (before or after a top or bottom plateau), timed by
    # the flank samples that it explains.
    # At most a fifth of them: more, and the capture is no limiter's (the second chance costs
    # a grid search, and an adversary's capture of short periods holds thousands of corners).
    missing = [key for key, corner in corners.items() if corner is None]
    if len(missing) > SECOND_CHANCES * len(corners):
        return None
    shapes = {}
    for top in (True, False):
        for side in (-1, +1):
            kind = [found for (index, found_side), found in corners.items()
                    if found is not None and found_side == side and plateaus[index][0] == top]
            if len(kind) >= KIND_SHARED:
                shapes[top, side] = (float(np.median([found[1] for found in kind])),
                                     float(np.median([found[2] for found in kind])))
    for index, side in missing:
        top, level, start, stop = plateaus[index]
        if (top, side) not in shapes:
            continue
        edge = start if side < 0 else stop
        flank = _flank(raw, edge, side, level)
        at = None if flank is None else _corner_time(*flank, side, edge, sigma, shapes[top, side])
        if at is not None:
            corners[index, side] = (at, *shapes[top, side])
    # A corner no sharper than the training's needs no restoring (KINK_TRAINED), and a plateau
    # whose corners differ more than a carrier's two sides of one peak can (a pulse's edge
    # taken for a corner) is none.
    for index in range(len(plateaus)):
        own = [corners[key] for key in ((index, -1), (index, +1)) if key in corners]
        if any(corner is not None and KINK_GAIN * abs(corner[1]) < KINK_TRAINED * sigma for corner in own) or (
                len(own) == 2 and None not in own
                and not 1.0 / CORNER_ASYMMETRY <= abs(own[0][1] / own[1][1]) <= CORNER_ASYMMETRY):
            for key in ((index, -1), (index, +1)):
                if key in corners:
                    corners[key] = None
    # The course a plateau cut by the capture's end follows: the whole plateau of its kind
    # whose span is the median.
    templates = {}
    for top in (True, False):
        whole = sorted((corners[index, +1][0] - corners[index, -1][0], index) for index in range(len(plateaus))
                       if plateaus[index][0] == top and corners.get((index, -1)) is not None
                       and corners.get((index, +1)) is not None and corners[index, +1][0] - corners[index, -1][0] >= 1.0)
        if whole:
            span, index = whole[len(whole) // 2]
            templates[top] = (span, _quintic(span, corners[index, -1][1:], corners[index, +1][1:]))
    courses = []
    for index in range(len(plateaus)):
        top, level, start, stop = plateaus[index]
        if any(corners[key] is None for key in ((index, -1), (index, +1)) if key in corners):
            continue  # a corner needed (not at the capture's start or end) and not found
        course = _course(start, stop, corners.get((index, -1)), corners.get((index, +1)), templates.get(top))
        if course is None:
            continue
        samples, excess, times = course
        # What the limiter took lies beyond its level, and no further than the carrier could
        # reach: a course outside that is no carrier's.
        outward = excess if top else -excess
        if np.min(outward) >= -PLATEAU_BAND * sigma and np.max(outward) <= high - low:
            courses.append((samples, excess, level, times))
    # A capture whose plateaus were restored only in part keeps corners that differ from cycle
    # to cycle, which the once-a-cycle step (pdseg.commutation) no longer takes out: a few are
    # left as recorded, more and none is restored.
    if len(courses) < max(RESTORED_SHARE * runs, MIN_PLATEAUS):
        return None
    restored = raw.copy()
    for samples, excess, _, _ in courses:
        restored[samples] += excess
    return Restoration(restored, [(level, times) for _, _, level, times in courses])
