"""Per-signal conditioning: remove the AC carrier, the stationary tones (:mod:`.tones`) and the
converter commutation (:mod:`.commutation`, then the tones its train hid), estimate the noise
floor, scale robustly.

The network gets two input planes (channels): the carrier-free signal in units of its noise
floor, asinh compressed ("signal"), and the same signal relative to its local peak
("relative").

Everything here looks at one signal at a time, so a signal's result never depends on what
else travels in the same request or TorchServe batch. Every step is linear in the input or
divides by a scale estimated from the same input, which makes the network input invariant to
the capture's units (×0.5 or ×2 gives the same regions).
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache, partial
from typing import Callable

import numpy as np
from scipy import ndimage, optimize
from scipy import signal as sps
from scipy import stats

from . import commutation, limiter, slow, tones, transients, whiten
from .regions import mask_to_regions, reaches
from .phase import CarrierFit, fit_carrier
from .robust import mad_sigma, spread_positions

# The carrier sits at 1/1,000 cycles per sample or below (even a 50 Hz carrier sampled at only
# 50 kS/s); PD pulses and their ringing live above 1/50. A 4th-order Butterworth high-pass at
# 1/100, run forwards and backwards, removes a 1e6 carrier and its first harmonics to well
# under one unit while passing the pulses without phase shift.
HIGHPASS_CUTOFF = 0.01  # cycles per sample
HIGHPASS_ORDER = 4
NOISE_BLOCK = 64  # samples per block in the noise-floor estimate
NOISE_QUANTILE = 0.2  # the quietest fifth of blocks defines the floor
FEW_BLOCKS = 16  # below this many blocks the noise estimate also asks the differences ...
DIFFERENCE_NOISE_REACH = 1.5  # ... kept within this factor of the third differences' level ...
WHITE_NOISE_RATIO = 0.5  # ... where the third show at least this share of what first differences do
# A floor on the noise scale relative to the raw signal's magnitude: float32 captures of a
# 1e6 carrier cannot resolve less than ~0.1, so residues below that are not signal.
RELATIVE_NOISE_FLOOR = 1e-6


def _shared(array: np.ndarray) -> np.ndarray:
    """``array`` read-only: a cached value shared by every call, on either thread
    (:class:`pdseg.pipeline.Segmenter` conditions a slower view beside the capture)."""
    array.setflags(write=False)
    return array


@lru_cache(maxsize=8)
def _highpass_sos(cutoff: float, order: int) -> np.ndarray:
    # Writable: scipy's sosfilt takes it as a writable buffer (it never writes to it).
    return sps.butter(order, cutoff, btype="highpass", output="sos", fs=1.0)


# A local quintic over 151 samples follows even a 1e6 carrier of a 1,000-sample period to a
# few units, also at a signal's ends, where it is fitted to the last 151 samples instead of
# being mirrored: the high-pass alone, started on a steep flank, leaves thousands of noise
# units of edge transient, enough to fill a 64-sample triggered window. It passes pulses as the
# high-pass does (its cutoff, ~0.012 cycles/sample, is the high-pass's).
BASELINE_WINDOW = 151
BASELINE_ORDER = 5


@lru_cache(maxsize=2)
def _baseline_taps(window: int, order: int) -> np.ndarray:
    return _shared(sps.savgol_coeffs(window, order))


@lru_cache(maxsize=8)
def _polynomial_fit(window: int, order: int, rows: int | None = None) -> np.ndarray:
    """The matrix that takes a window's samples to the values, at its first ``rows`` samples
    (all by default), of the polynomial of ``order`` fitted to them by least squares; computed
    once instead of solved per signal."""
    vandermonde = np.vander(np.arange(window, dtype=np.float64), order + 1)
    return _shared(vandermonde[: window if rows is None else rows] @ np.linalg.pinv(vandermonde))


def _edge_fit(window: int, order: int) -> np.ndarray:
    """``savgol_filter(mode="interp")``'s end fit: the fitted polynomial at a window's first half."""
    return _polynomial_fit(window, order, window // 2)


def carrier_baseline(raw: np.ndarray) -> np.ndarray:
    """The local polynomial (Savitzky-Golay) baseline of ``raw``: in the interior the filter
    as an FFT convolution (the taps are symmetric), at each end the polynomial fitted to the
    first or last window of samples, as ``savgol_filter(mode="interp")`` does, at a fraction
    of its cost on long captures. A stack ``(rows, samples)`` gets each row's baseline (the
    tones' end fit filters up to 64 columns a signal end at once)."""
    size = raw.shape[-1]
    window = min(BASELINE_WINDOW, size - 1 + size % 2)
    if size <= 2 * window:
        return sps.savgol_filter(raw, window, BASELINE_ORDER, mode="interp", axis=-1)
    taps = _baseline_taps(window, BASELINE_ORDER)
    baseline = sps.oaconvolve(raw, taps if raw.ndim == 1 else taps[None, :], mode="same", axes=-1)
    half = window // 2
    fit = _edge_fit(window, BASELINE_ORDER)
    baseline[..., :half] = _end_fit(fit, raw[..., :window])
    baseline[..., -half:] = _end_fit(fit, raw[..., -window:][..., ::-1])[..., ::-1]
    return baseline


