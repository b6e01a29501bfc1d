"""Synthetic raw PD captures with exact per-sample labels.

A capture is what a PD recorder writes: the AC test voltage (the carrier) with PD pulses,
noise and interference on top. The parameters follow the real captures shipped with the
predecessor (carrier ~7e5, period ~3,333 samples, sharp primary spikes on the rising flanks,
smaller opposite-polarity spikes, long smooth ringing) and the textbook phase patterns of the
common PD sources.

Phase convention: 0° is the carrier's positive-going zero crossing, 90° its positive peak.

Labelling rule (the same for every source): an event is labelled from its onset until its
envelope falls below 10 % of its peak. A real-like burst is one event (primary spike, the
opposite spike and the ringing together): the ringing is labelled for as long as its envelope
stays at or above 10 % of the primary spike, and the rest of the tail is left unlabelled. This
matches the real captures, where the ringing directly after a spike is clearly part of the
discharge and the late tail fades into the noise.

Signal-to-noise ratio: a tier's per-pulse peak SNR is the pulse's peak over the rms of the
background it sits on, that is the white noise and, in captures with interference, also the
1/f noise and the radio-like carriers. Converter notches are scaled to the pulses' level
instead: they compete as events, not as a noise floor.

What counts as PD (docs/model-card.md, "What the service reports as PD"): every transient that
stands out of the noise floor and is not explained by the capture's stationary or phase-locked
interference. So the pulses span the shapes PD takes (unipolar, oscillating and bipolar, one
sample to hundreds long, either polarity, at any phase), and the only unlabelled structure is
what a detector can tell from PD by a property: 1/f noise and stationary radio-like tones, and
converter commutation notches (equal, constant-amplitude dips at 6 or 12 regular phases per
cycle). No isolated pulse is a negative for its shape alone.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

# "isolated": pulses at any phase, of either polarity (a defect not yet in a phase pattern,
# or a sensor that does not see the carrier).
PD_SOURCES = ("void", "surface", "corona", "burst", "isolated")
LABEL_FRACTION = 0.1  # envelope fraction of the peak where a label ends
SNR_TIERS_DB = (30.0, 20.0, 14.0, 10.0, 6.0)


@dataclasses.dataclass
class Capture:
    signal: np.ndarray  # float64 raw capture
    mask: np.ndarray  # bool, True where PD is labelled
    samples_per_cycle: float
    phase_offset_deg: float  # carrier phase at sample 0
    noise_sigma: float  # rms of the background the pulses' SNR refers to
    sources: tuple[str, ...]
    pulse_onsets: list[int]  # onset sample of every labelled event
    # One entry per labelled pulse in ``pulse_onsets`` (order of generation): onset, source and
    # the shape drawn (rise and decay in samples, frequency None unless oscillatory; a burst's
    # is its primary spike's), for error analysis by pulse shape.
    pulses: list[dict] = dataclasses.field(default_factory=list)


# --- pulse shapes ---------------------------------------------------------------------------

# What a PD pulse looks like depends on the sensor and the sampling rate more than on the
# defect: a coupling capacitor and RC measuring impedance give unipolar damped exponentials,
# an RLC impedance or an antenna damped oscillations, an HFCT bipolar (derivative-like) pulses.
# At 40 MS/s and more a pulse is often only a few samples long, so every family is drawn over
# its whole range, short pulses as often as long ones (log-uniform).
PULSE_FAMILIES = ("exponential", "oscillation", "bipolar")
FAMILY_WEIGHTS = (0.4, 0.35, 0.25)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _pulse(rng: np.random.Generator, family: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One PD pulse on a local time axis: (waveform with peak |1|, envelope with peak 1, the
    shape drawn: family, rise, decay, frequency or None).
    The waveform starts at a random sub-sample offset so onsets are not grid aligned."""
    if family is None:
        family = str(rng.choice(PULSE_FAMILIES, p=FAMILY_WEIGHTS))
    if family == "gaussian":
        return _gaussian_pulse(rng)
    frequency = None
    if family == "exponential":
        rise, decay = _log_uniform(rng, 0.2, 5.0), _log_uniform(rng, 1.0, 100.0)
    elif family == "oscillation":
        rise, decay = _log_uniform(rng, 0.2, 3.0), _log_uniform(rng, 1.5, 60.0)
        frequency = float(rng.uniform(0.02, 0.45))
    elif family == "bipolar":
        rise, decay = _log_uniform(rng, 0.2, 3.0), _log_uniform(rng, 0.7, 20.0)
    else:
        raise ValueError(f"unknown pulse family {family!r}")
    support = int(np.ceil(decay * 8 + rise * 6)) + 4
    t = np.maximum(np.arange(support) - rng.uniform(0.0, 1.0), 0.0)
    envelope = np.exp(-t / decay) * (1.0 - np.exp(-t / rise))
    if family == "oscillation":
        waveform = envelope * np.cos(2 * np.pi * frequency * t - np.pi / 2 + rng.uniform(-0.3, 0.3))
    elif family == "bipolar":
        # The time derivative of a unipolar pulse (what a differentiating sensor records):
        # a fast lobe and a slower one of opposite sign; its envelope is its own magnitude,
        # held across the zero crossing between the lobes.
        waveform = np.gradient(envelope) if support > 1 else envelope.copy()
        magnitude = np.abs(waveform)
        envelope = np.maximum.accumulate(magnitude)
        envelope = np.minimum(envelope, np.maximum.accumulate(magnitude[::-1])[::-1])
    else:
        waveform = envelope.copy()
    peak = np.max(np.abs(waveform))
    if not np.isfinite(peak) or peak <= 0:
        waveform, envelope, peak = np.eye(1, support)[0], np.eye(1, support)[0], 1.0
    shape = {"family": family, "rise": float(rise), "decay": float(decay), "frequency": frequency}
    return waveform / peak, envelope / np.max(envelope), shape


