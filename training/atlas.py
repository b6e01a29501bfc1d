"""The pulse atlas: does a detector find every isolated PD pulse that stands out of the noise,
whatever its shape and whatever the capture's length?

Isolated single pulses are swept over a grid and the recall is counted per cell:

* **shape** (42 rows): four parametric families, written here independently of the training
  generator (``training.synthetic`` is neither imported nor copied):

  - ``exponential``: unipolar double exponential ``exp(-t/decay) - exp(-t/rise)``, rise
    0.2 / 1 / 5 samples x decay 0.3 / 1 / 3 / 10 / 30 / 100 samples (rise > decay skipped; rise
    = decay is the limit ``t exp(-t/decay)``). The pulse is its own envelope. Decay 0.3 is a
    spike of one sample, or two where the onset falls late in a sample: any pulse as a
    digitiser much slower than it records it.
  - ``oscillation``: damped cosine ``exp(-t/decay) cos(2 pi f t)``, f 0.02 / 0.05 / 0.1 / 0.2 /
    0.45 cycles per sample x decay 1.5 / 5 / 20 / 60 samples. It starts at a crest, so its
    peak is its first sample and its envelope is ``exp(-t/decay)``: with a sine start a slow,
    short one would hardly leave zero before its envelope had decayed.
  - ``bipolar``: derivative of a Gaussian of width (sigma) 0.7 / 1.5 / 3 / 6 samples. Its
    envelope is the magnitude of the analytic signal (closed form with Dawson's function);
    it has no causal onset, so its onset is where that envelope first reaches 10 % of its
    peak (3.72 sigma before the zero crossing).
  - ``gaussian``: a unipolar Gaussian of width (sigma) 1 / 2 / 4 / 8 samples, a PD current
    pulse as often modelled, or any short pulse after a sensor or front end of limited
    bandwidth: no sharp onset, symmetric. Its onset is where it first reaches 10 % of its
    peak (2.15 sigma before the peak).

  Every pulse is drawn with a random sub-sample onset (its sampled waveform differs between
  trials) and with either polarity.
* **per-pulse peak SNR**: 6 / 10 / 14 / 20 / 30 / 40 dB, the pulse's sampled peak over the rms
  of the capture's background (white noise, or white noise plus 1-2 stationary sine tones at
  0.01-0.45 cycles per sample that carry 30-70 % of the background power). The background is
  scaled to rms 1 exactly over each capture, so the SNR is exact capture by capture.
* **capture length**: 64 / 256 / 1,024 / 8,192 / 65,536 / 800,000 samples.
* **AC carrier** present (period 2,500-4,500 samples, amplitude 1e4-1e6 times the background
  rms, log-uniform) or absent.

Ground truth of a pulse: from its onset (the first sample at or after it) to the last sample
at which the clean pulse's envelope is still at least 10 % of its peak, ``[start, end)``, at
least one sample; a 64-sample capture clips a longer pulse at its end (``truncated``).

The full product is too big, so the sampling is a balanced cycle: every (shape, SNR) cell gets
``trials`` pulses, and trial ``t`` of every cell has the same length and condition
(:func:`schedule`): each block of consecutive trials covers every length once, with the
conditions (polarity, tones, carrier; 8 combinations) spread over the block, and 8 x (number
of lengths) consecutive trials hold every (length, condition) pair once (48 with the six
lengths). The shape x SNR map therefore averages over the
same mix in every cell, and the length x SNR and condition x SNR maps come from the same
trials. Pulses that share SNR, length and carrier/tone condition are packed into one capture
(polarity is per pulse): captures of up to 1,024 samples hold one pulse, at least
``EDGE_MARGIN`` samples in from either end; longer ones hold as many as fit with at least
``MIN_SPACING`` samples between one pulse's truth end and the next onset, spread at random over
the capture, so 65,536- and 800,000-sample captures cost little per pulse. Everything is
seeded: each capture's generator is keyed by (seed, SNR, length, condition, capture number),
so a subset of SNRs gives the same captures as the full run.

Scoring (:func:`score_capture`): truth events are the pulses' truth mask turned into regions
with the detector's merge gap (``mask_to_regions(mask, min_gap, min_length=1)``), matched one
to one with the predicted regions (``interval_iou`` + ``linear_sum_assignment``); a pulse is
found when its event is matched at IoU >= 0.3. A predicted region that matches nothing is a
false region, charged to the nearest pulse's cell when it lies within ``ATTRIBUTION_REACH``
samples of that pulse's truth, else to the capture's background.

The detector is any function ``signals -> list of (k, 2) [start, end) regions``
(:func:`segmenter_detector` wraps the served segmenter, :func:`classical_detector` the
classical baseline). Nothing here plots; ``scripts/atlas.py`` is the command line.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Callable, Iterator, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import dawsn

from pdseg.regions import DEFAULT_MIN_GAP, mask_to_regions
from training.scoring import interval_iou

FAMILIES = ("exponential", "oscillation", "bipolar", "gaussian")
EXPONENTIAL_RISES = (0.2, 1.0, 5.0)
EXPONENTIAL_DECAYS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
OSCILLATION_FREQUENCIES = (0.02, 0.05, 0.1, 0.2, 0.45)
OSCILLATION_DECAYS = (1.5, 5.0, 20.0, 60.0)
BIPOLAR_WIDTHS = (0.7, 1.5, 3.0, 6.0)
GAUSSIAN_WIDTHS = (1.0, 2.0, 4.0, 8.0)

SNRS_DB = (6.0, 10.0, 14.0, 20.0, 30.0, 40.0)
LENGTHS = (64, 256, 1024, 8192, 65536, 800000)
CONDITIONS = ("white", "white + tones", "carrier, white", "carrier, white + tones")
POLARITIES = (1, -1)

LABEL_FRACTION = 0.1  # the truth ends where the clean envelope falls below this fraction of its peak
GAUSSIAN_HALF_SPAN = math.sqrt(2.0 * math.log(1.0 / LABEL_FRACTION))  # sigmas from 10 % to the peak
MIN_IOU = 0.3
EDGE_MARGIN = 8  # samples between a capture's ends and any pulse's onset / truth end
MIN_SPACING = 600  # samples from one pulse's truth end to the next pulse's onset
SINGLE_PULSE_MAX_LENGTH = 1024  # captures up to this long hold one pulse
ATTRIBUTION_REACH = MIN_SPACING // 2  # a false region this close to a pulse is charged to its cell
TONE_SHARE = (0.3, 0.7)  # fraction of the background power in the tones
TONE_FREQUENCIES = (0.01, 0.45)  # cycles per sample
CARRIER_PERIOD = (2500.0, 4500.0)  # samples
CARRIER_AMPLITUDE_LOG10 = (4.0, 6.0)  # times the background rms
SUPPORT_FRACTION = 1e-4  # a pulse is rendered until its envelope falls below this fraction
DEFAULT_SEED = 20260601
DEFAULT_TRIALS = 192
QUICK_TRIALS = 24

Detector = Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]


# --------------------------------------------------------------------------- shapes

@dataclasses.dataclass(frozen=True)
class Shape:
    """One pulse shape: a family and its parameters. Time ``t`` is in samples from the onset."""
    family: str
    params: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        short = {"rise": "rise", "decay": "decay", "frequency": "f", "width": "width"}
        return f"{self.family} " + " ".join(f"{short[k]}={v:g}" for k, v in self.params)

    def param(self, key: str) -> float:
        return dict(self.params)[key]

    def _bipolar_centre(self) -> float:
        """Time of the Gaussian derivative's zero crossing after the onset (the envelope's
        first 10 % point)."""
        return _bipolar_half_span() * self.param("width")

    def waveform(self, t: np.ndarray) -> np.ndarray:
        """The clean pulse (positive polarity, not normalised) at times ``t`` after the onset."""
        t = np.asarray(t, dtype=np.float64)
        if self.family == "exponential":
            rise, decay = self.param("rise"), self.param("decay")
            tc = np.maximum(t, 0.0)
            if math.isclose(rise, decay):
                value = (tc / decay) * np.exp(-tc / decay)
            else:
                value = np.exp(-tc / decay) - np.exp(-tc / rise)
            return np.where(t >= 0, value, 0.0)
        if self.family == "oscillation":
            tc = np.maximum(t, 0.0)
            value = np.exp(-tc / self.param("decay")) * np.cos(2 * np.pi * self.param("frequency") * tc)
            return np.where(t >= 0, value, 0.0)
        if self.family == "bipolar":
            sigma = self.param("width")
            u = (t - self._bipolar_centre()) / (sigma * math.sqrt(2.0))
            return 2.0 * u * np.exp(-u * u)  # positive lobe after the zero crossing
        if self.family == "gaussian":
            sigma = self.param("width")
            return np.exp(-0.5 * ((t - GAUSSIAN_HALF_SPAN * sigma) / sigma) ** 2)
        raise ValueError(self.family)

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """The clean pulse's envelope (same scale as :meth:`waveform`)."""
        t = np.asarray(t, dtype=np.float64)
        if self.family == "exponential":
            return np.abs(self.waveform(t))
        if self.family == "oscillation":
            return np.where(t >= 0, np.exp(-np.maximum(t, 0.0) / self.param("decay")), 0.0)
        if self.family == "bipolar":
            sigma = self.param("width")
            u = (t - self._bipolar_centre()) / (sigma * math.sqrt(2.0))
            return _gaussian_derivative_envelope(u)
        if self.family == "gaussian":
            return self.waveform(t)
        raise ValueError(self.family)

    @property
    def truth_span(self) -> float:
        """Time after the onset of the last instant at which the envelope is at least
        ``LABEL_FRACTION`` of its peak."""
        return _truth_span(self)

    @property
    def support(self) -> tuple[float, float]:
        """Times (relative to the onset) between which the pulse is rendered."""
        if self.family == "exponential":
            decay = max(self.param("decay"), self.param("rise"))
            return 0.0, decay * math.log(1 / SUPPORT_FRACTION) + 4 * self.param("rise") + 2
        if self.family == "oscillation":
            return 0.0, self.param("decay") * math.log(1 / SUPPORT_FRACTION) + 2
        sigma = self.param("width")
        centre = self._bipolar_centre() if self.family == "bipolar" else GAUSSIAN_HALF_SPAN * sigma
        return min(0.0, centre - 6 * sigma) - 1, centre + 6 * sigma + 1

    def to_dict(self) -> dict:
        return {"name": self.name, "family": self.family, "params": dict(self.params),
                "truth_span": round(self.truth_span, 3)}


