"""The served model on smooth pulses wider than the network's eye (a UHF sensor's envelope
detector, a band-limited front end sampled fast): what the slower view (``pdseg.slow``) changes.

    python scripts/smooth_pulses.py                 # prints; writes the model card's section
    python scripts/smooth_pulses.py --no-write

Gaussian bumps of sigma 4-32 samples, either polarity, five to a capture of 20,000 samples of
unit white noise (no carrier), at 20 / 26 / 32 dB peak over the noise; a bump is found when a
region matches it at an IoU of 0.3 or more (its truth: where it stands at 10 % of its peak).
Beside them, PD-free captures of white noise and of white noise with an offset of 50 units:
regions per million samples. Each with the slower view and without it. The signals come from
this file, not from a training generator (seeded).
"""
from __future__ import annotations

import platform
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import card_section_command
from pdseg import preprocess

SEED = 20261208
LENGTH = 20_000
CAPTURES = 8
PULSES_PER_CAPTURE = 5
SIGMAS = (4, 8, 12, 16, 24, 32, 48, 64)
SNRS_DB = (20.0, 26.0, 32.0)
FREE_CAPTURES = 25


def bump(sigma: float, fraction: float) -> np.ndarray:
    t = np.arange(-4 * sigma - 1, 4 * sigma + 2) - fraction
    return np.exp(-0.5 * (t / sigma) ** 2)


def capture(rng: np.random.Generator, sigma: float, snr_db: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    signal, truths = rng.normal(size=LENGTH), []
    for number in range(PULSES_PER_CAPTURE):
        values = rng.choice([-1.0, 1.0]) * bump(sigma, rng.uniform())
        first = int((number + 0.5) * LENGTH / PULSES_PER_CAPTURE - values.size / 2 + rng.integers(-100, 100))
        signal[first: first + values.size] += 10 ** (snr_db / 20) * values
        standing = np.flatnonzero(np.abs(values) >= 0.1)
        truths.append((first + int(standing[0]), first + int(standing[-1]) + 1))
    return signal, truths


def regions_of(segmenter, signal: np.ndarray, slow_view: bool) -> np.ndarray:
    conditioned = preprocess.condition(signal, slow_view=slow_view)
    return segmenter.regions(segmenter.probabilities([conditioned])[0], None, conditioned)


def found(regions: np.ndarray, truth: tuple[int, int]) -> bool:
    start, end = truth
    overlap = np.clip(np.minimum(regions[:, 1], end) - np.maximum(regions[:, 0], start), 0, None)
    union = np.maximum(regions[:, 1], end) - np.minimum(regions[:, 0], start)
    return bool(len(regions)) and float((overlap / union).max()) >= 0.3


def tables(segmenter, seed: int) -> tuple[list[dict], list[dict]]:
    rows = []
    for index, (sigma, snr_db) in enumerate((s, d) for s in SIGMAS for d in SNRS_DB):
        rng = np.random.default_rng((seed, index))
        row = {"sigma": sigma, "snr_db": snr_db, "pulses": 0, "with": 0, "without": 0}
        for _ in range(CAPTURES):
            signal, truths = capture(rng, sigma, snr_db)
            row["pulses"] += len(truths)
            for key, slow_view in (("with", True), ("without", False)):
                regions = regions_of(segmenter, signal, slow_view)
                row[key] += sum(found(regions, truth) for truth in truths)
        rows.append(row)
    free = []
    for index, offset in enumerate((0.0, 50.0)):
        rng = np.random.default_rng((seed, 1000 + index))
        row = {"offset": offset, "samples": FREE_CAPTURES * LENGTH, "with": 0, "without": 0}
        for _ in range(FREE_CAPTURES):
            signal = rng.normal(size=LENGTH) + offset
            for key, slow_view in (("with", True), ("without", False)):
                row[key] += len(regions_of(segmenter, signal, slow_view))
        free.append(row)
    return rows, free


def card_lines(rows: list[dict], free: list[dict], seconds: float) -> list[str]:
    lines = ["| sigma (samples) | " + " | ".join(f"{snr:g} dB, with the view | (without)" for snr in SNRS_DB) + " |",
             "|---|" + "---|---|" * len(SNRS_DB)]
    for sigma in SIGMAS:
        cells = []
        for snr in SNRS_DB:
            row = next(r for r in rows if r["sigma"] == sigma and r["snr_db"] == snr)
            cells += [f"**{row['with']} of {row['pulses']}**", f"{row['without']}"]
        lines.append(f"| {sigma} | " + " | ".join(cells) + " |")
    lines += ["", "| PD-free white noise | samples | regions per million samples, with the view | (without) |",
              "|---|---|---|---|"]
    for row in free:
        lines.append(f"| offset {row['offset']:g} units | {row['samples']:,} | **{row['with'] / row['samples'] * 1e6:.2f}** "
                     f"| {row['without'] / row['samples'] * 1e6:.2f} |")
    lines += ["", f"{CAPTURES} captures of {LENGTH:,} samples with {PULSES_PER_CAPTURE} bumps each per cell, seed {SEED}. "
              f"Produced by `python scripts/smooth_pulses.py` in {seconds:.1f} s on {platform.machine()}, "
              f"torch {torch.__version__}."]
    return lines


def main() -> None:
    card_section_command(__doc__.splitlines()[0], "smooth-pulses",
                         lambda segmenter, started: card_lines(*tables(segmenter, SEED), time.time() - started))


if __name__ == "__main__":
    main()