# A PD current pulse is as often modelled as a Gaussian as a double exponential, and a sensor or
# digitiser of limited bandwidth rounds any short pulse into a smooth bump with no sharp onset
# (an HFCT behind a Gaussian current, a 20 MHz front end at 100 MS/s). Weights trained on the
# three families above rejected such bumps at 30-40 dB, since only the unlabelled commutation
# notches looked like them (docs/model-card.md, Training).
GAUSSIAN_WIDTHS = (0.6, 12.0)  # samples, the Gaussian's standard deviation on its leading side
GAUSSIAN_SKEW = (0.5, 2.0)  # trailing over leading standard deviation
GAUSSIAN_LEAD = 4.0  # standard deviations of the leading side rendered before the peak


def _gaussian_pulse(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """A unipolar bump with no sharp onset: a Gaussian of a leading and a trailing width. Its
    label starts where the envelope first reaches :data:`LABEL_FRACTION` (``shape["lead"]``
    samples into the waveform) and ends where it last does, as for the other families."""
    leading = _log_uniform(rng, *GAUSSIAN_WIDTHS)
    trailing = leading * _log_uniform(rng, *GAUSSIAN_SKEW)
    peak_at = GAUSSIAN_LEAD * leading + rng.uniform(0.0, 1.0)
    t = np.arange(int(np.ceil(peak_at + GAUSSIAN_LEAD * trailing)) + 2, dtype=np.float64) - peak_at
    waveform = np.exp(-0.5 * (t / np.where(t < 0, leading, trailing)) ** 2)
    waveform /= waveform.max()
    lead = int(np.argmax(waveform >= LABEL_FRACTION))
    shape = {"family": "gaussian", "rise": float(leading), "decay": float(trailing), "frequency": None,
             "lead": lead}
    return waveform, waveform.copy(), shape


def _label_length(envelope: np.ndarray) -> int:
    above = np.nonzero(envelope >= LABEL_FRACTION)[0]
    return int(above[-1]) + 1 if above.size else 1


def _burst(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Real-like burst: primary spike, opposite spike later, then smooth ringing (and the
    primary spike's shape)."""
    primary, primary_env, shape = _pulse(rng)
    delay = int(rng.uniform(20, 300))
    opposite, opposite_env, _ = _pulse(rng, "exponential")
    opposite_gain = rng.uniform(0.2, 0.6)
    ring_period = rng.uniform(20, 40)
    ring_gain = rng.uniform(0.06, 0.3)
    ring_length = int(rng.uniform(300, 3000))
    ring_decay = ring_length / rng.uniform(2.0, 4.0)
    t = np.arange(ring_length, dtype=np.float64)
    ring_env = ring_gain * np.exp(-t / ring_decay) * (1 - np.exp(-t / 15.0))
    ring = ring_env * np.sin(2 * np.pi * t / ring_period + rng.uniform(0, 2 * np.pi))
    ring_start = int(rng.uniform(3, 15))
    total = max(primary.size, delay + opposite.size, ring_start + ring.size)
    waveform = np.zeros(total)
    envelope = np.zeros(total)
    # The real bursts shift the recorded level for a while (a slow step under the spike);
    # it is low-frequency, so it is part of the waveform but not of the label's envelope.
    t_all = np.arange(total, dtype=np.float64)
    waveform += rng.uniform(-0.1, 0.4) * (1 - np.exp(-t_all / 2.0)) * np.exp(-t_all / rng.uniform(200, 3000))
    waveform[: primary.size] += primary
    envelope[: primary.size] = np.maximum(envelope[: primary.size], primary_env)
    waveform[delay: delay + opposite.size] -= opposite_gain * opposite
    envelope[delay: delay + opposite.size] = np.maximum(
        envelope[delay: delay + opposite.size], opposite_gain * opposite_env)
    waveform[ring_start: ring_start + ring.size] += ring
    envelope[ring_start: ring_start + ring.size] = np.maximum(
        envelope[ring_start: ring_start + ring.size], ring_env)
    return waveform, envelope, shape


# --- PD phase patterns ------------------------------------------------------------------------

def _source_phases(rng: np.random.Generator, source: str, cycles: int) -> list[tuple[float, int]]:
    """(phase in degrees, polarity) of every pulse of one PD source over ``cycles`` cycles,
    with per-cycle jitter and a slow drift."""
    drift_per_cycle = rng.normal(0, 2.0)
    events: list[tuple[float, int]] = []
    if source == "void":
        rate = rng.uniform(0.5, 4.0)
        centres = ((rng.uniform(20, 70), +1), (rng.uniform(200, 250), -1))
        spread = rng.uniform(8, 20)
        for cycle in range(cycles):
            for centre, polarity in centres:
                for _ in range(rng.poisson(rate)):
                    phase = centre + cycle * drift_per_cycle + rng.normal(0, spread)
                    events.append((cycle * 360 + float(np.clip(phase, centre - 45, centre + 45)), polarity))
    elif source == "surface":
        rate_pos, rate_neg = rng.uniform(1, 4), rng.uniform(0.2, 1.5)
        for cycle in range(cycles):
            for centre, polarity, rate in ((75, +1, rate_pos), (255, -1, rate_neg)):
                for _ in range(rng.poisson(rate)):
                    phase = centre + cycle * drift_per_cycle + rng.normal(0, 12)
                    events.append((cycle * 360 + phase, polarity))
    elif source == "corona":
        count = int(rng.integers(3, 12))
        first, last = rng.uniform(235, 250), rng.uniform(285, 300)
        for cycle in range(cycles):
            for phase in np.linspace(first, last, count):
                events.append((cycle * 360 + phase + cycle * drift_per_cycle + rng.normal(0, 1.5), -1))
    elif source == "burst":
        for cycle in range(cycles):
            if rng.random() < 0.8:
                events.append((cycle * 360 + rng.uniform(5, 80) + cycle * drift_per_cycle, +1))
    elif source == "isolated":
        rate = rng.uniform(0.5, 6.0)
        for cycle in range(cycles):
            for _ in range(rng.poisson(rate)):
                events.append((cycle * 360 + rng.uniform(0, 360), int(rng.choice([-1, 1]))))
    return events


# --- interference (never labelled) -----------------------------------------------------------

def _pink_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    spectrum = rng.normal(size=length // 2 + 1) + 1j * rng.normal(size=length // 2 + 1)
    frequencies = np.fft.rfftfreq(length)
    frequencies[0] = frequencies[1] if length > 1 else 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=length)
    return noise / (np.std(noise) + 1e-30)


def _broadband_interference(rng: np.random.Generator, length: int, sigma: float) -> np.ndarray:
    """1/f noise and AM radio-like carriers: part of the noise floor a pulse is measured against."""
    t = np.arange(length, dtype=np.float64)
    out = sigma * rng.uniform(0.5, 1.5) * _pink_noise(rng, length)
    for _ in range(rng.integers(1, 4)):
        frequency = rng.uniform(0.01, 0.45)
        modulation = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(1e-4, 2e-3) * t + rng.uniform(0, 6.3))
        out += sigma * rng.uniform(0.5, 2.0) * modulation * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 6.3))
    return out


