"""Narrowband tones: find them in a carrier-free signal and take them out.

Radio transmitters, switched-mode supplies and what the carrier filter leaves of a short-period
carrier's harmonics put lines into a capture's spectrum that are present all the time. They are
not PD (model card, "What the service reports as PD"), yet they raise the noise floor every pulse
is measured against: a 14 dB pulse over three such tones stands 20-30 dB over the white noise
beneath them. So they are found by what tells them from PD, being present in nearly every
stretch of the capture, and subtracted before the network sees the signal.

* **Finding** (:func:`stationary_tones`): short-time spectra of 256 samples, hop 128. In each
  frequency bin the power that 80 % of the frames exceed (its 20th percentile) is a line's
  level: a tone is in every frame, a pulse's ringing only in the frames it falls into. A bin is
  a line where that level stands :data:`LINE_RATIO` times over both the median of the 17 bins
  around it (the noise's spectral shape) and the bins three to either side (so that a broad
  hump of coloured noise is no line), and where its phase moves on steadily from frame to
  frame (:data:`MIN_COHERENCE`: dense ringing PD, present in most frames, starts anew with
  each pulse). Signals of fewer than :data:`MIN_SAMPLES` samples have
  too few frames to tell a tone from a pulse, and keep what they have.
* **Removing** (:func:`remove_tones`): each tone, amplitude modulation included, is the band
  within :data:`TONE_HALF_WIDTH` of its frequency: a zero-phase band-pass applied in the Fourier
  domain, with the signal's ends continued by the tones as fitted to their last 64 samples
  (amplitudes that change linearly over them, taken at the end) so that the band-pass starts
  on a tone, not on a cut. Pulses would leak into that band-pass and
  leave ringing around themselves, so they are kept out of it: the first estimate sees the
  signal clipped at :data:`HUBER_START` robust sigmas; each of :data:`REFINEMENTS` refined ones
  (more, up to :data:`MAX_REFINEMENTS`, while the estimate still moves) sees, wherever the
  residual stands more than :data:`OUTLIER_K` robust sigmas out (and :data:`OUTLIER_REACH`
  samples either side), the previous estimate's tones instead of the signal. A pulse loses only what of it lies in the notched bands under that level and beyond
  that reach. At each end of a signal whose tones are strong, the tones are fitted by least
  squares through the carrier filter instead (:func:`_with_fitted_ends`): the filter's start-up
  turns a tone's phase there into a step that the band-pass does not know well enough.
* **Bursts** (:func:`tone_bursts`, :func:`remove_bursts`): a line that is on for a stretch of
  the capture (1,152 samples or more, at a steady level) and off elsewhere, a
  power-line carrier's or a radio's transmission, taken out over that stretch alone.
* **Wandering tones** (:func:`narrowband_lines`, :func:`remove_wandering`): a line whose
  frequency moves within a band (an FM radio), present all the time at a constant magnitude,
  taken out over that band; its ends continued by prediction (:func:`predicted`). A line found
  so that peaks at one frequency is a steady one the stationary test let pass.
* **Looking again** (:func:`tones_besides`): once a converter's notch train is taken out
  (:mod:`pdseg.commutation`), the lines it hid, except those on its own harmonics.
"""
from __future__ import annotations

import dataclasses
import threading
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage
from scipy import signal as sps
from threadpoolctl import ThreadpoolController

from .robust import mad_sigma, spread_positions

SEGMENT = 256  # samples per short-time spectrum: bins of 1/256 cycles per sample
HOP = SEGMENT // 2
MIN_FRAMES = 16
MIN_SAMPLES = SEGMENT + (MIN_FRAMES - 1) * HOP  # 2,176 samples
FLOOR_QUANTILE = 0.2  # a line's level: the power 80 % of the frames exceed
BACKGROUND_BINS = 17  # bins over which the noise's spectral shape is a running median
SHOULDER_BINS = 3  # a line stands over the bins this far to either side (a Hann line is 4 wide)
LINE_RATIO = 8.0  # 9 dB: far above the 20th percentile's scatter for 16 or more frames
# A tone's phase moves on by the same angle from each frame to the next one that does not
# overlap it; dense PD ringing, present in most frames, has a new phase with each pulse.
MIN_COHERENCE = 0.5
MAX_TONES = 8
RESOLVABLE_POWER = 1e-20
# Bins 0 and 1 (under 0.008 cycles per sample) are the high-pass's stop band: a line there is
# what is left of a capture's offset or carrier, and notching it would low-pass the whole signal.
LOWEST_BIN = 2
# The band taken out around each tone: amplitude modulation of up to ~3e-3 cycles per sample
# (a radio carrier's audio at a few MS/s) stays inside it.
TONE_HALF_WIDTH = 0.006  # cycles per sample
EDGE_FIT = 64  # samples at each end that the continuation's tones are fitted to
EDGE_PAD = 512  # samples of continuation at each end
CONTINUATION_RIDGE = 1e-6
HUBER_START = 4.0  # robust sigmas of the signal itself: the first estimate's clip
# The refined estimate leaves out what stands over OUTLIER_K robust sigmas of the residual, and
# OUTLIER_REACH samples either side (a pulse's shoulders under that level), where a Huber clip
# at 3 sigmas let in a plateau: a broad pulse whose spectrum sat on a tone then rang on after
# itself for ~80 samples and its region ran past it (docs/model-card.md, Conditioning).
OUTLIER_K = 6.0
OUTLIER_REACH = 4
# Where more than this share of the signal would be left out (pulses every few samples), a round
# clips the residual at HUBER_K robust sigmas instead: left out, so much signal would only
# repeat the clipped first estimate.
MAX_LEFT_OUT = 0.25
HUBER_K = 3.0
REFINEMENTS = 2
# Tones whose sum is peaky (harmonics of one switching frequency, in phase) lose their peaks to
# the first estimate's clip, and two refinements win them back only in part: eight tones of 10
# noise sigmas left 1.5 sigmas rms. More rounds follow while the estimate still moves by more than
# REFINE_AGAIN residual sigmas (rms), up to MAX_REFINEMENTS: 4 of 286 calls on the validation
# splits' captures with interference took one (docs/model-card.md, Conditioning).
MAX_REFINEMENTS = 8
REFINE_AGAIN = 0.5


def _moved(estimate: np.ndarray, previous: np.ndarray, sigma: float) -> bool:
    """Whether the tones' ``estimate`` differs from the ``previous`` round's by more than
    :data:`REFINE_AGAIN` times ``sigma`` (the robust sigma of what it leaves; rms over the signal)."""
    return bool(np.sqrt(np.mean((estimate - previous) ** 2)) > REFINE_AGAIN * sigma)
# Where the carrier filter passes less than this, the band is not scaled back up further: there
# (under ~0.003 cycles per sample) the filtered signal holds too little of the raw one to tell.
MIN_REFILTER_GAIN = 0.01
# The carrier filter's end effects (the baseline's end fit over 151 samples, the high-pass's
# start-up) are over within a few hundred samples: it is rerun on this many samples at each end
# and the first or last REFILTER_KEEP of them are kept (0.2 noise sigmas from a run over all
# samples, on the independent set's 14 dB captures with tones).
REFILTER_SEGMENT = 1024
REFILTER_KEEP = 384


@dataclasses.dataclass(frozen=True)
class ShortTime:
    """A signal's short-time spectra (bins by frames, :data:`SEGMENT` samples, hop :data:`HOP`),
    their power, each bin's floor (the power :data:`FLOOR_QUANTILE` of the frames exceed) and
    the noise's spectral shape a line stands over (the floor's running median over
    :data:`BACKGROUND_BINS` bins; levels 200 dB under the floor's mean are float64 round-off,
    not a noise floor)."""

    spectra: np.ndarray
    power: np.ndarray
    floor: np.ndarray
    background: np.ndarray


