"""The recall no detector can beat on the pulse atlas's shapes in white noise: a matched filter
that knows each pulse's exact shape, polarity and sub-sample onset, at a given false-alarm rate.

    python scripts/detection_bound.py              # prints; writes the model card's bound section
    python scripts/detection_bound.py --no-write

For white noise of rms 1 and a pulse ``A w`` (``w`` sampled with its peak magnitude 1, ``A`` the
peak SNR as an amplitude ratio), the matched filter's output at the pulse is ``A ||w||`` in units
of its own noise, so with a threshold ``t`` it finds the pulse with probability
``Q(t - A ||w||) + Q(t + A ||w||)``; ``t`` is set by the false alarms allowed per sample of noise
(two-sided). Any real detector, which does not know the shape or the onset, does worse: the
atlas's recall goals are compared against this ceiling, cell by cell.
"""
from __future__ import annotations

import argparse

import _bootstrap  # noqa: F401
import numpy as np
from scipy.stats import norm

from training import atlas

ONSET_FRACTIONS = 32  # sub-sample onsets averaged per shape
# False alarms allowed per sample of noise: about what the served model shows on the atlas
# (docs/atlas.json: 0.2-1.4 per million samples), and the in-distribution goal's 0.1 per AC
# cycle at 3,333 samples per cycle.
RATES = (1e-6, 3e-5)
GOALS = {14.0: 0.90, 20.0: 0.99}


def energy_ratios(shape: atlas.Shape) -> np.ndarray:
    """``||w||`` of the sampled pulse (peak magnitude 1) at evenly spread sub-sample onsets."""
    ratios = []
    for fraction in np.arange(ONSET_FRACTIONS) / ONSET_FRACTIONS:
        _, samples = atlas.render_pulse(shape, 1000.0 + fraction, 1_000_000)
        ratios.append(float(np.sqrt(np.sum(samples**2))))
    return np.asarray(ratios)


def recall_bound(ratios: np.ndarray, snr_db: float, false_alarms_per_sample: float) -> float:
    threshold = norm.isf(false_alarms_per_sample / 2)
    output = 10 ** (snr_db / 20) * ratios
    return float(np.mean(norm.sf(threshold - output) + norm.cdf(-threshold - output)))


def bound_table(rates=RATES, snrs=tuple(GOALS)) -> dict:
    shapes = atlas.shape_grid()
    ratios = {shape.name: energy_ratios(shape) for shape in shapes}
    table = {}
    for rate in rates:
        for snr in snrs:
            table[(rate, snr)] = {name: recall_bound(values, snr, rate) for name, values in ratios.items()}
    return table


def card_lines(table: dict) -> list[str]:
    lines = ["| false alarms per sample (threshold) | SNR | goal | atlas cells whose ceiling is under the goal | lowest ceilings |",
             "|---|---|---|---|---|"]
    for (rate, snr), bounds in table.items():
        goal = GOALS[snr]
        worst = sorted(bounds.items(), key=lambda item: item[1])
        below = [name for name, value in worst if value < goal]
        lowest = ", ".join(f"{name} {value:.2f}" for name, value in worst[:4])
        lines.append(f"| {rate:g} ({norm.isf(rate / 2):.2f} sigma) | {snr:g} dB | {goal} | "
                     f"{len(below)} of {len(bounds)} | {lowest} |")
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    table = bound_table()
    lines = card_lines(table)
    print("\n".join(lines))
    if not args.no_write:
        from evaluate import write_card_section

        write_card_section("bound", lines + ["", "Produced by `python scripts/detection_bound.py` "
                                             f"({ONSET_FRACTIONS} sub-sample onsets per shape)."])
    return table


if __name__ == "__main__":
    main()
