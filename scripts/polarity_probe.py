"""Does the served model answer a negated one-sample spike as it answers the spike?

    python scripts/polarity_probe.py [--weights DIR]

Forty one-sample spikes, half of each polarity at random, 400 samples apart in 16,384 samples
of white noise, at 20 and 26 dB: the share of each polarity that the network gives a
probability of at least the decision threshold, two-sample spikes beside them, and the largest
difference between the network's answers to a capture's input planes and to the same planes
negated (the conditioning is exactly odd, so a polarity-blind network would give 0); then the
share of each polarity in the served regions, which also hold the isolated short transients
(pdseg.transients). The figures are the model card's "One-sample spikes, and their polarity".
"""
from __future__ import annotations

import argparse
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import served_segmenter

SPACING, LENGTH, SEED = 400, 16384, 5


def spike_capture(rng: np.random.Generator, snr_db: float, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    signal = rng.normal(0.0, 1.0, LENGTH)
    positions = np.arange(200, LENGTH - 384, SPACING)
    signs = rng.choice([-1, 1], positions.size)
    for position, sign in zip(positions, signs):
        signal[position: position + width] += sign * 10 ** (snr_db / 20)
    return signal, positions, signs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(_bootstrap.ROOT / "model_store" / "weights"))
    args = parser.parse_args()
    segmenter, _ = served_segmenter(Path(args.weights))
    rng = np.random.default_rng(SEED)
    for snr_db in (20.0, 26.0):
        for width in (1, 2):
            signal, positions, signs = spike_capture(rng, snr_db, width)
            result = segmenter.analyse([signal])[0]
            found = np.array([result.probability[p - 3: p + width + 3].max() for p in positions]) >= segmenter.threshold
            reported = np.array([np.any((result.regions[:, 0] < p + width) & (result.regions[:, 1] > p))
                                 for p in positions])
            planes = np.ascontiguousarray(segmenter.windows(result.conditioned))
            with torch.inference_mode():
                difference = (segmenter.network(torch.from_numpy(planes)) - segmenter.network(torch.from_numpy(-planes))).abs().max()
            print(f"{snr_db:g} dB, {width}-sample spikes: positive {found[signs > 0].mean():.2f}, "
                  f"negative {found[signs < 0].mean():.2f} at p >= {segmenter.threshold:g}; "
                  f"largest |f(x) - f(-x)| {float(difference):.2f}; in the served regions: positive "
                  f"{reported[signs > 0].mean():.2f}, negative {reported[signs < 0].mean():.2f}")


if __name__ == "__main__":
    main()
