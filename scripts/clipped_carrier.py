"""The served model on captures whose carrier a limiter clips flat: what giving its plateaus back
the carrier's course before filtering (``pdseg.limiter.restore``) changes.

    python scripts/clipped_carrier.py                 # prints; writes the model card's section
    python scripts/clipped_carrier.py --no-write

A carrier of 3,333.3 samples per cycle, 3e4 to 1e6 times the noise, is clipped flat at a half
to 0.95 of its amplitude by a limiter ahead of the digitiser; white noise (one unit) and PD
pulses (rise 1, decay 3 samples, 30 noise units, either polarity, at random places, some on
the plateaus and some on the flanks) are added after it. Per row, PD-free captures (regions
per cycle) and captures with PD (pulses found: a region holds the pulse's onset; extra: the
regions that hold none), with the step and without it ("as recorded"). The last row is an
unclipped carrier, which the step must leave alone. Then the CPU time of the step on the
requests that make it work hardest (bounded work). The signals come from this file, not from
a training generator (seeded).
"""
from __future__ import annotations

import platform
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import card_section_command, regions_of
from pdseg import preprocess

SEED = 20261208
PERIOD = 3333.3
LENGTH = 40_000
CAPTURES = 4
PULSES_PER_CAPTURE = 24
PULSE_UNITS = 30.0
AMPLITUDES = (3e4, 3e5, 1e6)  # noise units
CLIP_LEVELS = (0.5, 0.8, 0.95)  # of the amplitude
UNCLIPPED = (3e5, 1.0)


def capture(rng: np.random.Generator, amplitude: float, clip: float,
            with_pd: bool) -> tuple[np.ndarray, list[int], list[bool]]:
    """One capture, the onsets of its pulses and whether each lies on a plateau."""
    n = np.arange(LENGTH)
    carrier = amplitude * np.sin(2 * np.pi * n / PERIOD + rng.uniform(0, 2 * np.pi))
    level = clip * amplitude
    signal = np.clip(carrier, -level, level) + rng.normal(size=LENGTH)
    onsets, on_plateau = [], []
    if with_pd:
        shape = np.exp(-np.arange(24) / 3.0) - np.exp(-np.arange(24) / 1.0)
        shape /= shape.max()
        slots = np.arange(100, LENGTH - 100, 200)
        for onset in np.sort(rng.choice(slots, PULSES_PER_CAPTURE, replace=False)) + rng.integers(0, 100, PULSES_PER_CAPTURE):
            signal[onset: onset + shape.size] += rng.choice([-1.0, 1.0]) * PULSE_UNITS * shape
            onsets.append(int(onset))
            on_plateau.append(bool(np.all(np.abs(carrier[onset: onset + shape.size]) >= level)))
    return signal, onsets, on_plateau


def rows(segmenter, seed: int) -> list[dict]:
    table = []
    cases = [(a, c) for a in AMPLITUDES for c in CLIP_LEVELS] + [UNCLIPPED]
    for index, (amplitude, clip) in enumerate(cases):
        rng = np.random.default_rng((seed, index))
        row = {"amplitude": amplitude, "clip": clip, "pulses": 0, "on_plateau": 0, "restored": 0, "restored_pd": 0}
        for suffix in ("with", "without"):
            row |= {f"false_{suffix}": 0, f"found_{suffix}": 0, f"plateau_found_{suffix}": 0, f"extra_{suffix}": 0}
        for _ in range(CAPTURES):
            free, _, _ = capture(rng, amplitude, clip, with_pd=False)
            signal, onsets, on_plateau = capture(rng, amplitude, clip, with_pd=True)
            row["pulses"] += len(onsets)
            row["on_plateau"] += sum(on_plateau)
            for suffix, restore in (("with", True), ("without", False)):
                conditioned = preprocess.condition(free, restore_clipped=restore)
                row["restored"] += restore and conditioned.clipped is not None
                row[f"false_{suffix}"] += len(regions_of(segmenter, conditioned))
                conditioned = preprocess.condition(signal, restore_clipped=restore)
                row["restored_pd"] += restore and conditioned.clipped is not None
                regions = regions_of(segmenter, conditioned).tolist()
                found = [any(start <= onset + 1 < end for start, end in regions) for onset in onsets]
                row[f"found_{suffix}"] += sum(found)
                row[f"plateau_found_{suffix}"] += sum(f for f, p in zip(found, on_plateau) if p)
                row[f"extra_{suffix}"] += sum(not any(start <= onset + 1 < end for onset in onsets)
                                              for start, end in regions)
        table.append(row)
    return table


