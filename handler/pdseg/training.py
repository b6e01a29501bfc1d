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
from .regions import (drop_ringing_fragments, mask_to_regions, probability_to_regions, reaches,
                      split_at_onsets)
from .scoring import EventCounts, match_events


@dataclasses.dataclass
class TrainConfig:
    seed: int = 20261127
    train_captures: int = 8000
    validation_captures: int = 300
    capture_length: int = 8192
    crop: int = 4096
    batch_size: int = 16
    steps: int = 18000
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    edge_probability: float = 0.2  # crops that end inside the window, as at a signal's ends
    gap_weight: float = 15.0  # loss weight of unlabelled samples between two close events
    gap_span: int = 64  # gaps up to this long count as "between close events"
    # Loss weight of labelled samples in the ``gap_span`` samples before a pulse whose label
    # joins an earlier event's: the counterpart of ``gap_weight`` (1: no extra weight).
    joined_weight: float = 1.0
    short_pulse_fraction: float = 0.0  # extra pulses decaying within 2-8 samples
    interference_fraction: float = 0.6  # training captures (not near noise-free) with interference
    onset_weight: float = 1.0  # loss weight of the onset output (networks with an onset head)
    onset_span: tuple[int, int] = (-1, 3)  # samples around an event's start that are "onset"
    # Region rules are chosen for the best validation F1 among those that report at most this
    # many regions per AC cycle on the validation's PD-free captures: half the goal's 0.1,
    # because captures with full interference report ~1.5x more than the validation mix.
    max_false_alarms_per_cycle: float = 0.05
    # Networks with the cycle-difference channel: the share of crops trained with it blank,
    # as a signal without a visible carrier or a caller's period arrives.
    cycle_blank_probability: float = 0.1
    # The network's forward pass in bfloat16 (autocast; weights, loss and optimiser stay
    # float32): faster convolutions on a CPU with AVX-512 BF16 / AMX (docs/model-card.md,
    # "bfloat16 on this CPU").
    bf16: bool = False


def make_dataset(count: int, length: int, seed: int, progress: bool = False,
                 keep_filtered: bool = False, short_pulse_fraction: float = 0.0,
                 keep_joined: bool = False, interference_fraction: float = 0.6,
                 planes: tuple[str, ...] = preprocess.DEFAULT_PLANES):
    """Conditioned network inputs ``(count, len(planes), length)`` float32 and labels ``(count,
    length)`` bool of ``count`` synthetic captures; with ``keep_filtered`` also the high-passed
    signals ``(count, length)`` that region rules measure peaks on and the AC cycles in each
    capture ``(count,)`` (for false alarms per cycle); with ``keep_joined`` then also the
    onsets of pulses that join an earlier event ``(count, length)`` bool (for ``joined_weight``)."""
    rng = np.random.default_rng(seed)
    inputs = np.empty((count, len(planes), length), dtype=np.float32)
    labels = np.empty((count, length), dtype=bool)
    filtered = np.empty((count, length), dtype=np.float32) if keep_filtered else None
    cycles = np.empty(count)
    joined = np.zeros((count, length), dtype=bool) if keep_joined else None
    for index in tqdm(range(count), desc="synthesising", disable=not progress, leave=False):
        capture = synthetic.make_capture(rng, length, short_pulse_fraction=short_pulse_fraction,
                                         interference_fraction=interference_fraction)
        conditioned = preprocess.condition(capture.signal, planes)
        inputs[index] = conditioned.network_input
        labels[index] = capture.mask
        cycles[index] = length / capture.samples_per_cycle
        if keep_filtered:
            filtered[index] = conditioned.filtered
        if keep_joined:
            joined[index] = joined_onsets(capture.mask, capture.pulse_onsets)
    extras = ((filtered, cycles) if keep_filtered else ()) + ((joined,) if keep_joined else ())
    return (inputs, labels) + extras


def joined_onsets(mask: np.ndarray, pulse_onsets) -> np.ndarray:
    """True at the onset of every pulse that starts inside an earlier event (its label touches
    or overlaps one before it, so the region rule joins them)."""
    starts = set(mask_to_regions(mask)[:, 0].tolist())
    out = np.zeros(mask.shape, dtype=bool)
    for onset in pulse_onsets:
        if onset not in starts and mask[onset]:
            out[onset] = True
    return out


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


def onset_targets(labels: np.ndarray, span: tuple[int, int] = (-1, 3)) -> np.ndarray:
    """Per-sample onset targets: True within ``span`` of the start of every ground-truth event
    (runs of the labels by the region rule, so pulses whose labels touch are one event and
    have one onset). A run that begins at sample 0 was cut by the crop and has no onset."""
    targets = np.zeros(labels.shape, dtype=bool)
    for row, label in enumerate(labels):
        for start, _ in mask_to_regions(label).tolist():
            if start > 0:
                targets[row, max(start + span[0], 0): start + span[1]] = True
    return targets