def _gaussian_derivative_envelope(u: np.ndarray) -> np.ndarray:
    """|analytic signal| of ``2 u exp(-u^2)``: the Hilbert transform of ``exp(-u^2)`` is
    ``2/sqrt(pi) D(u)`` (D: Dawson's function), and differentiation commutes with it."""
    u = np.asarray(u, dtype=np.float64)
    real = 2.0 * u * np.exp(-u * u)
    imaginary = (2.0 / math.sqrt(math.pi)) * (1.0 - 2.0 * u * dawsn(u))
    return np.sqrt(real * real + imaginary * imaginary)


@lru_cache(maxsize=1)
def _bipolar_half_span() -> float:
    """Half the span (in sigmas) over which the Gaussian derivative's envelope is at least
    ``LABEL_FRACTION`` of its peak (about 3.72)."""
    u = np.linspace(0.0, 20.0, 400_001)
    envelope = _gaussian_derivative_envelope(u)
    last = int(np.flatnonzero(envelope >= LABEL_FRACTION * envelope[0])[-1])
    return float(u[last] * math.sqrt(2.0))


@lru_cache(maxsize=None)
def _truth_span(shape: Shape) -> float:
    start, stop = shape.support
    t = np.arange(0.0, stop, 1.0 / 256)
    envelope = shape.envelope(t)
    above = np.flatnonzero(envelope >= LABEL_FRACTION * envelope.max())
    return float(t[above[-1]])


