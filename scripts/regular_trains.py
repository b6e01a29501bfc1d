"""The served model on regular trains of equal transients that no carrier explains, and on PD
that repeats almost as steadily: what the regular-train step (``pdseg.commutation.remove_regular_train``)
takes out and what it leaves.

    python scripts/regular_trains.py                 # prints; writes the model card's section
    python scripts/regular_trains.py --no-write

Two tables, each against the same signals conditioned without the step:
1. Trains (a converter's notches through a sensor that filters the carrier out, a switched-mode
   supply's ringing edges, sharp spikes): regions reported per train transient, with and
   without a carrier, at whole and fractional spacings. None of them is PD.
2. PD-like trains: the same ringing pulse at a steady spacing, its onset jittered and its size
   spread by a normal draw; the pulses found (a region holds the pulse's onset) with and
   without the step. Each of them is PD.

The signals come from this file, not from a training generator (seeded).
"""
from __future__ import annotations

import platform
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import card_section_command, regions_of
from pdseg import preprocess

SEED = 20261206
PULSE = 40
CARRIER_PERIOD = 3333.0
# (kind, capture length, spacing, carrier, captures, noise units)
TRAINS = (
    ("notch", 7920, CARRIER_PERIOD / 6, False, 6),
    ("notch", 40_000, CARRIER_PERIOD / 6, False, 6),
    ("notch", 7920, CARRIER_PERIOD / 6, True, 6),
    ("notch", 40_000, 250.7, False, 6),
    ("ringing", 7920, CARRIER_PERIOD / 6, False, 6),
    ("ringing", 7920, CARRIER_PERIOD / 6, True, 6),
    ("ringing", 40_000, CARRIER_PERIOD / 6, True, 6),
    ("ringing", 7920, 97.3, False, 6),
    ("ringing", 40_000, 250.7, False, 6),
    ("sharp", 7920, CARRIER_PERIOD / 6, False, 6),
    ("sharp", 7920, CARRIER_PERIOD / 6, True, 6),
    ("sharp", 7920, 97.3, False, 6),
    ("sharp", 40_000, 250.7, False, 6),
    ("notch", 16_384, CARRIER_PERIOD / 6, False, 6, 10.0),
    ("ringing", 16_384, 250.7, False, 6, 10.0),
    ("sharp", 16_384, 250.7, False, 6, 10.0),
)
JITTERS = (0.0, 0.5, 1.0, 2.0, 4.0)  # samples, a normal draw's sigma
SIZE_SPREADS = (0.0, 0.1, 0.2, 0.3)  # relative, a normal draw's sigma
PD_CAPTURES = 10


def shape(kind: str, fraction: float) -> np.ndarray:
    """A unit-peak transient of ``kind`` whose onset lies ``fraction`` of a sample after its first sample."""
    u = np.maximum(np.arange(PULSE, dtype=np.float64) - fraction, 0.0)
    if kind == "notch":  # a commutation notch through an HFCT's high-pass: two lobes of opposite sign
        values = -np.gradient(np.exp(-0.5 * ((u - 8.0) / 3.0) ** 2))
    elif kind == "ringing":  # a supply's switching edge ringing in the wiring
        values = np.exp(-u / 5.0) * np.sin(2 * np.pi * 0.15 * u)
    elif kind == "sharp":
        values = np.exp(-u / 3.0) - np.exp(-u / 0.5)
    else:
        raise ValueError(kind)
    return values / np.abs(values).max()