def joined_weights(weights: np.ndarray, labels: np.ndarray, joined: np.ndarray, span: int,
                   weight: float) -> np.ndarray:
    """Raise to ``weight`` the loss weights of labelled samples in the ``span`` samples before
    each joined pulse's onset: where a network that dips between pulses splits one event."""
    for row, column in zip(*np.nonzero(joined)):
        first = max(int(column) - span, 0)
        before = weights[row, first:column]  # a view: raised in place
        before[labels[row, first:column]] = np.maximum(before[labels[row, first:column]], weight)
    return weights


def _batch(rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray, config: TrainConfig,
           with_onsets: bool = False, joined: np.ndarray | None = None,
           planes: tuple[str, ...] = preprocess.DEFAULT_PLANES):
    rows = rng.integers(0, inputs.shape[0], config.batch_size)
    offsets = rng.integers(0, inputs.shape[-1] - config.crop + 1, config.batch_size)
    x = np.stack([inputs[r, :, o: o + config.crop] for r, o in zip(rows, offsets)])
    y = np.stack([labels[r, o: o + config.crop] for r, o in zip(rows, offsets)])
    joined_crop = (np.stack([joined[r, o: o + config.crop] for r, o in zip(rows, offsets)])
                   if joined is not None and config.joined_weight != 1.0 else None)
    if len(planes) != inputs.shape[1]:
        raise ValueError(f"inputs have {inputs.shape[1]} planes, {len(planes)} named: {planes}")
    flips = rng.random(config.batch_size) < 0.5
    odd = [index for index, name in enumerate(planes) if name in preprocess.ODD_PLANES]
    x[np.ix_(flips, odd)] *= -1  # PD of either polarity
    if "cycle_difference" in planes:
        x[rng.random(config.batch_size) < config.cycle_blank_probability,
          planes.index("cycle_difference")] = 0.0
    for index in np.flatnonzero(rng.random(config.batch_size) < config.edge_probability):
        cut = int(rng.integers(1, config.crop // 2))
        side = slice(0, cut) if rng.random() < 0.5 else slice(config.crop - cut, config.crop)
        x[index, :, side] = 0.0
        y[index, side] = False
        if joined_crop is not None:
            joined_crop[index, side] = False
    weights = gap_weights(y, config.gap_span, config.gap_weight)
    if joined_crop is not None:
        weights = joined_weights(weights, y, joined_crop, config.gap_span, config.joined_weight)
    onsets = (torch.from_numpy(onset_targets(y, config.onset_span).astype(np.float32))
              if with_onsets else None)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(weights), onsets


ONSET_POSITIVE_WEIGHT = 20.0  # onset samples are ~1 % of all; without this the head stays at 0


def loss_fn(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
            onset_target: torch.Tensor | None = None, onset_weight: float = 1.0) -> torch.Tensor:
    """BCE + 0.5 soft Dice on the PD output; with an onset head (``logits`` ``(batch, 2,
    length)``) plus ``onset_weight`` times a positively weighted BCE on the onset output."""
    onset_logits = None
    if logits.ndim == 3:
        logits, onset_logits = logits[:, 0], logits[:, 1]
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weights)
    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum()
    dice = 1 - (2 * overlap + 1) / (probability.sum() + target.sum() + 1)
    loss = bce + 0.5 * dice
    if onset_logits is not None and onset_target is not None:
        positive = torch.tensor(ONSET_POSITIVE_WEIGHT, dtype=onset_logits.dtype, device=onset_logits.device)
        loss = loss + onset_weight * F.binary_cross_entropy_with_logits(
            onset_logits, onset_target, pos_weight=positive)
    return loss


def train(model: UNet1D, inputs: np.ndarray, labels: np.ndarray, config: TrainConfig,
          progress: bool = True, time_limit_s: float | None = None,
          joined: np.ndarray | None = None, device: str = "cpu") -> list[float]:
    torch.manual_seed(config.seed)
    # Tiny activations late in training become denormal floats, which are slow on x86.
    torch.set_flush_denormal(True)
    rng = np.random.default_rng(config.seed + 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate,
                                                   total_steps=config.steps, pct_start=0.1)
    model.to(device)
    model.train()
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    started = time.monotonic()
    bar = tqdm(range(config.steps), desc="training", disable=not progress)
    for step in bar:
        x, y, weights, onsets = _batch(rng, inputs, labels, config, model.config.onset_head, joined,
                                       model.config.input_planes)
        x, y, weights = x.to(device), y.to(device), weights.to(device)  # no copy on the CPU
        onsets = None if onsets is None else onsets.to(device)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=config.bf16):
            logits = model.logits(x)
        loss = loss_fn(logits.float(), y, weights, onsets, config.onset_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        pending.append(loss.detach())
        if step % 20 == 0 or step == config.steps - 1:
            # One read per 20 steps: on a GPU every read waits for the queued work.
            losses.extend(torch.stack(pending).tolist())
            pending.clear()
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if time_limit_s is not None and time.monotonic() - started > time_limit_s:
            break
    losses.extend(torch.stack(pending).tolist() if pending else [])
    model.eval()
    model.to("cpu")
    return losses


def predict(model: torch.nn.Module, inputs: np.ndarray, batch: int = 16) -> np.ndarray:
    """Probabilities of whole conditioned captures (length a multiple of the pooling):
    ``(count, length)``, or ``(count, 2, length)`` with an onset head."""
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(inputs[first: first + batch])).numpy()
                               for first in range(0, len(inputs), batch)], axis=0)