def shape_grid() -> tuple[Shape, ...]:
    """The atlas's rows: 14 exponential, 20 oscillation, 4 bipolar and 4 Gaussian shapes (42)."""
    shapes = [Shape("exponential", (("rise", r), ("decay", d)))
              for r in EXPONENTIAL_RISES for d in EXPONENTIAL_DECAYS if r <= d]
    shapes += [Shape("oscillation", (("frequency", f), ("decay", d)))
               for f in OSCILLATION_FREQUENCIES for d in OSCILLATION_DECAYS]
    shapes += [Shape("bipolar", (("width", w),)) for w in BIPOLAR_WIDTHS]
    shapes += [Shape("gaussian", (("width", w),)) for w in GAUSSIAN_WIDTHS]
    return tuple(shapes)


def truth_interval(shape: Shape, onset: float, length: int | None = None) -> tuple[int, int, bool]:
    """``[start, end)`` samples of a pulse whose onset is at (fractional) sample ``onset``: from
    the first sample at or after the onset to the last one whose envelope is still at least 10 %
    of its peak; at least one sample. With ``length``, clipped to the capture (third value:
    whether it was)."""
    start = math.ceil(onset)
    end = max(math.floor(onset + shape.truth_span) + 1, start + 1)
    if length is not None and end > length:
        return start, length, True
    return start, end, False


def render_pulse(shape: Shape, onset: float, length: int) -> tuple[int, np.ndarray]:
    """``(first, samples)``: the pulse with onset at fractional sample ``onset``, its sampled
    peak magnitude scaled to 1 (positive polarity), clipped to a capture of ``length`` samples
    (the peak is taken over the whole unclipped pulse)."""
    before, after = shape.support
    first = math.floor(onset + before)
    last = math.ceil(onset + after)
    n = np.arange(first, last + 1)
    values = shape.waveform(n - onset)
    values = values / np.max(np.abs(values))
    keep = (n >= 0) & (n < length)
    n = n[keep]
    return (int(n[0]) if n.size else 0), values[keep]


