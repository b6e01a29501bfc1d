"""PD-free triggered windows of one-pole noise, as the served model answers them: regions per
window count and length (the table in docs/model-card.md, Conditioning: correlated noise in a
short window).

    python scripts/short_window_noise.py            # 100 windows per cell
    python scripts/short_window_noise.py --windows 30

Each window is ``x[n] = a x[n-1] + e[n]`` (unit white ``e``, 400 samples of run-in dropped), no
carrier, no PD, for a from -0.6 to 0.95 and lengths of 256, 1,000 and 2,048 samples. Every region
is a false one. Prints only: the figures are one-off checks of a conditioning step, rerun to
compare code versions (the same seed draws the same windows).
"""
from __future__ import annotations

import argparse

import _bootstrap  # noqa: F401
import numpy as np
import torch
from scipy import signal as sps

from evaluate import served_segmenter

COEFFICIENTS = (-0.6, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
LENGTHS = (256, 1000, 2048)
SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100, help="windows per cell")
    args = parser.parse_args()
    torch.set_num_threads(2)
    segmenter, _ = served_segmenter(_bootstrap.ROOT / "model_store" / "weights")
    rng = np.random.default_rng(SEED)
    print("| window | " + " | ".join(f"a = {a}" for a in COEFFICIENTS) + " |")
    print("|---" * (len(COEFFICIENTS) + 1) + "|")
    for length in LENGTHS:
        counts = []
        for coefficient in COEFFICIENTS:
            windows = [sps.lfilter([1.0], [1.0, -coefficient], rng.normal(size=length + 200))[200:]
                       for _ in range(args.windows)]
            counts.append(sum(len(result.regions) for result in segmenter.analyse(windows)))
        print(f"| {length:,} samples | " + " | ".join(str(count) for count in counts) + " |", flush=True)
    print(f"\n{args.windows} PD-free windows per cell, seed {SEED}; regions found (all false). "
          "Produced by `python scripts/short_window_noise.py`.")


if __name__ == "__main__":
    main()
