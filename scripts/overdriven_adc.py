"""The served model on captures whose ADC its carrier overdrives: what leaving the rails out of
the noise estimate (``pdseg.preprocess.rail_samples``) changes.

    python scripts/overdriven_adc.py                 # prints; writes the model card's section
    python scripts/overdriven_adc.py --no-write

A 16-bit ADC (rails at -32,768 and 32,767 steps) records a carrier of 3,333.3 samples per cycle
at 0.95-2 times its full scale, with 1 or 3 steps of white noise before rounding; PD pulses of
30 noise units (rise 1, decay 3 samples) at random phases, of which those within 4 samples of a
rail are left out of the count (the ADC destroyed them). Per row, PD-free captures (regions per
10,000 samples) and captures with PD (pulses found: a region holds the pulse's onset), with the
step and without it. The signals come from this file, not from a training generator (seeded).
"""
from __future__ import annotations

import platform
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import card_section_command, regions_of
from pdseg import preprocess

SEED = 20261207
FULL_SCALE = 32767.0
PERIOD = 3333.3
LENGTH = 20_000
CAPTURES = 8
PULSES_PER_CAPTURE = 12
OVERDRIVES = (0.95, 1.05, 1.2, 1.5, 2.0)
NOISE_STEPS = (1.0, 3.0)
PULSE_UNITS = 30.0


def capture(rng: np.random.Generator, overdrive: float, noise_steps: float,
            with_pd: bool) -> tuple[np.ndarray, list[int]]:
    """One digitised capture and the onsets of the pulses the rails left whole."""
    n = np.arange(LENGTH)
    analogue = overdrive * FULL_SCALE * np.sin(2 * np.pi * n / PERIOD + rng.uniform(0, 2 * np.pi))
    analogue += noise_steps * rng.normal(size=LENGTH)
    onsets = []
    if with_pd:
        shape = np.exp(-np.arange(24) / 3.0) - np.exp(-np.arange(24) / 1.0)
        shape /= shape.max()
        for onset in np.sort(rng.choice(np.arange(50, LENGTH - 50, 60), PULSES_PER_CAPTURE, replace=False)):
            analogue[onset: onset + shape.size] += rng.choice([-1.0, 1.0]) * PULSE_UNITS * noise_steps * shape
            onsets.append(int(onset))
    digitised = np.clip(np.round(analogue), -FULL_SCALE - 1, FULL_SCALE)
    on_rail = (digitised >= FULL_SCALE) | (digitised <= -FULL_SCALE - 1)
    return digitised, [onset for onset in onsets if not on_rail[onset - 4: onset + 28].any()]


def rows(segmenter, seed: int) -> list[dict]:
    table = []
    for index, (overdrive, noise_steps) in enumerate((o, s) for s in NOISE_STEPS for o in OVERDRIVES):
        rng = np.random.default_rng((seed, index))
        row = {"overdrive": overdrive, "noise_steps": noise_steps, "pulses": 0,
               "found_with": 0, "found_without": 0, "false_with": 0, "false_without": 0}
        for _ in range(CAPTURES):
            free, _ = capture(rng, overdrive, noise_steps, with_pd=False)
            signal, onsets = capture(rng, overdrive, noise_steps, with_pd=True)
            row["pulses"] += len(onsets)
            for suffix, leave_out in (("with", True), ("without", False)):
                row[f"false_{suffix}"] += len(regions_of(segmenter, preprocess.condition(free, leave_out_rails=leave_out)))
                regions = regions_of(segmenter, preprocess.condition(signal, leave_out_rails=leave_out))
                row[f"found_{suffix}"] += sum(any(start <= onset + 1 < end for start, end in regions.tolist())
                                              for onset in onsets)
        table.append(row)
    return table


def card_lines(table: list[dict], seconds: float) -> list[str]:
    samples = CAPTURES * LENGTH / 1e4
    lines = ["| carrier / full scale | noise (steps) | PD-free: regions per 10,000 samples, rails left out | (in) "
             "| pulses found, rails left out | (in) |", "|---|---|---|---|---|---|"]
    for row in table:
        lines.append(f"| {row['overdrive']:g} | {row['noise_steps']:g} | **{row['false_with'] / samples:.2f}** | "
                     f"{row['false_without'] / samples:.2f} | **{row['found_with']} of {row['pulses']}** | "
                     f"{row['found_without']} of {row['pulses']} |")
    lines += ["", f"{CAPTURES} captures of {LENGTH:,} samples per row and kind, seed {SEED}. Produced by "
              f"`python scripts/overdriven_adc.py` in {seconds:.1f} s on {platform.machine()}, torch {torch.__version__}."]
    return lines


def main() -> None:
    card_section_command(__doc__.splitlines()[0], "overdriven-adc",
                         lambda segmenter, started: card_lines(rows(segmenter, SEED), time.time() - started))


if __name__ == "__main__":
    main()