# --------------------------------------------------------------------------- sampling

@dataclasses.dataclass(frozen=True)
class Trial:
    """Length, polarity and condition of trial ``t`` of every cell."""
    length_index: int
    polarity: int
    tones: bool
    carrier: bool

    @property
    def condition(self) -> int:
        return condition_index(self.carrier, self.tones)


def condition_index(carrier: bool, tones: bool) -> int:
    return 2 * int(carrier) + int(tones)


def schedule(trial: int, n_lengths: int) -> Trial:
    """The balanced cycle. Trial ``t`` of every cell has length index ``l = t % n`` (``n``
    lengths: each block of ``n`` consecutive trials covers every length once) and condition
    ``(2 b + b // 4 + 3 l) % 8`` with ``b = t // n`` the block, whose bits are the polarity
    (1: negative), the tones and the carrier. Within a block the conditions spread over all
    three bits; four blocks give every length all four carrier/tone combinations (one
    polarity), eight blocks (``8 n`` trials, 48 with the six lengths) every (length,
    condition) pair exactly once."""
    length_index, block = trial % n_lengths, trial // n_lengths
    condition = (2 * block + (block // 4) % 2 + 3 * length_index) % 8
    return Trial(length_index=length_index, polarity=POLARITIES[condition & 1],
                 tones=bool(condition & 2), carrier=bool(condition & 4))


@dataclasses.dataclass(frozen=True)
class AtlasConfig:
    snrs_db: tuple[float, ...] = SNRS_DB
    lengths: tuple[int, ...] = LENGTHS
    trials: int = DEFAULT_TRIALS  # pulses per (shape, SNR) cell
    seed: int = DEFAULT_SEED
    shapes: tuple[Shape, ...] = dataclasses.field(default_factory=shape_grid)

    def to_dict(self) -> dict:
        return {"snrs_db": list(self.snrs_db), "lengths": list(self.lengths), "trials": self.trials,
                "seed": self.seed, "shapes": len(self.shapes)}


@dataclasses.dataclass
class Pulse:
    shape_index: int
    polarity: int
    onset: float  # fractional sample of the onset
    start: int  # truth [start, end)
    end: int
    truncated: bool = False
    trial: int = -1


@dataclasses.dataclass
class Capture:
    signal: np.ndarray  # float64, what the detector sees
    snr_db: float
    carrier: bool
    tones: bool
    pulses: list[Pulse]
    clean: np.ndarray | None = None  # the pulses alone (kept on request)
    background: np.ndarray | None = None  # noise + tones, rms 1 (kept on request)
    carrier_wave: np.ndarray | None = None

    @property
    def length(self) -> int:
        return int(self.signal.size)

    @property
    def condition(self) -> int:
        return condition_index(self.carrier, self.tones)

    def truth_mask(self) -> np.ndarray:
        mask = np.zeros(self.length, dtype=bool)
        for pulse in self.pulses:
            mask[pulse.start: pulse.end] = True
        return mask


def make_background(rng: np.random.Generator, length: int, tones: bool) -> np.ndarray:
    """White noise, or white noise plus 1-2 stationary tones carrying 30-70 % of the power,
    scaled to rms exactly 1 over the capture."""
    if tones:
        share = rng.uniform(*TONE_SHARE)
        count = int(rng.integers(1, 3))
        split = rng.dirichlet(np.ones(count)) * share
        background = math.sqrt(1.0 - share) * rng.standard_normal(length)
        n = np.arange(length)
        for power in split:
            frequency = rng.uniform(*TONE_FREQUENCIES)
            background += math.sqrt(2.0 * power) * np.sin(2 * np.pi * frequency * n + rng.uniform(0, 2 * np.pi))
    else:
        background = rng.standard_normal(length)
    rms = math.sqrt(float(np.mean(background**2))) if length else 1.0
    return background / rms


def make_carrier(rng: np.random.Generator, length: int) -> np.ndarray:
    amplitude = 10.0 ** rng.uniform(*CARRIER_AMPLITUDE_LOG10)
    period = rng.uniform(*CARRIER_PERIOD)
    return amplitude * np.sin(2 * np.pi * np.arange(length) / period + rng.uniform(0, 2 * np.pi))


def place_onsets(rng: np.random.Generator, shapes: Sequence[Shape], length: int) -> list[float]:
    """Fractional onsets for ``shapes`` in a capture of ``length`` samples.

    One pulse (captures up to ``SINGLE_PULSE_MAX_LENGTH``): its integer onset uniform between
    ``EDGE_MARGIN`` and the last one that keeps the truth ``EDGE_MARGIN`` samples from the end
    (``EDGE_MARGIN`` when the pulse is longer than the capture allows). Several: in order, at
    least ``MIN_SPACING`` samples from one truth end to the next onset and ``EDGE_MARGIN`` from
    the ends, the spare room shared out at random. The caller checks that they fit
    (:func:`pack`)."""
    fractions = rng.uniform(0.0, 1.0, len(shapes))
    widths = [math.floor(shape.truth_span) + 2 for shape in shapes]  # truth samples + fraction
    if len(shapes) == 1:
        last = max(EDGE_MARGIN, length - EDGE_MARGIN - widths[0])
        return [float(rng.integers(EDGE_MARGIN, last + 1)) + fractions[0]]
    spare = length - 2 * EDGE_MARGIN - sum(widths) - MIN_SPACING * (len(shapes) - 1)
    if spare < 0:
        raise ValueError("pulses do not fit")
    cuts = np.sort(rng.integers(0, spare + 1, len(shapes)))
    gaps = np.diff(np.concatenate(([0], cuts)))  # extra room before each pulse
    onsets, position = [], EDGE_MARGIN
    for gap, width, fraction in zip(gaps, widths, fractions):
        position += int(gap)
        onsets.append(position + fraction)
        position += width + MIN_SPACING
    return onsets


def fits(shapes: Sequence[Shape], length: int) -> bool:
    if len(shapes) <= 1:
        return True
    widths = sum(math.floor(shape.truth_span) + 2 for shape in shapes)
    return 2 * EDGE_MARGIN + widths + MIN_SPACING * (len(shapes) - 1) <= length


def make_capture(rng: np.random.Generator, length: int, shapes: Sequence[Shape],
                 polarities: Sequence[int], snr_db: float, carrier: bool, tones: bool,
                 shape_indices: Sequence[int] | None = None, trials: Sequence[int] | None = None,
                 keep_parts: bool = False) -> Capture:
    """One capture holding ``shapes`` (in order, with ``polarities``) at per-pulse peak SNR
    ``snr_db`` over the background's rms, placed by :func:`place_onsets`."""
    onsets = place_onsets(rng, shapes, length)
    background = make_background(rng, length, tones)
    carrier_wave = make_carrier(rng, length) if carrier else None
    clean = np.zeros(length)
    amplitude = 10.0 ** (snr_db / 20.0)
    pulses = []
    for number, (shape, polarity, onset) in enumerate(zip(shapes, polarities, onsets)):
        first, samples = render_pulse(shape, onset, length)
        clean[first: first + samples.size] += polarity * amplitude * samples
        start, end, truncated = truth_interval(shape, onset, length)
        pulses.append(Pulse(shape_index=number if shape_indices is None else int(shape_indices[number]),
                            polarity=int(polarity), onset=float(onset), start=start, end=end,
                            truncated=truncated, trial=-1 if trials is None else int(trials[number])))
    signal = background + clean
    if carrier_wave is not None:
        signal = signal + carrier_wave
    return Capture(signal=signal, snr_db=float(snr_db), carrier=carrier, tones=tones, pulses=pulses,
                   clean=clean if keep_parts else None, background=background if keep_parts else None,
                   carrier_wave=carrier_wave if keep_parts else None)


def _capture_rng(seed: int, snr_db: float, length: int, condition: int, number: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(round(snr_db * 100)), length, condition, number])


def pack(items: list[tuple[int, int, int]], shapes: Sequence[Shape], length: int) -> list[list[tuple[int, int, int]]]:
    """Split (shape index, polarity, trial) items into captures of ``length`` samples, in order:
    one per capture up to ``SINGLE_PULSE_MAX_LENGTH``, else as many as :func:`fits`."""
    if length <= SINGLE_PULSE_MAX_LENGTH:
        return [[item] for item in items]
    groups: list[list[tuple[int, int, int]]] = [[]]
    for item in items:
        candidate = groups[-1] + [item]
        if groups[-1] and not fits([shapes[i] for i, _, _ in candidate], length):
            groups.append([item])
        else:
            groups[-1] = candidate
    return [group for group in groups if group]


def iter_captures(config: AtlasConfig, keep_parts: bool = False) -> Iterator[Capture]:
    """Every capture of the atlas, one (SNR, length, condition) group after another."""
    shapes = config.shapes
    trials = [schedule(t, len(config.lengths)) for t in range(config.trials)]
    for snr in config.snrs_db:
        for length_index, length in enumerate(config.lengths):
            for condition in range(len(CONDITIONS)):
                items = [(s, trial.polarity, t) for t, trial in enumerate(trials)
                         if trial.length_index == length_index and trial.condition == condition
                         for s in range(len(shapes))]
                if not items:
                    continue
                order = _capture_rng(config.seed, snr, length, condition, 1_000_000).permutation(len(items))
                items = [items[i] for i in order]
                for number, group in enumerate(pack(items, shapes, length)):
                    rng = _capture_rng(config.seed, snr, length, condition, number)
                    yield make_capture(rng, length, [shapes[s] for s, _, _ in group],
                                       [p for _, p, _ in group], snr, carrier=condition >= 2,
                                       tones=bool(condition & 1), shape_indices=[s for s, _, _ in group],
                                       trials=[t for _, _, t in group], keep_parts=keep_parts)


# --------------------------------------------------------------------------- scoring

@dataclasses.dataclass
class CaptureScore:
    hit: np.ndarray  # bool per pulse
    iou: np.ndarray  # per pulse: the matched IoU, else the best IoU with any region
    false_regions: np.ndarray  # (m, 2) predicted regions matching no pulse
    false_owner: np.ndarray  # per false region: index of the pulse it is charged to, -1 background


def score_capture(capture: Capture, predicted: np.ndarray, min_gap: int = DEFAULT_MIN_GAP,
                  min_iou: float = MIN_IOU) -> CaptureScore:
    """Per-pulse hits of one capture's predicted regions (see the module's docstring)."""
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1, 2)
    events = mask_to_regions(capture.truth_mask(), min_gap=min_gap, min_length=1)
    if len(events) == 0:
        return CaptureScore(hit=np.zeros(0, dtype=bool), iou=np.zeros(0), false_regions=predicted,
                            false_owner=np.full(len(predicted), -1, dtype=np.int64))
    pulse_starts = np.array([p.start for p in capture.pulses], dtype=np.int64)
    pulse_event = np.searchsorted(events[:, 0], pulse_starts, side="right") - 1
    # Only regions that overlap an event can match one (IoU > 0).
    last_event = np.searchsorted(events[:, 0], predicted[:, 1], side="left") - 1
    overlapping = (last_event >= 0) & (events[np.maximum(last_event, 0), 1] > predicted[:, 0])
    candidates = np.flatnonzero(overlapping)
    iou = interval_iou(events, predicted[candidates])
    event_hit = np.zeros(len(events), dtype=bool)
    event_iou = iou.max(axis=1) if iou.size else np.zeros(len(events))
    matched = np.zeros(len(predicted), dtype=bool)
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        good = iou[rows, cols] >= min_iou
        event_hit[rows[good]] = True
        event_iou[rows[good]] = iou[rows[good], cols[good]]
        matched[candidates[cols[good]]] = True
    false_regions = predicted[~matched]
    owner = np.full(len(false_regions), -1, dtype=np.int64)
    if len(capture.pulses) and len(false_regions):
        ends = np.array([p.end for p in capture.pulses], dtype=np.int64)
        order = np.argsort(pulse_starts)
        starts_sorted, ends_sorted = pulse_starts[order], ends[order]
        for k, (start, end) in enumerate(false_regions.tolist()):
            j = int(np.searchsorted(starts_sorted, start))
            best, best_distance = -1, ATTRIBUTION_REACH + 1
            for candidate in (j - 1, j):
                if 0 <= candidate < len(order):
                    distance = max(0, starts_sorted[candidate] - end, start - ends_sorted[candidate])
                    if distance < best_distance:
                        best, best_distance = int(order[candidate]), distance
            owner[k] = best
    return CaptureScore(hit=event_hit[pulse_event], iou=event_iou[pulse_event],
                        false_regions=false_regions, false_owner=owner)


