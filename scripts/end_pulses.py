"""The served model on pulses cut by a capture's first or last sample: what taking them out
before the carrier filter and putting them back as it gives a pulse away from the ends
(``pdseg.preprocess.end_pulses``) changes.

    python scripts/end_pulses.py                 # prints; writes the model card's section
    python scripts/end_pulses.py --no-write

Pulses: a one-sample spike, exponentials decaying over 1.5 and 3 samples, and a damped
oscillation (0.25 cycles per sample, decaying over 3) whose onset lies before the capture, each
cut so that its largest sample is the capture's first or last; 10 or 31.6 noise units high (20
and 30 dB); on white noise alone, or on a carrier of 1e5 noise units and 3,333 samples a cycle
with a tone of 3 noise units at 0.1 cycles per sample. Per row, 24 captures of 4,000 samples,
the pulse at the first sample in half of them and at the last in the other half, either sign,
with the step (served) and without it: pulses found (a region holds the end sample), found with
the right polarity (the sign of the region's largest conditioned sample, as the answer gives it;
not for the oscillation, whose largest lobe may be either) and the regions' median length.
Then PD-free captures of both generators, 8,192 samples, white noise and with interference:
regions within 64 samples of an end, and the captures where the step took a pulse.
The pulse signals come from this file, not from a training generator (seeded).
"""
from __future__ import annotations

import platform
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import card_section_command, regions_of
from pdseg import preprocess
from training import independent, synthetic

SEED = 20261208
LENGTH = 4000
CAPTURES = 24
PERIOD = 3333.0
LEVELS = (10.0, 31.6)
SHAPES = ("spike", "decay 1.5", "decay 3", "oscillation")
FREE_CAPTURES = 40
FREE_LENGTH = 8192
END_REACH = 64


def cut_pulse(shape: str) -> np.ndarray:
    """The pulse from its largest sample on, largest sample first, peak 1."""
    samples = np.arange(24, dtype=np.float64)
    if shape == "spike":
        return np.r_[1.0, np.zeros(samples.size - 1)]
    if shape == "oscillation":
        return np.exp(-samples / 3.0) * np.cos(2 * np.pi * 0.25 * samples)
    return np.exp(-samples / float(shape.split()[1]))


def background(rng: np.random.Generator, with_carrier: bool) -> np.ndarray:
    samples = np.arange(LENGTH)
    noise = rng.normal(size=LENGTH)
    if not with_carrier:
        return noise
    return (noise + 1e5 * np.sin(2 * np.pi * (samples / PERIOD + rng.uniform()))
            + 3.0 * np.sin(2 * np.pi * (0.1 * samples + rng.uniform())))


def at_the_end(segmenter, conditioned, at_last: bool) -> tuple[int, int] | None:
    """The region holding the end sample (start, end), or None."""
    for start, end in regions_of(segmenter, conditioned).tolist():
        if (end == conditioned.length) if at_last else (start == 0):
            return start, end
    return None


def pulse_rows(segmenter, seed: int) -> list[dict]:
    table = []
    for index, (shape, level, with_carrier) in enumerate(
            (s, lv, c) for c in (False, True) for lv in LEVELS for s in SHAPES):
        rng = np.random.default_rng((seed, index))
        row = {"shape": shape, "level": level, "carrier": with_carrier, "pulses": CAPTURES}
        for suffix, take_out in (("with", True), ("without", False)):
            row[f"found_{suffix}"], row[f"right_{suffix}"], row[f"lengths_{suffix}"] = 0, 0, []
        for number in range(CAPTURES):
            signal = background(rng, with_carrier)
            sign = 1.0 if number % 4 < 2 else -1.0
            at_last = bool(number % 2)
            pulse = sign * level * cut_pulse(shape)
            if at_last:
                signal[-pulse.size:] += pulse[::-1]
            else:
                signal[: pulse.size] += pulse
            for suffix, take_out in (("with", True), ("without", False)):
                conditioned = preprocess.condition(signal, take_out_end_pulses=take_out)
                region = at_the_end(segmenter, conditioned, at_last)
                if region is None:
                    continue
                row[f"found_{suffix}"] += 1
                row[f"lengths_{suffix}"].append(region[1] - region[0])
                values = conditioned.filtered[region[0]: region[1]]
                row[f"right_{suffix}"] += int(np.sign(values[np.argmax(np.abs(values))]) == sign)
        table.append(row)
    return table


def free_rows(segmenter, seed: int) -> list[dict]:
    table = []
    for generator in ("training", "independent"):
        for interference in (False, True):
            if generator == "training":
                rng = np.random.default_rng((seed, 99, int(interference)))
                signals = [synthetic.make_capture(rng, FREE_LENGTH, pd_free=True, interference=interference,
                                                  carrier=True, quantised=False).signal
                           for _ in range(FREE_CAPTURES)]
            else:
                signals = [capture.signal for capture in
                           independent.pd_free_tier(interference, "test", FREE_CAPTURES, FREE_LENGTH)]
            row = {"generator": generator, "interference": interference, "cut": 0, "with": 0, "without": 0}
            for signal in signals:
                for suffix, take_out in (("with", True), ("without", False)):
                    conditioned = preprocess.condition(signal, take_out_end_pulses=take_out)
                    row["cut"] += bool(conditioned.end_pulses)
                    regions = regions_of(segmenter, conditioned)
                    row[suffix] += sum(start < END_REACH or end > signal.size - END_REACH
                                       for start, end in regions.tolist())
            table.append(row)
    return table


def card_lines(pulses: list[dict], free: list[dict], seconds: float) -> list[str]:
    lines = ["| pulse | height (noise units) | background | found, step | (without) | right polarity, step "
             "| (without) | median region length, step | (without) |", "|---|---|---|---|---|---|---|---|---|"]
    for row in pulses:
        polarity = (f"**{row['right_with']}** | {row['right_without']}" if row["shape"] != "oscillation"
                    else "— | —")
        lengths = [f"{np.median(row[key]):g}" if row[key] else "—" for key in ("lengths_with", "lengths_without")]
        lines.append(f"| {row['shape']} | {row['level']:g} | {'carrier and tone' if row['carrier'] else 'white noise'} "
                     f"| **{row['found_with']} of {row['pulses']}** | {row['found_without']} | {polarity} "
                     f"| **{lengths[0]}** | {lengths[1]} |")
    lines += ["", "| PD-free captures | interference | captures with a cut pulse | regions within "
              f"{END_REACH} samples of an end, step | (without) |", "|---|---|---|---|---|"]
    for row in free:
        lines.append(f"| {row['generator']} generator | {'yes' if row['interference'] else 'no'} "
                     f"| {row['cut']} of {FREE_CAPTURES} | **{row['with']}** | {row['without']} |")
    lines += ["", f"{CAPTURES} captures of {LENGTH:,} samples per pulse row, {FREE_CAPTURES} of {FREE_LENGTH:,} per "
              f"PD-free row, seed {SEED}. Produced by `python scripts/end_pulses.py` in {seconds:.1f} s on "
              f"{platform.machine()}, torch {torch.__version__}."]
    return lines


def main() -> None:
    card_section_command(__doc__.splitlines()[0], "end-pulses",
                         lambda segmenter, started: card_lines(pulse_rows(segmenter, SEED), free_rows(segmenter, SEED),
                                                               time.time() - started))


if __name__ == "__main__":
    main()