def _end_fit(fit: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``fit`` applied to one signal's end window (a matrix-vector product, as always) or to
    each row of a stack of them (einsum: a matrix product would wake BLAS threads that spin
    beside the other worker)."""
    return fit @ values if values.ndim == 1 else np.einsum("ij,kj->ki", fit, values)


def difference_noise(values: np.ndarray, order: int = 3) -> float:
    """The rms of white noise in ``values`` from the MAD of its differences of ``order``: a
    carrier (even 1e6 times the noise at a 2,500-sample period) and slow pulses barely move
    third differences, and a short pulse moves only a few of them. Band-limited noise has
    fewer differences the higher their order (white noise the same at every order)."""
    if values.size < 8:
        return 0.0
    return mad_sigma(np.diff(values, order)) / math.sqrt(math.comb(2 * order, order))


def trend_noise_order(size: int, order: int = 3) -> int:
    """The order of differences whose noise a short signal's trend fit trusts: ``order``, lower
    where a spike, which moves ``order + 1`` of the ``size - order`` differences, would move half
    of them or more (the noise then read as the spike's size: an 8-sample signal lost a 100-unit
    spike in its middle to a trend bent into it)."""
    return max(1, min(order, (size - 3) // 3))


def robust_trend(raw: np.ndarray, degree: int, sigma: float,
                 iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The polynomial of ``degree`` that the quiet samples of ``raw`` follow: least absolute
    deviations (iteratively reweighted) to start, then Tukey's biweight at 4.685 ``sigma``,
    so a pulse that covers a good part of the signal is left out of the fit rather than
    bent into it. Returns the trend and which samples it explains (within the biweight's
    reach)."""
    basis = _legendre_basis(raw.size, degree)
    trend = basis @ _robust_coefficients(raw, basis, sigma, iterations)
    return trend, np.abs(raw - trend) < 4.685 * sigma


def _legendre_basis(size: int, degree: int) -> np.ndarray:
    return np.polynomial.legendre.legvander(np.linspace(-1.0, 1.0, size), degree)


def _robust_coefficients(raw: np.ndarray, basis: np.ndarray, sigma: float, iterations: int = 12) -> np.ndarray:
    """The coefficients of :func:`robust_trend`'s fit over the columns of ``basis``."""
    def solve(weights: np.ndarray) -> np.ndarray:
        weighted = basis.T * weights
        return np.linalg.lstsq(weighted @ basis, weighted @ raw, rcond=None)[0]

    coefficients = solve(np.ones(raw.size))
    for _ in range(iterations):
        coefficients = solve(1.0 / np.maximum(np.abs(raw - basis @ coefficients), 0.1 * sigma))
    for _ in range(iterations):
        u = (raw - basis @ coefficients) / (4.685 * sigma)
        weights = np.where(np.abs(u) < 1.0, (1.0 - u**2) ** 2, 0.0)
        if np.count_nonzero(weights) <= 2 * basis.shape[1]:
            break  # nothing quiet left to fit: the trend is steeper than this degree follows
        coefficients = solve(weights)
    return coefficients


# A triggered window of a few hundred samples or less is analysed as if it lay in a longer
# quiet capture: its trend (at most a stretch of carrier, which a low-order polynomial follows
# closely over so few samples) is fitted to its quiet samples and removed, its end levels go on
# on both sides, and the long-capture filters run over that. A pulse filling half the window stays a
# pulse instead of becoming the window's trend (docs/model-card.md, pulse atlas).
SHORT_SIGNAL = 2 * BASELINE_WINDOW  # samples: below, the local baseline would span half the signal
EMBEDDING_PAD = 1024  # samples of end level on each side of a short signal
SHORT_TREND_DEGREES = (3, 5, 7, 9)


def short_signal_trend(raw: np.ndarray, sigma: float) -> np.ndarray:
    """The trend of a short signal: the lowest degree of :data:`SHORT_TREND_DEGREES` whose
    robust fit keeps a signal's first or last sample, or (under :data:`TAIL_RULE_MAX_SAMPLES`
    samples) whose fit leaves a pulse that the next degree would take part of
    (:func:`leaves_a_pulse`). The fewer the terms, the less of a broad pulse the trend can take;
    a carrier too steep for them (a 1e6 one of a 1,000-sample period over 64 samples) leaves
    the fit at both ends at once, where a pulse leaves it at one, or, far louder than the noise,
    leaves its tails at both. Where that trend and one step at a sharp edge explain the signal,
    the trend is the one fitted beside the step (:func:`onset_step_trend`)."""
    if raw.size < 4 * SHORT_TREND_DEGREES[0]:
        return robust_trend(raw, raw.size // 4, sigma)[0]
    degrees = [degree for degree in SHORT_TREND_DEGREES if raw.size >= 4 * degree]
    fits = [robust_trend(raw, degrees[0], sigma)]
    for number in range(len(degrees)):
        trend, kept = fits[number]
        if kept[0] or kept[-1] or number + 1 == len(degrees):
            break
        fits.append(robust_trend(raw, degrees[number + 1], sigma))
        if raw.size < TAIL_RULE_MAX_SAMPLES and leaves_a_pulse(raw - trend, raw - fits[-1][0]):
            break
    beside_a_step = onset_step_trend(raw, sigma, trend, degrees[number])
    return trend if beside_a_step is None else beside_a_step


# A pulse far louder than the noise keeps neither end of a short window, and the degree the
# rule above then reached took the pulse itself; figures and limits in docs/model-card.md
# ("Conditioning: a loud pulse filling a short window").
TAIL_FRACTION = 0.25
PULSE_TAKEN = 0.9  # the next degree's largest residual under this share of this one's: it takes the pulse
PULSE_INSIDE = 8  # samples from either end where the residual must peak (a triggered window's pulse starts this far in)
TAIL_RULE_MAX_SAMPLES = 128


def leaves_a_pulse(residual: np.ndarray, next_residual: np.ndarray) -> bool:
    """Whether ``residual`` (a short signal less its trend) is largest at least
    :data:`PULSE_INSIDE` samples from either end, both ends stand under :data:`TAIL_FRACTION` of
    that largest magnitude, and the next degree's residual ``next_residual`` peaks under
    :data:`PULSE_TAKEN` of it: a pulse the trend left out and the next would bend into, not a
    trend the fit did not follow."""
    magnitude = np.abs(residual)
    peak = int(np.argmax(magnitude))
    inside = PULSE_INSIDE <= peak < residual.size - PULSE_INSIDE
    return bool(inside and max(magnitude[0], magnitude[-1]) < TAIL_FRACTION * magnitude[peak]
                and np.max(np.abs(next_residual)) < PULSE_TAKEN * magnitude[peak])


# A slow pulse that starts early in a short window and outlasts it is most of the window's
# samples, so the fit above follows its body and leaves only its onset (regions of a third of
# its truth). A PD pulse starts with its sharp edge: where a trend and one step at the sharpest
# edge explain the window but for the rise, the step is the pulse's start and the trend is the
# one beside it (docs/model-card.md, "Conditioning: a slow pulse outlasting a short window").
ONSET_STEP = 8.0  # noise units: the least step, and the least jump over ONSET_SPAN samples, of an onset
ONSET_SPAN = 3  # samples over which the sharpest edge is looked for
ONSET_LEAD = 2  # samples before the edge ...
ONSET_RISE = 8  # ... and from it, the rise, that trend and step need not explain
ONSET_MISFIT = 0.1  # of the step: what trend and step may leave at a sample they explain
ONSET_MISFIT_BEFORE = 0.02  # of the step: the same before the edge, at the ladder's higher degree
ONSET_UNEXPLAINED = 3  # samples away from the rise that they may leave unexplained
ONSET_MIN_SAMPLES = 48  # fewer: too few samples outside the rise to tell a level from a decay


def onset_step_trend(raw: np.ndarray, sigma: float, trend: np.ndarray, degree: int) -> np.ndarray | None:
    """A trend fitted robustly beside a step at the sharpest edge of ``raw`` less ``trend`` (an
    edge :data:`PULSE_INSIDE` samples or more from either end), where the step is at least
    :data:`ONSET_STEP` noise units (``sigma``) and trend and step leave at most
    :data:`ONSET_UNEXPLAINED` samples outside the rise unexplained; else None. The step's side
    after the edge is the pulse: it rises fast and decays slowly, so its body follows its edge.

    The lowest degree of :data:`SHORT_TREND_DEGREES` is tried first, then ``degree`` (the one
    the ladder reached, for a carrier steeper than a cubic follows) with the samples before the
    edge explained to within the noise or :data:`ONSET_MISFIT_BEFORE` of the step: beside a step,
    a high degree bends into a loud pulse's decay, and its misfit before the edge stays under a
    tenth of the step (a 1,000-unit pulse in 128 samples became a flat box to the window's end
    and lost its region)."""
    if raw.size < ONSET_MIN_SAMPLES:
        return None
    first_edge, last_edge = PULSE_INSIDE, raw.size - PULSE_INSIDE
    residual = raw - trend
    jumps = np.abs(residual[ONSET_SPAN:] - residual[:-ONSET_SPAN])  # jumps[i]: edges at i+1 .. i+ONSET_SPAN
    low, high = max(0, first_edge - ONSET_SPAN), min(jumps.size, last_edge)
    start = low + int(np.argmax(jumps[low:high]))
    if not jumps[start] >= ONSET_STEP * sigma:
        return None
    edge = start + 1 + int(np.argmax(np.abs(np.diff(residual[start: start + ONSET_SPAN + 1]))))
    edge = min(max(edge, first_edge), last_edge)
    step = (np.arange(raw.size) >= edge).astype(np.float64)
    lowest = SHORT_TREND_DEGREES[0]
    for candidate, quiet_before in ((lowest, False),) + (((degree, True),) if degree > lowest else ()):
        polynomial = _legendre_basis(raw.size, candidate)
        coefficients = _robust_coefficients(raw, np.column_stack((polynomial, step)), sigma)
        height = float(coefficients[-1])
        beside = polynomial @ coefficients[:-1]
        reach = max(4.685 * sigma, ONSET_MISFIT * abs(height))
        if quiet_before:
            reach = np.where(step > 0.0, reach, max(4.685 * sigma, ONSET_MISFIT_BEFORE * abs(height)))
        unexplained = np.flatnonzero(np.abs(raw - beside - height * step) >= reach) - edge
        outside_rise = np.count_nonzero((unexplained < -ONSET_LEAD) | (unexplained >= ONSET_RISE))
        if abs(height) >= ONSET_STEP * sigma and outside_rise <= ONSET_UNEXPLAINED:
            return beside
    return None


EDGE_LEVEL_SAMPLES = 9  # samples whose median continues a short signal's ends into its padding


def remove_carrier(raw: np.ndarray, cutoff: float = HIGHPASS_CUTOFF, about_middle: bool = True) -> np.ndarray:
    """Zero-phase carrier removal: the local polynomial baseline is subtracted, then the
    zero-phase Butterworth high-pass takes what is left of the carrier and its low harmonics;
    pulses stay where they are. A signal shorter than :data:`SHORT_SIGNAL` loses its robust
    trend first and is filtered amid its continued end levels; ``about_middle`` False fits
    that trend in units of the largest absolute sample, as before 2026-12-07 (:func:`signal_magnitude`)."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size == 0:
        return raw.copy()
    if raw.size < SHORT_SIGNAL:
        if np.ptp(raw) == 0.0:
            return np.zeros_like(raw)  # a constant: no trend to fit, nothing left after it
        # The fit runs about the signal's middle and in units of its magnitude (its result
        # depends on neither), so that neither subnormal nor huge values reach the solver.
        if about_middle:
            magnitude, middle = signal_magnitude(raw), 0.5 * np.max(raw) + 0.5 * np.min(raw)
        else:
            magnitude, middle = float(np.max(np.abs(raw))), 0.0
        unit = (raw - middle) / magnitude
        sigma = max(difference_noise(unit, trend_noise_order(unit.size)), RELATIVE_NOISE_FLOOR)
        quiet = (unit - short_signal_trend(unit, sigma)) * magnitude
        return filtered_amid_end_levels(quiet, cutoff)
    return baseline_and_highpass(raw, cutoff)


# A pulse cut by a signal's first or last sample. The baseline's end fit and the high-pass's odd
# padding both pivot on the end samples, so such a pulse came out as a step: a slow swing of the
# other polarity beside it (a +80-unit spike on sample 0 was reported as a negative region of 1-41).
# It is taken out before the carrier filter and put back after it, which keeps the filter the
# same linear operator that the tones' and the commutation's end fits assume.
# Samples of a pulse cut by an end: those that may stand out before a quiet stretch (more: the
# pulse is left as it is), and those taken out with its tail. Continued further back, the fit
# of the stretch strays by more than the noise (its white noise alone: 1.5 sigmas 16 samples
# back, 2.5 at 24, where END_STEADY_SPAN takes it).
END_PULSE_LONGEST = 16
END_TAIL_LONGEST = 16
END_QUIET = 192  # samples after it that must follow a quintic ...
END_DEGREE = 5  # (a cubic over 96 samples strayed by 10-40 noise units from a 1,000-sample carrier)
END_QUIET_LEVEL = 4.5  # ... within this many noise units, ...
# ... and the end sample's height, measured again from stretches up to END_STEADY_SPAN samples
# further in (every other sample), must not trend over them by END_STEADY_SPREADS times what
# white noise moves that trend (0.8-2.3 noise units), ...
END_STEADY_SPAN = 8
END_STEADY_SPREADS = 3.0
END_PULSE_LEVEL = 8.0  # ... and how far off its continuation the end sample must stand, ...
END_SHARP_SAMPLES = 3  # ... and one of the pulse's first steps from sample to sample must be
END_SHARP_LEVEL = 4.0  # at least this many noise units and this share of its end sample (a
END_SHARP_SHARE = 0.25  # pulse decaying over 3 samples: 0.28; a clipped carrier's corner: 0.15)
END_NOISE_SAMPLES = 256  # samples whose third differences give the noise unit ...
END_WHITE_SPREAD = 1.1  # ... unless the stretch's rms about its fit exceeds it this many times (white: 0.98-1.09)
# Where a carrier spans twice this many noise units from its lowest value to its highest (a
# clipped one does, white noise does not), no cut pulse is taken on a plateau (_on_a_plateau):
# where the stretch of this many samples after the pulse (its halves' medians within END_FLAT_LEVEL
# units), or the end sample and the next, is flat and lies within END_PLATEAU_LEVEL units of the
# highest or lowest of END_RANGE_SAMPLES samples spread over the capture, a level that at least
# END_PLATEAU_ELSEWHERE of them END_PLATEAU_AWAY samples or more from that end share (a slow
# carrier's extreme at the end itself does not count).
END_CARRIER_LEVEL = 100.0
END_PLATEAU_SAMPLES = 32
END_FLAT_LEVEL = 3.0
END_PLATEAU_LEVEL = 8.0
END_RANGE_SAMPLES = 4096
END_PLATEAU_ELSEWHERE = 3
END_PLATEAU_AWAY = 64


def _end_basis(times: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """A polynomial of :data:`END_DEGREE` in ``times`` (in units of :data:`END_QUIET`) and a
    cosine and sine at each of ``frequencies`` (cycles per sample)."""
    scaled = times / END_QUIET
    angles = 2.0 * np.pi * times[:, None] * np.asarray(frequencies, dtype=np.float64)[None, :]
    return np.hstack((np.vander(scaled, END_DEGREE + 1), np.cos(angles), np.sin(angles)))


END_STEADY_SHIFTS = np.arange(0, END_STEADY_SPAN + 1, 2)
# What takes the heights measured from stretches END_STEADY_SHIFTS further in to their trend
# over END_STEADY_SPAN samples (a least-squares line's slope times the span).
_TREND = END_STEADY_SPAN * np.linalg.pinv(np.vstack((END_STEADY_SHIFTS, np.ones(END_STEADY_SHIFTS.size))).T)[0]


@lru_cache(maxsize=16)
def _end_fits(frequencies: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matrices that take :data:`END_QUIET` samples to their residuals about a polynomial and the
    tones at ``frequencies``, and to its continuation over the samples before them (nearest first)
    that :func:`_pulse_at_start` reaches back; and, for each pulse length from 1, how far white
    noise of unit sigma moves the trend of the end sample's height over END_STEADY_SHIFTS."""
    quiet = _end_basis(np.arange(END_QUIET, dtype=np.float64), np.array(frequencies))
    inverse = np.linalg.pinv(quiet)
    reach = END_TAIL_LONGEST + END_STEADY_SPAN
    before = _end_basis(-np.arange(1, reach + 1, dtype=np.float64), np.array(frequencies)) @ inverse
    spreads = []
    for length in range(1, END_TAIL_LONGEST + 1):
        # The end sample's own noise is in every height: the trend's weights add up to zero.
        weights = np.zeros(END_QUIET + END_STEADY_SPAN)
        for shift, trend in zip(END_STEADY_SHIFTS, _TREND):
            weights[shift: shift + END_QUIET] -= trend * before[length + shift - 1]
        spreads.append(float(np.sqrt(np.sum(weights**2))))
    return _shared(np.eye(END_QUIET) - quiet @ inverse), _shared(before), _shared(np.array(spreads))


def _pulse_at_start(values: np.ndarray, sigma: float, frequencies: tuple[float, ...]) -> int:
    """How many of ``values``' first samples a pulse cut by the first sample holds (0 where there
    is none): the fewest leading samples followed by a quiet stretch whose fit, continued back over
    them, leaves the first sample at least :data:`END_PULSE_LEVEL` ``sigma`` off it; about twice as
    many where they too are followed by a quiet stretch (the pulse's tail). A stretch is quiet
    where its :data:`END_QUIET` samples follow a polynomial and the stationary tones at
    ``frequencies`` (:func:`_end_basis`) within :data:`END_QUIET_LEVEL` ``sigma``. Where a
    burst's ringing or a tone that was not found stands out of the noise, no stretch is quiet and
    nothing is taken; nor where the fit's continuation drifts or the pulse changes slowly
    (:data:`END_STEADY_SPAN`, :data:`END_SHARP_SAMPLES`)."""
    residuals, before, spreads = _end_fits(frequencies)

    def quiet_after(length: int) -> np.ndarray | None:
        quiet = values[length: length + END_QUIET]
        return quiet if np.max(np.abs(residuals @ quiet)) < END_QUIET_LEVEL * sigma else None

    def spread_about_fit(quiet: np.ndarray) -> float:
        return float(np.sqrt(np.mean((residuals @ quiet) ** 2)))

    def height_from(length: int, quiet: np.ndarray) -> float:
        return float(values[0] - before[length - 1] @ quiet)

    for length in range(1, END_PULSE_LONGEST + 1):
        quiet = quiet_after(length)
        if quiet is None:
            continue
        # Where the stretch spreads more than its third differences say (coloured noise, whose
        # slow part the fit continues astray), its own spread about the fit is the unit.
        sigma = max(sigma, spread_about_fit(quiet) / END_WHITE_SPREAD)
        if abs(height_from(length, quiet)) < END_PULSE_LEVEL * sigma:
            return 0
        # A decaying pulse's tail stays under the quiet level for a few samples more: left in the
        # signal, the filters' end fits would turn it into a swing of the other sign.
        longer = min(2 * length + 2, END_TAIL_LONGEST)
        longer_quiet = quiet_after(longer)
        if longer_quiet is not None:
            length, quiet = longer, longer_quiet
        # The same from stretches a few samples further in: a continuation that drifts (a carrier's
        # course the fit does not quite follow) moves with them; a pulse's height does not.
        heights = []
        for shift in END_STEADY_SHIFTS:
            further = quiet if shift == 0 else quiet_after(length + shift)
            if further is None:
                return 0
            heights.append(height_from(length + shift, further))
        if abs(_TREND @ np.array(heights)) >= END_STEADY_SPREADS * spreads[length - 1] * sigma:
            return 0
        pulse = values[:length] - (before[:length] @ quiet)[::-1]
        # A pulse changes fast somewhere near the end sample; a continuation that strays from a
        # carrier's course drifts smoothly there.
        steps = np.abs(np.diff(pulse[: END_SHARP_SAMPLES + 1]))
        sharp = max(END_SHARP_LEVEL * sigma, END_SHARP_SHARE * abs(pulse[0]))
        return length if steps.size and steps.max() >= sharp else 0
    return 0


@dataclasses.dataclass(frozen=True)
class EndPulses:
    """The samples at a signal's first and last end that a pulse cut by that end holds
    (:func:`end_pulses`), and the stationary tones its quiet continuation was fitted with. They
    define one linear operator, :meth:`filter`, which conditioning uses in place of
    :func:`carrier_filter`: the pulses (what those samples hold over the continuation,
    :meth:`parts`) are taken out before the carrier filter and put back as it gives a pulse away
    from the ends. The filters' end fits and the high-pass's odd padding pivot on the end
    samples, and made such a pulse a step: a swing of the other sign beside it."""
    start: int = 0
    end: int = 0
    frequencies: tuple[float, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.start or self.end)

    def parts(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the pulses add to ``values`` over the first :attr:`start` and the last :attr:`end`
        samples: those samples less the continuation of the :data:`END_QUIET` beyond them."""
        before = _end_fits(self.frequencies)[1]
        found = []
        for length, turned in ((self.start, values), (self.end, values[::-1])):
            quiet = turned[length: length + END_QUIET]
            found.append(turned[:length] - (before[:length] @ quiet)[::-1] if length else np.zeros(0))
        return found[0], found[1][::-1]

    def without(self, values: np.ndarray) -> np.ndarray:
        """``values`` less :meth:`parts` (a new array; ``values`` itself where there are none)."""
        return _with_parts(values, self.parts(values), -1.0) if self else values

    def put_back(self, filtered: np.ndarray, parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``filtered`` (the carrier filter's output for :meth:`without`) plus ``parts`` as the
        filter gives a pulse away from the ends, what would lie beyond the ends left out."""
        return _with_parts(filtered, parts, 1.0, carrier_filter_impulse()) if self else filtered

    def standing_out_in(self, plain: "Conditioned") -> "EndPulses":
        """These pulses, but for those at an end where ``plain`` (the signal conditioned without
        them) stands within :data:`END_QUIET_LEVEL` noise units over the pulse and twice
        :data:`END_TAIL_LONGEST` samples beyond: there the steps after the carrier filter (a
        converter train's end fit, :func:`commutation_at_ends`) explained what the end held."""
        reach = self.start, self.end
        lengths = [length if length and np.max(np.abs(values[: length + 2 * END_TAIL_LONGEST]))
                   >= END_QUIET_LEVEL * plain.scale else 0
                   for length, values in zip(reach, (plain.filtered, plain.filtered[::-1]))]
        return dataclasses.replace(self, start=lengths[0], end=lengths[1])

    def filter(self, values: np.ndarray) -> np.ndarray:
        """:func:`carrier_filter` of ``values`` with these samples taken as cut pulses."""
        if not self:
            return carrier_filter(values)
        return self.put_back(carrier_filter(self.without(values)), self.parts(values))


def _on_a_plateau(values: np.ndarray, length: int, sigma: float, spread: np.ndarray, distance: np.ndarray) -> bool:
    """Whether a pulse of ``length`` samples cut by the first of ``values`` is a carrier's corner
    at a limiter's plateau (or an ADC's rail): the stretch after it, or its first two samples,
    flat within :data:`END_FLAT_LEVEL` ``sigma``, at a level within :data:`END_PLATEAU_LEVEL`
    ``sigma`` of the highest or lowest of ``spread`` (samples spread over the capture, ``distance``
    samples from this end) that :data:`END_PLATEAU_ELSEWHERE` of them at least
    :data:`END_PLATEAU_AWAY` samples away share: other plateaus. Cut by the end, the corner looks
    like a pulse, and it is the plateau that follows it; or the plateau's last samples are the
    "pulse" where the end cuts the carrier's flank after them."""
    highest, lowest = float(np.max(spread)), float(np.min(spread))
    away = spread[distance >= END_PLATEAU_AWAY]

    def a_plateau_level(level: float) -> bool:
        reach = END_PLATEAU_LEVEL * sigma
        return (min(abs(highest - level), abs(level - lowest)) <= reach
                and int(np.count_nonzero(np.abs(away - level) <= reach)) >= END_PLATEAU_ELSEWHERE)

    after = values[length: length + END_PLATEAU_SAMPLES]
    half = after.size // 2
    flat_after = abs(float(np.median(after[:half]) - np.median(after[half:]))) <= END_FLAT_LEVEL * sigma
    flat_end = abs(float(values[0] - values[1])) <= END_FLAT_LEVEL * sigma
    return (flat_after and a_plateau_level(float(np.median(after)))) or (flat_end and a_plateau_level(float(values[0])))


def end_pulses(raw: np.ndarray, quantum: float = 0.0, frequencies: np.ndarray | None = None) -> EndPulses:
    """The pulses cut by the first and by the last sample of ``raw`` (:func:`_pulse_at_start`),
    about its stationary tones at ``frequencies`` (:func:`pdseg.tones.stationary_tones`), in
    units of the noise of its first or last :data:`END_NOISE_SAMPLES` samples (third
    differences), at least :func:`noise_floor`. Signals under :data:`SHORT_SIGNAL` samples have
    none: they are filtered amid their end levels, which keep such a pulse."""
    raw = np.asarray(raw, dtype=np.float64)
    known = tuple(float(frequency) for frequency in (() if frequencies is None else frequencies))
    if raw.size < SHORT_SIGNAL:
        return EndPulses(frequencies=known)
    floor = noise_floor(signal_magnitude(raw), quantum)
    # Samples spread over the capture away from its ends: a limiter's plateaus hold many of them,
    # a loud pulse or a spike on a dead-flat line hardly any.
    inner = raw.size - 2 * END_TAIL_LONGEST
    positions = END_TAIL_LONGEST + spread_positions(inner, min(inner, END_RANGE_SAMPLES))
    lengths = []
    # A fit over cosines and sines spans the same turned round in time: one basis serves both ends.
    for values, distance in ((raw, positions), (raw[::-1], raw.size - 1 - positions)):
        sigma = max(difference_noise(values[:END_NOISE_SAMPLES]), floor)
        length = _pulse_at_start(values, sigma, known)
        if length:  # the plateau's test only where a pulse was found (rare)
            spread = raw[positions]
            carrier = np.ptp(spread) >= 2 * END_CARRIER_LEVEL * sigma
            if carrier and _on_a_plateau(values, length, sigma, spread, distance):
                length = 0
        lengths.append(length)
    return EndPulses(lengths[0], lengths[1], known)


def _with_parts(values: np.ndarray, parts: tuple[np.ndarray, np.ndarray], sign: float,
                response: np.ndarray | None = None) -> np.ndarray:
    """``values`` plus ``sign`` times the :meth:`EndPulses.parts` at its ends, or, with
    ``response`` (odd and symmetric, centred), the parts as that filter gives them (a new array)."""
    values = np.array(values, dtype=np.float64)
    # The end's part is worked on turned round, so that both start at a view's first sample.
    for part, view in ((parts[0], values), (parts[1][::-1], values[::-1])):
        if part.size:
            shaped = part if response is None else np.convolve(part, response)[response.size // 2:]
            reach = min(shaped.size, view.size)
            view[:reach] += sign * shaped[:reach]
    return values


def filtered_amid_end_levels(values: np.ndarray, cutoff: float = HIGHPASS_CUTOFF) -> np.ndarray:
    """:func:`baseline_and_highpass` of a short signal as :func:`remove_carrier` runs it: what
    the trend left at the ends (a steep carrier that a cubic does not quite follow) continues
    as a level for :data:`EMBEDDING_PAD` samples each side, so that the filters see no step."""
    first, last = (float(np.median(end)) for end in (values[:EDGE_LEVEL_SAMPLES], values[-EDGE_LEVEL_SAMPLES:]))
    padded = np.concatenate((np.full(EMBEDDING_PAD, first), values, np.full(EMBEDDING_PAD, last)))
    return baseline_and_highpass(padded, cutoff)[EMBEDDING_PAD: EMBEDDING_PAD + values.size]


def carrier_filter(values: np.ndarray) -> np.ndarray:
    """The filters of :func:`remove_carrier` for a signal of ``values.size`` samples, without
    its trend fit: under :data:`SHORT_SIGNAL` samples amid continued end levels (medians of the
    ends, so not quite linear there)."""
    return filtered_amid_end_levels(values) if values.size < SHORT_SIGNAL else baseline_and_highpass(values)


RESPONSE_GRID = 8193  # frequencies, 0 to 0.5 cycles per sample, of the tabulated response


@lru_cache(maxsize=1)
def _carrier_filter_response() -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(0.0, 0.5, RESPONSE_GRID)
    _, highpass = sps.sosfreqz(_highpass_sos(HIGHPASS_CUTOFF, HIGHPASS_ORDER), worN=grid, fs=1.0)
    taps = _baseline_taps(BASELINE_WINDOW, BASELINE_ORDER)
    lags = np.arange(taps.size) - taps.size // 2
    baseline = np.cos(2.0 * np.pi * grid[:, None] * lags[None, :]) @ taps  # symmetric taps: real
    return _shared(grid), _shared((1.0 - baseline) * np.abs(highpass) ** 2)


def carrier_filter_gain(frequencies: np.ndarray) -> np.ndarray:
    """The gain of :func:`baseline_and_highpass` (zero phase, so real) away from a signal's
    ends, at ``frequencies`` in cycles per sample."""
    grid, gain = _carrier_filter_response()
    return np.interp(np.abs(frequencies), grid, gain)


def baseline_and_highpass(raw: np.ndarray, cutoff: float = HIGHPASS_CUTOFF) -> np.ndarray:
    """The two zero-phase steps over a signal long enough for them (more than 31 samples):
    :func:`carrier_baseline` subtracted, then the Butterworth high-pass forwards and backwards;
    over each row of a stack ``(rows, samples)``."""
    return zero_phase_highpass(raw - carrier_baseline(raw), cutoff)


@lru_cache(maxsize=8)
def _highpass_start(cutoff: float, order: int) -> tuple[np.ndarray, int]:
    """The high-pass's steady state for a unit step (``sosfilt_zi``) and ``sosfiltfilt``'s
    default padding for it (three times its taps)."""
    sos = _highpass_sos(cutoff, order)
    taps = 2 * len(sos) + 1 - min(int(np.sum(sos[:, 2] == 0)), int(np.sum(sos[:, 5] == 0)))
    start = sps.sosfilt_zi(sos)
    start.setflags(write=False)  # shared by every call
    return start, 3 * taps


def zero_phase_highpass(values: np.ndarray, cutoff: float = HIGHPASS_CUTOFF) -> np.ndarray:
    """``sps.sosfiltfilt`` of the Butterworth high-pass with its default odd padding, the same
    operations in the same order but with the filter's start state computed once: solving for it
    took a quarter of the call on a 7,920-sample signal, and conditioning calls it two to five
    times per signal."""
    sos = _highpass_sos(cutoff, HIGHPASS_ORDER)
    start, pad = _highpass_start(cutoff, HIGHPASS_ORDER)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size <= pad:
        return sps.sosfiltfilt(sos, values)  # scipy's own answer, or its error, for the rare case
    extended = np.concatenate((2 * values[:1] - values[pad:0:-1], values,
                               2 * values[-1:] - values[-2:-(pad + 2):-1]))
    forwards, _ = sps.sosfilt(sos, extended, zi=start * extended[:1])
    backwards, _ = sps.sosfilt(sos, forwards[::-1], zi=start * forwards[-1:])
    return backwards[::-1][pad:-pad]


QUANTUM_SAMPLES = 65_536  # samples looked at for the ADC step
GRID_TOLERANCE = 0.01  # of a step: how close to a multiple a value must be to lie on the grid
GRID_SHARE = 0.99  # share of distinct values on the grid for the capture to count as quantised
# A capture of two levels shows its step only where the rarer is this common (a share of the
# samples, and at least this many of them); fewer are pulses on a dead-flat line.
TWO_LEVEL_SHARE = 0.01
TWO_LEVEL_FEWEST = 4


def quantisation_step(raw: np.ndarray) -> float:
    """The ADC step of a capture whose values lie on a grid (integer samples, or a few-bit
    recorder's levels), 0 for continuous data: the smallest gap between distinct values among
    up to 65,536 evenly spread samples, kept only where nearly all of them sit on multiples
    of it. (A short stretch of a large carrier has few, widely spaced values: their smallest
    gap is no ADC step, and taking it for one would drown the pulses in a false floor.)"""
    raw = np.asarray(raw)
    if raw.size < 2:
        return 0.0
    sample = raw[:: max(1, raw.size // QUANTUM_SAMPLES)]
    values, counts = np.unique(sample, return_counts=True)
    if values.size < 2:
        return 0.0
    if values.size == 2 and counts.min() < max(TWO_LEVEL_SHARE * sample.size, TWO_LEVEL_FEWEST):
        # A flat line with a few samples at one other level: those are transients on a
        # floor of nothing, and their height is no ADC step.
        return 0.0
    step = float(np.diff(values).min())
    multiples = (values - values[0]) / step
    on_grid = np.abs(multiples - np.round(multiples)) <= GRID_TOLERANCE
    return step if np.mean(on_grid) >= GRID_SHARE else 0.0


def block_noise(filtered: np.ndarray) -> float:
    """The RMS of the quietest fifth of a carrier-free signal's 64-sample blocks (the MAD for
    signals of fewer than four blocks): PD bursts with long ringing can cover more than half
    of a capture, which would inflate a plain MAD; the quiet stretches between bursts still
    show the true noise floor."""
    if filtered.size // NOISE_BLOCK >= 4:
        return quiet_block_rms(filtered, NOISE_BLOCK)
    return mad_sigma(filtered)


def quiet_block_rms(filtered: np.ndarray, block: int) -> float:
    """The :data:`NOISE_QUANTILE` quantile of the rms of ``filtered``'s whole ``block``-sample
    blocks (the rest of the signal left out)."""
    blocks = filtered.size // block
    trimmed = filtered[: blocks * block].reshape(blocks, block)
    return float(np.quantile(np.sqrt(np.mean(trimmed**2, axis=1)), NOISE_QUANTILE))


# The carrier filter's float64 round-off on an offset: 3e-11 of a constant signal's value. A
# thousandth of the largest absolute sample keeps the floor (a millionth of it) 30 times over.
ROUND_OFF_SHARE = 1e-3


def signal_magnitude(raw: np.ndarray) -> float:
    """Half of ``raw``'s peak-to-peak (its magnitude about its middle), and at least
    :data:`ROUND_OFF_SHARE` of its largest absolute sample: the ``raw_magnitude`` of
    :func:`noise_floor`. A constant offset (an amplifier's bias, a unipolar converter's
    mid-scale) moves no floor: with the largest absolute sample, an offset of 1e6 on the real
    captures' 7e5 carrier lost 7 of their 62 regions, 1e7 lost 20 (docs/model-card.md); with
    nothing but the peak-to-peak, a constant's round-off stood 16 units out."""
    if raw.size == 0:
        return 0.0
    # Halved first: the difference of two huge samples of opposite sign overflows.
    highest, lowest = float(np.max(raw)), float(np.min(raw))
    return max(0.5 * highest - 0.5 * lowest, ROUND_OFF_SHARE * max(abs(highest), abs(lowest)))


def noise_floor(raw_magnitude: float, quantum: float = 0.0) -> float:
    """The least noise scale a capture can have: what float32 resolves of its magnitude, and
    half its ADC step ``quantum`` (a few-bit capture can be exactly flat between pulses, and
    one step there is no pulse)."""
    return max(RELATIVE_NOISE_FLOOR * raw_magnitude, 0.5 * quantum, np.finfo(np.float64).tiny)


# A short window's quiet end: blocks this long (a triggered window of 64 samples may hold
# only 8 before its pulse), used where the block is this many times quieter than the window as
# a whole and where it looks white: its first differences at least this share of its rms (white
# noise: about 1.4 on average; a slow swing of low-passed noise far less). Measured on 3,000
# windows of 64-900 samples each: the estimate takes over in at most 3 of 10,000 windows of
# white noise and in up to 1.5 % of those of noise low-passed at 0.05-0.3 cycles per sample; it
# refuses 15 % of white stretches, which keep the estimate of before.
QUIET_BLOCK = 8
QUIET_CONTRAST = 6.0
QUIET_WHITENESS = 1.2
DECAY_PARTS = 3  # a ringing pulse after a quiet stretch peaks in the first third of the rest ...
DECAY_RATIO = 0.65  # ... and its last third holds under this share of the first's rms
QUIET_AGREEMENT = 2.0  # a factor: a quiet start that fails the whiteness test and the ringing residual after it


@lru_cache(maxsize=4)
def _median_quieter_rms(degrees_of_freedom: int) -> float:
    """The median of the quieter of two rms values of unit white noise, each with
    ``degrees_of_freedom`` (order statistics of the chi distribution)."""
    return float(stats.chi.ppf(1.0 - 0.5 ** 0.5, degrees_of_freedom) / math.sqrt(degrees_of_freedom))


@lru_cache(maxsize=1)
def _block_noise_of_white() -> float:
    """What :func:`block_noise` gives for unit white noise in a long capture (the 20th
    percentile of 64-sample rms values): the level the network learned noise at."""
    return float(stats.chi.ppf(NOISE_QUANTILE, NOISE_BLOCK) / math.sqrt(NOISE_BLOCK))


def quiet_stretch_noise(filtered: np.ndarray) -> float:
    """The noise of a short signal from the quieter of its first and last :data:`QUIET_BLOCK`
    samples: a pulse that fills all but a few samples of a triggered window leaves those few,
    before its onset or after its decay, to tell the floor. Their rms about the line through
    them (the carrier filter leaves a slow offset or ramp before a pulse), divided by what the
    quieter of two such blocks gives for white noise and put on :func:`block_noise`'s level;
    infinite where that stretch does not look white (:data:`QUIET_WHITENESS`), unless it is the
    signal's start and the rest decays from its start (:func:`decays_from_its_start`, as a
    ringing pulse after its onset does) with a residual (:func:`ringing_residual_noise`) within
    :data:`QUIET_AGREEMENT` of the stretch. Noise alone often passes that too; :func:`noise_scale`
    takes the stretch only where it is well under the other estimates."""
    if filtered.size < 2 * QUIET_BLOCK:
        return math.inf
    ends, block_rms = _ends_about_fit(filtered, 1)  # about the line through each
    quieter = int(np.argmin(block_rms))
    least = float(block_rms[quieter])
    estimate = least / _median_quieter_rms(QUIET_BLOCK - 2) * _block_noise_of_white()
    if float(np.sqrt(np.mean(np.diff(ends[quieter]) ** 2))) < QUIET_WHITENESS * least:
        # A slow swing, not a stretch of white noise? Eight samples of white noise look that
        # smooth one time in seven, and the filters' response ahead of a ringing onset adds to
        # it: a window whose rest is one ringing pulse then lost its scale to the ringing. Only
        # a quiet start: a quiet end after fading tones (beats, modulation) agreed as well.
        if quieter != 0:
            return math.inf
        rest = filtered[QUIET_BLOCK:]
        if not decays_from_its_start(rest):
            return math.inf  # a stationary tone agrees with its own residual as well
        ringing = ringing_residual_noise(rest)
        if not (ringing <= QUIET_AGREEMENT * estimate and estimate <= QUIET_AGREEMENT * ringing):
            return math.inf
    return estimate


def decays_from_its_start(values: np.ndarray) -> bool:
    """Whether ``values`` peak in their first :data:`DECAY_PARTS`-th and their last part holds
    under :data:`DECAY_RATIO` of the first part's rms: a pulse after its onset, not a tone."""
    part = values.size // DECAY_PARTS
    if part < 2:
        return False
    first, last = (float(np.sqrt(np.mean(values[span] ** 2))) for span in (slice(0, part), slice(-part, None)))
    return int(np.argmax(np.abs(values))) < part and last < DECAY_RATIO * first


def _ends_about_fit(filtered: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """A signal's first and last :data:`QUIET_BLOCK` samples less the polynomial of ``degree``
    fitted to each, and the rms of each on its ``QUIET_BLOCK - degree - 1`` degrees of freedom."""
    ends = np.stack((filtered[:QUIET_BLOCK], filtered[-QUIET_BLOCK:]))
    ends = ends - ends @ _polynomial_fit(QUIET_BLOCK, degree).T
    return ends, np.sqrt(np.sum(ends**2, axis=1) / (QUIET_BLOCK - degree - 1))


# A signal of fewer than four NOISE_BLOCKs (256 samples) is measured in blocks of
# SHORT_NOISE_BLOCK samples: in four or more of them a pulse filling a third of the signal still
# leaves the quietest fifth clean, where the MAD of the whole signal (the estimate before) counted
# it, and the MAD of plain noise sits 8 % over the long captures' level besides. Both put short
# windows' pulses fewer noise units out than the network learned them at (docs/model-card.md,
# Conditioning, "A short window's noise on the long captures' level"). Only where the noise is
# near white: low-passed noise swings slower than 16 samples.
SHORT_NOISE_BLOCK = 16
SHORT_NOISE_BLOCKS = 4  # fewer blocks than this: the MAD, put on the same level


QUANTILE_GRID = 4096  # midpoints over (0, 1) for the expected order statistics


@lru_cache(maxsize=64)
def _expected_block_quantile(block: int, blocks: int) -> float:
    """What ``np.quantile(rms, NOISE_QUANTILE)`` of the rms values of ``blocks`` blocks of
    ``block`` samples of unit white noise gives on average: the quantile's interpolation
    between the expected order statistics of the chi distribution (each the chi quantile
    function weighted by its rank's beta density, summed over a grid of midpoints)."""
    grid = (np.arange(QUANTILE_GRID) + 0.5) / QUANTILE_GRID
    rms = stats.chi.ppf(grid, block) / math.sqrt(block)

    def order_statistic(rank: int) -> float:  # the expected rank-th smallest (1-based)
        return float(np.mean(rms * stats.beta.pdf(grid, rank, blocks - rank + 1)))

    position = NOISE_QUANTILE * (blocks - 1)
    lower = int(math.floor(position))
    value = order_statistic(lower + 1)
    if position > lower:
        value += (position - lower) * (order_statistic(lower + 2) - value)
    return value


def short_block_noise(filtered: np.ndarray) -> float:
    """:func:`block_noise` for a signal shorter than four of its blocks, on the level it gives
    a long capture's white noise: the quietest fifth of :data:`SHORT_NOISE_BLOCK`-sample blocks,
    divided by what that quantile of so few blocks gives white noise on average; under
    :data:`SHORT_NOISE_BLOCKS` blocks the MAD, put on that level."""
    blocks = filtered.size // SHORT_NOISE_BLOCK
    if blocks < SHORT_NOISE_BLOCKS:
        return mad_sigma(filtered) * _block_noise_of_white()
    return (quiet_block_rms(filtered, SHORT_NOISE_BLOCK) * _block_noise_of_white()
            / _expected_block_quantile(SHORT_NOISE_BLOCK, blocks))


# A triggered window filled by one ringing pulse (a damped oscillation or a slow exponential that
# has not died out when the window ends) has no quiet block left, and every estimate above counts
# the pulse: a 64-sample window holding a 0.1-cycle oscillation that decays over 60 samples was
# measured at 5 times its noise. What a few damped components cannot describe is the noise:
# the trajectory (Hankel) matrix of a sum of k damped exponentials has rank k, and white noise
# spreads evenly over all its singular values (singular spectrum analysis). Taken only from
# RINGING_MIN_SAMPLES to under RINGING_MAX_SAMPLES samples (at 128-200 it found no more pulses
# on validation and a few more false ones), where it is less than 1 / RINGING_CONTRAST of the other estimate, where what is
# left looks white, and where one end of the window is as quiet about its mean: a stationary
# tone, noise to a window too short to take tones out, fills both ends (and is one more pair
# of components), where a pulse leaves the few samples before its onset.
TRAJECTORY_ROWS = 16  # rows of the trajectory matrix (each a run of n - 15 samples)
RINGING_COMPONENTS = 8  # the strongest components, left out as the pulse
# Under half the other estimate only: on plain noise the two agree, and a lower residual is a
# pulse (or tone) the other estimate counted.
RINGING_CONTRAST = 2.0
# A pulse leaves one end of the window at the noise, a stationary tone fills both.
RINGING_QUIET_END_RATIO = 1.5
RINGING_MIN_SAMPLES = 3 * TRAJECTORY_ROWS  # shorter, the residual of white noise sits 5 % low after the carrier filter
RINGING_MAX_SAMPLES = 128
RINGING_CALIBRATION_DRAWS = 1000  # white-noise windows simulated per length (fixed seed)
RINGING_WHITENESS_QUANTILE = 0.01  # what is left is white unless its spread is rarer than this


def _trajectory_singular_values(windows: np.ndarray) -> np.ndarray:
    """Singular values (largest first) of the :data:`TRAJECTORY_ROWS`-row trajectory matrix of
    each row of ``windows`` (``[i, j] = x[i + j]``)."""
    columns = windows.shape[-1] - TRAJECTORY_ROWS + 1
    trajectory = np.lib.stride_tricks.sliding_window_view(windows, columns, axis=-1)
    return np.linalg.svd(trajectory, compute_uv=False)


def _residual_rms(singular_values: np.ndarray, length: int) -> np.ndarray:
    """The rms per matrix entry of what the strongest components leave (each of the n - 15
    columns a window of the signal); only ever read against the same for white noise."""
    rest = singular_values[..., RINGING_COMPONENTS:]
    return np.sqrt(np.mean(rest**2, axis=-1) / (length - TRAJECTORY_ROWS + 1))


@lru_cache(maxsize=RINGING_MAX_SAMPLES - RINGING_MIN_SAMPLES)
def _ringing_calibration(length: int) -> tuple[float, float]:
    """For unit white noise of ``length`` samples: the median residual rms, and the
    :data:`RINGING_WHITENESS_QUANTILE` quantile of the smallest singular value over the
    largest one left (simulated with a fixed seed, so the same every run). Raw white noise:
    the carrier filter's output of it, which a short signal's trend fit colours a little,
    passes the whiteness test 90-95 % of the time, and a window refused keeps its estimate."""
    draws = np.random.default_rng(length).standard_normal((RINGING_CALIBRATION_DRAWS, length))
    # The singular values as the square roots of the 16 x 16 Gram matrix's eigenvalues: the same
    # to 1e-13 on these draws, and three times faster than the SVD of each trajectory matrix.
    trajectory = np.lib.stride_tricks.sliding_window_view(draws, length - TRAJECTORY_ROWS + 1, axis=-1)
    gram = trajectory @ np.swapaxes(trajectory, -1, -2)
    values = np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[..., ::-1], 0.0))
    spread = values[:, -1] / values[:, RINGING_COMPONENTS]
    return float(np.median(_residual_rms(values, length))), float(np.quantile(spread, RINGING_WHITENESS_QUANTILE))


def calibrate_ringing() -> None:
    """Simulate :func:`_ringing_calibration` for every length it serves (about 1 s on one core),
    so that no request pays for it: a first request of many distinct short lengths took 3.4 s
    where a warm worker takes 0.8 s."""
    for length in range(RINGING_MIN_SAMPLES, RINGING_MAX_SAMPLES):
        _ringing_calibration(length)


def ringing_residual_noise(filtered: np.ndarray) -> float:
    """The noise of a short signal as what its :data:`RINGING_COMPONENTS` strongest
    trajectory-matrix components leave, on :func:`block_noise`'s level; infinite where that
    does not look like white noise (low-passed noise leaves a spread thousands of times wider)
    and outside :data:`RINGING_MIN_SAMPLES` to :data:`RINGING_MAX_SAMPLES` samples (longer
    signals have quiet blocks to measure, and their calibration would cost seconds)."""
    magnitude = float(np.max(np.abs(filtered))) if filtered.size else 0.0
    if not RINGING_MIN_SAMPLES <= filtered.size < RINGING_MAX_SAMPLES or not 0.0 < magnitude < math.inf:
        return math.inf
    # In units of the magnitude (the result scales with it), so no square over- or underflows.
    values = _trajectory_singular_values(np.asarray(filtered, dtype=np.float64) / magnitude)
    level, whiteness = _ringing_calibration(filtered.size)
    if not values[RINGING_COMPONENTS] > 0.0 or values[-1] / values[RINGING_COMPONENTS] < whiteness:
        return math.inf
    return float(_residual_rms(values, filtered.size)) / level * _block_noise_of_white() * magnitude


def quiet_end_about_mean(filtered: np.ndarray) -> float:
    """The rms about its mean of the quieter of a signal's first and last :data:`QUIET_BLOCK`
    samples, on :func:`block_noise`'s level. About the mean, not a line: a slow tone's slope
    over so few samples counts."""
    return float(_ends_about_fit(filtered, 0)[1].min()) / _median_quieter_rms(QUIET_BLOCK - 1) * _block_noise_of_white()


def short_signal_difference_noise(filtered: np.ndarray) -> float:
    """The most noise a short signal's differences allow, which a pulse filling much of it
    barely moves: :data:`DIFFERENCE_NOISE_REACH` times the third differences' level (room for
    what differences hardly see: slow 1/f noise, low tones), or the first differences' level
    raised by the square root of how much more they show than the third, where that is more.
    The two orders agree on white noise. Low-passed noise (a recorder's anti-alias filter)
    shows less of itself the higher the order: at a cut-off of 0.3 cycles/sample (4th-order
    Butterworth) the third show 0.44 of its rms, and the noise's own swings stood out as pulses,
    while the corrected first differences stay within 8 % of it at cut-offs of 0.3 and above.
    Infinite where the noise is more strongly coloured (the third show less than
    :data:`WHITE_NOISE_RATIO` of the first): differences say little of it there."""
    first = difference_noise(filtered, order=1)
    third = difference_noise(filtered)
    if third <= 0.0 or third < WHITE_NOISE_RATIO * first:
        return math.inf
    return max(DIFFERENCE_NOISE_REACH * third, first * math.sqrt(first / third))


# A dense train of short pulses (a GIS capture with a pulse every 30-60 samples) leaves few
# blocks without one, and the quietest blocks then measure the pulses: such trains read at 1.6-2
# times their noise, and a third of their pulses were lost (scripts/dense_trains.py). The
# samples between the pulses still show the floor: their rms, with every sample over DENSE_K
# noise sigmas left out and DENSE_REACH samples either side with it, iterated from the other
# estimate. Taken only where it is DENSE_CONTRAST times lower (plain noise keeps the estimate
# the network learned at), at least half the signal is left (ringing that fills a capture is no
# floor), and from DENSE_MIN_SAMPLES on: under four blocks the other estimate is a MAD, off the
# long captures' level, and strongly low-passed noise would often read 1.2 times lower here.
DENSE_K = 3.5
DENSE_REACH = 5
DENSE_ROUNDS = 4
DENSE_CONTRAST = 1.2
DENSE_MIN_SAMPLES = 4 * NOISE_BLOCK


def between_pulses_noise(filtered: np.ndarray, estimate: float) -> float:
    """The noise of ``filtered`` from the samples between its pulses, on :func:`block_noise`'s
    level, starting from ``estimate`` (on that level): the rms of what is left after leaving out
    the samples over :data:`DENSE_K` sigmas of the last round's value and :data:`DENSE_REACH`
    either side. The last round that left at least half the signal counts; infinite where the
    first did not. Converges in a round or two on plain noise."""
    level = _block_noise_of_white()
    sigma = estimate / level
    if not (sigma > 0.0 and math.isfinite(sigma)):
        return math.inf
    squares = np.square(filtered)
    total = float(np.sum(squares))  # numpy's own sum: np.dot would wake BLAS threads that keep spinning
    offsets = np.arange(-DENSE_REACH, DENSE_REACH + 1)
    accepted = math.inf
    for _ in range(DENSE_ROUNDS):
        loud = squares > (DENSE_K * sigma) ** 2
        loud_at = np.flatnonzero(loud)
        if loud_at.size * offsets.size <= filtered.size // 8:
            # Few loud samples (plain noise, sparse pulses): their neighbourhoods by index, under
            # 1 ms on 800,000 samples where the filter below takes about 7; past an eighth of the
            # signal the indices cost more than the filter.
            near_loud = np.unique(np.clip((loud_at[:, None] + offsets).ravel(), 0, filtered.size - 1))
            kept = filtered.size - near_loud.size
            kept_squares = total - float(np.sum(squares[near_loud]))
            # Pulses 1e5 times the noise: the subtraction would leave rounding, not the kept sum.
            if kept_squares <= 1e-9 * total:
                quiet = np.ones(filtered.size, dtype=bool)
                quiet[near_loud] = False
                kept_squares = float(np.sum(squares[quiet]))
        else:
            quiet = ~ndimage.maximum_filter1d(loud, offsets.size)
            kept = int(np.count_nonzero(quiet))
            kept_squares = float(np.sum(squares[quiet]))
        if 2 * kept < filtered.size:
            break
        previous, sigma = sigma, math.sqrt(max(kept_squares, 0.0) / kept)
        accepted = sigma
        if sigma >= 0.99 * previous:
            break
    return accepted * level


# An ADC overdriven by its carrier, or a front-end limiter, holds the signal on its two rails
# for hundreds of samples a half cycle with no noise at all: the quietest blocks are those, and
# the noise read there (the floor of half an ADC step) put the true noise 6 scales out, so
# the whole unclipped part of a PD-free capture was reported (12 regions covering 64 % of one:
# docs/model-card.md, Known failure modes). Samples on both of a capture's extremes in runs of
# RAIL_RUN or more, RAIL_REACH either side, are left out of the noise estimate, where that
# leaves at least RAIL_KEEP of the capture. Both rails: a noise-free baseline under unipolar
# pulses is one long run at one extreme, and its pulses are what stands out of it.
RAIL_RUN = 8
RAIL_REACH = 8
RAIL_KEEP = 0.25


def rail_samples(raw: np.ndarray) -> np.ndarray | None:
    """Where ``raw`` sits on a rail (see :data:`RAIL_RUN`), widened by :data:`RAIL_REACH`; None
    where it has no two rails or they would leave too little of it."""
    if raw.size < 4 * RAIL_RUN:
        return None
    runs = []
    for value in (raw.max(), raw.min()):
        at = raw == value
        if np.count_nonzero(at) < RAIL_RUN:
            return None  # most captures: each extreme once
        run = ndimage.binary_opening(at, structure=np.ones(RAIL_RUN, dtype=bool))  # runs of RAIL_RUN or more
        if not run.any():
            return None
        runs.append(run)
    rails = ndimage.binary_dilation(runs[0] | runs[1], iterations=RAIL_REACH)
    return rails if np.count_nonzero(~rails) >= RAIL_KEEP * raw.size else None


def noise_scale(filtered: np.ndarray, raw_magnitude: float, quantum: float = 0.0,
                rails: np.ndarray | None = None, dense_pulses: bool = True) -> float:
    """Robust noise level of a carrier-free signal: :func:`block_noise` (:func:`short_block_noise`
    under four blocks where the noise is near white), and at least :func:`noise_floor`. Short
    signals also ask their differences (:func:`short_signal_difference_noise`) and their quiet
    ends (:func:`quiet_stretch_noise`). ``rails``: samples to leave out (:func:`rail_samples`).
    ``dense_pulses`` False: a signal of :data:`FEW_BLOCKS` blocks or more is not read between its
    pulses (:func:`with_dense_pulses`), as the shipped weights' fine-tuning rows were not."""
    if rails is not None:
        filtered = filtered[~rails]
    floor = noise_floor(raw_magnitude, quantum)
    if filtered.size == 0:
        return floor
    if not 8 <= filtered.size < FEW_BLOCKS * NOISE_BLOCK:
        estimate = block_noise(filtered)
        return max(with_dense_pulses(filtered, estimate) if dense_pulses else estimate, floor)
    differences = short_signal_difference_noise(filtered)
    if correlated_throughout(filtered):
        estimate = min(block_noise(filtered), CORRELATED_DIFFERENCE_REACH * differences)
        return max(with_dense_pulses(filtered, estimate), floor)
    # Small blocks only in noise near white: strongly coloured noise swings slower than
    # they are long, and its quietest fifth is a swing's zero crossing.
    near_white_and_short = filtered.size < 4 * NOISE_BLOCK and math.isfinite(differences)
    estimate = short_block_noise(filtered) if near_white_and_short else block_noise(filtered)
    # Too few blocks for a quiet one to be sure: a pulse filling most of a short window
    # would pass for noise, where the differences still show the floor.
    estimate = min(estimate, differences)
    # A slow oscillation filling the window moves the differences too; a few quiet
    # samples before it still show the floor.
    quiet = quiet_stretch_noise(filtered)
    if QUIET_CONTRAST * quiet < estimate:
        estimate = quiet
    if filtered.size < RINGING_MAX_SAMPLES:
        # A ringing pulse can fill a window this short and every estimate above counts it; the
        # quiet end keeps a stationary tone, noise to such a window, in the scale.
        ringing = ringing_residual_noise(filtered)
        if RINGING_CONTRAST * ringing < estimate and quiet_end_about_mean(filtered) <= RINGING_QUIET_END_RATIO * ringing:
            estimate = ringing
    return max(with_dense_pulses(filtered, estimate), floor)


# Strongly correlated noise reads low by the differences (and by the other short-signal
# estimates): a window of 256-1,023 samples of one-pole noise of 0.8-0.95 was scaled at 0.6 of
# what the same noise reads over 1,024 samples or more, and its swings got 1-2.7 regions a
# capture (docs/model-card.md, Conditioning). Where every 64-sample block is that correlated,
# such a window keeps the block estimate of longer signals; a pulse leaves some block to the
# noise. Not under 256 samples: there one long pulse fills every block (smaller blocks
# turned 64-sample windows' ringing pulses into noise).
# A strong low tone (which a short window keeps) and a train of smooth pulses one every block
# are correlated throughout as well; neither is Gaussian: the quieter half of the blocks reads
# a kurtosis under 2.2 with a tone, over 4.5 with pulses in it, 2.2-4.5 for correlated noise.
# And the block estimate is kept within CORRELATED_DIFFERENCE_REACH of the differences' bound,
# which reads one-pole noise of 0.95 at 0.57 of its level: what passes the two tests anyway
# cannot take the scale far up (docs/model-card.md, Conditioning).
CORRELATED_BLOCKS_FROM = 0.3  # lag-1 correlation in every block; white noise's blocks spread about 0.125
CORRELATED_MIN_SAMPLES = 4 * NOISE_BLOCK
GAUSSIAN_KURTOSIS = (2.2, 4.5)
CORRELATED_DIFFERENCE_REACH = 1.8


def correlated_throughout(filtered: np.ndarray) -> bool:
    """Whether every 64-sample block of a signal of at least :data:`CORRELATED_MIN_SAMPLES`
    shows a lag-1 correlation of :data:`CORRELATED_BLOCKS_FROM` or more
    (:func:`pdseg.whiten.least_block_correlation`), and the quieter half of its blocks looks like
    Gaussian noise (a kurtosis within :data:`GAUSSIAN_KURTOSIS`)."""
    if filtered.size < CORRELATED_MIN_SAMPLES or whiten.least_block_correlation(filtered) < CORRELATED_BLOCKS_FROM:
        return False
    low, high = GAUSSIAN_KURTOSIS
    return low <= quiet_blocks_kurtosis(filtered) <= high


def quiet_blocks_kurtosis(filtered: np.ndarray) -> float:
    """The kurtosis (3 for Gaussian noise, 1.5 for a sine) of the samples of the quieter half of
    ``filtered``'s 64-sample blocks (:func:`pdseg.whiten.quiet_blocks`; at least four of them);
    NaN where they are all equal."""
    quiet = whiten.quiet_blocks(filtered).ravel()
    centred = quiet - np.mean(quiet)
    largest = float(np.max(np.abs(centred)))
    if not largest > 0.0:
        return math.nan
    centred = centred / largest  # fourth powers of the decoder's largest values would overflow
    return float(np.mean(centred**4)) / float(np.mean(centred**2)) ** 2


def with_dense_pulses(filtered: np.ndarray, estimate: float) -> float:
    """``estimate``, or :func:`between_pulses_noise` where a signal of at least
    :data:`DENSE_MIN_SAMPLES` shows its floor :data:`DENSE_CONTRAST` times lower between its pulses."""
    if filtered.size < DENSE_MIN_SAMPLES:
        return estimate
    between = between_pulses_noise(filtered, estimate)
    return between if DENSE_CONTRAST * between < estimate else estimate


LOCAL_PEAK_SPAN = 1025  # samples over which the local peak is taken (about ±512)
# The network's input planes, in channel order: the compressed signal in noise units, and the
# signal relative to its local peak. Both change sign with the signal.
PLANES = ("signal", "relative")
INPUT_CHANNELS = len(PLANES)


def compress(normalised: np.ndarray) -> np.ndarray:
    """Log-like compression (asinh): noise stays near ±1, a 60 dB spike stays below 8, so one
    network sees both noisy field captures and near noise-free laboratory ones."""
    return np.arcsinh(normalised)


def relative_to_local_peak(filtered: np.ndarray, scale: float) -> np.ndarray:
    """The signal divided by the largest magnitude within ±512 samples (plus the noise scale).
    In near noise-free captures the log channel squeezes a spike and the filter's response
    around it into a few units; here the spike is 1 and its surroundings stay small."""
    if filtered.size == 0:
        return filtered.copy()
    local_peak = ndimage.maximum_filter1d(np.abs(filtered), LOCAL_PEAK_SPAN, mode="constant")
    return filtered / (local_peak + scale)


@dataclasses.dataclass
class Conditioned:
    """One signal ready for the network, with what postprocessing needs to report in the
    caller's units."""

    raw: np.ndarray  # float64, as sent
    filtered: np.ndarray  # float64, carrier removed, input units
    scale: float  # noise scale in input units
    network_input: np.ndarray  # float32 (channels, length), unitless
    # frequencies (cycles per sample) of the stationary tones taken out of ``filtered``
    tones: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    # the tone bursts taken out of it (pdseg.tones.Burst: a line on for a stretch only)
    tone_bursts: tuple = ()
    # the wandering tones taken out of it (pdseg.tones.WanderingTone: a line whose frequency moves)
    wandering_tones: tuple = ()
    # the carrier the capture shows (its own, no caller's period), where conditioning fitted it
    carrier: CarrierFit | None = None
    # the converter commutation train taken out of ``filtered``, if any
    commutation: commutation.Train | None = None
    # what repeated identically once a cycle and was taken out too (a clipped carrier's residue)
    phase_locked: commutation.Train | None = None
    # a regular train of equal transients at a spacing of its own, taken out where no carrier
    # explained it (a converter seen through a sensor that filters the carrier out, a supply's edges)
    regular_train: commutation.Train | None = None
    # the same signal with its correlated noise whitened (:mod:`pdseg.whiten`), for the network
    # to look at as well, and the whitening filter's coefficient; None where the noise is white
    whitened: "Conditioned | None" = None
    whitening: float | None = None
    # the capture decimated (:mod:`pdseg.slow`) and conditioned as a signal of its own, for smooth
    # pulses too wide for the network at the full rate; None where a carrier was fitted or it is short
    slow: "Conditioned | None" = None
    slow_skipped: bool = False  # the slower view was due but left out for the request's work limit
    # a slower view's network probability and the id of the network that gave it, once
    # pdseg.pipeline.Segmenter.probabilities has run over it
    probability: tuple[int, np.ndarray] | None = None
    # the network's probability over windows of near context only where the signal has loud
    # samples (:mod:`pdseg.context`, zero elsewhere) and the id of the network that gave it; None
    # where it has none, is short, or had a train taken out
    near: tuple[int, np.ndarray] | None = None
    view_skipped: bool = False  # a view was due but left out for the request's work limit
    # the ADC step the recorded values lie on (:func:`quantisation_step`; 0 where they lie on none;
    # float32 data can show a step of an ulp, which never sets the scale); 0 for a whitened view
    quantum: float = 0.0
    # a limiter's plateaus given back the carrier's course before filtering (pdseg.limiter):
    # their count, corners and levels, and the restored signal the carrier is fitted to; None
    # where the capture shows none
    clipped: dict | None = None
    restored: np.ndarray | None = None
    # the pulses cut by the signal's first and last samples, filtered as away from its ends
    end_pulses: EndPulses = dataclasses.field(default_factory=EndPulses)
    # conditionings of the signal beyond its own, to tell a converter notch cut by an end from a
    # pulse (charged as views against the request's work limit) ...
    rechecks: int = 0
    # ... and whether they were due but left out for that limit (the cut pulses then stand)
    ends_unchecked: bool = False

    def extra_work(self, cost: Callable[[int], int]) -> int:
        """What conditioning charged this signal beyond its own work, in ``cost``'s units (the
        request's work limit): its whitened view, its slower view and its conditionings more."""
        return ((_charge(cost, self.length) if self.whitened is not None else 0)
                + (_charge(cost, self.slow.length) if self.slow is not None else 0)
                + self.rechecks * _charge(cost, self.length))

    def carrier_course(self) -> np.ndarray:
        """What the carrier is fitted to: the capture as sent, or as restored (:mod:`pdseg.limiter`)."""
        return self.raw if self.restored is None else self.restored

    @property
    def length(self) -> int:
        return int(self.raw.size)


def network_planes(filtered: np.ndarray, scale: float) -> np.ndarray:
    """The planes of :data:`PLANES`, in that order, float32 ``(channels, length)``."""
    return np.stack((compress(filtered / scale), relative_to_local_peak(filtered, scale))).astype(np.float32)


# What a short signal's margins show of it: every sample more than MARGIN_QUIET noise units
# out, and MARGIN_QUIET_REACH samples either side, is silenced there, so no pulse is repeated.
MARGIN_QUIET = 3.0
MARGIN_QUIET_REACH = 6


def planes_amid_own_noise(conditioned: Conditioned, before: int, after: int) -> np.ndarray:
    """The network planes of ``conditioned`` with ``before`` and ``after`` samples of margin
    that continue its own noise: the signal mirrored at its ends (again and again where the
    margin is longer than the signal), with what stands out of the noise silenced.

    Amid zeros, the network found a pulse in a short window only with about 130 samples of
    noise before it: in a 256-sample window at 20 dB, a short pulse at onsets 8-88 was found in
    about 1 of 6 noise draws, and in all 6 inside a longer capture. Noise drawn once and fixed
    did not do: which sequence was drawn moved the atlas's 64-sample recall at 30 dB between
    0.69 and 0.82, all captures together, and white noise beside coloured noise is a seam the
    network reports (docs/model-card.md, Conditioning). The signal's own noise has its colour
    and level, no seam at the mirror, and varies with the signal as real context would."""
    filtered = conditioned.filtered
    if filtered.size < 2:
        planes = network_planes(filtered, conditioned.scale)
        return np.pad(planes, ((0, 0), (before, after)))
    loud = np.abs(filtered) > MARGIN_QUIET * conditioned.scale
    loud = ndimage.binary_dilation(loud, iterations=MARGIN_QUIET_REACH) if loud.any() else loud
    extended = np.pad(np.where(loud, 0.0, filtered), (before, after), mode="reflect")
    extended[before: before + filtered.size] = filtered
    return network_planes(extended, conditioned.scale)


# Transients given back the area the carrier filter took (restore_pulse_area): those standing
# PIT_LEVEL noise units out, widened by PIT_REACH samples each side, whose signed area is at least
# PIT_UNIPOLAR of their absolute area (a bipolar or ringing pulse has next to none to give back).
PIT_LEVEL = 12.0
PIT_REACH = 3
PIT_UNIPOLAR = 0.7
# ... in captures of at least PIT_MIN_SLOTS sixths of a cycle (1.3 cycles): in those of one
# cycle, where commutation is looked for too, filling the pits took the independent
# generator's 4,000-sample validation captures at 20 dB from 0.914 to 0.904 F1.
PIT_MIN_SLOTS = 8
# A transient so loud that the filter's pit around it stands PIT_LEVEL out itself (a one-sample
# spike of 1,000 noise units leaves 25 units within +-20 samples) fails the unipolar test with its
# pit in its stretch, and its region took the pit in: the atlas lost half its one-sample spikes at
# 50 dB, two thirds at 60. From LOUD_PIT_LEVEL units on, a transient is its samples at
# LOUD_PIT_FRACTION of its local peak (the label rule), its pit filled in every capture where
# that leaves at most LOUD_PIT_FLATTER of the energy around it: where a burst's ringing or a
# sensor's own undershoot fills the surroundings, the pit is not what stands out there (filled
# wherever it flattened them at all, the real captures' bursts lost and gained regions, and the
# independent generator's validation split at 30 dB with interference fell 0.985 -> 0.981).
LOUD_PIT_LEVEL = 100.0
LOUD_PIT_FRACTION = 0.1
LOUD_PIT_SPAN = 301  # samples: the pit of the 151-sample baseline and the high-pass
LOUD_PIT_FLATTER = 0.2


def restore_pulse_area(filtered: np.ndarray, scale: float, unipolar_pits: bool = True,
                       loud_pits: bool = True, cut: "EndPulses | None" = None) -> np.ndarray:
    """``filtered`` with the pit the carrier filter dug around each loud unipolar transient
    filled in again (``unipolar_pits``), and around each very loud one (``loud_pits``,
    :func:`very_loud_transients`).

    The filter passes no area: a unipolar pulse comes out of it with a shallow dip on either
    side, and the dips of a dense same-polarity burst add up to an offset of 2-4 noise units
    against the pulses. The network holds that against a pulse: on the independent generator,
    53 strong pulses (25-45 noise units) it gave under 0.5 all sat on such an offset, median
    2.3 units against 0.8 for the pulses it found, and 39 of them rose over 0.5 with the offset
    lifted (docs/model-card.md, Known failure modes). What the filter took of a transient is
    the transient minus the filter's output for it; the loud samples stand for the transient.
    ``cut``: the pulses cut by the signal's ends, as conditioning filtered them (:class:`EndPulses`)."""
    magnitude = np.abs(filtered)
    loud = magnitude > PIT_LEVEL * scale
    if not loud.any():
        return filtered  # neither rule has a transient to fill
    transients, response = np.zeros_like(filtered), np.zeros_like(filtered)
    if unipolar_pits and filtered.size >= SHORT_SIGNAL:
        stretches, labels, unipolar, _ = _unipolar_stretches(filtered, loud)
        transients = np.where(unipolar[labels], stretches, 0.0)
        if transients.any():
            response = (cut or EndPulses()).filter(transients)
    if loud_pits and magnitude.max() >= LOUD_PIT_LEVEL * scale:
        cores, cores_response = very_loud_transients(filtered, magnitude, scale, taken=transients != 0, cut=cut)
        transients, response = transients + cores, response + cores_response
    if not transients.any():
        return filtered
    return filtered + (transients - response)


def _unipolar_stretches(filtered: np.ndarray,
                        loud: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stretches of ``loud`` samples widened by :data:`PIT_REACH` each side: their samples
    (zero elsewhere), their labels, whether each is unipolar (:data:`PIT_UNIPOLAR`, indexed by
    label, 0 for none) and the sign of its area."""
    loud = ndimage.binary_dilation(loud, iterations=PIT_REACH)
    stretches = np.where(loud, filtered, 0.0)
    labels, count = ndimage.label(loud)
    index = np.arange(1, count + 1)
    signed = ndimage.sum(stretches, labels, index)
    unipolar = np.concatenate(([False], np.abs(signed) >= PIT_UNIPOLAR * ndimage.sum(np.abs(stretches), labels, index)))
    return stretches, labels, unipolar, np.concatenate(([0.0], np.sign(signed)))


def very_loud_transients(filtered: np.ndarray, magnitude: np.ndarray, scale: float,
                         taken: np.ndarray, cut: "EndPulses | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """The samples (zero elsewhere) of the transients reaching :data:`LOUD_PIT_LEVEL` noise
    units whose pit is to be filled, and the carrier filter's output for them. Such a
    transient is its samples over :data:`PIT_LEVEL` units and at :data:`LOUD_PIT_FRACTION`
    or more of the largest magnitude (``magnitude``: of ``filtered``) within
    ``LOUD_PIT_SPAN // 2`` samples, widened by :data:`PIT_REACH` samples; its stretch must be
    unipolar and share no sample with one filled already (``taken``), and it keeps only its
    samples of its own sign. The unipolar rule does not run in every capture, and where it does
    it misses these: their pit stands :data:`PIT_LEVEL` out and joins their stretch. ``cut``: as
    :func:`restore_pulse_area`'s."""
    local_peak = ndimage.maximum_filter1d(magnitude, LOUD_PIT_SPAN, mode="constant")
    core = (magnitude > PIT_LEVEL * scale) & (magnitude >= LOUD_PIT_FRACTION * local_peak)
    stretches, labels, unipolar, signs = _unipolar_stretches(filtered, core)
    # The labels of a 1-D signal number its runs in order, as mask_to_regions lists them.
    runs = mask_to_regions(labels > 0, min_gap=0, min_length=1)
    loud_label = np.concatenate(([False], reaches(runs, magnitude, LOUD_PIT_LEVEL * scale)))
    loud_label[np.unique(labels[taken])] = False
    cores = np.where(loud_label[labels] & unipolar[labels] & (np.sign(stretches) == signs[labels]), stretches, 0.0)
    short = np.concatenate(([False], (runs[:, 1] - runs[:, 0]) <= ECHO_CORE_LONGEST))
    ringing = np.where(loud_label[labels] & ~unipolar[labels] & short[labels], stretches, 0.0)
    if not cores.any() and not ringing.any():
        return cores, np.zeros_like(filtered)
    kept = []
    for part, flatter_rule in ((cores, partial(flatter_with_pits_filled, scale=scale)),
                               (ringing, partial(flatter_without_echoes, scale=scale))):
        if part.any():
            response = (cut or EndPulses()).filter(part)
            flatter = flatter_rule(filtered, part, response)
            if flatter.all():
                kept.append((part, response))
            elif (part := np.where(flatter, part, 0.0)).any():
                kept.append((part, (cut or EndPulses()).filter(part)))
    if not kept:
        return np.zeros_like(filtered), np.zeros_like(filtered)
    return sum(part for part, _ in kept), sum(response for _, response in kept)


# A ringing or bipolar transient has no area to give back, but the baseline's window edges took
# a copy of it, 2-4.5 % of its height, 75 samples either side, with an offset between (a stranger's
# probe: 33 false regions by 29 damped oscillations of 1,000 noise units). Its own ringing beyond
# its core fills its surroundings, so the samples judged are those the fill changes by a noise
# unit or more, ECHO_AWAY samples or more from the core. Only short cores: the real captures'
# bursts swing slowly over 80 samples and more after their onset, a sensor's own response that
# the filter's share of is not an echo (filled, two of their pulses lost their regions).
ECHO_CHANGE = 1.0  # noise units
ECHO_AWAY = 16  # samples
ECHO_CORE_LONGEST = 32  # samples


def flatter_without_echoes(filtered: np.ndarray, cores: np.ndarray, response: np.ndarray,
                           scale: float) -> np.ndarray:
    """:func:`flatter_with_pits_filled` for ringing ``cores``, judged only on the samples their
    fill changes by :data:`ECHO_CHANGE` noise units (``scale``) or more, :data:`ECHO_AWAY`
    samples or more from them (their own ringing beyond them)."""
    own = ndimage.maximum_filter1d((cores != 0).view(np.uint8), 2 * ECHO_AWAY + 1) > 0
    return flatter_with_pits_filled(filtered, cores, response,
                                    judged=~own & (np.abs(cores - response) >= ECHO_CHANGE * scale), scale=scale)


def flatter_with_pits_filled(filtered: np.ndarray, cores: np.ndarray, response: np.ndarray,
                             judged: np.ndarray | None = None, scale: float | None = None) -> np.ndarray:
    """Per sample, whether the :data:`LOUD_PIT_SPAN` samples around the nearest ``cores`` (the
    cores within that span of each other taken together) keep at most :data:`LOUD_PIT_FLATTER`
    of their energy once the pits are filled (``response``: the carrier filter's output for
    ``cores``); ``judged``: only those of them (default: all but the cores'); with the noise
    ``scale``, never the samples of another short transient beside them
    (:func:`short_transients_beside`). Where a burst's ringing or a sensor's own undershoot fills
    the surroundings, the pit is not what stands out there."""
    near = ndimage.maximum_filter1d((cores != 0).view(np.uint8), LOUD_PIT_SPAN) > 0  # cores widened by half the span
    groups, count = ndimage.label(near)
    index = np.arange(1, count + 1)
    around = near & ((cores == 0) if judged is None else judged)
    if scale is not None:
        around &= ~short_transients_beside(filtered, cores, near, scale)
    filled = filtered + (cores - response)
    before = ndimage.sum(np.where(around, filtered**2, 0.0), groups, index)
    after = ndimage.sum(np.where(around, filled**2, 0.0), groups, index)
    return np.concatenate(([False], after <= LOUD_PIT_FLATTER * before))[groups] | (cores == 0)


def short_transients_beside(filtered: np.ndarray, cores: np.ndarray, near: np.ndarray, scale: float) -> np.ndarray:
    """The samples, widened by :data:`PIT_REACH`, of the short transients (:func:`pdseg.transients.short`)
    :data:`PIT_LEVEL` noise units out that lie ``near`` ``cores`` and are none of theirs. Another
    pulse beside a loud one is no part of its pit, and filling leaves its energy: a spike of 100
    units 20 samples after one of 1,000 kept the loud one's pit unfilled, and its echo 75 samples
    off was reported in 11-14 of 20 captures (a stranger's probe)."""
    candidates = np.flatnonzero(near & (cores == 0) & (np.abs(filtered) >= PIT_LEVEL * scale))
    beside = np.zeros(filtered.size, dtype=bool)
    beside[candidates[transients.short(filtered, candidates)]] = True
    return ndimage.binary_dilation(beside, iterations=PIT_REACH) if beside.any() else beside


# The commutation step takes out the median sixth: the shape the carrier filter gives a notch
# away from a signal's ends. Within a few hundred samples of an end the filter's end fit and
# start-up shape it otherwise (a notch cut by the end comes out as a bump of the other sign), and
# what is left there was reported as PD. So the notch as it was before the filter is fitted (its
# samples where the median sixth stands at half its peak, widened by END_NOTCH_MARGIN, whose
# filtered repetition matches the median sixth best), the train is rebuilt from it over each
# end's END_SEGMENT samples and run through the carrier filter, and what the filter does there
# beyond its response away from the ends is taken out too; in the last sixth, cut by the end,
# the rebuilt train replaces the median's partial subtraction. Of each segment END_KEEP samples
# at the end are kept (its other end is a cut of the segment's own).
END_NOTCH_MARGIN = 8
END_NOTCH_MISFIT = 0.1  # of the median sixth's rms: beyond it the fit is no notch
END_SEGMENT = 2048
END_KEEP = 1024
IMPULSE_HALF = 1024  # samples of the carrier filter's response kept each side


@lru_cache(maxsize=1)
def carrier_filter_impulse() -> np.ndarray:
    """The carrier filter's response to a unit sample away from a signal's ends,
    ``2 * IMPULSE_HALF + 1`` samples centred on it."""
    size = 4 * IMPULSE_HALF + 1
    unit = np.zeros(size)
    unit[size // 2] = 1.0
    return _shared(baseline_and_highpass(unit)[size // 2 - IMPULSE_HALF: size // 2 + IMPULSE_HALF + 1].copy())


def notch_before_filter(template: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(support, values, misfit)``: the samples (indices into the median sixth ``template``)
    and values, all of the sign of its largest, of the notch whose repetition every sixth,
    through the carrier filter away from the ends, comes closest to ``template`` (non-negative
    least squares), and the rms of what it leaves of ``template`` relative to its own."""
    width = template.size
    core = np.abs(template) > 0.5 * float(np.max(np.abs(template)))
    support = np.flatnonzero(ndimage.binary_dilation(core, iterations=END_NOTCH_MARGIN))
    # The response folded onto one sixth: every sixth's notch reaches into its neighbours.
    lags = np.arange(-IMPULSE_HALF, IMPULSE_HALF + 1)
    folded = np.bincount(lags % width, weights=carrier_filter_impulse(), minlength=width)
    design = folded[(np.arange(width)[:, None] - support[None, :]) % width]
    # One-signed, as a notch is: the carrier filter passes next to nothing of a notch's area, and
    # unconstrained, the fit gives it none (shoulders of the other sign), which the filter's end
    # fit then treats otherwise than the notch.
    sign = 1.0 if template[np.argmax(np.abs(template))] > 0 else -1.0
    try:
        magnitudes, _ = optimize.nnls(design, sign * template)
    except (RuntimeError, ValueError):  # no convergence, or values beyond float range
        return support, np.zeros(support.size), math.inf
    values = sign * magnitudes
    fit = float(np.sqrt(np.mean((design @ values - template) ** 2) / np.mean(template**2)))
    return support, values, fit


def _rebuilt_train(start: int, stop: int, slot: float, support: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The notch ``values`` at ``support`` (zero between its samples) repeated every ``slot``
    samples from sample 0, on the samples ``start`` to ``stop`` (linear interpolation between
    whole samples)."""
    offsets = np.arange(int(support[0]), int(support[-1]) + 1)
    notch = np.zeros(offsets.size)
    notch[support - support[0]] = values
    samples = np.arange(start, stop)
    train = np.zeros(samples.size)
    first = int(np.floor((start - offsets[-1]) / slot)) - 1
    last = int(np.ceil((stop - offsets[0]) / slot)) + 1
    for number in range(first, last + 1):
        positions = number * slot + offsets
        inside = (samples >= positions[0] - 1) & (samples <= positions[-1] + 1)
        train[inside] += np.interp(samples[inside], positions, notch, left=0.0, right=0.0)
    return train


def commutation_at_ends(filtered: np.ndarray, cleaned: np.ndarray, train: commutation.Train,
                        whole_capture: bool, cut_pulses: "EndPulses | None" = None) -> np.ndarray:
    """``cleaned`` (``filtered`` less the median sixth, :func:`pdseg.commutation.remove_commutation`)
    with what the carrier filter made of the ``train`` at the signal's start, and with
    ``whole_capture`` (one train over all of it) at its end, taken out as well. ``cut_pulses``:
    the pulses cut by the signal's ends, as conditioning filtered them (:class:`EndPulses`)."""
    size = filtered.size
    if size < 2 * END_SEGMENT or train.slot > END_KEEP:
        # A sixth longer than the samples kept: its cut end would reach into the segment's own
        # cut, and the fit would grow with it (cycles of more than 6,144 samples keep the median).
        return cleaned
    # The fit folds the filter's response onto whole sixths of int(slot) samples, as it was chosen;
    # the median sixth holds ceil(slot) (pdseg.commutation.find_train).
    support, values, misfit = notch_before_filter(train.template[: int(train.slot)])
    if misfit > END_NOTCH_MISFIT:
        return cleaned  # no one-signed notch makes this train (a sensor's bipolar response)
    response = carrier_filter_impulse()
    result = cleaned.copy()
    ends = [(0, END_SEGMENT, slice(0, END_KEEP))]
    if whole_capture:
        ends.append((size - END_SEGMENT, size, slice(END_SEGMENT - END_KEEP, END_SEGMENT)))
    for start, stop, keep in ends:
        # Away from the ends the median sixth holds the response to notches beyond the signal too.
        extended = _rebuilt_train(start - IMPULSE_HALF, stop + IMPULSE_HALF, train.slot, support, values)
        rebuilt = extended[IMPULSE_HALF: IMPULSE_HALF + stop - start]
        # The segment's other end is a cut of its own, not the signal's.
        cut = cut_pulses or EndPulses()
        through_filter = dataclasses.replace(cut, start=cut.start if start == 0 else 0,
                                             end=cut.end if stop == size else 0).filter(rebuilt)
        away_from_ends = sps.oaconvolve(extended, response, mode="same")[IMPULSE_HALF: IMPULSE_HALF + stop - start]
        part = result[start:stop]
        part[keep] -= (through_filter - away_from_ends)[keep]
        if stop == size:
            cut = int(np.ceil(np.floor(size / train.slot) * train.slot)) - start
            part[cut:] = filtered[start + cut: stop] - through_filter[cut:]
    return result


def _with_regular_trains(filtered: np.ndarray, cleaned: np.ndarray, train: commutation.Train | None,
                         scale: float, period: float | None
                         ) -> tuple[np.ndarray, commutation.Train | None, commutation.Train | None]:
    """``cleaned`` (``filtered`` less the commutation ``train``, if any) with the regular trains
    of equal transients taken out too (:func:`pdseg.commutation.remove_regular_train`), and the
    commutation train and the first other regular one that the result holds. Where a
    commutation train was found, the regular step is also run in its place, on ``filtered``:
    over two or three cycles the median sixth can miss a sharp notch that the transients' own
    grid takes out. Of the results, the one that leaves the fewest samples 4 noise units out is
    kept (the earlier on a tie)."""

    def notch_like(regular: commutation.Train) -> bool:
        # at a sixth or a twelfth of the cycle: the commutation's own notches
        times = train.slot / regular.slot
        return round(times) in (1, 2) and abs(times - round(times)) < 0.01 * round(times)

    def first_other(trains: list[commutation.Train]) -> commutation.Train | None:
        others = [regular for regular in trains if train is None or not notch_like(regular)]
        return others[0] if others else None

    options = [(cleaned, train, None)]
    # Without a commutation train (a capture shorter than a cycle, or no carrier) the regular step
    # may widen its window to a converter notch's filter lobes.
    after, trains = commutation.remove_regular_train(cleaned, scale, period, wide=train is None)
    if trains:
        options.append((after, train, first_other(trains)))
    if train is not None:
        instead, trains = commutation.remove_regular_train(filtered, scale, period)
        if trains:
            took_notches = any(notch_like(regular) for regular in trains)
            options.append((instead, train if took_notches else None, first_other(trains)))
    counts = [commutation.loud_count(option[0], scale) for option in options]
    return options[int(np.argmin(counts))]


def _charge(cost: Callable[[int], int] | None, samples: int) -> int:
    """What the caller's work limit charges a view, or one conditioning more, of ``samples``
    samples: ``cost(samples)``, or the samples themselves where it gives no cost."""
    return cost(samples) if cost is not None else samples


ENDS_UNCHECKED_WARNING = ("a pulse cut by the signal's first or last sample may be a notch of the converter "
                          "train's instead: telling them apart would have taken the request over its work "
                          "limit, so a region at that end may be the train's")


def condition(raw: np.ndarray, remove_tones: bool = True, remove_commutation: bool = True,
              view_room: int | None = None, fill_loud_pits: bool = True,
              find_hidden_tones: bool = True, fit_commutation_ends: bool = True,
              fit_tone_ends: bool = True, remove_regular_trains: bool = True,
              leave_out_rails: bool = True, slow_view: bool = True,
              view_cost: Callable[[int], int] | None = None,
              slow_view_of: Callable[[], "Conditioned | None"] | None = None,
              restore_clipped: bool = True, take_out_end_pulses: "bool | EndPulses" = True,
              remove_tone_bursts: bool = True, remove_wandering_tones: bool = True,
              offset_free_floor: bool = True, refined_commutation: bool = True,
              dense_pulses_noise: bool = True) -> Conditioned:
    """The network input of one signal: carrier removed (:func:`remove_carrier`), then its
    stationary tones (:func:`pdseg.tones.remove_tones`) and its converter commutation
    (:func:`pdseg.commutation.remove_commutation`), and the tones that the commutation hid
    (:func:`pdseg.tones.tones_besides`); where commutation could be looked for, the
    loud pulses get back the area the carrier filter took (:func:`restore_pulse_area`), and with
    the commutation step on (as served) the very loud ones in every capture; a signal whose
    noise is strongly correlated gets a whitened view
    beside it (:func:`with_whitened_view`). False keeps the tones, or the commutation, that area
    and the view, or the very loud pulses' pits (``fill_loud_pits``), or the tones the
    commutation hid (``find_hidden_tones``), or the train at the signal's ends
    (``fit_commutation_ends``, :func:`commutation_at_ends`), or the strong tones' fit at the
    ends, the clip level's random positions and the tones' further refinements
    (``fit_tone_ends``, ``tones.remove_tones``'s ``fit_ends``), or the regular trains of equal
    transients (``remove_regular_trains``, :func:`_with_regular_trains`), or an overdriven ADC's
    rails in the noise estimate (``leave_out_rails``, :func:`rail_samples`), or the slower view
    (``slow_view``, :func:`with_slow_view`), or a limiter's flat tops on the carrier
    (``restore_clipped``: :func:`pdseg.limiter.restore` gives them back the carrier's course
    before the carrier filter and the carrier fit), or a pulse cut by the signal's first or last
    sample (``take_out_end_pulses``: :func:`end_pulses`, taken out before the carrier filter and
    put back after the tones; or the :class:`EndPulses` given), or the tone bursts
    (``remove_tone_bursts``: :func:`pdseg.tones.tone_bursts`, after the tones, and only where
    ``remove_tones`` is on too), or the wandering tones and the steady lines that the
    stationary test let pass (``remove_wandering_tones``: :func:`pdseg.tones.narrowband_lines`;
    the steady lines go with the stationary tones, the wandering tones after them; where
    ``remove_tones`` is on too), or the noise floor and a short signal's trend about the
    signal's middle (``offset_free_floor``: False reads both here from its largest absolute
    sample, :func:`signal_magnitude`; :func:`end_pulses` and the slower view, off in training,
    keep the new floor), or the commutation step's refinements since the shipped weights were
    fine-tuned: trains from one whole cycle, slots of every whole sample they hold
    (``refined_commutation``: :func:`pdseg.commutation.remove_commutation`'s ``refined``), or
    the noise read between dense pulses (``dense_pulses_noise``: :func:`noise_scale`'s
    ``dense_pulses``), as the recipe of weights trained before those steps did. ``view_room``: the samples of views the caller's work limit leaves (None: no limit), also
    charged for the conditionings more that a pulse cut by an end beside a train takes
    (``rechecks``; where they do not fit, ``ends_unchecked``);
    ``view_cost``: what the limit charges a whitened or slower view, or one conditioning more, of
    so many samples (its length by default); ``slow_view_of``: what gives the slower view where it is due, in place of
    :func:`slow_view_of` on ``raw`` (a view started beside this call: :class:`pdseg.pipeline.Segmenter`)."""
    arguments = dict(locals())
    raw = np.asarray(raw, dtype=np.float64)
    restoration = limiter.restore(raw) if restore_clipped else None
    carrier_course = raw if restoration is None else restoration.signal
    quantum = quantisation_step(raw)
    filtered = remove_carrier(carrier_course, about_middle=offset_free_floor)
    short_time = tones.short_time(filtered) if remove_tones else None
    found = tones.stationary_tones(filtered, short_time) if remove_tones else np.zeros(0)
    if isinstance(take_out_end_pulses, EndPulses):
        cut = take_out_end_pulses
    else:
        cut = end_pulses(carrier_course, quantum, found) if take_out_end_pulses else EndPulses()
    cut_parts = cut.parts(carrier_course)
    if cut:
        filtered = remove_carrier(cut.without(carrier_course), about_middle=offset_free_floor)
    # Read before the stationary tones go: a wandering tone's middle can pass for one.
    lines = tones.narrowband_lines(filtered, short_time) if remove_wandering_tones else tones.NarrowbandLines()
    wandering = lines.wandering
    found = tones.outside_wandering(tones.with_steady_lines(found, lines), wandering)
    if found.size:
        # Signals long enough to have tones take the linear path of remove_carrier.
        filtered = tones.remove_tones(filtered, found, refilter=(baseline_and_highpass, carrier_filter_gain),
                                      fit_ends=fit_tone_ends)
    filtered = tones.remove_wandering(filtered, wandering, refilter=(baseline_and_highpass, carrier_filter_gain),
                                      fit_ends=fit_tone_ends)
    # Found in the same short-time spectra as the tones, away from them and the wandering ones.
    bursts = tones.tone_bursts(short_time, found, wandering) if remove_tone_bursts else []
    filtered = tones.remove_bursts(filtered, bursts, refilter=(baseline_and_highpass, carrier_filter_gain))
    # The pulses cut by an end go back as the carrier filter gives a pulse away from the ends,
    # after the tones (whose end fit took a pulse on the end sample for a tone's).
    filtered = cut.put_back(filtered, cut_parts)
    magnitude = signal_magnitude(raw) if offset_free_floor else float(np.max(np.abs(raw)))
    rails = rail_samples(raw) if leave_out_rails else None
    scale = noise_scale(filtered, magnitude, quantum, rails, dense_pulses_noise)
    carrier, train, locked, regular = None, None, None, None
    rechecks, ends_unchecked = 0, False
    if remove_commutation:
        carrier = fit_carrier(carrier_course, filtered, scale)
        period = carrier.samples_per_cycle if carrier.detected else None
        cleaned, train = commutation.remove_commutation(filtered, scale, period, refined=refined_commutation)
        # Not beside an ADC's rails: their held stretches mirror each other from one half-cycle to
        # the next as such notches do, and the once-a-cycle step below takes their corners.
        if train is None and refined_commutation and rails is None:
            cleaned, train = commutation.remove_commutation(filtered, scale, period, alternating=True,
                                                            flip_at=carrier.zero_crossing())
        if cleaned is not filtered and fit_commutation_ends and not train.alternating:
            one_stretch = commutation.single_stretch(filtered.size, period / commutation.SLOTS_PER_CYCLE)
            cleaned = commutation_at_ends(filtered, cleaned, train, one_stretch, cut)
        if remove_regular_trains:
            cleaned, train, regular = _with_regular_trains(filtered, cleaned, train, scale, period)
        if cleaned is not filtered:
            # Twelve notches a cycle touch about a quarter of the noise estimate's blocks.
            filtered, scale = cleaned, noise_scale(cleaned, magnitude, quantum, rails, dense_pulses_noise)
            spacing = (train or regular).slot
            hidden = (tones.tones_besides(filtered, found, 1.0 / spacing) if remove_tones and find_hidden_tones
                      else np.zeros(0))
            if hidden.size:
                filtered = tones.remove_tones(filtered, hidden, refilter=(baseline_and_highpass, carrier_filter_gain),
                                              fit_ends=fit_tone_ends)
                found, scale = np.sort(np.concatenate((found, hidden))), noise_scale(filtered, magnitude, quantum, rails,
                                                                                        dense_pulses_noise)
        cleaned, locked = commutation.remove_commutation(filtered, scale, period, slots_per_cycle=1,
                                                         refined=refined_commutation)
        if cleaned is not filtered:
            filtered, scale = cleaned, noise_scale(cleaned, magnitude, quantum, rails, dense_pulses_noise)
        # The unipolar pits only where commutation could be looked for: elsewhere a notch
        # train's restored notches were reported as PD (docs/model-card.md, Conditioning).
        unipolar_pits = commutation.can_look(raw.size, period, min_slots=PIT_MIN_SLOTS)
        if unipolar_pits or fill_loud_pits:
            filtered = restore_pulse_area(filtered, scale, unipolar_pits, fill_loud_pits, cut)
        if cut and (train or regular or locked) and not isinstance(take_out_end_pulses, EndPulses):
            # A converter notch cut by an end is the train's, whose end fit takes it: where the
            # capture conditioned without the cut (and without views) leaves that end at the noise,
            # the cut goes (a train and a cut pulse in one capture; up to three conditionings).
            # Each one more is charged as a view, within the room the work limit leaves: 180
            # such signals of 2,189 samples took 8.8 s on one core where 5 s is the budget.
            recheck = _charge(view_cost, raw.size)
            if view_room is not None and recheck > view_room:
                ends_unchecked = True
            else:
                plain = condition(**(arguments | {"take_out_end_pulses": False, "view_room": 0, "slow_view": False}))
                kept = cut.standing_out_in(plain)
                rechecks, view_room = 1, None if view_room is None else view_room - recheck
                if kept != cut and view_room is not None and recheck > view_room:
                    ends_unchecked = True
                elif kept != cut:
                    again = condition(**(arguments | {"take_out_end_pulses": kept,
                                                      "view_room": None if view_room is None else view_room - recheck}))
                    return dataclasses.replace(again, rechecks=2)
    conditioned = Conditioned(raw=raw, filtered=filtered, scale=scale, network_input=network_planes(filtered, scale),
                              tones=found, tone_bursts=tuple(bursts), wandering_tones=tuple(wandering), carrier=carrier, commutation=train, phase_locked=locked,
                              regular_train=regular, quantum=quantum,
                              clipped=None if restoration is None else restoration.to_dict(),
                              restored=None if restoration is None else restoration.signal, end_pulses=cut,
                              rechecks=rechecks, ends_unchecked=ends_unchecked)
    if remove_commutation:
        conditioned = with_whitened_view(conditioned, magnitude, quantum, view_room, rails, view_cost)
        if slow_view:
            conditioned = with_slow_view(conditioned, view_room, view_cost, slow_view_of)
    return conditioned


def with_slow_view(conditioned: Conditioned, room: int | None = None,
                   cost: Callable[[int], int] | None = None,
                   view_of: Callable[[], "Conditioned | None"] | None = None) -> Conditioned:
    """``conditioned`` with its slower view (:mod:`pdseg.slow`) where no carrier was fitted and it
    has at least :data:`pdseg.slow.MIN_SAMPLES` samples, within the ``room`` the caller's work
    limit leaves after the whitened view, the view charged ``cost(samples)`` (a view that does not
    fit is left out, as ``slow_skipped`` says). The view is :func:`slow_view_of` the capture, or
    what ``view_of()`` gives, which must be the same."""
    # Decimated, an overdriven ADC's rails are no longer exact and would set the view's noise, and
    # a few-bit line whose noise is under its step (scaled at the floor) loses its grid: the
    # view's noise read a fraction of a step, and a cluster of one-step flickers stood out.
    if not slow.wanted(conditioned) or rail_samples(conditioned.raw) is not None:
        return conditioned
    if conditioned.scale <= noise_floor(float(np.max(np.abs(conditioned.raw))), conditioned.quantum):
        return conditioned
    samples = slow.view_length(conditioned.length)
    charged = _charge(cost, samples)
    if room is not None and charged > room:
        return dataclasses.replace(conditioned, slow_skipped=True)
    view = view_of() if view_of is not None else slow_view_of(conditioned.raw)
    return conditioned if view is None else dataclasses.replace(conditioned, slow=view)


def slow_view_of(raw: np.ndarray, reduced: np.ndarray | None = None) -> Conditioned | None:
    """The slower view of a capture (:func:`pdseg.slow.decimated`, or ``reduced`` where already
    at hand) conditioned as a signal of its own, or None where only the view shows its noise
    correlated: there its swings stood out as pulses (it would have needed a whitened view of its
    own, a third run of the network)."""
    view = condition(slow.decimated(raw) if reduced is None else reduced, view_room=0, slow_view=False)
    return None if slow.correlated(view.filtered) else view


def slow_view_shows_a_carrier(reduced: np.ndarray) -> bool:
    """Whether a capture's decimated samples (:func:`pdseg.slow.decimated`) show a carrier at a
    glance: the carrier filter, a rough noise level and the carrier fit, a ninth of what
    conditioning them costs where the capture has a carrier and converter commutation. A guess
    that spares the second thread most of the work on a capture that will keep no view
    (:class:`pdseg.pipeline.Segmenter`), never a decision."""
    filtered = remove_carrier(reduced)
    return bool(fit_carrier(reduced, filtered, block_noise(filtered)).detected)


def slow_view_likely_kept(view: Conditioned) -> bool:
    """Whether a capture whose slower view is ``view`` (:func:`slow_view_of`) will likely keep it,
    judged from the view alone, as :func:`with_slow_view` judges the capture: no carrier and no
    train seen, no more than :data:`pdseg.slow.CARRIER_LIMIT` noise units taken by the carrier
    filter, noise over the floor. A guess, so that the network may run over the view before the
    capture's own conditioning has decided; the decision stays :func:`with_slow_view`'s."""
    if view.carrier is not None and view.carrier.detected:
        return False
    if any(train is not None for train in (view.commutation, view.phase_locked, view.regular_train)):
        return False
    if view.scale <= noise_floor(signal_magnitude(view.raw), view.quantum):
        return False
    return float(np.ptp(view.raw - view.filtered)) <= slow.CARRIER_LIMIT * view.scale


# Noise that alternates from sample to sample (an amplifier's AR(1) with a negative coefficient)
# in a window too short for tones to be looked for: its swings of two or three samples passed for
# short oscillations (21 regions in 100 PD-free windows of 1,000 samples; docs/model-card.md).
NEGATIVE_VIEW_MIN_SAMPLES = 4 * whiten.BLOCK  # the correlation estimate needs four blocks


def with_whitened_view(conditioned: Conditioned, magnitude: float, quantum: float,
                       room: int | None = None, rails: np.ndarray | None = None,
                       cost: Callable[[int], int] | None = None) -> Conditioned:
    """``conditioned`` with its whitened view (:mod:`pdseg.whiten`) where its noise is strongly
    correlated: in signals long enough for tones to be looked for (shorter ones keep theirs,
    which the lag-1 correlation takes for correlated noise), or, from :data:`NEGATIVE_VIEW_MIN_SAMPLES`,
    where the noise alternates from sample to sample (a tone reads so only above a quarter of the
    sampling rate), and whose noise stands over the floor (a near noise-free capture's residue
    is no noise to whiten). A view whose ``cost(samples)`` (its length by default) is over
    ``room`` is not made, and ``view_skipped`` says so: it runs the network a second
    time, and a request at its work limit would take twice as long as the limit was chosen
    for (docs/reliability.md)."""
    filtered = conditioned.filtered
    if filtered.size < NEGATIVE_VIEW_MIN_SAMPLES or block_noise(filtered) <= noise_floor(magnitude, quantum):
        return conditioned
    coefficient = whiten.whitening_coefficient(filtered)
    if coefficient is None or (filtered.size < tones.MIN_SAMPLES and coefficient > 0.0):
        return conditioned
    charged = _charge(cost, filtered.size)
    if room is not None and charged > room:
        return dataclasses.replace(conditioned, view_skipped=True)
    whitened = whiten.whiten(filtered, whiten.whitening_filter(filtered))
    scale = noise_scale(whitened, magnitude, quantum, rails)
    view = dataclasses.replace(conditioned, filtered=whitened, scale=scale, quantum=0.0,
                               network_input=network_planes(whitened, scale))
    return dataclasses.replace(conditioned, whitened=view, whitening=coefficient)
