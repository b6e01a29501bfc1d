"""Event-level scores: one-to-one matching of predicted regions to true events by IoU."""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment

from pdseg.regions import mask_to_regions


def interval_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every interval in ``first`` (n, 2) with every one in ``second`` (m, 2)."""
    if len(first) == 0 or len(second) == 0:
        return np.zeros((len(first), len(second)))
    starts = np.maximum(first[:, None, 0], second[None, :, 0])
    ends = np.minimum(first[:, None, 1], second[None, :, 1])
    intersection = np.clip(ends - starts, 0, None)
    union = (first[:, None, 1] - first[:, None, 0]) + (second[None, :, 1] - second[None, :, 0]) - intersection
    return intersection / np.maximum(union, 1)


@dataclasses.dataclass
class EventCounts:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    onset_errors: list = dataclasses.field(default_factory=list)

    def add(self, other: "EventCounts") -> None:
        self.true_positive += other.true_positive
        self.false_positive += other.false_positive
        self.false_negative += other.false_negative
        self.onset_errors.extend(other.onset_errors)

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def median_onset_error(self) -> float | None:
        return float(np.median(self.onset_errors)) if self.onset_errors else None


def match_events(truth: np.ndarray, predicted: np.ndarray, min_iou: float = 0.3) -> EventCounts:
    """Optimal one-to-one matching; a pair counts as a hit when its IoU reaches ``min_iou``."""
    iou = interval_iou(np.asarray(truth).reshape(-1, 2), np.asarray(predicted).reshape(-1, 2))
    counts = EventCounts()
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        hits = iou[rows, cols] >= min_iou
        counts.true_positive = int(hits.sum())
        counts.onset_errors = [abs(int(truth[r][0]) - int(predicted[c][0]))
                               for r, c in zip(rows[hits], cols[hits])]
    counts.false_negative = len(truth) - counts.true_positive
    counts.false_positive = len(predicted) - counts.true_positive
    return counts


def truth_events(mask: np.ndarray, merge_gap: int) -> np.ndarray:
    """Ground-truth events ``(k, 2)`` of a labelled capture, by the rule the service's regions
    follow: labelled runs closer together than ``merge_gap`` samples are one event (the
    merge gap is the service's time resolution), and an event may be one sample long."""
    return mask_to_regions(mask, min_gap=merge_gap, min_length=1)
