"""Per-signal conditioning: remove the AC carrier, estimate the noise floor, scale robustly.

The network gets named input planes (channels), listed in its configuration: the shipped
network the carrier-free signal in units of its noise floor, asinh compressed ("signal"), and
the same signal relative to its local peak ("relative"); variants also the cycle difference
("cycle_difference") or the signal's envelope ("envelope").

Everything here looks at one signal at a time, so a signal's result never depends on what
else travels in the same request or TorchServe batch. Every step is linear in the input or
divides by a scale estimated from the same input, which makes the network input invariant to
the capture's units (×0.5 or ×2 gives the same regions).
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy import signal as sps

from . import phase as phase_mod

# The carrier sits at 1/1,000 cycles per sample or below (even a 50 Hz carrier sampled at only
# 50 kS/s); PD pulses and their ringing live above 1/50. A 4th-order Butterworth high-pass at
# 1/100, run forwards and backwards, removes a 1e6 carrier and its first harmonics to well
# under one unit while passing the pulses without phase shift.
HIGHPASS_CUTOFF = 0.01  # cycles per sample
HIGHPASS_ORDER = 4
NOISE_BLOCK = 64  # samples per block in the noise-floor estimate
NOISE_QUANTILE = 0.2  # the quietest fifth of blocks defines the floor
# A floor on the noise scale relative to the raw signal's magnitude: float32 captures of a
# 1e6 carrier cannot resolve less than ~0.1, so residues below that are not signal.
RELATIVE_NOISE_FLOOR = 1e-6


@lru_cache(maxsize=8)
def _highpass_sos(cutoff: float, order: int) -> np.ndarray:
    return sps.butter(order, cutoff, btype="highpass", output="sos", fs=1.0)


def remove_carrier(raw: np.ndarray, cutoff: float = HIGHPASS_CUTOFF) -> np.ndarray:
    """Zero-phase high-pass: the AC carrier and its low harmonics are removed, pulses stay
    where they are. Signals too short for the filter's edge padding are returned minus their
    mean (nothing periodic can be resolved in so few samples)."""
    raw = np.asarray(raw, dtype=np.float64)
    sos = _highpass_sos(cutoff, HIGHPASS_ORDER)
    # sosfiltfilt's default padding needs more than 3 * (2 * sections + 1) samples.
    minimum = 3 * (2 * len(sos) + 1) + 1
    if raw.size < minimum:
        return raw - raw.mean() if raw.size else raw.copy()
    return sps.sosfiltfilt(sos, raw)


def noise_scale(filtered: np.ndarray, raw_magnitude: float) -> float:
    """Robust noise level of a carrier-free signal: the RMS of its quietest blocks.

    PD bursts with long ringing can cover more than half of a capture, which would inflate a
    plain MAD; the quiet stretches between bursts still show the true noise floor."""
    floor = max(RELATIVE_NOISE_FLOOR * raw_magnitude, np.finfo(np.float64).tiny)
    if filtered.size == 0:
        return floor
    blocks = filtered.size // NOISE_BLOCK
    if blocks >= 4:
        trimmed = filtered[: blocks * NOISE_BLOCK].reshape(blocks, NOISE_BLOCK)
        block_rms = np.sqrt(np.mean(trimmed**2, axis=1))
        estimate = float(np.quantile(block_rms, NOISE_QUANTILE))
    else:
        estimate = float(1.4826 * np.median(np.abs(filtered - np.median(filtered))))
    return max(estimate, floor)


LOCAL_PEAK_SPAN = 1025  # samples over which the local peak is taken (about ±512)
PLANES = ("signal", "relative", "cycle_difference", "envelope")
DEFAULT_PLANES = ("signal", "relative")
# Planes that change sign with the signal (a polarity flip in training negates them); the
# envelope does not.
ODD_PLANES = frozenset({"signal", "relative", "cycle_difference"})
INPUT_CHANNELS = len(DEFAULT_PLANES)


def planes_for(channels: int) -> tuple[str, ...]:
    """The planes of a network recorded by channel count only (records before planes were
    named): 1 the signal alone (the predecessor's), 2 the default, 3 with the cycle difference."""
    if channels == 1:
        return ("signal",)
    if channels == INPUT_CHANNELS:
        return DEFAULT_PLANES
    if channels == INPUT_CHANNELS + 1:
        return DEFAULT_PLANES + ("cycle_difference",)
    raise ValueError(f"a network of {channels} channels needs its input planes named")


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


def cycle_difference(filtered: np.ndarray, samples_per_cycle: float | None) -> np.ndarray:
    """The signal minus itself one AC cycle earlier (one cycle later for the first cycle).

    Whatever repeats with the AC cycle, such as a converter's commutation notches, cancels;
    PD does not, because its pulses wander in phase from cycle to cycle by more than their
    width. The shift is fractional (cubic spline), so the period must be known to a small
    fraction of a sample (the carrier fit's is). Zero without a period or a second cycle."""
    length = filtered.size
    if not samples_per_cycle or samples_per_cycle >= length or samples_per_cycle <= 1:
        return np.zeros(length)
    samples = np.arange(length, dtype=np.float64)
    source = np.where(samples >= samples_per_cycle, samples - samples_per_cycle,
                      samples + samples_per_cycle)
    inside = source <= length - 1
    shifted = ndimage.map_coordinates(filtered, source[np.newaxis], order=3, mode="nearest")
    return np.where(inside, filtered - shifted, 0.0)


HILBERT_HALF_SPAN = 32  # taps each side of the envelope's Hilbert transformer


@lru_cache(maxsize=2)
def _hilbert_taps(half_span: int) -> np.ndarray:
    """A windowed FIR Hilbert transformer: the ideal 2/(pi n) at odd n, tapered (Blackman).
    With 32 taps each side a sinusoid's envelope is flat to 0.1 % from 0.04 to 0.45 cycles
    per sample (burst ringing, periods 20-40 samples, and most PD oscillations), ripples by
    about 2 % at 0.03 and 15 % at 0.02, the slowest PD oscillation the generator draws."""
    n = np.arange(-half_span, half_span + 1)
    ideal = np.zeros(n.size)
    odd = n % 2 == 1
    ideal[odd] = 2.0 / (np.pi * n[odd])
    return ideal * np.blackman(n.size + 2)[1:-1]


def envelope(filtered: np.ndarray) -> np.ndarray:
    """A pulse's envelope: the magnitude of the analytic signal, smooth through the zero
    crossings of an oscillatory pulse or a ringing tail. The labelling rule ends an event
    where the envelope falls under 10 % of its peak, which the signal itself shows only at
    its crests. The Hilbert transform is a short FIR, not the FFT's: the ideal one spreads a
    large spike's 1/t tail over the whole capture, this one no further than 32 samples."""
    filtered = np.asarray(filtered, dtype=np.float64)
    if filtered.size == 0:
        return filtered.copy()
    quadrature = np.convolve(filtered, _hilbert_taps(HILBERT_HALF_SPAN), mode="full")[
        HILBERT_HALF_SPAN: HILBERT_HALF_SPAN + filtered.size]
    return np.hypot(filtered, quadrature)


@dataclasses.dataclass
class Conditioned:
    """One signal ready for the network, with what postprocessing needs to report in the
    caller's units."""

    raw: np.ndarray  # float64, as sent
    filtered: np.ndarray  # float64, carrier removed, input units
    scale: float  # noise scale in input units
    network_input: np.ndarray  # float32 (channels, length), unitless
    carrier: phase_mod.CarrierFit | None = None  # fitted here when the cycle channel needs it

    @property
    def length(self) -> int:
        return int(self.raw.size)


def condition(raw: np.ndarray, planes: tuple[str, ...] = DEFAULT_PLANES,
              samples_per_cycle: float | None = None) -> Conditioned:
    """The network input of one signal: ``planes`` (names from :data:`PLANES`), in that
    order. The cycle difference takes the caller's period or the fitted carrier's (the fit is
    kept for the phases)."""
    unknown = [name for name in planes if name not in PLANES]
    if unknown or not planes:
        raise ValueError(f"unknown input planes {unknown}; known: {', '.join(PLANES)}")
    raw = np.asarray(raw, dtype=np.float64)
    filtered = remove_carrier(raw)
    magnitude = float(np.max(np.abs(raw))) if raw.size else 0.0
    scale = noise_scale(filtered, magnitude)
    carrier = None
    stack = []
    for name in planes:
        if name == "signal":
            stack.append(compress(filtered / scale))
        elif name == "relative":
            stack.append(relative_to_local_peak(filtered, scale))
        elif name == "envelope":
            stack.append(compress(envelope(filtered) / scale))
        else:
            carrier = carrier or phase_mod.fit_carrier(raw, filtered, scale, samples_per_cycle)
            stack.append(compress(cycle_difference(filtered, carrier.samples_per_cycle) / scale))
    return Conditioned(raw=raw, filtered=filtered, scale=scale,
                       network_input=np.stack(stack).astype(np.float32), carrier=carrier)