def short_time(filtered: np.ndarray) -> ShortTime | None:
    """:class:`ShortTime` of ``filtered``; None for signals under :data:`MIN_SAMPLES` samples or
    all zeros, too short or too empty for a line to be told from anything else."""
    filtered = np.asarray(filtered, dtype=np.float64)
    if filtered.size < MIN_SAMPLES or not np.any(filtered):
        return None
    _, _, spectra = sps.stft(filtered, nperseg=SEGMENT, noverlap=SEGMENT - HOP, boundary=None, padded=False)
    power = np.abs(spectra) ** 2
    floor = np.quantile(power, FLOOR_QUANTILE, axis=1)
    resolvable = RESOLVABLE_POWER * float(np.mean(floor))
    background = np.maximum(ndimage.median_filter(floor, BACKGROUND_BINS, mode="nearest"), resolvable)
    return ShortTime(spectra, power, floor, background)


def stationary_tones(filtered: np.ndarray, spectra: ShortTime | None = None) -> np.ndarray:
    """The frequencies (cycles per sample, ascending) of the stationary lines in ``filtered``
    (``spectra``: its :func:`short_time`, if already at hand); empty for signals under
    :data:`MIN_SAMPLES` samples or without lines."""
    spectra = short_time(filtered) if spectra is None else spectra
    if spectra is None:
        return np.zeros(0)
    floor, background, spectra = spectra.floor, spectra.background, spectra.spectra
    tiny = np.finfo(np.float64).tiny
    edge = np.full(SHOULDER_BINS, np.inf)
    padded = np.concatenate((edge, floor, edge))
    sides = np.stack((padded[: -2 * SHOULDER_BINS], padded[2 * SHOULDER_BINS:]))
    # At the spectrum's ends only the inner side counts.
    shoulder = np.where(np.isinf(sides), -np.inf, sides).max(axis=0)
    ratio = floor / np.maximum(np.maximum(background, shoulder), tiny)
    peaks, _ = sps.find_peaks(np.concatenate(([0.0], ratio, [0.0])), height=LINE_RATIO)
    peaks = peaks - 1
    peaks = peaks[peaks >= LOWEST_BIN]
    following = spectra[peaks, SEGMENT // HOP:] * np.conj(spectra[peaks, : -(SEGMENT // HOP)])
    coherence = np.abs(following.sum(axis=1)) / np.maximum(np.abs(following).sum(axis=1), tiny)
    peaks = peaks[coherence >= MIN_COHERENCE]
    if peaks.size > MAX_TONES:
        peaks = np.sort(peaks[np.argsort(ratio[peaks])[-MAX_TONES:]])
    log_floor = np.log(floor + tiny)
    frequencies = [(bin_index + (parabola_peak(log_floor[bin_index - 1: bin_index + 2])
                                 if 0 < bin_index < floor.size - 1 else 0.0)) / SEGMENT
                   for bin_index in peaks]
    return np.asarray(frequencies, dtype=np.float64)


def parabola_peak(three: np.ndarray) -> float:
    """Where the parabola through three equally spaced values (log powers or magnitudes around a
    spectral peak) peaks, in bins from the middle one (within ±0.5; 0 where it has no maximum)."""
    left, centre, right = three
    curvature = left - 2.0 * centre + right
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) if curvature < 0.0 else 0.0


# A converter's notch train, taken out after the tones were looked for (pdseg.commutation), can
# have hidden a tone from that first look: its broad spectrum lifts the running median a line is
# measured against (a line 22-30 times over it read 7.7 beside notches of 17 noise units, six a
# cycle, under LINE_RATIO). What is left of the train after its removal lies on its own
# harmonics, a third to one and a half of a short-time bin apart for cycles of 1,000-5,000
# samples: the line's frequency is taken from the spectrum of the whole signal for this test,
# and a line within this many of that spectrum's bins (1 / length) of a harmonic cannot be told
# from it (the Hann window's main lobe reaches 2 bins either side; one more for the estimate).
HARMONIC_MARGIN_BINS = 3.0