def train_capture(rng: np.random.Generator, kind: str, length: int, spacing: float, carrier: bool,
                  size: float = 20.0, jitter: float = 0.0, size_spread: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """Unit white noise (and a carrier of 10^4) with a transient every ``spacing`` samples, and their onsets."""
    signal = rng.normal(size=length)
    if carrier:
        signal += 1e4 * np.sin(2 * np.pi * np.arange(length) / CARRIER_PERIOD + rng.uniform(0, 2 * np.pi))
    onsets = []
    for at in np.arange(rng.uniform(0, spacing), length - PULSE - 5, spacing):
        onset = at + (rng.normal(0.0, jitter) if jitter else 0.0)
        whole = int(np.floor(onset))
        if whole < 0:
            continue
        amplitude = size * max(0.2, 1.0 + (size_spread * rng.normal() if size_spread else 0.0))
        signal[whole: whole + PULSE] += amplitude * shape(kind, onset - whole)
        onsets.append(whole)
    return signal, onsets


def trains_table(segmenter, seed: int) -> list[dict]:
    rows = []
    for index, (kind, length, spacing, carrier, captures, *height) in enumerate(TRAINS):
        size = height[0] if height else 20.0
        rng = np.random.default_rng((seed, index))
        transients = with_step = without_step = found_trains = 0
        for _ in range(captures):
            signal, onsets = train_capture(rng, kind, length, spacing, carrier, size=size)
            transients += len(onsets)
            served = preprocess.condition(signal)
            with_step += len(regions_of(segmenter, served))
            without_step += len(regions_of(segmenter, preprocess.condition(signal, remove_regular_trains=False)))
            found_trains += served.regular_train is not None
        rows.append({"kind": kind, "size": size, "length": length, "spacing": spacing, "carrier": carrier,
                     "captures": captures,
                     "transients": transients, "regions_without": without_step, "regions_with": with_step,
                     "trains_found": found_trains})
    return rows


def pd_table(segmenter, seed: int) -> list[dict]:
    rows = []
    for index, (jitter, spread) in enumerate((j, s) for j in JITTERS for s in SIZE_SPREADS):
        rng = np.random.default_rng((seed, 100 + index))
        pulses = found_with = found_without = trains = 0
        for _ in range(PD_CAPTURES):
            spacing = rng.uniform(300.0, 1500.0)
            signal, onsets = train_capture(rng, "ringing", 16_384, spacing, False, size=25.0, jitter=jitter,
                                           size_spread=spread)
            served = preprocess.condition(signal)
            for regions, counter in ((regions_of(segmenter, served), "with"),
                                     (regions_of(segmenter, preprocess.condition(signal, remove_regular_trains=False)),
                                      "without")):
                hits = sum(any(start <= onset + 3 < end for start, end in regions.tolist()) for onset in onsets)
                if counter == "with":
                    found_with += hits
                else:
                    found_without += hits
            pulses += len(onsets)
            trains += served.regular_train is not None
        rows.append({"jitter": jitter, "size_spread": spread, "pulses": pulses, "found_without": found_without,
                     "found_with": found_with, "trains_found": trains})
    return rows


def table(header: str, rows: list[str]) -> list[str]:
    """A markdown table: ``header`` (cells between bars) and its rows."""
    return [header, "|" + "---|" * (header.count("|") - 1)] + rows


def card_lines(trains: list[dict], pd_rows: list[dict], seconds: float) -> list[str]:
    lines = ["Regular trains (none of them PD): regions reported, with and without the step; per 6 captures.", ""]
    lines += table("| transient | noise units | capture | spacing (samples) | carrier | train transients "
                   "| regions without the step | regions with it | answers that name a regular train |",
                   [f"| {row['kind']} | {row['size']:g} | {row['length']:,} | {row['spacing']:.1f} "
                    f"| {'yes' if row['carrier'] else 'no'} | {row['transients']} | {row['regions_without']} "
                    f"| **{row['regions_with']}** | {row['trains_found']} |" for row in trains])
    lines += ["", f"PD-like trains (each pulse PD): a ringing pulse at 28 dB every 300-1,500 samples, no carrier, "
              f"its onset jittered and its size spread by normal draws; pulses found, {PD_CAPTURES} captures of 16,384 samples a row.", ""]
    lines += table("| onset jitter (samples) | size spread | pulses | found without the step | found with it "
                   "| answers that name a regular train |",
                   [f"| {row['jitter']:g} | {row['size_spread']:.0%} | {row['pulses']} | {row['found_without']} "
                    f"| **{row['found_with']}** | {row['trains_found']} |" for row in pd_rows])
    lines += ["", f"Seed {SEED}. Produced by `python scripts/regular_trains.py` in {seconds:.1f} s on "
              f"{platform.machine()}, torch {torch.__version__}."]
    return lines


def main() -> None:
    card_section_command(__doc__.splitlines()[0], "regular-trains",
                         lambda segmenter, started: card_lines(trains_table(segmenter, SEED), pd_table(segmenter, SEED),
                                                               time.time() - started))


if __name__ == "__main__":
    main()