def _converter_notches(rng: np.random.Generator, length: int, samples_per_cycle: float,
                       phase0_deg: float, pulse_scale: float) -> np.ndarray:
    """Converter commutation notches: 6 or 12 equal dips per AC cycle at regular phase spacing
    and constant amplitude. Phase-locked, equal and regular is what tells them from PD, whose
    pulses wander in phase and vary in size; any single one of them alone would be PD-like."""
    t = np.arange(length, dtype=np.float64)
    notches = np.zeros(length)
    per_cycle = int(rng.choice([6, 12]))
    width = rng.uniform(4, 20)
    amplitude = pulse_scale * rng.uniform(0.3, 1.5) * rng.choice([-1, 1])
    start = rng.uniform(0, 360 / per_cycle)
    cycles = int(np.ceil(length / samples_per_cycle)) + 1
    edge = 1.5
    for k in range(cycles * per_cycle):
        centre = ((start + k * 360 / per_cycle - phase0_deg) / 360) * samples_per_cycle
        if -width < centre < length + width:
            lo, hi = max(int(centre - width - 10), 0), min(int(centre + width + 10), length)
            near = t[lo:hi]
            notches[lo:hi] += amplitude * 0.5 * (np.tanh((near - centre + width / 2) / edge)
                                                 - np.tanh((near - centre - width / 2) / edge))
    return notches