FRAGMENT_REACH = 2000  # samples after a region where its ringing can still re-cross


def choose_postprocess(probabilities: np.ndarray, labels: np.ndarray,
                       thresholds=np.round(np.arange(0.2, 0.96, 0.05), 2),
                       min_gaps=(8, 16, 32, 64), min_lengths=(2, 6),
                       filtered: np.ndarray | None = None,
                       fragment_ratios=(0.0, 0.2, 0.3, 0.4),
                       onset_thresholds=(0.0, 0.3, 0.5, 0.7),
                       cycles: np.ndarray | None = None,
                       max_false_alarms: float | None = None,
                       extent_thresholds=(None, 0.1, 0.2, 0.3, 0.4)) -> tuple[dict, dict]:
    """Decision threshold and region rules (extent level, merge gap, shortest region,
    ringing-fragment ratio when ``filtered`` signals are given, onset cut level when
    ``probabilities`` carry an onset output) with the best event F1 (IoU >= 0.3) on validation
    captures; with ``cycles`` (AC cycles per capture) and ``max_false_alarms``, only among the
    rules that report at most that many regions per cycle on the captures without PD (if none
    does, the one with the fewest). An extent level (hysteresis, see
    :func:`regions.probability_to_regions`) is tried only below the threshold; None is the
    single-level rule. Ties go to the threshold nearest 0.5, then to the simpler rule."""
    truths = [mask_to_regions(label) for label in labels]
    pd_free = [index for index, label in enumerate(labels) if not label.any()]
    free_cycles = float(np.sum(cycles[pd_free])) if cycles is not None and pd_free else 0.0
    false_alarms = {}
    onsets = None
    if probabilities.ndim == 3:
        probabilities, onsets = probabilities[:, 0], probabilities[:, 1]
    else:
        onset_thresholds = (0.0,)
    if filtered is None:
        fragment_ratios = (0.0,)
    scores = {}
    for min_gap in min_gaps:
        for min_length in min_lengths:
            # Runs at each extent level are found once; every threshold above it only filters.
            runs = {}
            for threshold in thresholds:
                for extent in extent_thresholds:
                    if extent is not None and extent >= threshold:
                        continue
                    level = float(threshold if extent is None else extent)
                    if level not in runs:
                        runs[level] = [probability_to_regions(p, level, min_gap, min_length)
                                       for p in probabilities]
                    merged = runs[level] if extent is None else [
                        regions[reaches(regions, p, threshold)]
                        for regions, p in zip(runs[level], probabilities)]
                    for onset_threshold in onset_thresholds:
                        found = merged if onset_threshold <= 0 else [
                            split_at_onsets(regions, p, onset, level, onset_threshold)
                            for regions, p, onset in zip(merged, probabilities, onsets)]
                        for ratio in fragment_ratios:
                            counts = EventCounts()
                            free_regions = 0
                            for index, truth in enumerate(truths):
                                kept = found[index] if ratio <= 0 else drop_ringing_fragments(
                                    found[index], filtered[index], ratio, FRAGMENT_REACH)
                                counts.add(match_events(truth, kept))
                                free_regions += len(kept) if not truth.size else 0
                            key = (float(threshold), min_gap, min_length, float(ratio),
                                   float(onset_threshold), extent)
                            scores[key] = round(counts.f1, 4)
                            false_alarms[key] = free_regions / free_cycles if free_cycles else 0.0
    allowed = [key for key in scores
               if max_false_alarms is None or false_alarms[key] <= max_false_alarms]
    if not allowed:
        allowed = [min(scores, key=lambda key: false_alarms[key])]
    best = max(allowed, key=lambda key: (scores[key], -abs(key[0] - 0.5), -key[3], -key[4],
                                         key[5] is None))
    chosen = {"threshold": best[0], "min_gap": best[1], "min_length": best[2],
              "fragment_ratio": best[3], "fragment_reach": FRAGMENT_REACH if best[3] > 0 else 0,
              "onset_threshold": best[4], "extent_threshold": best[5], "f1": scores[best],
              "false_alarms_per_cycle": round(false_alarms[best], 4)}
    return chosen, {setting_name(key): f1 for key, f1 in scores.items()}


def setting_name(key: tuple) -> str:
    threshold, gap, length, ratio, onset, extent = key
    name = f"t={threshold:g},gap={gap},len={length},fragment={ratio:g},onset={onset:g}"
    return name if extent is None else f"{name},extent={extent:g}"


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray,
                     candidates=np.round(np.arange(0.2, 0.86, 0.05), 2)) -> tuple[float, dict]:
    """The threshold with the best event F1 (IoU >= 0.3) at the default region rules."""
    chosen, scores = choose_postprocess(probabilities, labels, candidates, (8,), (2,),
                                        extent_thresholds=(None,))
    return chosen["threshold"], {float(t): scores[f"t={t:g},gap=8,len=2,fragment=0,onset=0"]
                                 for t in candidates}