def whole_signal_frequencies(filtered: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """Each of ``frequencies`` (found in short-time spectra) as the peak of the Hann-windowed
    spectrum of all of ``filtered`` within a short-time bin of it (:func:`parabola_peak` on log
    magnitudes), to a small fraction of a short-time bin."""
    size = filtered.size
    magnitude = np.abs(np.fft.rfft(filtered * np.hanning(size)))
    log_magnitude = np.log(magnitude + np.finfo(np.float64).tiny)
    refined = []
    for frequency in np.asarray(frequencies, dtype=np.float64):
        low = max(int(np.floor((frequency - 1.0 / SEGMENT) * size)), 1)
        high = min(int(np.ceil((frequency + 1.0 / SEGMENT) * size)) + 1, magnitude.size - 1)
        peak = low + int(np.argmax(magnitude[low:high]))
        refined.append((peak + parabola_peak(log_magnitude[peak - 1: peak + 2])) / size)
    return np.asarray(refined, dtype=np.float64)


def tones_besides(filtered: np.ndarray, known: np.ndarray, harmonic_spacing: float) -> np.ndarray:
    """The stationary tones of ``filtered`` (:func:`stationary_tones`) that are neither within
    a short-time bin of one of ``known`` nor, at their frequency in the whole signal's spectrum
    (:func:`whole_signal_frequencies`), within :data:`HARMONIC_MARGIN_BINS` of its bins of a
    multiple of ``harmonic_spacing`` (cycles per sample: a removed train's line spacing)."""
    found = stationary_tones(filtered)
    known = np.asarray(known, dtype=np.float64)
    found = found[~np.any(np.abs(found[:, None] - known[None, :]) < 1.0 / SEGMENT, axis=1)]
    if found.size == 0:
        return found
    frequencies = whole_signal_frequencies(filtered, found)
    nearest = np.round(frequencies / harmonic_spacing) * harmonic_spacing
    return found[np.abs(frequencies - nearest) * filtered.size >= HARMONIC_MARGIN_BINS]


def _continuation(end: np.ndarray, frequencies: np.ndarray, edge: int, steps: np.ndarray) -> np.ndarray:
    """The tones at ``frequencies`` as they are at sample ``edge`` of ``end`` (its first or last),
    evaluated at the times ``steps`` (on ``end``'s time axis). Each tone is fitted (least
    squares) with an amplitude that changes linearly over ``end``, so that amplitude modulation
    does not leave the continuation at the stretch's mean level instead of the end's."""
    time = np.arange(end.size, dtype=np.float64)
    angles = 2.0 * np.pi * frequencies[None, :]
    waves = np.hstack((np.cos(time[:, None] * angles), np.sin(time[:, None] * angles)))
    drift = (time[:, None] - edge) / max(end.size, 1)
    basis = np.hstack((waves, drift * waves))
    # Normal equations, lightly regularised: tones closer than 1/64 cycles per sample are nearly
    # collinear over 64 samples, and any split of their sum continues the same.
    normal = basis.T @ basis
    normal[np.diag_indices_from(normal)] += CONTINUATION_RIDGE * (np.trace(normal) / normal.shape[0] + 1e-300)
    coefficients = np.linalg.solve(normal, basis.T @ end)
    ahead = np.hstack((np.cos(steps[:, None] * angles), np.sin(steps[:, None] * angles)))
    return ahead @ coefficients[: waves.shape[1]]


def _band_gain(size: int, frequencies: np.ndarray, half_width: float = TONE_HALF_WIDTH) -> np.ndarray:
    """The band-pass's gain on the bins of a real FFT of ``size`` samples: one minus the
    product of the notches, each a zero-phase second-order Butterworth (``sosfiltfilt``'s
    magnitude) around its tone."""
    bins = np.fft.rfftfreq(size)
    passed = np.ones_like(bins)
    for frequency in frequencies:
        offset = ((bins - frequency) / half_width) ** 2
        passed *= offset * offset / (1.0 + offset * offset)
    return 1.0 - passed


def continued_ends(signal: np.ndarray, frequencies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:data:`EDGE_PAD` samples before and after ``signal``: its tones as they are at its ends."""
    length = signal.size
    fit = min(EDGE_FIT, length)
    pad = EDGE_PAD
    before = _continuation(signal[:fit], frequencies, 0, np.arange(-pad, 0, dtype=np.float64))
    after = _continuation(signal[length - fit:], frequencies, fit - 1, np.arange(fit, fit + pad, dtype=np.float64))
    return before, after


def predicted_ends(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:data:`EDGE_PAD` samples before and after ``signal``, as it goes on by prediction
    (:func:`predicted`, backwards for the first)."""
    return predicted(signal[::-1], EDGE_PAD)[::-1], predicted(signal, EDGE_PAD)


def tone_estimate(signal: np.ndarray, frequencies: np.ndarray, gain: np.ndarray | None = None,
                  ends: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The part of ``signal`` within :data:`TONE_HALF_WIDTH` of each frequency (zero phase);
    ``gain`` is :func:`_band_gain` for this signal's padded size, if already at hand, or a stack
    of gains ``(k, bins)``, which gives a stack of estimates ``(k, length)`` from one transform.
    ``ends`` are :func:`continued_ends` (of this signal or one with the same tones)."""
    length = signal.size
    pad = EDGE_PAD
    # Each end continues as the tones fitted to it, so that the band-pass sees no cut there.
    before, after = continued_ends(signal, frequencies) if ends is None else ends
    size = padded_size(length)
    if gain is None:
        gain = _band_gain(size, frequencies)
    return _through_gain(np.concatenate((before, signal, after)), gain, size, slice(pad, pad + length))


def _through_gain(values: np.ndarray, gain: np.ndarray, size: int, kept: slice) -> np.ndarray:
    """The ``kept`` samples of ``values`` zero-padded to ``size`` samples and put through
    ``gain`` (on the bins of a real FFT of that size, or a stack of such gains) as a circular,
    zero-phase filter: float64 ``(..., kept samples)``. In single precision (half the time of
    double; its 1e-7 of the largest value is far under any noise floor), on the values in units
    of that value, so that no magnitude the service accepts overflows it."""
    unit = float(np.max(np.abs(values))) or 1.0
    spectrum = sp_fft.rfft((values / unit).astype(np.float32), size)
    band = sp_fft.irfft(spectrum * np.asarray(gain, dtype=np.float32), size, axis=-1)
    return band[..., kept].astype(np.float64) * unit


def padded_size(length: int) -> int:
    return sp_fft.next_fast_len(length + 2 * EDGE_PAD, real=True)


ROBUST_SAMPLES = 4096  # at most this many samples, drawn at random, give the clip's median and MAD


def _robust_positions(size: int) -> np.ndarray:
    """:data:`ROBUST_SAMPLES` positions among ``size`` (:func:`pdseg.robust.spread_positions`).
    Every k-th sample would see a tone at a multiple of 1/k cycles per sample at one phase only:
    a tone of 8 noise sigmas at a quarter of the sampling rate (a clock's harmonic) read as a
    level of 9.6 with a spread of 1, and the clip around it left half the tone out of its own
    estimate."""
    return spread_positions(size, ROBUST_SAMPLES)


def _robust_level(values: np.ndarray, strided: bool = False) -> tuple[float, float]:
    """The median and the MAD's sigma of ``values``, from at most :data:`ROBUST_SAMPLES` of them
    (every k-th sample with ``strided``, as before 2026-12-05 evening: see :func:`remove_tones`)."""
    if values.size <= ROBUST_SAMPLES:
        sample = values
    elif strided:
        sample = values[:: -(-values.size // ROBUST_SAMPLES)]
    else:
        sample = values[_robust_positions(values.size)]
    centre = float(np.median(sample))
    return centre, mad_sigma(sample, centre)


def _clipped(values: np.ndarray, k: float, level: tuple[float, float] | None = None,
             strided: bool = False) -> np.ndarray:
    """``values`` limited to ``k`` robust sigmas around their median (``level``, if at hand)."""
    centre, sigma = _robust_level(values, strided) if level is None else level
    return np.clip(values, centre - k * sigma, centre + k * sigma)


def widened(mask: np.ndarray, reach: int) -> np.ndarray:
    """``mask`` (1-D, bool) with every set sample spread ``reach`` samples either side, nothing
    beyond its ends: ``ndimage.binary_dilation`` by a segment of ``2 * reach + 1``, at a thirtieth
    of its time on a long capture (shifted ors instead of a general structuring element)."""
    spread = mask.copy()
    for shift in range(1, reach + 1):
        spread[shift:] |= mask[:-shift]
        spread[:-shift] |= mask[shift:]
    return spread


def _outliers_as_tones(filtered: np.ndarray, estimate: np.ndarray,
                       strided: bool = False) -> tuple[np.ndarray, float]:
    """``filtered`` with the samples whose residual from the tones' ``estimate`` stands over
    :data:`OUTLIER_K` robust sigmas, and :data:`OUTLIER_REACH` samples either side of each,
    replaced by the estimate (at the residual's median level), so that a pulse takes no part in
    the next estimate rather than a clipped part; where that would be more than
    :data:`MAX_LEFT_OUT` of the signal, the residual clipped at :data:`HUBER_K` robust sigmas
    instead. A residual with no spread (sigma 0) leaves out all but its median samples: the
    next estimate is this one again. Also returns the residual's robust sigma."""
    residual = filtered - estimate
    centre, sigma = level = _robust_level(residual, strided)
    outlying = np.abs(residual - centre) > OUTLIER_K * sigma
    if not outlying.any():
        return filtered, sigma
    outlying = widened(outlying, OUTLIER_REACH)
    if np.count_nonzero(outlying) > MAX_LEFT_OUT * outlying.size:
        return estimate + _clipped(residual, HUBER_K, level), sigma
    return np.where(outlying, estimate + centre, filtered), sigma


def remove_tones(filtered: np.ndarray, frequencies: np.ndarray | None = None,
                 refilter: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]] | None = None,
                 fit_ends: bool = True, half_width: float = TONE_HALF_WIDTH,
                 end_phases: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``filtered`` without its stationary tones (a new array; the input itself where there are
    none). ``frequencies`` defaults to :func:`stationary_tones` of ``filtered``.

    ``refilter`` is the linear, zero-phase filter that made ``filtered`` from the raw capture
    (the carrier removal) and its gain as a function of frequency: the tones are then estimated
    as they were before it (the band divided by the gain) and subtracted as they came out of it.
    At a signal's ends that is not the same: a polynomial baseline fitted to the last 151
    samples bends a tone there by a fraction of its amplitude, a slow step that the band-pass
    does not see and that, with the tones gone, would stand out of the noise. Where the tones
    are strong, each end's are then fitted through the filter (:func:`_with_fitted_ends`).

    ``fit_ends`` False takes the step as it stood on 2026-12-04, when the shipped weights'
    fine-tuning rows were conditioned: no end fit, the clip's level read from every k-th sample
    (:func:`_robust_level`), one refinement that clips the residual at :data:`HUBER_K` robust
    sigmas (pulses left out since 2026-12-05), and the ends' raw band from the whole signal's
    transform at any length.

    ``end_phases``: one tone whose frequency moves (:func:`remove_wandering`), its phase over
    the first and the last :data:`REFILTER_SEGMENT` samples (:func:`end_phases`): the signal is
    then continued by prediction (:func:`predicted_ends`) and the ends fitted along that phase."""
    filtered = np.asarray(filtered, dtype=np.float64)
    if frequencies is None:
        frequencies = stationary_tones(filtered)
    if len(frequencies) == 0:
        return filtered
    frequencies = np.asarray(frequencies, dtype=np.float64)
    size = padded_size(filtered.size)
    gain = _band_gain(size, frequencies, half_width)
    # Pulses enter the first estimate only up to a few sigmas and the refined ones not at all
    # (but for what the first estimate's fill still holds of them), so they leave no ringing.
    cleaned = _clipped(filtered, HUBER_START, strided=not fit_ends)
    # Fitted once: pulses at an end are clipped already. A tone whose frequency moves (one given
    # with ``end_phases``) goes on as the signal's recent past predicts.
    ends = continued_ends(cleaned, frequencies) if end_phases is None else predicted_ends(cleaned)
    rounds, previous = (MAX_REFINEMENTS if fit_ends else 0), None
    if not fit_ends:
        # As the shipped weights' fine-tuning rows were conditioned (2026-12-04): one round
        # that clips the residual at HUBER_K robust sigmas.
        residual = filtered - tone_estimate(cleaned, frequencies, gain, ends)
        cleaned = filtered - (residual - _clipped(residual, HUBER_K, strided=True))
    for refinement in range(rounds):
        estimate = tone_estimate(cleaned, frequencies, gain, ends)
        cleaned, sigma = _outliers_as_tones(filtered, estimate, strided=not fit_ends)
        if refinement + 1 == rounds or (refinement + 1 >= REFINEMENTS and not _moved(estimate, previous, sigma)):
            break
        previous = estimate
    if refilter is None:
        return filtered - tone_estimate(cleaned, frequencies, gain, ends)
    carrier_filter, carrier_gain = refilter
    if fit_ends and filtered.size >= ENDS_APART_FROM:
        result, raw_ends = _refiltered_at_ends(filtered, cleaned, frequencies, gain, ends, refilter, half_width)
        return _with_fitted_ends(filtered, result, frequencies, carrier_filter, raw_ends, end_phases)
    gains = _refilter_gains(size, frequencies, carrier_gain, half_width)
    raw, refiltered, direct = tone_estimate(cleaned, frequencies, gains, ends)
    # Away from the ends the filter only scales each frequency (``refiltered`` already is the raw
    # estimate filtered there); near them it is run on the raw estimate itself.
    if filtered.size <= 2 * REFILTER_SEGMENT:
        return filtered - carrier_filter(raw) - direct
    # Both ends in one call: the seam between them is REFILTER_SEGMENT - REFILTER_KEEP
    # samples from what is kept, as far as a cut end of a lone segment would be.
    raw_ends = (raw[:REFILTER_SEGMENT], raw[-REFILTER_SEGMENT:])
    refiltered_ends = carrier_filter(np.concatenate(raw_ends))
    refiltered[:REFILTER_KEEP] = refiltered_ends[:REFILTER_KEEP]
    refiltered[-REFILTER_KEEP:] = refiltered_ends[-REFILTER_KEEP:]
    result = filtered - refiltered - direct
    return _with_fitted_ends(filtered, result, frequencies, carrier_filter, raw_ends, end_phases) if fit_ends else result


def _refilter_gains(size: int, frequencies: np.ndarray,
                    carrier_gain: Callable[[np.ndarray], np.ndarray],
                    half_width: float = TONE_HALF_WIDTH) -> np.ndarray:
    """The gains, on the bins of a real FFT of ``size`` samples, that give the tones' band as it
    was before the carrier filter (``raw``), as the filter passed it where it passed enough to
    scale back (``refiltered``) and where it did not (``direct``), stacked in that order."""
    gain = _band_gain(size, frequencies, half_width)
    passed = carrier_gain(np.fft.rfftfreq(size))
    # Where the filter passed too little to scale back, the band is taken as it came out.
    restorable = np.minimum(passed / MIN_REFILTER_GAIN, 1.0)
    return np.stack((gain / np.maximum(passed, MIN_REFILTER_GAIN), gain * restorable, gain * (1.0 - restorable)))


# On a long signal the raw band and the direct one count only at the ends (refiltered and direct
# add up to the band itself elsewhere), so there they come from a transform of END_BLOCK samples
# at each end instead of two more of the whole signal: 25-30 ms of an 800,000-sample capture's
# conditioning. The filters' responses fall off as the square of the lag (the kinks of the
# tabulated carrier response), under 1e-4 of their peak past 8,000 samples; a kept sample lies
# ~15,000 samples from its block's cut end, farther than the whole signal's transform wraps
# around (its padding: 9,000 samples on 800,000). The two agree within 1e-3 noise sigmas where
# the tones are weak or the end is fitted; a strong tone under ~0.013 cycles per sample left to
# the band at an end can differ by up to 0.6 sigmas over its last samples.
END_BLOCK = 16384
ENDS_APART_FROM = 4 * END_BLOCK  # samples


def _refiltered_at_ends(filtered: np.ndarray, cleaned: np.ndarray, frequencies: np.ndarray, gain: np.ndarray,
                        ends: tuple[np.ndarray, np.ndarray],
                        refilter: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]],
                        half_width: float = TONE_HALF_WIDTH) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """:func:`remove_tones`'s last step for a signal of at least :data:`ENDS_APART_FROM` samples, and
    the raw band over the first and the last :data:`REFILTER_SEGMENT` samples."""
    carrier_filter, carrier_gain = refilter
    result = filtered - tone_estimate(cleaned, frequencies, gain, ends)
    # The two ends of the extended signal that tone_estimate transformed whole.
    first_block = np.concatenate((ends[0], cleaned[: END_BLOCK - EDGE_PAD]))
    last_block = np.concatenate((cleaned[cleaned.size - (END_BLOCK - EDGE_PAD):], ends[1]))
    block_gains = _refilter_gains(2 * END_BLOCK, frequencies, carrier_gain, half_width)[[0, 2]]
    # Each block is zero-padded to twice its length, so that neither end wraps around onto the other.
    first_raw, first_direct = _through_gain(first_block, block_gains, 2 * END_BLOCK,
                                            slice(EDGE_PAD, EDGE_PAD + REFILTER_SEGMENT))
    last_raw, last_direct = _through_gain(last_block, block_gains, 2 * END_BLOCK,
                                          slice(END_BLOCK - EDGE_PAD - REFILTER_SEGMENT, END_BLOCK - EDGE_PAD))
    # Both ends in one call, as for shorter signals.
    refiltered = carrier_filter(np.concatenate((first_raw, last_raw)))
    result[:REFILTER_KEEP] = filtered[:REFILTER_KEEP] - refiltered[:REFILTER_KEEP] - first_direct[:REFILTER_KEEP]
    result[-REFILTER_KEEP:] = (filtered[-REFILTER_KEEP:] - refiltered[-REFILTER_KEEP:]
                               - last_direct[-REFILTER_KEEP:])
    return result, (first_raw, last_raw)


# A strong tone's ends. The carrier filter's high-pass starts each of its passes on the signal
# reflected about its end sample, so a tone's phase there becomes a step that decays over ~150
# samples, of up to twice the tone's amplitude. The refiltered band reproduces that step only as
# well as it knows the tone's end sample, and it knows it least there: 0.3-1.1 of a tone's
# amplitude was left in the first 100 samples, and a stationary tone of 10-100 noise sigmas gave
# false regions at one or both ends of nearly every capture (docs/model-card.md, Conditioning).
# Where the tones before the filter are strong, each end's tones are fitted by least squares
# through the filter itself: the step is then the fitted tones' own. Weak tones keep the band:
# their step is small, and a fit is led astray there by slow noise the filter left at the end.
STRONG_TONES = 4.0  # rms of the tones before the filter, in noise sigmas, from which ends are fitted
END_FIT = 256  # samples at each end that the tones are fitted to ...
END_FIT_ONLY = 128  # ... and that the fit alone gives; from there to END_FIT it fades into the band
ENVELOPE_DEGREE = 3  # the tones' amplitudes over END_FIT samples: a cubic (modulation of ~2e-3 cycles per sample)
END_TEST = 64  # samples at each end over which the fit must leave less than the band did
TEST_CLIP = 8.0  # noise sigmas: a pulse at the end weighs no more than this in that test


def _with_fitted_ends(filtered: np.ndarray, result: np.ndarray, frequencies: np.ndarray,
                      carrier_filter: Callable[[np.ndarray], np.ndarray],
                      raw_ends: tuple[np.ndarray, np.ndarray],
                      end_phases: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``result`` (``filtered`` without its tones) with each end whose tones are strong (their raw
    band ``raw_ends`` away from the end, :data:`STRONG_TONES`) taken from the tones fitted there
    (:func:`_fitted_end_tones`; a tone of the given ``end_phases`` there, first and last, where
    its frequency moves), where that leaves less over the last :data:`END_TEST` samples."""
    sigma = _robust_level(result)[1]
    if not sigma > 0.0:
        return result
    fade = np.minimum((END_FIT - np.arange(END_FIT)) / (END_FIT - END_FIT_ONLY + 1), 1.0)  # 1 over END_FIT_ONLY

    def left(values: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.clip(values, -TEST_CLIP * sigma, TEST_CLIP * sigma) ** 2)))

    result = result.copy()
    for index, (raw_end, at_end) in enumerate(zip(raw_ends, (False, True))):
        # The raw band's own end is what it knows least: its level is read past the step.
        away = raw_end[: raw_end.size - REFILTER_KEEP] if at_end else raw_end[REFILTER_KEEP:]
        if np.sqrt(np.mean(away**2)) < STRONG_TONES * sigma:
            continue
        end = slice(filtered.size - END_FIT, filtered.size) if at_end else slice(0, END_FIT)
        # Over the fit's columns a frequency off by 1/256 turns a tone's phase by half a turn: the
        # short-time spectra's estimate (2-3e-3 off for tones 0.016 apart) is refined on this end.
        block = filtered[-END_BLOCK:] if at_end else filtered[:END_BLOCK]
        if end_phases is None:
            tones_there = _fitted_end_tones(filtered, whole_signal_frequencies(block, frequencies), carrier_filter, at_end)
        else:
            tones_there = _fitted_end_tones(filtered, frequencies, carrier_filter, at_end, end_phases[index])
        fitted = filtered[end] - tones_there
        tested = slice(END_FIT - END_TEST, END_FIT) if at_end else slice(0, END_TEST)
        if left(fitted[tested]) < left(result[end][tested]):
            weight = fade[::-1] if at_end else fade
            result[end] = weight * fitted + (1.0 - weight) * result[end]
    return result


_BLAS_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, looked up once (a limit is then ~10 us): a worker conditions
    its signals on one core, and BLAS's own threads, woken by a large product, spin on the
    others (on a busy 2-core machine conditioning took 1.5 times as long with them)."""
    return ThreadpoolController()


@lru_cache(maxsize=4)
def _end_filter_rows(carrier_filter: Callable[[np.ndarray], np.ndarray], at_end: bool) -> np.ndarray:
    """The rows of ``carrier_filter`` (linear) over :data:`REFILTER_SEGMENT` samples that give its
    first (last, ``at_end``) :data:`END_FIT` outputs, as a matrix: the end fit's 64 columns then
    go through the filter as one product, a quarter of the time of filtering each of them."""
    responses = carrier_filter(np.eye(REFILTER_SEGMENT))  # row i: the response to a unit sample at i
    rows = slice(REFILTER_SEGMENT - END_FIT, REFILTER_SEGMENT) if at_end else slice(0, END_FIT)
    operator = np.ascontiguousarray(responses[:, rows].T)
    operator.setflags(write=False)  # shared by every call
    return operator


def _fitted_end_tones(filtered: np.ndarray, frequencies: np.ndarray,
                      carrier_filter: Callable[[np.ndarray], np.ndarray], at_end: bool,
                      phase: np.ndarray | None = None) -> np.ndarray:
    """The tones at ``frequencies`` (or the one tone of the given ``phase`` over the
    :data:`REFILTER_SEGMENT` samples there) in the first (last, ``at_end``) :data:`END_FIT` samples of
    ``filtered``, as the carrier filter left them: least squares on cosines and sines whose
    amplitudes are cubics in time (:data:`ENVELOPE_DEGREE`), each put through ``carrier_filter``
    over the :data:`REFILTER_SEGMENT` samples at that end, so that the fit has the filter's step
    in it; what stands more than :data:`OUTLIER_K` robust sigmas out of the fit, and
    :data:`OUTLIER_REACH` samples either side, is left out and the fit repeated (a pulse)."""
    time = np.arange(REFILTER_SEGMENT, dtype=np.float64)
    edge = REFILTER_SEGMENT - 1 if at_end else 0
    if phase is None:
        angles = time[:, None] * (2.0 * np.pi * np.asarray(frequencies, dtype=np.float64)[None, :])
    else:
        angles = np.asarray(phase, dtype=np.float64)[:, None]
    waves = np.hstack((np.cos(angles), np.sin(angles)))
    envelope = (time[:, None] - edge) / END_FIT
    basis = np.hstack([envelope**degree * waves for degree in range(ENVELOPE_DEGREE + 1)])
    # One product at a time: a limit restores what it found on leaving, so two threads inside at
    # once (a slower view conditioned beside its capture) would leave BLAS as the other found it.
    with _BLAS_LOCK, _blas().limit(limits=1, user_api="blas"):
        columns = _end_filter_rows(carrier_filter, at_end) @ basis
    values = filtered[filtered.size - END_FIT:] if at_end else filtered[:END_FIT]
    kept = np.ones(END_FIT, dtype=bool)
    for _ in range(REFINEMENTS + 1):
        # einsum, not matrix products: BLAS would wake threads that spin beside the other worker.
        normal = np.einsum("ij,ik->jk", columns[kept], columns[kept])
        # Tones closer than 1/END_FIT cycles per sample are nearly collinear here (as in _continuation).
        normal[np.diag_indices_from(normal)] += CONTINUATION_RIDGE * (np.trace(normal) / normal.shape[0] + 1e-300)
        coefficients = np.linalg.solve(normal, np.einsum("ij,i->j", columns[kept], values[kept]))
        misfit = values - np.einsum("ij,j->i", columns, coefficients)
        centre = float(np.median(misfit[kept]))
        outlying = widened(np.abs(misfit - centre) > OUTLIER_K * mad_sigma(misfit[kept], centre), OUTLIER_REACH)
        if np.count_nonzero(outlying) > MAX_LEFT_OUT * END_FIT or np.array_equal(~outlying, kept):
            break
        kept = ~outlying
    return np.einsum("ij,j->i", columns, coefficients)


# Tone bursts: a narrowband line that is present, at a steady level, for a stretch of the
# capture but not in most of it (a power-line carrier's or a radio's transmission, a TDMA frame).
# Not PD: a PD pulse's ringing dies away within a few of its decays (60 samples at the longest the
# generators draw), while a burst holds its level for BURST_FRAMES hops and more. Left in, a burst
# was reported as one region over its whole length, and PD inside it got regions hundreds of
# samples long (docs/model-card.md, Conditioning: tone bursts).
# What tells a burst from PD, each chosen so that the validation splits of both generators (their
# AM tones, whose troughs can hide them from the stationary step) keep every answer they had:
BURST_FRAMES = 8  # consecutive short-time frames with the line (1,152 samples with the first one's 256)
BURST_STEADY = 0.6  # the run's frame power: its 20th percentile at least this share of its 80th
# Off between its runs: the bin's median power away from them under this many times its floor
# (the power 80 % of the frames exceed; noise alone reads about 3, chi-square with 2 degrees).
BURST_OFF_RATIO = 4.0
# The band taken out around a burst: four times a stationary tone's, so that the band-pass follows
# a burst's switching within about 20 samples (at twice, a 100-unit burst switched over 50 samples
# left 20 units there, reported; at once, a 10-unit burst's last 80 samples were).
BURST_HALF_WIDTH = 4 * TONE_HALF_WIDTH
# At most this many bursts a signal, the strongest: each is a band-pass over its stretch, and a
# frequency-hopping radio over 1.5 million samples showed 982 of them (5.5 s for ten such radios).
MAX_BURSTS = 32
# ... and their stretches (with their margins) add up to at most this many times the signal's
# length: ten tones each on for 70 % of a capture showed 20 bursts over 7 times its length.
MAX_BURST_COVER = 4.0
BURST_MARGIN = 2 * SEGMENT  # samples either side of a burst's frames that its removal takes in too


@dataclasses.dataclass(frozen=True)
class Burst:
    """A tone burst: its frequency (cycles per sample) and the samples ``[start, end)`` of the
    short-time frames that show it."""

    frequency: float
    start: int
    end: int


def tone_bursts(spectra: ShortTime | None, known: np.ndarray | None = None,
                wandering: tuple["WanderingTone", ...] = ()) -> list[Burst]:
    """The tone bursts that a signal's short-time ``spectra`` (:func:`short_time`) show: in each
    frequency bin (from :data:`LOWEST_BIN`, and not within two short-time bins of a ``known``
    stationary tone nor inside a ``wandering`` tone's band, where a slow swing's turning points
    hold a bin for a burst's frames), the runs of at least :data:`BURST_FRAMES` consecutive frames where the bin
    stands :data:`LINE_RATIO` times over its noise level (its floor, running median over
    :data:`BACKGROUND_BINS` bins, as :func:`stationary_tones` reads it) and over the same
    frame's bins three to either side (a pulse's spectrum is broad). A run counts where its
    level holds (:data:`BURST_STEADY`) and the bin is at the noise away from its runs
    (:data:`BURST_OFF_RATIO`); of runs that overlap in time within two bins of each other, the
    strongest. At most :data:`MAX_BURSTS`, the strongest first, whose stretches cover at most
    :data:`MAX_BURST_COVER` times the signal's length."""
    if spectra is None:
        return []
    power, background = spectra.power, np.maximum(spectra.background, np.finfo(np.float64).tiny)
    shoulder = np.zeros_like(power)
    shoulder[SHOULDER_BINS:] = power[:-SHOULDER_BINS]
    np.maximum(shoulder[:-SHOULDER_BINS], power[SHOULDER_BINS:], out=shoulder[:-SHOULDER_BINS])
    line = (power >= LINE_RATIO * background[:, None]) & (power >= LINE_RATIO * shoulder)
    line[:LOWEST_BIN] = False
    bins = np.arange(power.shape[0])
    for frequency in np.asarray(known if known is not None else [], dtype=np.float64):
        line[np.abs(bins / SEGMENT - frequency) < 2.0 / SEGMENT] = False
    line[in_wandering_band(bins / SEGMENT, wandering)] = False
    # A frame under the line level between two over it (amplitude modulation's troughs) joins them.
    line[:, 1:-1] |= line[:, :-2] & line[:, 2:]
    # Only bins with BURST_FRAMES line frames in a row are looked at further.
    counts = np.concatenate((np.zeros((line.shape[0], 1), np.int32), np.cumsum(line, axis=1, dtype=np.int32)), axis=1)
    candidates = np.flatnonzero(np.any(counts[:, BURST_FRAMES:] - counts[:, :-BURST_FRAMES] == BURST_FRAMES, axis=1)) \
        if line.shape[1] >= BURST_FRAMES else []
    tiny = np.finfo(np.float64).tiny
    found = []  # (power over the run, bin, first frame, frame after the last)
    for bin_index in candidates:
        runs = line[bin_index]
        labels, _ = ndimage.label(runs)
        steady = []
        for frames in ndimage.find_objects(labels):
            frames = frames[0]
            if frames.stop - frames.start < BURST_FRAMES:
                continue
            low, high = np.quantile(power[bin_index, frames], (0.2, 0.8))
            if low >= BURST_STEADY * max(high, tiny):
                steady.append(frames)
        if not steady:
            continue
        # Away from every run of this bin (a frame either side may hold a ramp), a tone whose
        # troughs still stand out is amplitude-modulated, not switched: the stationary step's
        # business, which those troughs can hide it from.
        near = runs.copy()
        for shift in (1, 2):
            near[shift:] |= runs[:-shift]
            near[:-shift] |= runs[shift:]
        outside = power[bin_index, ~near]
        if outside.size < BURST_FRAMES or np.median(outside) >= BURST_OFF_RATIO * background[bin_index]:
            continue
        found += [(float(power[bin_index, frames].sum()), int(bin_index), frames.start, frames.stop) for frames in steady]
    bursts, kept = [], []
    covered, cover = 0, MAX_BURST_COVER * ((power.shape[1] - 1) * HOP + SEGMENT)
    for _, bin_index, first, stop in sorted(found, reverse=True):
        if len(kept) == MAX_BURSTS:
            break
        if any(abs(bin_index - other) <= 2 and first < other_stop and other_first < stop
               for other, other_first, other_stop in kept):
            continue
        stretch = (stop - 1 - first) * HOP + SEGMENT + 2 * BURST_MARGIN
        if covered + stretch > cover:
            continue
        covered += stretch
        kept.append((bin_index, first, stop))
        offset = 0.0
        if bin_index < power.shape[0] - 1:  # from LOWEST_BIN, so never the first
            offset = parabola_peak(np.log(power[bin_index - 1: bin_index + 2, first:stop].mean(axis=1) + tiny))
        bursts.append(Burst(float((bin_index + offset) / SEGMENT), first * HOP, (stop - 1) * HOP + SEGMENT))
    return sorted(bursts, key=lambda burst: burst.start)


def remove_bursts(filtered: np.ndarray, bursts: list[Burst],
                  refilter: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]] | None = None,
                  ) -> np.ndarray:
    """``filtered`` without its ``bursts`` (a new array; the input itself where there are none):
    each taken out as a stationary tone is (:func:`remove_tones`, its pulses kept out of the
    estimate, within :data:`BURST_HALF_WIDTH` of its frequency) over its samples and
    :data:`BURST_MARGIN` either side, where the tone is absent and the band-pass leaves next to
    nothing. ``refilter``: the carrier filter and its gain, as :func:`remove_tones` takes them,
    for a burst whose stretch reaches the signal's first or last sample."""
    if not bursts:
        return filtered
    cleaned = np.array(filtered, dtype=np.float64, copy=True)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(BURST_MARGIN) + 0.5) / BURST_MARGIN)
    for burst in bursts:
        first = max(burst.start - BURST_MARGIN, 0)
        last = min(burst.end + BURST_MARGIN, cleaned.size)
        segment = cleaned[first:last]
        # At a signal's end the carrier filter bent the tone (remove_tones, ``refilter``): a
        # burst on at sample 0 left 70 units of a 100-unit tone there, reported as a pulse.
        at_end = refilter if (first == 0 or last == cleaned.size) else None
        estimate = segment - remove_tones(segment, np.array([burst.frequency]), refilter=at_end,
                                          half_width=BURST_HALF_WIDTH)
        # Faded in and out over the margins, where the band holds little: a weak tone that
        # goes on past them (amplitude modulation's troughs) is left, not cut off with a step.
        weight, fade = np.ones(segment.size), min(BURST_MARGIN, segment.size)
        if first > 0:
            weight[:fade] = ramp[:fade]
        if last < cleaned.size:
            weight[-fade:] = np.minimum(weight[-fade:], ramp[:fade][::-1])
        cleaned[first:last] = segment - weight * estimate
    return cleaned


