"""Where in the AC cycle each sample lies, for phase-resolved PD (PRPD) analysis.

Phase convention: 0° at the carrier's positive-going zero crossing, 90° at its positive peak.
The carrier is what the high-pass removed (raw minus filtered). When the caller gives the
period (``samples_per_cycle``, or ``sampling_rate_hz`` with ``power_frequency_hz``), the period
is looked for within 5 % of it over captures of two cycles or more (a nominal period is a little
off a grid's), and used as given over shorter ones; otherwise the period is found from the spectrum and refined by a
least-squares sinusoid fit. A capture "carries its carrier" when that sinusoid explains the
low-frequency part well and stands far above the noise.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize

from .regions import wrapped_degrees

MIN_CYCLES_FOR_ESTIMATE = 0.5  # a period is only estimated from at least half a cycle
# ... and a caller's period fitted over at least this much of one: over less, a sine and an
# offset follow a trend's curvature with an amplitude the data do not show (5 samples of at
# most 5.2 at 800,000 samples per cycle: 73,878), and on the real captures' windows of 0.1
# cycles the fitted phase was up to 74 degrees off the whole capture's (0.2: 5, 0.3: 1).
MIN_CYCLES_FOR_FIT = 0.2
# Under this much of a cycle the phases carry a warning: what a carrier's harmonics add bends a
# fraction of a cycle like a phase shift. With 3 % third and 3 % fifth harmonics (within EN
# 50160), a pulse's phase was a median 11 / 4.0 / 1.9 / 1.0 degrees off at 0.2 / 0.3 / 0.4 / 0.5
# cycles, at most 32 / 14 / 6.3 / 2.8 (24 captures each; a pure sine: 5 at 0.2, 1 at 0.3).
SHORT_FIT_CYCLES = 0.5
SHORT_FIT_WARNING = ("the phases come from a carrier seen over {cycles:.2f} of a cycle: a carrier's "
                     "harmonics (3 % third and fifth) moved such phases by up to 30 degrees at 0.2 of a "
                     "cycle and 6 at 0.4")
MAX_RESIDUAL_FRACTION = 0.35  # harmonics and clipping leave some residue; noise must not
MIN_CARRIER_TO_NOISE = 20.0
BOUND_FRACTION = 0.98  # a period found within 2 % of the longest one searched is that bound


@dataclasses.dataclass
class CarrierFit:
    detected: bool  # a sinusoidal carrier is visible in the capture
    samples_per_cycle: float | None
    amplitude: float | None
    phase_offset_deg: float | None  # phase at sample 0

    def zero_crossing(self) -> float | None:
        """The first sample (fractional) where the carrier crosses zero, either way; None where
        no carrier was fitted."""
        if self.samples_per_cycle is None or self.phase_offset_deg is None:
            return None
        return (-self.phase_offset_deg) % 180.0 / 360.0 * self.samples_per_cycle

    def phase_deg(self, length: int) -> np.ndarray | None:
        if self.samples_per_cycle is None or self.phase_offset_deg is None:
            return None
        samples = np.arange(length, dtype=np.float64)
        return (360.0 * samples / self.samples_per_cycle + self.phase_offset_deg) % 360.0

    def to_dict(self) -> dict:
        return {
            "detected": self.detected,
            "samples_per_cycle": None if self.samples_per_cycle is None else round(self.samples_per_cycle, 3),
            "amplitude": None if self.amplitude is None else float(f"{self.amplitude:.6g}"),
            "phase_offset_deg": None if self.phase_offset_deg is None else wrapped_degrees(self.phase_offset_deg),
        }


def _fit_at(carrier: np.ndarray, samples_per_cycle: float) -> tuple[float, float, float]:
    """Least-squares ``a sin + b cos + c`` at a fixed period: (residual power, amplitude, phase°).
    Solved through its 3x3 normal equations: the period search calls this a dozen times per
    signal, and lstsq's SVD machinery cost more than the fit itself."""
    angle = (2 * np.pi / samples_per_cycle) * np.arange(carrier.size)
    design = np.stack((np.sin(angle), np.cos(angle), np.ones_like(angle)))
    gram = design @ design.T
    try:
        coefficients = np.linalg.solve(gram, design @ carrier)
    except np.linalg.LinAlgError:  # fewer than three distinct points
        coefficients = np.linalg.lstsq(design.T, carrier, rcond=None)[0]
    residual = carrier - coefficients @ design
    sin_part, cos_part = coefficients[0], coefficients[1]
    amplitude = float(np.hypot(sin_part, cos_part))
    # a sin(x) + b cos(x) = A sin(x + phi), phi = atan2(b, a)
    phase = float(np.degrees(np.arctan2(cos_part, sin_part)) % 360.0)
    return float(np.mean(residual**2)), amplitude, phase


