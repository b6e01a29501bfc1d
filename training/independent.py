"""An evaluation generator written independently of the training generator.

The network is trained on captures from ``training/synthetic.py``; scores measured on that
generator mostly measure how well the network learnt that generator. This module draws captures
from a separately written physical model and shares no code with it (it imports only numpy and
scipy). Use it for evaluation only: never train or tune the network, or its thresholds, on it.

Model, one capture at a time (ranges are the defaults below):

* PD current pulse: Gaussian (sigma 0.15-1.5 samples) or double exponential (rise 0.05-0.5,
  fall 2-15 times the rise, at most 4 samples), integrated over each sample interval with a
  random sub-sample position; per-pulse width jitter x0.8-1.25.
* Sensor, one per capture, simulated with ``scipy.signal``: ``rlc`` resonant RLC measuring
  impedance (bilinear transform of a 2nd-order band-pass; 0.02-0.45 cycles/sample, decay
  1.5-60 samples), ``hfct`` Butterworth band-pass of order 1-2 (upper edge 0.05-0.45,
  lower edge 0.01-0.4 times that, at least 0.002 cycles/sample: unipolar to bipolar),
  ``rc`` RC integrator (bilinear, decay 1-100 samples), ``direct`` resistive path.
  Frequencies and decays are log-uniform, so short responses are as common as long ones.
* Carrier in half of the captures: period 2,500-4,500 samples (70 %) or log-uniform
  800-20,000, amplitude 1e3-1e6 times the noise rms, 0-3 harmonics (2, 3, 5, 7) at
  0.3-10 %; a DC offset in half of the captures.
* Background: white, AR(1) (phi -0.7..0.95) or Butterworth low-passed (0.05-0.45) Gaussian
  noise at a log-uniform scale 1e-3..1e3; with interference, 1-3 AM-modulated tones
  (0.01-0.45 cycles/sample, 0.3-5 times the noise rms each, depth 0-0.9).
* PD pulses: 63-95 % at the rising flanks of the carrier (0-90 and 180-270 degrees), polarity
  following the half cycle in 85 % of the pulses; uniform positions without a carrier.
  80 % of the captures isolated (events at least 40 samples apart), 20 % with clusters of
  2-5 pulses 3-40 samples apart.
* ADC in 30 % of the captures: 6-12 bits over the capture's range plus headroom for pulses of
  up to 31 dB; only where the step resolves the noise (step <= 2 noise rms; the bits are
  raised up to 12 to get there, else the capture is not quantised).

Per-pulse peak SNR = |peak| of the clean pulse after the sensor over the rms of the background
(noise + tones + quantisation error) in the ``BACKGROUND_WINDOW`` samples centred on its onset;
tier +- 1 dB uniform jitter. Events run from the first to the last sample at which the clean
pulse's magnitude reaches 10 % of its peak (the magnitude envelope; the Hilbert envelope of a
unipolar pulse has a slow, non-causal 1/t tail that would start events before the pulse).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import signal as sps
from scipy import special

__all__ = [
    "BACKGROUND_WINDOW",
    "MIN_GAP",
    "SENSORS",
    "TIERS",
    "IndependentCapture",
    "make_capture",
    "pd_free_tier",
    "tier",
]

TIERS = ((30.0, False), (20.0, False), (14.0, False), (30.0, True), (20.0, True), (14.0, True))
SENSORS = ("rlc", "hfct", "rc", "direct")
BACKGROUND_WINDOW = 512  # samples, centred on a pulse's onset, for its SNR
MIN_GAP = 40  # samples between events in isolated captures and between clusters
EVENT_LEVEL = 0.1  # an event lasts while the clean pulse's magnitude is >= 10 % of its peak

# Fixed entropy per split: validation and test never share a capture, and both are the same on
# every run and machine (numpy's SeedSequence/PCG64 streams are stable).
_SPLIT_SEEDS = {"validation": 0x1A7E_5EED, "test": 0x7E57_C0DE}
_SNR_JITTER_DB = 1.0
_MAX_SNR_DB = 31.0  # the ADC's headroom is sized for pulses up to this SNR
_CURRENT_SAMPLES = 48  # support of the sampled current pulse
_BURN_IN = 256  # samples dropped from filtered noise so it starts stationary


@dataclasses.dataclass
class IndependentCapture:
    """One capture and its ground truth.

    ``events`` are the pulses' [start, end) spans, sorted, not merged; ``pulse_snr_db`` is the
    drawn peak SNR of each event, in the same order. ``components`` (only with
    ``keep_components=True``) holds the noise-free ``baseline`` (carrier and offset) and the sum
    of the clean ``pulses``, so ``signal - baseline - pulses`` is the background.
    """

    signal: np.ndarray
    events: np.ndarray
    samples_per_cycle: float | None
    sensor: str
    interference: bool
    noise: str = "white"
    adc_step: float | None = None
    pulse_snr_db: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    params: dict = dataclasses.field(default_factory=dict)
    components: dict | None = None


def _logu(rng, lo, hi, size=None):
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size))


def _analog_pole(z):
    # Inverse bilinear map (fs = 1): the analog pole whose bilinear image is z, so that the
    # discretised circuit has exactly the drawn decay and frequency (no warping).
    return 2.0 * (z - 1.0) / (z + 1.0)


def _draw_sensor(rng):
    """Second-order sections of the drawn sensor, its name and parameters."""
    kind = str(rng.choice(SENSORS, p=[0.3, 0.3, 0.2, 0.2]))
    if kind == "rlc":
        f0, tau = _logu(rng, 0.02, 0.45), _logu(rng, 1.5, 60.0)
        s = _analog_pole(np.exp(-1.0 / tau + 2j * np.pi * f0))
        # Parallel RLC impedance: Z(s) = (2 alpha s) / (s^2 + 2 alpha s + w0^2), a band-pass.
        b, a = sps.bilinear([-2.0 * s.real, 0.0], [1.0, -2.0 * s.real, abs(s) ** 2], fs=1.0)
        return sps.tf2sos(b, a), kind, {"f0": f0, "tau": tau}
    if kind == "hfct":
        order = int(rng.integers(1, 3))
        f_hi = _logu(rng, 0.05, 0.45)
        f_lo = max(f_hi * _logu(rng, 0.01, 0.4), 0.002)
        sos = sps.butter(order, [f_lo, f_hi], btype="bandpass", fs=1.0, output="sos")
        return sos, kind, {"order": order, "f_lo": f_lo, "f_hi": f_hi}
    if kind == "rc":
        tau = _logu(rng, 1.0, 100.0)
        s = _analog_pole(math.exp(-1.0 / tau))
        b, a = sps.bilinear([-s], [1.0, -s], fs=1.0)  # R || C: 1 / (1 + s RC)
        return sps.tf2sos(b, a), kind, {"tau": tau}
    return np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]]), kind, {}


def _response_length(sos):
    impulse = np.zeros(8192)
    impulse[0] = 1.0
    h = np.abs(sps.sosfilt(sos, impulse))
    return int(np.nonzero(h > 1e-4 * h.max())[0][-1]) + 1


def _currents(rng, n):
    """(n, _CURRENT_SAMPLES) charge per sample of n current pulses of one defect."""
    grid = np.arange(_CURRENT_SAMPLES, dtype=float)[None, :]
    jitter = _logu(rng, 0.8, 1.25, (n, 1))
    offset = rng.uniform(0.0, 1.0, (n, 1))
    if rng.random() < 0.5:
        # Charge per sample = integral of the current over the sample interval, so that pulses
        # narrower than a sample keep their charge instead of vanishing between samples.
        sigma = _logu(rng, 0.15, 1.5) * jitter * math.sqrt(2.0)
        centre = 12.0 + offset
        q = special.erf((grid + 0.5 - centre) / sigma) - special.erf((grid - 0.5 - centre) / sigma)
        return 0.5 * q, {"current": "gaussian"}
    rise = _logu(rng, 0.05, 0.5)
    fall = min(rise * _logu(rng, 2.0, 15.0), 4.0) * jitter
    rise = np.minimum(rise * jitter, 0.5 * fall)
    lo = np.maximum(grid - 0.5 - (3.0 + offset), 0.0)
    hi = np.maximum(grid + 0.5 - (3.0 + offset), 0.0)

    def part(tau):
        return tau * (np.exp(-lo / tau) - np.exp(-hi / tau))

    return (part(fall) - part(rise)) / (fall - rise), {"current": "double-exponential"}


def _waveforms(rng, n, sos, length_h):
    """Clean pulses (n, w) with a +1 main peak, and each one's event [e0, e1) offsets."""
    current, info = _currents(rng, n)
    padded = np.pad(current, ((0, 0), (0, length_h)))
    wave = sps.sosfilt(sos, padded, axis=1)
    peak_at = np.abs(wave).argmax(axis=1)
    wave /= wave[np.arange(n), peak_at][:, None]
    loud = np.abs(wave) >= EVENT_LEVEL
    e0 = loud.argmax(axis=1)
    e1 = wave.shape[1] - loud[:, ::-1].argmax(axis=1)
    return wave, e0, e1, info