# Wandering tones: a transmitter whose frequency moves (an FM radio, a drifting oscillator, a
# switched-mode supply under changing load) is no line in the short-time spectra, so the
# stationary step misses it, and it raised the noise scale tenfold over the pulses beneath it
# (docs/model-card.md, Conditioning: wandering tones). What tells it from PD is what tells a tone:
# it is present all the time, at a steady level; only its frequency moves, within a band.
WANDER_REACH = 5  # bins either side of a frame's peak that a wandering line may be (±0.02 cycles per sample)
WANDER_BACKGROUND_BINS = 65  # bins of the running median a wandering line's level stands over (its own band is 11-20 bins wide)
WANDER_FRAMES = 512  # frames, spread over the signal, whose power gives the levels
# The band power that 80 % of the frames exceed stands over what noise alone gives the same way
# this many times; the noise's own level is the running median over WANDER_BACKGROUND_BINS bins
# (a quarter of the spectrum either side), the bins that stand out left out.
WANDER_RATIO = LINE_RATIO
# The band where the frames' mean power stands over this share of the line's peak (and
# LINE_RATIO times over the noise's spectral shape, ShortTime.background) is what the line occupies.
OCCUPIED_SHARE = 0.01
# A constant envelope: over the band the line occupies, the analytic signal's magnitude that 80 %
# of the samples exceed is at least this share of its median (narrowband noise, Rayleigh: 0.57).
WANDER_STEADY = 0.8
MAX_WANDERING = 8  # as many as stationary tones (MAX_TONES): each is a band-pass over the whole signal
# A wandering line's frames peak over this many bins at least (the spread of their middle 60 %):
# 0.71-0.85 for a swing of ±0.002 cycles per sample; at most 0.23 for the independent generator's
# AM tones in coloured noise (which the stationary step can miss) and 0.32 for the atlas's tones.
MIN_WANDER_BINS = 0.6
# Wider than this, a band is no tone, and taking it out would take a pulse's spectrum with it.
MAX_WANDER_HALF_WIDTH = 0.04  # cycles per sample
# ... and the bands taken out add up to at most this share of the spectrum (0 to 0.5 cycles per
# sample), the strongest first: six radios swinging by ±0.008 took out 68 % of it, and with it
# most of every pulse.
MAX_WANDER_COVER = 0.4  # the wandering tones' bands only: steady lines count under MAX_WANDERING, stationary tones under MAX_TONES
# The band taken out: the occupied band's half-width times this, plus a stationary tone's band,
# so that the notch's gain is over 0.9 where the line still has power.
WANDER_WIDTH_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class WanderingTone:
    """A tone whose frequency moves within a band: its middle and the half-width it occupies
    (cycles per sample), and the half-width of the band taken out."""

    frequency: float
    deviation: float
    half_width: float