# What the high-pass removed lies below 0.01 cycles/sample, so the carrier can be fitted on
# every 40th sample without aliasing. A smooth sinusoid needs few points: every 40th sample as
# long as that leaves at least MIN_FIT_POINTS, fewer steps for shorter signals.
MAX_FIT_STEP = 40
MIN_FIT_POINTS = 192


# A given period keeps at least this many fitted points a cycle: a period of 5 samples fitted on
# every 15th sample has its sine and cosine alias onto a constant, and the near-singular fit gave
# amplitudes of 1e11 on unit noise (found by a stranger's probe, 2026-12-06).
MIN_POINTS_PER_CYCLE = 4
# A period found on the decimated samples is checked on this many consecutive ones at full rate:
# what conditioning took out is not only the carrier filter's slow part (a tone of 12 samples a
# cycle, taken out by the tone step, read as a carrier of 60 on every 15th sample). A tone that
# aliases repeats many times in this stretch; it is short because every signal with a carrier pays
# for it (8,192 samples cost a 7,920-sample signal 0.24 ms, 7 % of its conditioning).
FULL_RATE_CHECK = 2048
# ... and refused where the full-rate residual is over the fit's limit and this many times the
# residual of the same stretch's decimated samples: an alias fits the decimated samples only. A
# slow event in the stretch raises both (a review's probe: one slow-tailed pulse at the middle of
# a capture took its carrier away when the full-rate residual alone decided).
ALIAS_RESIDUAL_RATIO = 4.0