def _background(rng, length, scale, interference):
    kind = str(rng.choice(["white", "ar1", "bandlimited"], p=[0.4, 0.3, 0.3]))
    white = rng.standard_normal(length + _BURN_IN)
    params = {"noise_scale": scale}
    if kind == "ar1":
        phi = rng.uniform(-0.7, 0.95)
        noise = sps.lfilter([1.0], [1.0, -phi], white)
        params["ar1"] = phi
    elif kind == "bandlimited":
        cutoff, order = _logu(rng, 0.05, 0.45), int(rng.integers(2, 5))
        noise = sps.sosfilt(sps.butter(order, cutoff, fs=1.0, output="sos"), white)
        params["noise_cutoff"] = cutoff
    else:
        noise = white
    noise = noise[_BURN_IN:]
    noise *= scale / noise.std()
    if interference:
        # Radio-like carriers: stationary, narrowband, slowly AM-modulated. Never PD.
        t = np.arange(length, dtype=float)
        tones = []
        for _ in range(int(rng.integers(1, 4))):
            freq, rms = _logu(rng, 0.01, 0.45), _logu(rng, 0.3, 5.0)
            weights = rng.uniform(0.2, 1.0, 3)
            mod = weights @ np.sin(
                2 * np.pi * _logu(rng, 1e-4, 3e-3, 3)[:, None] * t + rng.uniform(0, 2 * np.pi, 3)[:, None]
            )
            envelope = 1.0 + rng.uniform(0.0, 0.9) * mod / weights.sum()
            noise += math.sqrt(2.0) * rms * scale * envelope * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            tones.append(freq)
        params["tones"] = tones
    return noise, kind, params