def work(seed: int) -> list[tuple[str, int, float]]:
    """CPU seconds of :func:`pdseg.limiter.restore` on the requests that make it work hardest:
    the largest signal a request may carry, clipped, with a pulse on every sixth corner's flank
    (a second chance each), and a request of as many signals of a short period as the work
    limit admits. (description, plateaus restored, seconds)."""
    from pdseg import limiter
    from pdseg.decode import WorkLimits

    limits = WorkLimits()
    rng = np.random.default_rng(seed)
    largest = limits.max_work - limits.signal_overhead
    rows = []
    for period in (3333.3, 1500.3):
        n = np.arange(largest)
        carrier = 3e5 * np.sin(2 * np.pi * n / period)
        signal = np.clip(carrier, -1.5e5, 1.5e5) + rng.normal(size=largest)
        corners = np.flatnonzero(np.diff((np.abs(carrier) >= 1.5e5).astype(np.int8)) != 0)
        for corner in corners[6::6]:
            towards = -1 if abs(carrier[corner + 5]) >= 1.5e5 else 1
            signal[corner + towards * 12 - 4: corner + towards * 12 + 4] += 30.0 * np.hanning(8)
        started = time.process_time()
        restored = limiter.restore(signal)
        rows.append((f"one signal of {largest:,} samples, period {period:g}, a pulse on every sixth flank",
                     0 if restored is None else len(restored.plateaus), time.process_time() - started))
    length = 150_000
    count = limits.max_work // (length + limits.signal_overhead)
    n = np.arange(length)
    signals = [np.clip(800 * np.sin(2 * np.pi * n / 150.3 + k), -400, 400) + rng.normal(size=length) for k in range(count)]
    started = time.process_time()
    restored = [limiter.restore(signal) for signal in signals]
    rows.append((f"{count} signals of {length:,} samples, period 150.3 (an adversary's)",
                 sum(0 if r is None else len(r.plateaus) for r in restored), time.process_time() - started))
    return rows


def card_lines(table: list[dict], seconds: float) -> list[str]:
    cycles = CAPTURES * LENGTH / PERIOD
    lines = ["| carrier (noise units) | clipped at | captures restored, PD-free / with PD | PD-free: regions per cycle, restored "
             "| (as recorded) | pulses found, restored | (as recorded) | on the plateaus, restored | (as recorded) "
             "| regions holding no pulse, restored | (as recorded) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table:
        clip = "not clipped" if row["clip"] >= 1.0 else f"{row['clip']:g}"
        lines.append(
            f"| {row['amplitude']:.0e} | {clip} | {row['restored']} / {row['restored_pd']} of {CAPTURES} "
            f"| **{row['false_with'] / cycles:.2f}** | {row['false_without'] / cycles:.2f} "
            f"| **{row['found_with']} of {row['pulses']}** | {row['found_without']} of {row['pulses']} "
            f"| **{row['plateau_found_with']} of {row['on_plateau']}** | {row['plateau_found_without']} of {row['on_plateau']} "
            f"| **{row['extra_with']}** | {row['extra_without']} |")
    lines += ["", "| the step's work on (one core) | plateaus restored | CPU s |", "|---|---|---|"]
    lines += [f"| {what} | {plateaus} | {cpu:.2f} |" for what, plateaus, cpu in work(SEED)]
    lines += ["", f"{CAPTURES} captures of {LENGTH:,} samples ({LENGTH / PERIOD:.1f} cycles) per row and kind, "
              f"{PULSES_PER_CAPTURE} pulses of {PULSE_UNITS:g} noise units in each capture with PD, seed {SEED}. "
              f"Produced by `python scripts/clipped_carrier.py` in {seconds:.1f} s on {platform.machine()}, "
              f"torch {torch.__version__}."]
    return lines


def main() -> None:
    card_section_command(__doc__.splitlines()[0], "clipped-carrier",
                         lambda segmenter, started: card_lines(rows(segmenter, SEED), time.time() - started))


if __name__ == "__main__":
    main()