def _quantise(rng: np.random.Generator, signal: np.ndarray, sigma: float, pulse_level: float) -> np.ndarray:
    """A few-bit ADC: the capture on a grid of 0.3-5 noise sigmas (never coarser than a
    quarter of the pulses' level, so a labelled pulse stays visible)."""
    step = min(sigma * 10 ** rng.uniform(-0.5, 0.7), pulse_level / 4)
    return np.round(signal / step) * step


# --- captures ---------------------------------------------------------------------------------

def make_capture(rng: np.random.Generator, length: int, snr_db: float | None = None,
                 interference: bool | None = None, pd_free: bool | None = None,
                 smooth: bool | None = None, samples_per_cycle: float | None = None,
                 converter_notches: bool = True, interference_fraction: float = 0.6,
                 carrier: bool | None = None, quantised: bool | None = None,
                 gaussian_fraction: float = 0.0) -> Capture:
    """One raw capture. ``snr_db`` fixes the per-pulse peak SNR (±1 dB jitter); None draws a
    log-normal mix for training. ``smooth`` makes a near noise-free capture like the real ones;
    when ``interference`` is None, ``interference_fraction`` of the other captures get it.
    ``carrier`` False: no AC voltage in the capture (HFCT, UHF and antenna sensors filter it
    out); ``quantised``: a few-bit ADC. None draws both (training's mix: a quarter without a
    carrier, a fifth quantised); evaluation tiers pass False for a fixed tier."""
    if samples_per_cycle is None:
        samples_per_cycle = float(rng.uniform(1000, 5000))
    if pd_free is None:
        pd_free = rng.random() < 0.3
    if smooth is None:
        smooth = snr_db is None and rng.random() < 0.15
    if interference is None:
        interference = (not smooth) and rng.random() < interference_fraction
    if carrier is None:
        carrier = rng.random() >= 0.25
    if quantised is None:
        quantised = rng.random() < 0.2
    amplitude = float(np.exp(rng.uniform(np.log(1e5), np.log(1e6))))
    phase0 = float(rng.uniform(0, 360))
    t = np.arange(length, dtype=np.float64)
    angle = 2 * np.pi * t / samples_per_cycle + np.deg2rad(phase0)
    voltage = amplitude * np.sin(angle)
    for harmonic in range(2, 8):
        voltage += amplitude * rng.uniform(0, 0.03) / harmonic * np.sin(harmonic * angle + rng.uniform(0, 6.3))
    if rng.random() < 0.2:
        limit = amplitude * rng.uniform(0.85, 0.98)
        voltage = np.clip(voltage, -limit, limit)
    if not carrier:  # the same draws either way: a tier differs only in what is asked
        voltage[:] = 0.0

    if smooth:
        sigma = amplitude * 10 ** rng.uniform(-7, -5.5)
        pulse_level = amplitude * 10 ** rng.uniform(-2, -0.7)
        background = sigma * rng.normal(size=length)
    else:
        sigma_white = amplitude * 10 ** rng.uniform(-4, -2.5)
        background = sigma_white * rng.normal(size=length)
        if interference:
            background += _broadband_interference(rng, length, sigma_white)
        # The peak SNR is taken against everything that is not a pulse: white noise plus,
        # with interference, the 1/f noise and radio carriers.
        sigma = float(np.std(background))
        pulse_level = sigma * 10 ** ((snr_db if snr_db is not None else rng.uniform(4, 36)) / 20)

    signal = voltage + background
    mask = np.zeros(length, dtype=bool)
    onsets: list[int] = []
    pulses: list[dict] = []
    sources: tuple[str, ...] = ()
    if not pd_free:
        count = 1 if rng.random() < 0.6 else 2
        sources = tuple(rng.choice(PD_SOURCES, size=count, replace=False))
        cycles = int(np.ceil(length / samples_per_cycle)) + 2
        for source in sources:
            source_gain = rng.uniform(0.5, 1.5) if snr_db is None else 1.0
            # A sensor that rounds one pulse rounds them all: a source's pulses are smooth together.
            smooth_source = bool(gaussian_fraction) and rng.random() < gaussian_fraction
            for phase_deg, polarity in _source_phases(rng, source, cycles):
                onset = (phase_deg - phase0) / 360 * samples_per_cycle - samples_per_cycle
                start = int(np.floor(onset))
                if source == "burst":
                    waveform, envelope, shape = _burst(rng)
                elif smooth_source:
                    waveform, envelope, shape = _gaussian_pulse(rng)
                else:
                    waveform, envelope, shape = _pulse(rng)
                lead = int(shape.pop("lead", 0))
                if snr_db is None:
                    gain = pulse_level * source_gain * np.exp(rng.normal(0, 0.35))
                else:
                    gain = pulse_level * 10 ** (rng.uniform(-1, 1) / 20)
                if source == "corona":
                    gain *= 0.6 if snr_db is None else 1.0
                end = start + waveform.size
                if end <= 0 or start >= length:
                    continue
                lo, hi = max(start, 0), min(end, length)
                signal[lo:hi] += polarity * gain * waveform[lo - start: hi - start]
                label_end = start + _label_length(envelope)
                label_start = start + lead
                if label_end > 0 and label_start < length:
                    mask[max(label_start, 0): min(label_end, length)] = True
                    if label_start >= 0:
                        onsets.append(label_start)
                        pulses.append({"onset": label_start, "source": str(source)} | shape)
    if interference and rng.random() < 0.7:
        notches = _converter_notches(rng, length, samples_per_cycle, phase0, pulse_level)
        if converter_notches:
            signal += notches
    if quantised:
        signal = _quantise(rng, signal, sigma, pulse_level)
    return Capture(signal=signal, mask=mask, samples_per_cycle=samples_per_cycle,
                   phase_offset_deg=phase0, noise_sigma=sigma, sources=sources,
                   pulse_onsets=sorted(onsets), pulses=pulses)


