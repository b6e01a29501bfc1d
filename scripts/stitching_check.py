"""Does the served stitching (4,096-sample windows, 3,584-sample cores tiled edge to edge, 256
samples of context each side) give the same regions as dense overlap? Three references, on the
evaluation tiers:

- whole: the capture in one window, no stitching at all (what the network says when nothing
  is cut; the bottleneck attention then sees the whole capture);
- dense, most central: the same 4,096-sample windows every 512 samples, each sample taken
  from the window in which it lies most central;
- dense, averaged: the same windows, probabilities averaged per sample (smooths them).

    python scripts/stitching_check.py [--count 10]
"""
from __future__ import annotations

import argparse

import _bootstrap  # noqa: F401
import numpy as np
import torch

from pdseg import preprocess
from pdseg.model import load_trained
from pdseg.pipeline import Segmenter
from pdseg.window import WindowPlan
from training import synthetic
from training.scoring import EventCounts, match_events, truth_events

DENSE_STRIDE = 512
END_MARGIN = 300  # the ends differ by construction: the tiling puts context zeros before them


def dense_outputs(network, network_input: np.ndarray, window: int):
    """The network's output at every window position DENSE_STRIDE apart, over the input padded
    by a window of zeros each side: yields (start in the padded input, output)."""
    channels, length = network_input.shape
    padded = np.zeros((channels, length + 2 * window), dtype=np.float32)
    padded[:, window: window + length] = network_input
    starts = list(range(0, padded.shape[1] - window + 1, DENSE_STRIDE))
    with torch.inference_mode():
        for first in range(0, len(starts), 32):
            batch_starts = starts[first: first + 32]
            batch = torch.from_numpy(np.stack([padded[:, s: s + window] for s in batch_starts]))
            yield from zip(batch_starts, network(batch).numpy())


def dense_probability(network, network_input: np.ndarray, window: int) -> np.ndarray:
    """Every window position at DENSE_STRIDE, outputs averaged per sample."""
    length = network_input.shape[-1]
    total, count = None, np.zeros(length + 2 * window)
    for start, output in dense_outputs(network, network_input, window):
        if total is None:
            total = np.zeros((*output.shape[:-1], length + 2 * window))
        total[..., start: start + window] += output
        count[start: start + window] += 1
    return (total / np.maximum(count, 1))[..., window: window + length]


def central_probability(network, network_input: np.ndarray, window: int) -> np.ndarray:
    """Every window position at DENSE_STRIDE; each sample from the window it is most central in."""
    length = network_input.shape[-1]
    best, distance = None, np.full(length + 2 * window, np.inf)
    offsets = np.abs(np.arange(window) - (window - 1) / 2)
    for start, output in dense_outputs(network, network_input, window):
        if best is None:
            best = np.full((*output.shape[:-1], length + 2 * window), -1.0)
        closer = offsets < distance[start: start + window]
        columns = np.arange(start, start + window)[closer]
        best[..., columns] = output[..., closer]
        distance[columns] = offsets[closer]
    return best[..., window: window + length]


def whole_probability(network, network_input: np.ndarray, multiple: int) -> np.ndarray:
    """The capture in one window (zero-padded to the pooling multiple), no stitching."""
    channels, length = network_input.shape
    width = -(-length // multiple) * multiple
    padded = np.zeros((1, channels, width), dtype=np.float32)
    padded[0, :, :length] = network_input
    with torch.inference_mode():
        return network(torch.from_numpy(padded)).numpy()[0, ..., :length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--without-attention", action="store_true",
                        help="set the attention gate to 0 first: then only the convolutions, whose "
                             "receptive field fits in the context, decide, and tiling must be exact")
    args = parser.parse_args()
    torch.set_num_threads(2)
    network, record = load_trained(_bootstrap.ROOT / "model_store" / "weights")
    plan = WindowPlan(**record["window"])
    if args.without_attention:
        with torch.no_grad():
            network.attention.gamma.zero_()
    segmenter = Segmenter.from_record(network, record)
    references = {"whole": lambda x: whole_probability(network, x, network.config.length_multiple),
                  "dense, most central": lambda x: central_probability(network, x, plan.window),
                  "dense, averaged": lambda x: dense_probability(network, x, plan.window)}
    identical = dict.fromkeys(references, 0)
    agreement = {name: EventCounts() for name in references}
    truth_scores = {name: EventCounts() for name in ["tiled", *references]}
    total = 0
    interior_difference = 0.0  # tiled vs whole, more than END_MARGIN samples from either end
    for snr in synthetic.SNR_TIERS_DB:
        for interference in (False, True):
            for capture in synthetic.evaluation_set(snr, interference, args.count, args.length, seed=424242):
                truth = truth_events(capture.mask, segmenter.min_gap)
                analysed = segmenter.analyse([capture.signal])[0]
                tiled = analysed.regions
                conditioned = segmenter.condition(capture.signal)
                network_input = conditioned.network_input
                whole = references["whole"](network_input)
                whole_pd = whole
                interior_difference = max(interior_difference, float(np.abs(
                    segmenter.probabilities([conditioned])[0][END_MARGIN:-END_MARGIN]
                    - whole_pd[END_MARGIN:-END_MARGIN]).max()))
                total += 1
                truth_scores["tiled"].add(match_events(truth, tiled))
                for name, reference in references.items():
                    regions = segmenter.regions(reference(network_input))
                    identical[name] += int(np.array_equal(tiled, regions))
                    agreement[name].add(match_events(regions, tiled, 0.5))
                    truth_scores[name].add(match_events(truth, regions))
    print(f"captures: {total} ({args.count} per tier, {args.length} samples)")
    print("| reference | identical region lists | tiled vs reference, F1 at IoU >= 0.5 | event F1 vs truth: reference (tiled) |")
    print("|---|---|---|---|")
    for name in references:
        print(f"| {name} | {identical[name]} of {total} ({identical[name] / total:.0%}) | {agreement[name].f1:.4f} "
              f"({agreement[name].false_positive} only tiled, {agreement[name].false_negative} only reference) | "
              f"{truth_scores[name].f1:.4f} ({truth_scores['tiled'].f1:.4f}) |")
    print(f"largest |tiled - whole| probability more than {END_MARGIN} samples from the ends: "
          f"{interior_difference:.3g}{' (attention gate set to 0)' if args.without_attention else ''}")


if __name__ == "__main__":
    main()
