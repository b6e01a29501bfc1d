"""The served model on dense trains of short pulses: a spike or short ringing pulse every few
tens of samples, as a GIS or switchgear sensor records them (no carrier, an ADC grid of one
noise unit), in captures of 256-20,000 samples. Few of its 64-sample blocks are free of a pulse,
which is what the noise estimate has to cope with (docs/model-card.md, Conditioning, "Dense
trains of short pulses"). The pulses come from this file, not from a training generator.

    python scripts/dense_trains.py                 # prints; writes the model card's section
    python scripts/dense_trains.py --weights DIR --no-write

Truth events are the labelled runs joined at the served merge gap, matched one to one at an
IoU of 0.3 (the evaluation's rule, ``training.scoring``).
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import served_segmenter, write_card_section
from training.scoring import EventCounts, match_events, truth_events

SEED = 20261205
SNR_DB = (20.0, 34.0)  # each pulse's peak, drawn uniformly in dB
PULSE_SAMPLES = 40
SPIKES, RINGING = (0, 1), (0, 1, 2)  # the kinds of pulse() drawn
# (name, capture length, pulses, least spacing in samples, kinds, captures)
CASES = (
    ("isolated spikes, 20,000 samples", 20_000, 77, 40, SPIKES, 6),
    ("clustered, 4,000 samples", 4_000, 77, 15, RINGING, 6),
    ("clustered densely, 4,000 samples (150 pulses)", 4_000, 150, 15, RINGING, 6),
    ("clustered, 2,048 samples", 2_048, 40, 15, RINGING, 10),
    ("clustered, 1,024 samples", 1_024, 20, 15, RINGING, 20),
    ("clustered, 512 samples", 512, 10, 15, RINGING, 30),
    ("clustered, 256 samples", 256, 6, 15, RINGING, 30),
)


def pulse(rng: np.random.Generator, kind: int) -> np.ndarray:
    """A unit-peak pulse: a one-sample spike (decay 0.4), a two-sample one (decay 1) or a
    ringing one (0.25 cycles/sample, decay 3), with a sub-sample onset."""
    t = np.maximum(np.arange(PULSE_SAMPLES, dtype=float) - rng.uniform(0.0, 1.0), 0.0)
    if kind == 0:
        waveform = np.exp(-t / 0.4) * (1 - np.exp(-t / 0.2))
    elif kind == 1:
        waveform = np.exp(-t / 1.0) * (1 - np.exp(-t / 0.3))
    else:
        waveform = np.exp(-t / 3.0) * np.sin(2 * np.pi * 0.25 * t) * (1 - np.exp(-t / 0.3))
    return waveform / np.abs(waveform).max()


def add_pulses(rng: np.random.Generator, signal: np.ndarray, onsets, kinds: tuple[int, ...],
               snr_db: tuple[float, float] = SNR_DB) -> tuple[np.ndarray, np.ndarray]:
    """Pulses of ``kinds`` (drawn in turn), either polarity, ``snr_db`` over unit noise, added
    to ``signal`` at ``onsets``; returns the label (where a clean pulse is at 10 % of its peak
    or more) and each pulse's peak sample."""
    mask = np.zeros(signal.size, dtype=bool)
    peaks = []
    for onset in onsets:
        amplitude = 10 ** (rng.uniform(*snr_db) / 20) * rng.choice([-1.0, 1.0])
        waveform = amplitude * pulse(rng, int(rng.choice(kinds)))[: signal.size - onset]
        signal[onset: onset + waveform.size] += waveform
        mask[onset: onset + waveform.size] |= np.abs(waveform) >= 0.1 * abs(amplitude)
        peaks.append(onset + int(np.argmax(np.abs(waveform))))
    return mask, np.array(peaks, dtype=np.int64)


def capture(rng: np.random.Generator, length: int, count: int, spacing: int,
            kinds: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Unit white noise with ``count`` pulses at least ``spacing`` apart, rounded to integers;
    and the label."""
    signal = rng.normal(0.0, 1.0, length)
    onsets: list[int] = []
    for _ in range(100 * count):
        if len(onsets) == count:
            break
        onset = int(rng.integers(4, length - PULSE_SAMPLES - 4))
        if all(abs(onset - other) >= spacing for other in onsets):
            onsets.append(onset)
    mask, _ = add_pulses(rng, signal, onsets, kinds)
    return np.round(signal), mask


def regular_train(rng: np.random.Generator, length: int, spacing: int, snr_db: tuple[float, float],
                  kinds: tuple[int, ...] = RINGING) -> tuple[np.ndarray, np.ndarray]:
    """Unit white noise with a pulse every ``spacing`` samples (±8), rounded to integers; and
    each pulse's peak sample (for the tests)."""
    signal = rng.normal(0.0, 1.0, length)
    onsets = np.arange(spacing // 2, length - 20, spacing)
    onsets = np.maximum(onsets + rng.integers(-8, 9, onsets.size), 0)
    _, peaks = add_pulses(rng, signal, onsets.tolist(), kinds, snr_db)
    return np.round(signal), peaks


def run(segmenter, seed: int = SEED) -> list[dict]:
    rows = []
    for index, (name, length, count, spacing, kinds, captures) in enumerate(CASES):
        rng = np.random.default_rng((seed, index))  # a case's draws do not depend on the others
        drawn = [capture(rng, length, count, spacing, kinds) for _ in range(captures)]
        results = segmenter.analyse([signal for signal, _ in drawn])
        counts = EventCounts()
        for (_, mask), result in zip(drawn, results):
            counts.add(match_events(truth_events(mask, segmenter.min_gap), result.regions))
        plain = [segmenter.condition(np.round(rng.normal(0.0, 1.0, length))).scale for _ in range(captures)]
        rows.append({"case": name, "captures": captures, "precision": counts.precision,
                     "recall": counts.recall, "f1": counts.f1,
                     "noise_scale": float(np.median([r.conditioned.scale for r in results])),
                     "plain_scale": float(np.median(plain))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(_bootstrap.ROOT / "model_store" / "weights"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    started = time.time()
    segmenter, _ = served_segmenter(Path(args.weights))
    rows = run(segmenter)
    lines = ["| case | captures | P | R | F1 | median noise scale | the same noise without pulses |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['captures']} | {r['precision']:.3f} | {r['recall']:.3f} | **{r['f1']:.3f}** | "
              f"{r['noise_scale']:.2f} | {r['plain_scale']:.2f} |" for r in rows]
    lines += ["", f"Pulses of {SNR_DB[0]:.0f}-{SNR_DB[1]:.0f} dB, unit white noise on an integer grid, seed {SEED}. "
              f"Produced by `python scripts/dense_trains.py` in {time.time() - started:.1f} s on "
              f"{platform.machine()}, torch {torch.__version__}."]
    print("\n".join(lines))
    if not args.no_write:
        write_card_section("dense", lines)


if __name__ == "__main__":
    main()
