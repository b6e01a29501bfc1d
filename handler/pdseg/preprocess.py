"""Per-signal conditioning: remove the AC carrier, estimate the noise floor, scale robustly.

The network gets two channels: the carrier-free signal in units of its noise floor, asinh
compressed, and the same signal relative to its local peak.

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
INPUT_CHANNELS = 2
CYCLE_CHANNELS = 3  # with the cycle difference (networks trained for it)


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


def condition(raw: np.ndarray, channels: int = INPUT_CHANNELS,
              samples_per_cycle: float | None = None) -> Conditioned:
    """The network input of one signal. With ``channels`` 3 also the cycle difference, over
    the caller's period or the fitted carrier's (the fit is kept for the phases)."""
    raw = np.asarray(raw, dtype=np.float64)
    filtered = remove_carrier(raw)
    magnitude = float(np.max(np.abs(raw))) if raw.size else 0.0
    scale = noise_scale(filtered, magnitude)
    planes = [compress(filtered / scale), relative_to_local_peak(filtered, scale)]
    carrier = None
    if channels == CYCLE_CHANNELS:
        carrier = phase_mod.fit_carrier(raw, filtered, scale, samples_per_cycle)
        planes.append(compress(cycle_difference(filtered, carrier.samples_per_cycle) / scale))
    elif channels != INPUT_CHANNELS:
        raise ValueError(f"networks take {INPUT_CHANNELS} or {CYCLE_CHANNELS} channels, not {channels}")
    return Conditioned(raw=raw, filtered=filtered, scale=scale,
                       network_input=np.stack(planes).astype(np.float32), carrier=carrier)
