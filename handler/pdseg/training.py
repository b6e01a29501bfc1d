"""Seeded CPU training of the UNet1D on synthetic captures, and threshold selection."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from . import preprocess, synthetic
from .model import UNet1D
from .regions import drop_ringing_fragments, mask_to_regions, probability_to_regions
from .scoring import EventCounts, match_events


@dataclasses.dataclass
class TrainConfig:
    seed: int = 20261127
    train_captures: int = 8000
    validation_captures: int = 300
    capture_length: int = 8192
    crop: int = 4096
    batch_size: int = 16
    steps: int = 12000
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    edge_probability: float = 0.2  # crops that end inside the window, as at a signal's ends
    gap_weight: float = 15.0  # loss weight of unlabelled samples between two close events
    gap_span: int = 64  # gaps up to this long count as "between close events"


def make_dataset(count: int, length: int, seed: int, progress: bool = False,
                 keep_filtered: bool = False):
    """Conditioned network inputs ``(count, channels, length)`` float32 and labels ``(count,
    length)`` bool of ``count`` synthetic captures; with ``keep_filtered`` also the high-passed
    signals ``(count, length)`` that region rules measure peaks on."""
    rng = np.random.default_rng(seed)
    inputs = np.empty((count, preprocess.INPUT_CHANNELS, length), dtype=np.float32)
    labels = np.empty((count, length), dtype=bool)
    filtered = np.empty((count, length), dtype=np.float32) if keep_filtered else None
    for index in tqdm(range(count), desc="synthesising", disable=not progress, leave=False):
        capture = synthetic.make_capture(rng, length)
        conditioned = preprocess.condition(capture.signal)
        inputs[index] = conditioned.network_input
        labels[index] = capture.mask
        if keep_filtered:
            filtered[index] = conditioned.filtered
    return (inputs, labels, filtered) if keep_filtered else (inputs, labels)


def gap_weights(labels: np.ndarray, span: int, weight: float) -> np.ndarray:
    """Per-sample loss weights: ``weight`` on unlabelled runs of at most ``span`` samples that
    lie between two labelled events, 1 elsewhere. Telling close pulses apart is what a
    merging network gets wrong; these few samples decide it."""
    weights = np.ones(labels.shape, dtype=np.float32)
    for row, label in enumerate(labels):
        for start, end in mask_to_regions(~label, min_gap=0, min_length=1).tolist():
            if start > 0 and end < label.size and end - start <= span:
                weights[row, start:end] = weight
    return weights


def _batch(rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray, config: TrainConfig):
    rows = rng.integers(0, inputs.shape[0], config.batch_size)
    offsets = rng.integers(0, inputs.shape[-1] - config.crop + 1, config.batch_size)
    x = np.stack([inputs[r, :, o: o + config.crop] for r, o in zip(rows, offsets)])
    y = np.stack([labels[r, o: o + config.crop] for r, o in zip(rows, offsets)])
    flips = rng.random(config.batch_size) < 0.5
    x[flips] *= -1  # PD of either polarity (both channels are odd in the signal)
    for index in np.flatnonzero(rng.random(config.batch_size) < config.edge_probability):
        cut = int(rng.integers(1, config.crop // 2))
        side = slice(0, cut) if rng.random() < 0.5 else slice(config.crop - cut, config.crop)
        x[index, :, side] = 0.0
        y[index, side] = False
    weights = gap_weights(y, config.gap_span, config.gap_weight)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(weights)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weights)
    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum()
    dice = 1 - (2 * overlap + 1) / (probability.sum() + target.sum() + 1)
    return bce + 0.5 * dice


def train(model: UNet1D, inputs: np.ndarray, labels: np.ndarray, config: TrainConfig,
          progress: bool = True, time_limit_s: float | None = None) -> list[float]:
    torch.manual_seed(config.seed)
    # Tiny activations late in training become denormal floats, which are slow on x86.
    torch.set_flush_denormal(True)
    rng = np.random.default_rng(config.seed + 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate,
                                                   total_steps=config.steps, pct_start=0.1)
    model.train()
    losses = []
    started = time.monotonic()
    bar = tqdm(range(config.steps), desc="training", disable=not progress)
    for step in bar:
        x, y, weights = _batch(rng, inputs, labels, config)
        loss = loss_fn(model.logits(x), y, weights)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if time_limit_s is not None and time.monotonic() - started > time_limit_s:
            break
    model.eval()
    return losses


def predict(model: torch.nn.Module, inputs: np.ndarray, batch: int = 16) -> np.ndarray:
    """Probabilities of whole conditioned captures (length a multiple of the pooling)."""
    outputs = np.empty((inputs.shape[0], inputs.shape[-1]), dtype=np.float32)
    with torch.inference_mode():
        for first in range(0, len(inputs), batch):
            chunk = torch.from_numpy(inputs[first: first + batch])
            outputs[first: first + batch] = model(chunk).numpy()
    return outputs


FRAGMENT_REACH = 2000  # samples after a region where its ringing can still re-cross


def choose_postprocess(probabilities: np.ndarray, labels: np.ndarray,
                       thresholds=np.round(np.arange(0.2, 0.86, 0.05), 2),
                       min_gaps=(8, 16, 32), min_lengths=(2, 6),
                       filtered: np.ndarray | None = None,
                       fragment_ratios=(0.0, 0.2, 0.3, 0.4)) -> tuple[dict, dict]:
    """Decision threshold and region rules (merge gap, shortest region, ringing-fragment ratio
    when ``filtered`` signals are given) with the best event F1 (IoU >= 0.3) on validation
    captures. Ties go to the threshold nearest 0.5, then to the simpler rule."""
    truths = [mask_to_regions(label) for label in labels]
    if filtered is None:
        fragment_ratios = (0.0,)
    scores = {}
    for threshold in thresholds:
        for min_gap in min_gaps:
            for min_length in min_lengths:
                found = [probability_to_regions(p, threshold, min_gap, min_length) for p in probabilities]
                for ratio in fragment_ratios:
                    counts = EventCounts()
                    for index, truth in enumerate(truths):
                        kept = found[index] if ratio <= 0 else drop_ringing_fragments(
                            found[index], filtered[index], ratio, FRAGMENT_REACH)
                        counts.add(match_events(truth, kept))
                    scores[(float(threshold), min_gap, min_length, float(ratio))] = round(counts.f1, 4)
    best = max(scores, key=lambda key: (scores[key], -abs(key[0] - 0.5), -key[3]))
    chosen = {"threshold": best[0], "min_gap": best[1], "min_length": best[2],
              "fragment_ratio": best[3], "fragment_reach": FRAGMENT_REACH if best[3] > 0 else 0,
              "f1": scores[best]}
    return chosen, {f"t={t:g},gap={g},len={n},fragment={r:g}": f1
                    for (t, g, n, r), f1 in scores.items()}


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray,
                     candidates=np.round(np.arange(0.2, 0.86, 0.05), 2)) -> tuple[float, dict]:
    """The threshold with the best event F1 (IoU >= 0.3) at the default region rules."""
    chosen, scores = choose_postprocess(probabilities, labels, candidates, (8,), (2,))
    return chosen["threshold"], {float(t): scores[f"t={t:g},gap=8,len=2,fragment=0"] for t in candidates}