def _baseline(rng, length, scale):
    """Carrier + harmonics + offset, its period (None without carrier) and phase."""
    t = np.arange(length, dtype=float)
    if rng.random() < 0.5:
        offset = rng.uniform(-50.0, 50.0) * scale if rng.random() < 0.5 else 0.0
        return np.full(length, offset), None, None, {}
    period = rng.uniform(2500.0, 4500.0) if rng.random() < 0.7 else _logu(rng, 800.0, 20000.0)
    amplitude = scale * _logu(rng, 1e3, 1e6)
    phase0 = rng.uniform(0.0, 2 * np.pi)
    theta = 2 * np.pi * t / period + phase0
    base = amplitude * np.sin(theta)
    orders = rng.choice([2, 3, 5, 7], size=int(rng.integers(0, 4)), replace=False)
    for k in orders:
        base += amplitude * _logu(rng, 0.003, 0.1) * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:
        base += rng.uniform(-0.1, 0.1) * amplitude
    params = {"carrier_ratio": amplitude / scale, "harmonics": [int(k) for k in orders], "carrier_phase": phase0}
    return base, float(period), phase0, params


def _adc_step(rng, clean, background, noise_rms):
    """Quantisation step (or None): bits 6-12 over range + pulse headroom, step <= 2 noise rms."""
    if rng.random() >= 0.3:
        return None, {}
    ms = float(np.mean(background**2))
    span = float(clean.max() - clean.min())
    headroom = 1.5 * 10 ** (_MAX_SNR_DB / 20)  # x1.5: local rms can exceed the global one
    for bits in range(int(rng.integers(6, 13)), 13):
        step = 0.0
        for _ in range(30):  # fixed point: the headroom grows with the quantisation noise
            step = (span + 2 * headroom * math.sqrt(ms + step**2 / 12)) / 2**bits
        # Judged against the noise alone, not the tones: where an AM tone fades, a coarser step
        # would flatten the background (error = -background, not a uniform step**2 / 12).
        if step <= 2.0 * noise_rms:
            low = clean.min() - headroom * math.sqrt(ms + step**2 / 12)
            return step, {"bits": bits, "adc_low": low, "adc_high": low + step * 2**bits}
    return None, {}


