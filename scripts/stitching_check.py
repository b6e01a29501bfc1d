"""Does the served stitching (4,096-sample windows, 3,584-sample cores tiled edge to edge, 256
samples of context each side) give the same regions as dense overlap (the same windows every
512 samples, probabilities averaged)? Runs the evaluation tiers; prints agreement.

    python scripts/stitching_check.py [--count 10]
"""
from __future__ import annotations

import argparse

import _bootstrap  # noqa: F401
import numpy as np
import torch

from pdseg import preprocess, synthetic
from pdseg.model import load_trained
from pdseg.pipeline import Segmenter
from pdseg.regions import mask_to_regions, probability_to_regions
from pdseg.scoring import EventCounts, match_events
from pdseg.window import WindowPlan

DENSE_STRIDE = 512


def dense_probability(network, network_input: np.ndarray, window: int) -> np.ndarray:
    """Every window position at DENSE_STRIDE, outputs averaged per sample."""
    channels, length = network_input.shape
    padded = np.zeros((channels, length + 2 * window), dtype=np.float32)
    padded[:, window: window + length] = network_input
    total = np.zeros(padded.shape[1])
    count = np.zeros(padded.shape[1])
    starts = range(0, padded.shape[1] - window + 1, DENSE_STRIDE)
    with torch.inference_mode():
        for first in range(0, len(starts), 32):
            batch_starts = list(starts)[first: first + 32]
            batch = torch.from_numpy(np.stack([padded[:, s: s + window] for s in batch_starts]))
            outputs = network(batch).numpy()
            for start, output in zip(batch_starts, outputs):
                total[start: start + window] += output
                count[start: start + window] += 1
    return (total / np.maximum(count, 1))[window: window + length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--length", type=int, default=16384)
    args = parser.parse_args()
    torch.set_num_threads(2)
    network, record = load_trained(_bootstrap.ROOT / "model_store" / "weights")
    plan = WindowPlan(**record["window"])
    segmenter = Segmenter.from_record(network, record)
    identical = total = 0
    agreement, tiled_truth, dense_truth = EventCounts(), EventCounts(), EventCounts()
    for snr in synthetic.SNR_TIERS_DB:
        for interference in (False, True):
            for capture in synthetic.evaluation_set(snr, interference, args.count, args.length, seed=424242):
                truth = mask_to_regions(capture.mask)
                tiled = segmenter.analyse([capture.signal])[0].regions
                dense = probability_to_regions(
                    dense_probability(network, preprocess.condition(capture.signal).network_input, plan.window),
                    segmenter.threshold, segmenter.min_gap, segmenter.min_length)
                total += 1
                identical += int(np.array_equal(tiled, dense))
                agreement.add(match_events(dense, tiled, 0.5))
                tiled_truth.add(match_events(truth, tiled))
                dense_truth.add(match_events(truth, dense))
    print(f"captures: {total}; identical region lists: {identical} ({identical / total:.1%})")
    print(f"tiled vs dense regions, matched at IoU >= 0.5: F1 {agreement.f1:.4f} "
          f"({agreement.true_positive} matched, {agreement.false_positive} only tiled, "
          f"{agreement.false_negative} only dense)")
    print(f"event F1 against the truth: tiled {tiled_truth.f1:.4f}, dense {dense_truth.f1:.4f} "
          f"(dense costs {(args.length / DENSE_STRIDE + 8) / (args.length / plan.core):.1f}x the windows)")


if __name__ == "__main__":
    main()