@dataclasses.dataclass
class AtlasResult:
    """Per-pulse outcomes and false regions of one atlas run; :meth:`table` aggregates."""
    config: AtlasConfig
    min_gap: int
    pulse_shape: np.ndarray
    pulse_snr: np.ndarray
    pulse_length: np.ndarray  # capture length
    pulse_condition: np.ndarray
    pulse_polarity: np.ndarray
    pulse_truth_length: np.ndarray
    pulse_truncated: np.ndarray
    pulse_hit: np.ndarray
    pulse_iou: np.ndarray
    pulse_onset: np.ndarray
    false_shape: np.ndarray  # -1: background (no pulse within ATTRIBUTION_REACH)
    false_snr: np.ndarray
    false_length: np.ndarray
    false_condition: np.ndarray
    samples: dict  # (snr, length, condition) -> samples analysed
    captures: int

    # "whole_length": by capture length, only the pulses whose truth ends inside the capture (a
    # 64-sample capture cuts a pulse that decays over 30-100 samples, and then no record of it
    # tells its end, nor whether its tail is pulse or baseline).
    ROWS = ("shape", "length", "whole_length", "condition", "polarity", "family")

    def row_labels(self, by: str) -> list[str]:
        if by == "shape":
            return [shape.name for shape in self.config.shapes]
        if by in ("length", "whole_length"):
            return [f"{length:,}" for length in self.config.lengths]
        if by == "condition":
            return list(CONDITIONS)
        if by == "polarity":
            return ["positive", "negative"]
        if by == "family":
            return list(FAMILIES)
        raise ValueError(by)

    def _pulse_rows(self, by: str) -> np.ndarray:
        if by == "shape":
            return self.pulse_shape
        if by == "length":
            return np.searchsorted(np.asarray(self.config.lengths), self.pulse_length)
        if by == "whole_length":  # -1: a truncated pulse, left out
            return np.where(self.pulse_truncated, -1, self._pulse_rows("length"))
        if by == "condition":
            return self.pulse_condition
        if by == "polarity":
            return np.where(self.pulse_polarity > 0, 0, 1)
        if by == "family":
            families = np.array([FAMILIES.index(s.family) for s in self.config.shapes])
            return families[self.pulse_shape]
        raise ValueError(by)

    def _false_rows(self, by: str) -> np.ndarray | None:
        if by == "shape":
            return self.false_shape
        if by == "length":
            return np.searchsorted(np.asarray(self.config.lengths), self.false_length)
        if by == "condition":
            return self.false_condition
        if by == "family":
            families = np.array([FAMILIES.index(s.family) for s in self.config.shapes] + [-1])
            return families[self.false_shape]  # -1 (background) stays -1
        return None  # polarity: a false region has none; whole_length: the length map has them

    def table(self, by: str) -> dict:
        """Rows ``by`` (:data:`ROWS`) x SNR columns: pulses, found, recall (None where a cell
        has no pulse) and false regions (charged to a pulse of that row; for length and
        condition rows also the background's)."""
        labels = self.row_labels(by)
        snrs = list(self.config.snrs_db)
        rows = self._pulse_rows(by)
        counted = rows >= 0
        columns = np.searchsorted(np.asarray(snrs), self.pulse_snr)
        pulses = np.zeros((len(labels), len(snrs)), dtype=np.int64)
        found = np.zeros_like(pulses)
        np.add.at(pulses, (rows[counted], columns[counted]), 1)
        np.add.at(found, (rows[counted], columns[counted]), self.pulse_hit[counted].astype(np.int64))
        recall = [[(round(f / p, 4) if p else None) for f, p in zip(fr, pr)] for fr, pr in zip(found, pulses)]
        table = {"rows": labels, "snrs_db": snrs, "pulses": pulses.tolist(), "found": found.tolist(),
                 "recall": recall}
        false_rows = self._false_rows(by)
        if false_rows is not None:
            counts = np.zeros_like(pulses)
            keep = false_rows >= 0
            np.add.at(counts, (false_rows[keep], np.searchsorted(np.asarray(snrs), self.false_snr[keep])), 1)
            table["false_regions"] = counts.tolist()
        return table

    def recall_matrix(self, by: str) -> np.ndarray:
        """Recall per (row, SNR), NaN where a cell has no pulse."""
        recall = self.table(by)["recall"]
        return np.array([[np.nan if v is None else v for v in row] for row in recall], dtype=np.float64)

    @property
    def recall(self) -> float:
        return float(self.pulse_hit.mean()) if self.pulse_hit.size else 1.0

    def background_false_regions(self) -> dict:
        """False regions farther than ``ATTRIBUTION_REACH`` from every pulse, per SNR, with the
        samples analysed (a false-alarm rate on noise that holds no pulse nearby)."""
        out = {}
        for snr in self.config.snrs_db:
            count = int(np.sum((self.false_shape < 0) & (self.false_snr == snr)))
            samples = sum(v for (s, _, _), v in self.samples.items() if s == snr)
            out[f"{snr:g}"] = {"count": count, "samples": int(samples),
                               "per_million_samples": round(count / samples * 1e6, 3) if samples else None}
        return out

    def missed(self, limit: int = 50) -> list[dict]:
        """Examples of missed pulses (up to ``limit``), highest SNR first."""
        misses = np.flatnonzero(~self.pulse_hit)
        misses = misses[np.argsort(-self.pulse_snr[misses], kind="stable")][:limit]
        return [{"shape": self.config.shapes[self.pulse_shape[i]].name, "snr_db": float(self.pulse_snr[i]),
                 "length": int(self.pulse_length[i]), "condition": CONDITIONS[self.pulse_condition[i]],
                 "polarity": int(self.pulse_polarity[i]), "truth_length": int(self.pulse_truth_length[i]),
                 "best_iou": round(float(self.pulse_iou[i]), 3)} for i in misses]

    def to_json(self) -> dict:
        return {"config": self.config.to_dict(), "min_gap": self.min_gap, "min_iou": MIN_IOU,
                "label_fraction": LABEL_FRACTION, "captures": self.captures,
                "pulses": int(self.pulse_hit.size), "found": int(self.pulse_hit.sum()),
                "recall": round(self.recall, 4), "truncated_pulses": int(self.pulse_truncated.sum()),
                "shapes": [shape.to_dict() for shape in self.config.shapes],
                "lengths": list(self.config.lengths), "conditions": list(CONDITIONS),
                "maps": {by: self.table(by) for by in self.ROWS},
                "background_false_regions": self.background_false_regions(),
                "missed_examples": self.missed()}