def fit_carrier(raw: np.ndarray, filtered: np.ndarray, noise_scale: float,
                samples_per_cycle: float | None = None) -> CarrierFit:
    full_carrier = np.asarray(raw, dtype=np.float64) - filtered
    step = int(min(MAX_FIT_STEP, max(1, full_carrier.size // MIN_FIT_POINTS)))
    if samples_per_cycle is not None:
        step = max(1, min(step, int(samples_per_cycle // MIN_POINTS_PER_CYCLE)))
    fit = _fit_decimated(full_carrier[::step], noise_scale,
                         None if samples_per_cycle is None else samples_per_cycle / step)
    if fit.samples_per_cycle is not None:
        fit.samples_per_cycle *= step
    if fit.detected and samples_per_cycle is None and step > 1 and _aliased(full_carrier, fit, step):
        return CarrierFit(False, None, None, None)
    return fit


def _aliased(full_carrier: np.ndarray, fit: CarrierFit, step: int) -> bool:
    """Whether the carrier found on every ``step``-th sample is an alias: over
    :data:`FULL_RATE_CHECK` consecutive samples from the middle of the capture, the full-rate
    residual breaks :func:`_fit_decimated`'s limit and is :data:`ALIAS_RESIDUAL_RATIO` times that
    of the same stretch's decimated samples."""
    first = max(0, full_carrier.size // 2 - FULL_RATE_CHECK // 2)
    stretch = full_carrier[first: first + FULL_RATE_CHECK]
    period = float(fit.samples_per_cycle)
    full_rate_power, _, _ = _fit_at(stretch, period)
    decimated_power, _, _ = _fit_at(stretch[::step], period / step)
    return bool(np.sqrt(full_rate_power) >= MAX_RESIDUAL_FRACTION * fit.amplitude
                and full_rate_power > ALIAS_RESIDUAL_RATIO * decimated_power)


# A caller's period is a nominal one: a grid runs 0.2-0.5 % off 50 or 60 Hz, and over N cycles a
# relative error e moves the last phases by 360 N e degrees (a stranger's probe: 17.7 degrees at
# 1 %, and at 4 % the fit at the given period failed and phases counted from sample 0). Where the
# capture spans REFINE_MIN_CYCLES of it, the period is looked for within PERIOD_FOLLOWED of it and
# the carrier's own is used where it fits; over fewer cycles the period is poorly told apart from
# the phase, and the error it moves is small.
REFINE_MIN_CYCLES = 2.0
PERIOD_FOLLOWED = 0.05  # of the given period
REFINE_PADDING = 4  # the spectrum's zero padding: four points per bin of the capture's length


def _near_given(carrier: np.ndarray, given: float, noise_scale: float) -> float:
    """The period within :data:`PERIOD_FOLLOWED` of the ``given`` one whose sinusoid fits the
    (decimated) ``carrier`` best, where that fit shows a carrier (:data:`MIN_CARRIER_TO_NOISE`,
    :data:`MAX_RESIDUAL_FRACTION`); else the given one. The spectrum's peak in that band (the fit's
    residual has a lobe per cycle slipped, narrower the more cycles), then a bounded search
    within a bin of the capture's length around it."""
    length = carrier.size
    if length / given < REFINE_MIN_CYCLES:
        return given
    size = REFINE_PADDING * length
    spectrum = np.abs(np.fft.rfft((carrier - carrier.mean()) * np.hanning(length), size))
    frequencies = np.fft.rfftfreq(size)
    band = np.flatnonzero((frequencies >= 1.0 / (given * (1.0 + PERIOD_FOLLOWED)))
                          & (frequencies <= 1.0 / (given * (1.0 - PERIOD_FOLLOWED))))
    if band.size == 0:
        return given
    peak = frequencies[band[int(np.argmax(spectrum[band]))]]
    low, high = 1.0 / (peak + 1.0 / length), 1.0 / max(peak - 1.0 / length, 0.5 / length)
    low, high = max(low, given * (1.0 - PERIOD_FOLLOWED)), min(high, given * (1.0 + PERIOD_FOLLOWED))
    found = optimize.minimize_scalar(lambda period: _fit_at(carrier, period)[0], bounds=(low, high),
                                     method="bounded", options={"xatol": 1e-4 * given * given / length})
    period = float(found.x)
    # A damped carrier fails the plain test at its own period too (a review's probe: with a period
    # given 0.5 % / 1 % off, the envelope took up the drift and the last phases were 68 / 136
    # degrees off); the period that fits the plain sine best is still its own.
    residual_power, amplitude, _ = _fit_with_envelope(carrier, period)
    if amplitude > MIN_CARRIER_TO_NOISE * noise_scale and np.sqrt(residual_power) < MAX_RESIDUAL_FRACTION * amplitude:
        return period
    return given


# A damped AC test voltage (a cable test's resonant circuit, Q 20-100) decays over the capture: to
# 8 % of its start over 50 cycles, a sine of one amplitude left a residual over MAX_RESIDUAL_FRACTION
# of it, no carrier was found and no phase reported (a stranger's probe; from 19 % on it was). Over
# ENVELOPE_MIN_CYCLES cycles or more, a sine whose amplitude follows a polynomial of
# ENVELOPE_DEGREE in time is fitted where the plain one fails, and its phase weighs each moment by
# its amplitude. Fewer cycles tell an envelope from a phase too poorly.
ENVELOPE_DEGREE = 2
ENVELOPE_MIN_CYCLES = 4.0
ENVELOPE_NODE = 0.1  # of the largest amplitude: how far the phasor may fall past zero (a node)
ENVELOPE_TURN = 20.0  # degrees the phasor may turn, where it holds ENVELOPE_STRONG of the largest
ENVELOPE_STRONG = 0.2


def _fit_with_envelope(carrier: np.ndarray, samples_per_cycle: float) -> tuple[float, float, float]:
    """:func:`_fit_at`, or :func:`_fit_enveloped` where that leaves too much over
    :data:`ENVELOPE_MIN_CYCLES` cycles or more."""
    fit = _fit_at(carrier, samples_per_cycle)
    residual_power, amplitude, _ = fit
    long_enough = carrier.size >= ENVELOPE_MIN_CYCLES * samples_per_cycle
    if np.sqrt(residual_power) >= MAX_RESIDUAL_FRACTION * amplitude and long_enough:
        return _fit_enveloped(carrier, samples_per_cycle)
    return fit


def _fit_enveloped(carrier: np.ndarray, samples_per_cycle: float) -> tuple[float, float, float]:
    """Least-squares ``a(t) sin + b(t) cos + c``, ``a`` and ``b`` polynomials of
    :data:`ENVELOPE_DEGREE` in time: (residual power, mean amplitude, phase°), the phase of the
    amplitude-weighted mean of ``(a, b)``."""
    angle = (2 * np.pi / samples_per_cycle) * np.arange(carrier.size)
    time = np.linspace(-1.0, 1.0, carrier.size)
    powers = np.stack([time**degree for degree in range(ENVELOPE_DEGREE + 1)])
    design = np.concatenate((powers * np.sin(angle), powers * np.cos(angle), np.ones((1, carrier.size))))
    coefficients = np.linalg.lstsq(design.T, carrier, rcond=None)[0]
    residual = carrier - coefficients @ design
    terms = ENVELOPE_DEGREE + 1
    sin_part, cos_part = coefficients[:terms] @ powers, coefficients[terms: 2 * terms] @ powers
    envelope = np.hypot(sin_part, cos_part)
    phase = float(np.degrees(np.arctan2(np.sum(envelope * cos_part), np.sum(envelope * sin_part))) % 360.0)
    # One phase over the capture: the fitted phasor keeps its mean's direction, with no node where
    # it turns over (amplitude modulation through zero, two beating tones: a review's probe found
    # them taken for a carrier, phases 33-176 degrees off) and no turn of more than ENVELOPE_TURN.
    direction = np.radians(phase)
    along = sin_part * np.cos(direction) + cos_part * np.sin(direction)
    across = cos_part * np.cos(direction) - sin_part * np.sin(direction)
    top = float(along.max())
    strong = along > ENVELOPE_STRONG * top
    if top <= 0.0 or along.min() < -ENVELOPE_NODE * top \
            or np.any(np.abs(across[strong]) > np.tan(np.radians(ENVELOPE_TURN)) * along[strong]):
        return float(np.mean((carrier - carrier.mean()) ** 2)), 0.0, 0.0
    return float(np.mean(residual**2)), float(np.mean(envelope)), phase


def _fit_decimated(carrier: np.ndarray, noise_scale: float,
                   samples_per_cycle: float | None) -> CarrierFit:
    length = carrier.size
    if samples_per_cycle is None:
        if length < 64:
            return CarrierFit(False, None, None, None)
        spectrum = np.abs(np.fft.rfft((carrier - carrier.mean()) * np.hanning(length)))
        spectrum[0] = 0.0
        peak_bin = int(np.argmax(spectrum))
        if peak_bin == 0:
            return CarrierFit(False, None, None, None)
        # Bin k holds period length/k; search between its neighbours' periods.
        longest = length / max(peak_bin - 1, MIN_CYCLES_FOR_ESTIMATE)
        shortest = length / (peak_bin + 1)
        longest = min(longest, length / MIN_CYCLES_FOR_ESTIMATE)
        best = optimize.minimize_scalar(lambda period: _fit_at(carrier, period)[0],
                                        bounds=(shortest, longest), method="bounded",
                                        options={"xatol": 1e-3})
        period = float(best.x)
        # A fit pressed against the half-cycle limit says only that the period is longer than
        # the signal can show: a 256-sample stretch of a 3,333-sample flank was "detected" at
        # 512 samples per cycle, twice its length, and phases from that are wrong.
        if period > BOUND_FRACTION * length / MIN_CYCLES_FOR_ESTIMATE:
            return CarrierFit(False, None, None, None)
    else:
        period = _near_given(carrier, float(samples_per_cycle), noise_scale)
    residual_power, amplitude, phase = _fit_with_envelope(carrier, period) if length >= 3 else (0.0, 0.0, 0.0)
    detected = (
        length >= max(3.0, MIN_CYCLES_FOR_FIT * period)
        and amplitude > MIN_CARRIER_TO_NOISE * noise_scale
        and np.sqrt(residual_power) < MAX_RESIDUAL_FRACTION * amplitude
    )
    if detected:
        return CarrierFit(True, period, amplitude, phase)
    if samples_per_cycle is not None:
        # No carrier to lock onto: the caller's period with sample 0 taken as 0°.
        return CarrierFit(False, period, None, 0.0)
    return CarrierFit(False, None, None, None)