def _candidate_onsets(rng, length, period, phase0, outside, count):
    """Onsets drawn uniformly, thinned to ``outside`` off the PD phase windows of the carrier."""
    if period is None:
        return rng.integers(0, length, count)
    while True:
        x = rng.integers(0, length, 4 * count + 16)
        theta = np.mod(2 * np.pi * x / period + phase0, 2 * np.pi)
        window = (theta < np.pi / 2) | ((theta >= np.pi) & (theta < 1.5 * np.pi))
        keep = window | (rng.random(x.size) < outside)
        if keep.any():
            return x[keep]


def _place(rng, length, sizes, e0, e1, period, phase0):
    """Waveform start positions (-10**12 = not placed) for pulses grouped by ``sizes``."""
    n = int(sizes.sum())
    lag = rng.integers(3, MIN_GAP + 1, n)  # onset to onset within a cluster
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    starts = np.full(n, -(10**12), dtype=np.int64)
    taken = np.zeros(length, dtype=bool)
    candidates, used = np.zeros(0, dtype=np.int64), 0
    # Off-window acceptance 0.05-0.6: 5-37 % of the pulses at random phases.
    outside = None if period is None else rng.uniform(0.05, 0.6)
    for group, size in zip(first, sizes):
        members = np.arange(group, group + size)
        onset_lag = np.concatenate([[0], np.cumsum(lag[members[1:]])])
        for _ in range(30):
            if used >= candidates.size:
                candidates, used = _candidate_onsets(rng, length, period, phase0, outside, 64), 0
            onsets = candidates[used] + onset_lag
            used += 1
            inside = onsets < length
            ends = np.minimum(onsets - e0[members] + e1[members], length)
            lo, hi = max(onsets[0] - MIN_GAP, 0), min(ends[inside].max() + MIN_GAP, length)
            if not taken[lo:hi].any():
                taken[onsets[0] : ends[inside].max()] = True
                starts[members[inside]] = onsets[inside] - e0[members[inside]]
                break
    return starts, {"off_window_acceptance": outside}


def _pulses(rng, length, sos, period, phase0, snr_db, ms_local):
    """Sum of the scaled clean pulses, events, per-pulse SNRs and parameters."""
    length_h = _response_length(sos)
    target = max(1, int(rng.poisson(length / _logu(rng, 300.0, 3000.0))))
    clustered = rng.random() < 0.2
    if clustered:
        sizes = np.where(rng.random(target) < 0.5, 1, rng.integers(2, 6, target))
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), target) + 1]
    else:
        sizes = np.ones(target, dtype=np.int64)
    wave, e0, e1, info = _waveforms(rng, int(sizes.sum()), sos, length_h)
    starts, place_info = _place(rng, length, sizes, e0, e1, period, phase0)
    placed = np.nonzero(starts > -(10**12))[0]
    starts, wave, e0, e1 = starts[placed], wave[placed], e0[placed], e1[placed]
    onsets, ends = starts + e0, np.minimum(starts + e1, length)

    if period is None:
        polarity = np.where(rng.random() < 0.7, 1.0, -1.0) * np.where(rng.random(placed.size) < 0.85, 1.0, -1.0)
    else:
        # Positive pulses on the positive half cycle, negative on the negative one (the sensor's
        # orientation picks the overall sign), with 15 % of the pulses either way.
        theta = np.mod(2 * np.pi * onsets / period + phase0, 2 * np.pi)
        polarity = np.where(theta < np.pi, 1.0, -1.0) * rng.choice([-1.0, 1.0])
        polarity = np.where(rng.random(placed.size) < 0.85, polarity, rng.choice([-1.0, 1.0], placed.size))
    snr = snr_db + rng.uniform(-_SNR_JITTER_DB, _SNR_JITTER_DB, placed.size)
    amplitude = polarity * 10 ** (snr / 20) * np.sqrt(ms_local(onsets))

    pulses = np.zeros(length)
    for start, row, amp in zip(starts, wave, amplitude):
        lo, hi = max(start, 0), min(start + row.size, length)
        pulses[lo:hi] += amp * row[lo - start : hi - start]
    order = np.lexsort((ends, onsets))
    events = np.stack([onsets, ends], axis=1)[order].astype(np.int64)
    params = {"clustered": bool(clustered), "response_samples": length_h, **info, **place_info}
    return pulses, events, snr[order], params