def run_atlas(detect: Detector, config: AtlasConfig | None = None, min_gap: int = DEFAULT_MIN_GAP,
              batch_samples: int = 1_000_000, batch_captures: int = 256,
              progress: Callable[[int, int], None] | None = None) -> AtlasResult:
    """Run ``detect`` over the atlas in batches (about ``batch_samples`` samples or
    ``batch_captures`` captures per call) and score every pulse. ``min_gap`` is the detector's
    merge gap, applied to the truth events as well. ``progress(captures, samples)`` is called
    after each batch."""
    config = config or AtlasConfig()
    columns: dict[str, list] = {key: [] for key in (
        "shape", "snr", "length", "condition", "polarity", "truth_length", "truncated", "hit", "iou", "onset")}
    false: dict[str, list] = {"shape": [], "snr": [], "length": [], "condition": []}
    samples: dict = {}
    done = [0, 0]

    def flush(batch: list[Capture]) -> None:
        if not batch:
            return
        predicted = list(detect([capture.signal for capture in batch]))
        if len(predicted) != len(batch):
            raise ValueError(f"detector returned {len(predicted)} results for {len(batch)} signals")
        for capture, regions in zip(batch, predicted):
            result = score_capture(capture, regions, min_gap)
            for pulse, hit, iou in zip(capture.pulses, result.hit, result.iou):
                columns["shape"].append(pulse.shape_index)
                columns["snr"].append(capture.snr_db)
                columns["length"].append(capture.length)
                columns["condition"].append(capture.condition)
                columns["polarity"].append(pulse.polarity)
                columns["truth_length"].append(pulse.end - pulse.start)
                columns["truncated"].append(pulse.truncated)
                columns["hit"].append(bool(hit))
                columns["iou"].append(float(iou))
                columns["onset"].append(pulse.onset)
            for owner in result.false_owner.tolist():
                false["shape"].append(capture.pulses[owner].shape_index if owner >= 0 else -1)
                false["snr"].append(capture.snr_db)
                false["length"].append(capture.length)
                false["condition"].append(capture.condition)
            key = (capture.snr_db, capture.length, capture.condition)
            samples[key] = samples.get(key, 0) + capture.length
            done[0] += 1
            done[1] += capture.length
        if progress is not None:
            progress(done[0], done[1])

    batch: list[Capture] = []
    size = 0
    for capture in iter_captures(config):
        if batch and (size + capture.length > batch_samples or len(batch) >= batch_captures):
            flush(batch)
            batch, size = [], 0
        batch.append(capture)
        size += capture.length
    flush(batch)

    def array(values, dtype):
        return np.asarray(values, dtype=dtype)

    return AtlasResult(
        config=config, min_gap=int(min_gap),
        pulse_shape=array(columns["shape"], np.int64), pulse_snr=array(columns["snr"], np.float64),
        pulse_length=array(columns["length"], np.int64), pulse_condition=array(columns["condition"], np.int64),
        pulse_polarity=array(columns["polarity"], np.int64),
        pulse_truth_length=array(columns["truth_length"], np.int64),
        pulse_truncated=array(columns["truncated"], bool), pulse_hit=array(columns["hit"], bool),
        pulse_iou=array(columns["iou"], np.float64), pulse_onset=array(columns["onset"], np.float64),
        false_shape=array(false["shape"], np.int64), false_snr=array(false["snr"], np.float64),
        false_length=array(false["length"], np.int64), false_condition=array(false["condition"], np.int64),
        samples=samples, captures=done[0])


# --------------------------------------------------------------------------- detectors

def segmenter_detector(segmenter) -> Detector:
    """The served segmenter (``pdseg.pipeline.Segmenter``) as a detector."""
    def detect(signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [result.regions for result in segmenter.analyse(list(signals))]
    return detect


def classical_detector(k: float, min_gap: int = DEFAULT_MIN_GAP) -> Detector:
    """The classical baseline (``training.classical.detect``: high-pass, ``k`` MAD sigmas)."""
    from training import classical

    def detect(signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [classical.detect(signal, k, min_gap) for signal in signals]
    return detect