def evaluation_set(snr_db: float, interference: bool, count: int, length: int,
                   seed: int, converter_notches: bool = True) -> Iterator[Capture]:
    """A fixed evaluation tier: same seed, same captures, every run (``converter_notches``
    False: the same captures without their converter notches)."""
    rng = np.random.default_rng([seed, int(snr_db * 10), int(interference)])
    for _ in range(count):
        yield make_capture(rng, length, snr_db=snr_db, interference=interference, smooth=False,
                           converter_notches=converter_notches, carrier=True, quantised=False)


def pd_free_set(interference: bool, count: int, length: int, seed: int) -> Iterator[Capture]:
    rng = np.random.default_rng([seed, 999, int(interference)])
    for _ in range(count):
        yield make_capture(rng, length, snr_db=float(rng.uniform(6, 30)), interference=interference,
                           pd_free=True, smooth=False, carrier=True, quantised=False)


def sample_captures(length: int = 10000, seed: int = 7) -> list[Capture]:
    """The demo's bundled captures, at the real captures' period: a near noise-free one like
    the real ones, noisy ones, ones with interference, and a PD-free one."""
    rng = np.random.default_rng(seed)
    kinds = [dict(smooth=True, snr_db=None, interference=False),
             dict(smooth=False, snr_db=24.0, interference=False),
             dict(smooth=False, snr_db=16.0, interference=True),
             dict(smooth=True, snr_db=None, interference=False),
             dict(smooth=False, snr_db=30.0, interference=True),
             dict(smooth=False, snr_db=20.0, interference=True, pd_free=True)]
    return [make_capture(rng, length, samples_per_cycle=3333.0, carrier=True, quantised=False,
                         pd_free=kind.pop("pd_free", False), **kind) for kind in kinds]