def make_capture(rng, length, snr_db, interference, pd_free=False, keep_components=False):
    """Draw one capture.

    Parameters
    ----------
    rng : numpy.random.Generator
    length : int
        Samples (256 to a few million).
    snr_db : float
        Per-pulse peak SNR tier; pulses get ``snr_db`` +- 1 dB. Ignored when ``pd_free``.
    interference : bool
        Add 1-3 stationary AM tones to the background.
    pd_free : bool
        No pulses (same sensor, noise, interference, carrier and ADC model).
    keep_components : bool
        Fill ``components`` with the clean ``baseline`` and ``pulses``.

    Returns
    -------
    IndependentCapture
    """
    length = int(length)
    if length < 1:
        raise ValueError("length must be positive")
    scale = float(_logu(rng, 1e-3, 1e3))
    sos, sensor, params = _draw_sensor(rng)
    background, noise, noise_params = _background(rng, length, scale, interference)
    baseline, period, phase0, carrier_params = _baseline(rng, length, scale)
    step, adc_params = _adc_step(rng, baseline + background, background, scale)
    params.update(noise_params, **carrier_params, **adc_params)
    quant_ms = 0.0 if step is None else step**2 / 12  # uniform quantisation error power

    cumulative = np.concatenate([[0.0], np.cumsum(background**2)])

    def ms_local(onsets):
        lo = np.clip(onsets - BACKGROUND_WINDOW // 2, 0, length)
        hi = np.clip(onsets + BACKGROUND_WINDOW // 2, 0, length)
        lo = np.minimum(lo, np.maximum(hi - BACKGROUND_WINDOW, 0))  # full window at the ends
        hi = np.maximum(hi, np.minimum(lo + BACKGROUND_WINDOW, length))
        return (cumulative[hi] - cumulative[lo]) / (hi - lo) + quant_ms

    if pd_free:
        pulses, events, snr = np.zeros(length), np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    else:
        pulses, events, snr, pulse_params = _pulses(rng, length, sos, period, phase0, float(snr_db), ms_local)
        params.update(pulse_params)

    signal = baseline + background + pulses
    if step is not None:
        # Mid-tread ADC: codes are integer multiples of the step; saturates at full scale.
        signal = step * np.round(np.clip(signal, params["adc_low"], params["adc_high"]) / step)
    components = {"baseline": baseline, "pulses": pulses} if keep_components else None
    return IndependentCapture(
        signal=signal,
        events=events,
        samples_per_cycle=period,
        sensor=sensor,
        interference=bool(interference),
        noise=noise,
        adc_step=step,
        pulse_snr_db=snr,
        params=params,
        components=components,
    )


def _children(split, key, count):
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_SEEDS)}, not {split!r}")
    # spawn() keys children by index: the first n captures do not depend on ``count``.
    root = np.random.SeedSequence([_SPLIT_SEEDS[split], *key])
    return [np.random.default_rng(child) for child in root.spawn(count)]


def tier(snr_db, interference, split, count, length=16384):
    """``count`` PD captures of one tier, the same on every run; splits never overlap.

    Parameters
    ----------
    snr_db : float
    interference : bool
    split : {"validation", "test"}
    count, length : int

    Returns
    -------
    list of IndependentCapture
    """
    key = (1, int(round((float(snr_db) + 1000.0) * 100)), int(bool(interference)), int(length))
    return [make_capture(rng, length, snr_db, interference) for rng in _children(split, key, count)]


def pd_free_tier(interference, split, count, length=16384):
    """``count`` PD-free captures (for a false-alarm rate), the same on every run.

    Parameters
    ----------
    interference : bool
    split : {"validation", "test"}
    count, length : int

    Returns
    -------
    list of IndependentCapture
    """
    key = (2, int(bool(interference)), int(length))
    return [make_capture(rng, length, 0.0, interference, pd_free=True) for rng in _children(split, key, count)]