def _spread_frames(power: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` frames of ``power`` (bins by frames), evenly spread over the signal."""
    if power.shape[1] <= most:
        return power
    return power[:, np.linspace(0, power.shape[1] - 1, most).round().astype(np.intp)]


def _running_median(values: np.ndarray, left_out: np.ndarray) -> np.ndarray:
    """The median of ``values`` over :data:`WANDER_BACKGROUND_BINS` bins around each, without the
    ``left_out`` bins (all of them where a window holds nothing else). Beyond the spectrum's top
    the bins are reflected (repeated, a line in the top bin was its own noise: none over 0.475
    cycles per sample was found); beyond its bottom, the lowest repeated (reflected, the 1/f
    noise there read as lines at 0.027-0.031 in three of the training generator's validation
    captures)."""
    reach = WANDER_BACKGROUND_BINS // 2

    def padded(array: np.ndarray) -> np.ndarray:
        top = array[::-1][:reach]
        top = np.concatenate((top, np.full(reach - top.size, array[0])))
        return np.concatenate((np.full(reach, array[0]), array, top))

    if not left_out.any():
        return np.median(np.lib.stride_tricks.sliding_window_view(padded(values), 2 * reach + 1), axis=1)
    # The left-out bins sort last as NaN; each window's median is over the ones before them
    # (np.nanmedian's own loop took 0.7 ms of a 7,920-sample signal's 6 ms).
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded(np.where(left_out, np.nan, values)),
                                                               2 * reach + 1), axis=1)
    counts = np.count_nonzero(~np.isnan(windows), axis=1)
    rows = np.arange(windows.shape[0])
    median = 0.5 * (windows[rows, np.maximum(counts - 1, 0) // 2] + windows[rows, counts // 2 - (counts == 0)])
    empty = counts == 0
    if empty.any():
        median[empty] = _running_median(values, np.zeros(values.size, dtype=bool))[empty]
    return median


def _peak_track(power: np.ndarray, low: int, high: int) -> np.ndarray:
    """In each frame of ``power`` (bins by frames), the bin within ``[low, high]`` where the
    power peaks, to a fraction of a bin (:func:`parabola_peak` on log powers, with the bins just
    outside the band as neighbours: a pure tone between two bins, in a band of two, otherwise
    read as one or the other, a bin apart, and passed for a wandering one)."""
    first, last = max(low - 1, 0), min(high + 1, power.shape[0] - 1)
    around = np.log(power[first: last + 1] + np.finfo(np.float64).tiny)
    peaks = (low - first) + np.argmax(around[low - first: high - first + 1], axis=0)
    frames = np.arange(around.shape[1])
    inner = (peaks > 0) & (peaks < around.shape[0] - 1)
    left = around[np.clip(peaks - 1, 0, None), frames]
    centre = around[peaks, frames]
    right = around[np.clip(peaks + 1, None, around.shape[0] - 1), frames]
    curvature = left - 2.0 * centre + right
    offsets = np.where(inner & (curvature < 0.0),
                       np.clip(0.5 * (left - right) / np.where(curvature < 0.0, curvature, -1.0), -0.5, 0.5), 0.0)
    return first + peaks + offsets


def _analytic_band(filtered: np.ndarray, low: float, high: float) -> np.ndarray:
    """The analytic signal of ``filtered``'s band ``[low, high]`` cycles per sample (a brick-wall
    band of one transform: only its magnitude's steadiness is read from it)."""
    size = sp_fft.next_fast_len(filtered.size)
    spectrum = sp_fft.fft(filtered, size)
    frequencies = sp_fft.fftfreq(size)
    spectrum[(frequencies < low) | (frequencies > high)] = 0.0
    return sp_fft.ifft(2.0 * spectrum)[: filtered.size]


# The steadiness test reads a band's magnitude at this many samples per bin of the band (its
# envelope changes no faster than the band is wide): on a long capture an inverse transform of a
# fraction of its length instead of one of the whole signal (42 ms of an 800,000-sample capture's
# conditioning with a candidate line). At 4 per bin, the test's ratio moved by up to 0.034 from
# the dense one on random lines (short signals); at 16, by 0.006.
ENVELOPE_OVERSAMPLING = 16


def band_magnitudes(spectrum: np.ndarray, size: int, length: int, low: float, high: float,
                    margin: int) -> np.ndarray:
    """The magnitude of the analytic signal of a band ``[low, high]`` cycles per sample
    (``0 < low``) of a signal of ``length`` samples, from ``spectrum``, its real transform over
    ``size`` samples (a brick-wall band, as :func:`_analytic_band`), at evenly spaced positions
    ``margin`` samples or more from its ends: :data:`ENVELOPE_OVERSAMPLING` positions per bin of
    the band (a shorter inverse transform of the band moved to zero frequency: the same
    continuous magnitude, sampled more coarsely), or every sample where that would be more than
    a quarter of them."""
    bins = np.fft.rfftfreq(size)
    inside = (bins >= low) & (bins <= high)
    if size % 2 == 0:
        inside[-1] = False  # the full transform's Nyquist bin counts as -0.5 cycles per sample
    band = np.flatnonzero(inside)
    if band.size == 0:
        return np.zeros(0)
    coarse = sp_fft.next_fast_len(ENVELOPE_OVERSAMPLING * band.size)
    if 4 * coarse > size:
        full = np.zeros(size, dtype=np.complex128)
        full[band] = spectrum[band]
        magnitude = np.abs(sp_fft.ifft(2.0 * full))[:length]
        return magnitude[margin: length - margin]
    shifted = np.zeros(coarse, dtype=np.complex128)
    shifted[: band.size] = spectrum[band]
    magnitude = np.abs(sp_fft.ifft(shifted)) * (2.0 * coarse / size)
    positions = np.arange(coarse) * (size / coarse)
    return magnitude[(positions >= margin) & (positions < length - margin)]


@dataclasses.dataclass(frozen=True)
class NarrowbandLines:
    """What :func:`narrowband_lines` finds: the ``wandering`` tones, and the frequencies of the
    ``steady`` lines (present all the time, at one frequency) among the same candidates, which
    the stationary test can let pass (a tone whose frequency moves by a bin or less: its phase
    is no longer steady from frame to frame)."""

    wandering: tuple = ()
    steady: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


def narrowband_lines(filtered: np.ndarray, spectra: ShortTime | None) -> NarrowbandLines:
    """The lines of ``filtered`` (its :func:`short_time` ``spectra``; before its stationary tones
    are taken out) that the stationary test does not need to find: bands where, in 80 % of the
    frames, the strongest bin within :data:`WANDER_REACH` bins stands :data:`WANDER_RATIO` times
    over what noise gives the same way, that occupy at most :data:`MAX_WANDER_HALF_WIDTH` either
    side of their middle and whose magnitude is constant (:data:`WANDER_STEADY`); at most
    :data:`MAX_WANDERING`, the strongest. Wandering where the frames peak at frequencies
    :data:`MIN_WANDER_BINS` apart or more (while their bands cover at most
    :data:`MAX_WANDER_COVER` of the spectrum), steady (at the frames' median peak) where not."""
    if spectra is None:
        return NarrowbandLines()
    power = _spread_frames(spectra.power, WANDER_FRAMES)
    bins = np.arange(power.shape[0])
    lowest = LOWEST_BIN + WANDER_REACH
    strongest = ndimage.maximum_filter1d(power, 2 * WANDER_REACH + 1, axis=0, mode="constant")
    level = np.quantile(strongest, FLOOR_QUANTILE, axis=1)
    tiny = np.finfo(np.float64).tiny
    noise = np.maximum(_running_median(level, np.zeros(level.size, dtype=bool)), tiny)
    # Again without the bins that stand out: three radios in the window made its median theirs.
    standing_out = level >= WANDER_RATIO * noise
    if standing_out.any():
        noise = np.maximum(_running_median(level, standing_out), tiny)
    standing = (level >= WANDER_RATIO * noise) & (bins >= lowest)
    mean_power = power.mean(axis=1)
    line_noise = np.maximum(spectra.background, tiny)
    labels, _ = ndimage.label(standing)
    candidates: dict[tuple[int, int], float] = {}
    for stretch in ndimage.find_objects(labels):
        stretch = stretch[0]
        peak = stretch.start + int(np.argmax(mean_power[stretch]))
        # Not under the search's lowest bin: a swing centred under about 0.033 cycles per sample
        # is left (its band would reach into the high-pass's stop band, where slow pulses have
        # most of their spectrum).
        occupied = (mean_power >= np.maximum(OCCUPIED_SHARE * mean_power[peak], WANDER_RATIO * line_noise)) & (bins >= lowest)
        low = high = peak
        while low - 1 >= 0 and occupied[low - 1]:
            low -= 1
        while high + 1 < occupied.size and occupied[high + 1]:
            high += 1
        if (high - low + 1) / (2.0 * SEGMENT) <= MAX_WANDER_HALF_WIDTH:
            # Two stretches of one line (its level dipping under the ratio in its middle) grow
            # into the same band: one candidate, at the higher level. (Seen with the first noise
            # estimate, in one pass: a radio was listed and taken out twice.)
            candidates[(low, high)] = max(candidates.get((low, high), 0.0), float(level[peak]))
    wandering, steady, covered = [], [], 0.0
    size = sp_fft.next_fast_len(filtered.size)
    spectrum = sp_fft.rfft(filtered, size) if candidates else None
    margin = SEGMENT if filtered.size > 4 * SEGMENT else 0
    for (low, high), _ in sorted(candidates.items(), key=lambda item: -item[1])[:MAX_WANDERING]:
        # Half a bin beyond the outermost occupied bins' centres.
        frequency, deviation = (low + high) / (2.0 * SEGMENT), (high - low + 1) / (2.0 * SEGMENT)
        magnitudes = band_magnitudes(spectrum, size, filtered.size, frequency - deviation, frequency + deviation,
                                     margin)
        if magnitudes.size == 0:
            continue
        low_level, middle = np.quantile(magnitudes, (FLOOR_QUANTILE, 0.5))
        if low_level < WANDER_STEADY * middle:
            continue
        track = _peak_track(power, low, high)
        spread = np.quantile(track, 1.0 - FLOOR_QUANTILE) - np.quantile(track, FLOOR_QUANTILE)
        if spread >= MIN_WANDER_BINS:
            tone = WanderingTone(frequency, deviation, WANDER_WIDTH_FACTOR * deviation + TONE_HALF_WIDTH)
            if 2.0 * (covered + tone.half_width) <= MAX_WANDER_COVER * 0.5:
                covered += tone.half_width
                wandering.append(tone)
        else:
            steady.append(float(np.median(track)) / SEGMENT)
    return NarrowbandLines(tuple(wandering), np.asarray(steady, dtype=np.float64))


def with_steady_lines(frequencies: np.ndarray, lines: NarrowbandLines) -> np.ndarray:
    """The stationary tones at ``frequencies`` and the ``lines``' steady ones that are not within
    a short-time bin of one of them (ascending)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    added: list[float] = []
    for line in lines.steady:
        if not np.any(np.abs(np.concatenate((frequencies, added)) - line) < 1.0 / SEGMENT):
            added.append(float(line))
    return np.sort(np.concatenate((frequencies, added))) if added else frequencies


def in_wandering_band(frequencies: np.ndarray, wandering: tuple[WanderingTone, ...]) -> np.ndarray:
    """Which of ``frequencies`` lie inside a ``wandering`` tone's band (the one taken out)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    inside = np.zeros(frequencies.size, dtype=bool)
    for tone in wandering:
        inside |= np.abs(frequencies - tone.frequency) <= tone.half_width
    return inside


def outside_wandering(frequencies: np.ndarray, wandering: tuple[WanderingTone, ...]) -> np.ndarray:
    """``frequencies`` (stationary tones) but those inside a ``wandering`` tone's band, which
    its removal takes out with the rest of it."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    return frequencies[~in_wandering_band(frequencies, wandering)]


def remove_wandering(filtered: np.ndarray, wandering: tuple[WanderingTone, ...],
                     refilter: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]] | None = None,
                     fit_ends: bool = True) -> np.ndarray:
    """``filtered`` without its ``wandering`` tones: each taken out as a stationary tone is
    (:func:`remove_tones`, its pulses kept out of the estimate), within its ``half_width``
    (:data:`WANDER_WIDTH_FACTOR` times the band it occupies, and a stationary tone's band)."""
    for tone in wandering:
        filtered = remove_tones(filtered, np.array([tone.frequency]), refilter=refilter, fit_ends=fit_ends,
                                half_width=tone.half_width, end_phases=end_phases(filtered, tone))
    return filtered


def end_phases(filtered: np.ndarray, tone: WanderingTone) -> tuple[np.ndarray, np.ndarray]:
    """A wandering ``tone``'s phase (radians) over the first and over the last
    :data:`REFILTER_SEGMENT` samples of ``filtered`` (fewer where it is shorter): the angle of its
    band's analytic signal over each end continued by prediction (:func:`predicted`), its pulses
    clipped, so that the band sees no cut there. A fixed frequency or a chirp fitted near an end
    missed a fast swing, and the tone's last samples stood out as a pulse."""
    clipped = _clipped(filtered, HUBER_START)
    reach = min(REFILTER_SEGMENT, clipped.size)
    room = min(reach + PHASE_MARGIN, clipped.size)
    low, high = tone.frequency - tone.deviation, tone.frequency + tone.deviation
    first = np.concatenate((predicted(clipped[:room][::-1], PHASE_MARGIN)[::-1], clipped[:room]))
    last = np.concatenate((clipped[clipped.size - room:], predicted(clipped[clipped.size - room:], PHASE_MARGIN)))
    first_phase = np.unwrap(np.angle(_analytic_band(first, low, high)))[PHASE_MARGIN: PHASE_MARGIN + reach]
    last_phase = np.unwrap(np.angle(_analytic_band(last, low, high)))[room - reach: room]
    return first_phase, last_phase



# A narrowband signal goes on as its recent past predicts: Burg's method (reflection coefficients
# under one in magnitude, so a stable predictor, where least squares gave predictions that grew
# without bound) of PREDICTION_ORDER over the last PREDICTION_SPAN samples.
PREDICTION_ORDER = 32
PREDICTION_SPAN = 256
PHASE_MARGIN = 512  # samples of prediction beyond each end, and of signal beyond each end's segment


def burg_coefficients(values: np.ndarray, order: int) -> np.ndarray:
    """The coefficients ``a`` of the predictor ``x[n] = -sum(a[k] * x[n - 1 - k])`` that Burg's
    method fits to ``values`` (fewer than ``order`` where the error vanishes first)."""
    forward = np.array(values[1:], dtype=np.float64)
    backward = np.array(values[:-1], dtype=np.float64)
    coefficients = np.zeros(0)
    for _ in range(order):
        energy = forward @ forward + backward @ backward
        if not energy > 0.0:
            break
        reflection = -2.0 * (forward @ backward) / energy
        coefficients = np.concatenate((coefficients + reflection * coefficients[::-1], [reflection]))
        forward, backward = (forward + reflection * backward)[1:], (backward + reflection * forward)[:-1]
    return coefficients


def predicted(signal: np.ndarray, count: int) -> np.ndarray:
    """``count`` samples after ``signal``'s last, as the Burg predictor fitted to its last
    :data:`PREDICTION_SPAN` samples (:func:`burg_coefficients`) continues it: the all-pole filter
    run on from those samples with no input."""
    span = np.asarray(signal[-PREDICTION_SPAN:], dtype=np.float64)
    # In units of its largest value: the energies overflowed at 1e160 and vanished at 1e-200.
    unit = float(np.max(np.abs(span))) if span.size else 0.0
    if unit == 0.0:
        return np.zeros(count)
    span = span / unit
    denominator = np.concatenate(([1.0], burg_coefficients(span, min(PREDICTION_ORDER, span.size // 4))))
    state = sps.lfiltic([1.0], denominator, span[::-1][: denominator.size - 1])
    return sps.lfilter([1.0], denominator, np.zeros(count), zi=state)[0] * unit
