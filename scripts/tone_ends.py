"""A strong stationary tone at a capture's ends: what the tone step leaves there, and the regions
the served model reports, with the strong tones' end fit (as served) and without it.

    python scripts/tone_ends.py

1. Conditioning alone: a tone of 30 noise sigmas (rms) at six frequencies, steady and with 50 %
   amplitude modulation at 0.002 cycles per sample, on a carrier of 7e5 with unit white noise,
   7,920 samples, three draws each: the largest difference between the conditioned capture and
   the same capture conditioned without its tone, by distance from the nearer end.
2. The served model on PD-free captures: one steady tone (amplitude 10, 30 or 100 noise sigmas)
   at five frequencies in white noise, with and without a carrier, 7,920 and 100,000 samples,
   two draws each (120 captures): regions within 300 samples of an end, and elsewhere.
3. The same with 1/f noise (0.5-1.5 sigmas) beside the white noise, a tone of 2-30 sigmas at a
   random frequency with random amplitude modulation, half of them on a carrier (128 captures).

"Without" sets ``tones.STRONG_TONES`` to infinity: the refiltered band alone at every end.
"""
from __future__ import annotations

import math
import time

import _bootstrap
import numpy as np

from evaluate import served_segmenter
from pdseg import preprocess, tones
from training import synthetic

DISTANCES = (0, 25, 50, 100, 150, 200, 300)  # samples from the nearer end: the table's bins
FREQUENCIES = (0.0085, 0.02, 0.05, 0.1, 0.25, 0.45)
END_REACH = 300  # a region starting or ending this close to an end is an end region


def with_and_without_fit(function):
    """``function()`` as served and with the end fit off, in that order."""
    served = function()
    strong = tones.STRONG_TONES
    tones.STRONG_TONES = math.inf
    try:
        return served, function()
    finally:
        tones.STRONG_TONES = strong


def conditioning_table() -> list[str]:
    lines = ["| tone (30 sigmas rms) | end fit | " + " | ".join(
        f"{low}-{high}" for low, high in zip(DISTANCES, DISTANCES[1:])) + " |",
        "|---|---|" + "---|" * (len(DISTANCES) - 1)]
    length = 7920
    time_axis = np.arange(length, dtype=np.float64)
    for depth in (0.0, 0.5):
        worst = {True: np.zeros(len(DISTANCES) - 1), False: np.zeros(len(DISTANCES) - 1)}
        rng = np.random.default_rng(12)
        for frequency in FREQUENCIES:
            for _ in range(3):
                envelope = 1.0 + depth * np.sin(2 * np.pi * 0.002 * time_axis + rng.uniform(0, 6))
                tone = math.sqrt(2.0) * 30.0 * envelope * np.sin(2 * np.pi * frequency * time_axis + rng.uniform(0, 6))
                kept = rng.normal(size=length) + 7e5 * np.sin(2 * np.pi * time_axis / rng.uniform(2500, 4500)
                                                               + rng.uniform(0, 6))
                truth = preprocess.condition(kept).filtered
                for fitted, conditioned in zip((True, False), with_and_without_fit(
                        lambda: preprocess.condition(kept + tone).filtered)):
                    left = np.abs(conditioned - truth)
                    nearer = np.maximum(left, left[::-1])
                    worst[fitted] = np.maximum(worst[fitted], [nearer[low:high].max() for low, high in
                                                               zip(DISTANCES, DISTANCES[1:])])
        for fitted in (True, False):
            lines.append(f"| {'modulated' if depth else 'steady'} | {'yes' if fitted else 'no'} | "
                         + " | ".join(f"{value:.2f}" for value in worst[fitted]) + " |")
    return lines


def region_counts(segmenter, signals: list[np.ndarray]) -> tuple[int, int]:
    at_ends = elsewhere = 0
    for signal, result in zip(signals, segmenter.analyse(signals)):
        for start, end in result.regions.tolist():
            if start < END_REACH or end > signal.size - END_REACH:
                at_ends += 1
            else:
                elsewhere += 1
    return at_ends, elsewhere


def steady_tones(rng: np.random.Generator) -> list[np.ndarray]:
    signals = []
    for length in (7920, 100_000):
        time_axis = np.arange(length, dtype=np.float64)
        for frequency in FREQUENCIES[:5]:
            for amplitude in (10.0, 30.0, 100.0):
                for carrier in (0.0, 2e3):
                    for _ in range(2):
                        signals.append(rng.normal(size=length)
                                       + amplitude * np.sin(2 * np.pi * frequency * time_axis + rng.uniform(0, 6))
                                       + carrier * np.sin(2 * np.pi * time_axis / 3333.0 + rng.uniform(0, 6)))
    return signals


def tones_in_coloured_noise(rng: np.random.Generator) -> list[np.ndarray]:
    signals = []
    for length in (7920, 50_000):
        time_axis = np.arange(length, dtype=np.float64)
        for amplitude in (2.0, 4.0, 10.0, 30.0):
            for draw in range(16):
                envelope = 1.0 + 0.5 * rng.uniform(0, 1) * np.sin(2 * np.pi * rng.uniform(1e-4, 2e-3) * time_axis
                                                                  + rng.uniform(0, 6))
                tone = amplitude * envelope * np.sin(2 * np.pi * rng.uniform(0.008, 0.45) * time_axis
                                                     + rng.uniform(0, 6))
                carrier = (draw % 2) * 2e3 * np.sin(2 * np.pi * time_axis / rng.uniform(2500, 4500) + rng.uniform(0, 6))
                signals.append(rng.normal(size=length) + rng.uniform(0.5, 1.5) * synthetic._pink_noise(rng, length) + tone + carrier)
    return signals


def main() -> None:
    _bootstrap.command_line(__doc__)
    started = time.time()
    print("1. Conditioning: the largest difference (noise sigmas) from the capture conditioned without "
          "its tone, by samples from the nearer end (6 frequencies x 3 draws)")
    print("\n".join(conditioning_table()))
    segmenter, _ = served_segmenter(_bootstrap.ROOT / "model_store" / "weights")
    print("\n| PD-free captures | captures | end fit | regions within 300 samples of an end | elsewhere |")
    print("|---|---|---|---|---|")
    for name, make in (("steady tone of 10-100 sigmas, white noise", steady_tones),
                       ("tone of 2-30 sigmas, 1/f and white noise", tones_in_coloured_noise)):
        signals = make(np.random.default_rng(9))
        for fitted, counts in zip((True, False), with_and_without_fit(lambda: region_counts(segmenter, signals))):
            print(f"| {name} | {len(signals)} | {'yes' if fitted else 'no'} | {counts[0]} | {counts[1]} |")
    print(f"\nProduced by `python scripts/tone_ends.py` in {time.time() - started:.1f} s.")


if __name__ == "__main__":
    main()
