"""Why the served model's events are wrong, by cause, on the evaluation tiers.

    python scripts/error_analysis.py [--weights DIR] [--count 40] [--tiers 30w 20w 14w 30i 20i 14i 10i]
                                     [--validation]

After the one-to-one matching of scripts/evaluate.py (IoU >= 0.3), every true event that is
not matched is counted as *merged* (the prediction over it also covers another true event),
*split* (two or more predictions over it), *missed* (no prediction touches it) or *low IoU*;
every unmatched prediction that touches no true event is *spurious*, and one that touches only
true events already matched by another prediction is a *second piece* (of a burst's ringing,
of one event cut by a dip, or a separate pulse that the labels join to another). The last two
columns are oracle figures, not bounds: the F1 when every prediction is cut at the true
events' starts inside it (what an onset detector that knew them would give); and the F1 when
every second piece over one event is joined to the prediction that matched that event, where
the joined span overlaps no other prediction (what a region rule that knew which pieces
belong together would give).

A second table says what the second pieces over one event are: how many lie in an event of
two or more pulses, in one holding a burst, in one holding an exponential or oscillation that
decays over SLOW_DECAY samples or more (a decay the carrier filter takes most of), how far they
lie from the region that matched their event, and how much of that gap is labelled: whether
the labels bridge what the detector left out. A third looks at the missed events: how many
have an unlabelled peak (interference or noise) of at least half their own within 200 samples,
and how many fall in the four captures with the most misses. A fourth counts misses by the
family of the event's first pulse, short (decay under 5 samples) and long apart. For the tiers
with interference a fifth gives the F1 on the same captures with their converter notches left out: what removing phase-locked interference
perfectly before the network would be worth. The last table scores the same regions against
true events joined by tighter rules (labels under 8 or 16 samples apart are one event,
instead of the served merge gap, 32): how many of the merges come from where the evaluation
ends an event, and how many from the detector.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluate import EVAL_SEED, VALIDATION_SEED, score, served_segmenter
from pdseg.regions import mask_to_regions
from training import synthetic
from training.scoring import EventCounts, interval_iou, match_events, truth_events

MIN_IOU = 0.3
JOIN_GAPS = (8, 16, 32)  # 32: the evaluation's rule, the served merge gap


CAUSES = ("merged", "split", "missed", "low IoU", "spurious", "second piece")


def matching(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """The IoU of every (event, prediction) pair and the one-to-one matches at :data:`MIN_IOU`
    or more, event -> prediction (scripts/evaluate.py's rule)."""
    iou = interval_iou(truth, predicted)
    if not iou.size:
        return iou, {}
    rows, columns = linear_sum_assignment(-iou)
    hits = iou[rows, columns] >= MIN_IOU
    return iou, dict(zip(rows[hits].tolist(), columns[hits].tolist()))


def causes(truth: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    found = dict.fromkeys(CAUSES, 0)
    iou, matched = matching(truth, predicted)
    matched_truth, matched_predicted = set(matched), set(matched.values())
    touching = iou > 0
    for index in set(range(len(truth))) - matched_truth:
        over = np.flatnonzero(touching[index])
        if over.size == 0:
            found["missed"] += 1
        elif any(touching[:, column].sum() > 1 for column in over):
            found["merged"] += 1
        elif over.size > 1:
            found["split"] += 1
        else:
            found["low IoU"] += 1
    for column in set(range(len(predicted))) - matched_predicted:
        over = np.flatnonzero(touching[:, column])
        if over.size == 0:
            found["spurious"] += 1
        elif matched_truth.issuperset(over.tolist()):
            found["second piece"] += 1
    return found


NEAR = 200  # samples either side of a missed event searched for an unlabelled peak


def missed_beside_interference(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray,
                               filtered: np.ndarray) -> tuple[int, int]:
    """(missed events, those with an unlabelled peak of at least half theirs within ``NEAR``
    samples)."""
    touching = interval_iou(truth, predicted) > 0
    magnitude = np.abs(filtered)
    missed = beside = 0
    for index, (start, end) in enumerate(truth.tolist()):
        if touching[index].any():
            continue
        missed += 1
        lo, hi = max(start - NEAR, 0), min(end + NEAR, mask.size)
        unlabelled = magnitude[lo:hi][~mask[lo:hi]]
        beside += bool(unlabelled.size and unlabelled.max() >= 0.5 * magnitude[start:end].max())
    return missed, beside


SHORT_DECAY = 5.0  # samples: pulses that decay faster are a few samples long
SHAPE_CLASSES = ("exponential, short", "exponential, long", "oscillation, short",
                 "oscillation, long", "bipolar, short", "bipolar, long", "burst")


def shape_class(pulse: dict) -> str:
    """The family of an event's first pulse, and whether it is short (decay under 5 samples):
    short pulses are the ones a detector that learnt "short means not PD" misses."""
    if pulse["source"] == "burst":
        return "burst"
    return f"{pulse['family']}, {'short' if pulse['decay'] < SHORT_DECAY else 'long'}"


def missed_by_shape(truth: np.ndarray, predicted: np.ndarray, pulses: list[dict]) -> dict:
    """{shape class: [events, missed]} for the events that start with a pulse of that class."""
    touching = interval_iou(truth, predicted) > 0
    first_pulse = {pulse["onset"]: pulse for pulse in pulses}
    found = {name: [0, 0] for name in SHAPE_CLASSES}
    for index, start in enumerate(truth[:, 0].tolist()):
        if start in first_pulse:
            entry = found[shape_class(first_pulse[start])]
            entry[0] += 1
            entry[1] += int(not touching[index].any())
    return found


def cut_at(predicted: np.ndarray, starts: np.ndarray, margin: int = 4) -> np.ndarray:
    """Each prediction cut at the given starts that lie inside it (not within ``margin``
    samples of its ends: an onset found a few samples early is still the same event)."""
    pieces = []
    for start, end in predicted.tolist():
        bounds = [start, *[int(s) for s in starts if start + margin < s < end - margin], end]
        pieces += list(zip(bounds[:-1], bounds[1:]))
    return np.asarray(pieces, dtype=np.int64).reshape(-1, 2)


def second_pieces(truth: np.ndarray, predicted: np.ndarray) -> list[tuple[int, int, int]]:
    """``(piece, event, owner)`` for each second piece (:func:`causes`) that touches one true
    event: the piece's and the matching prediction's indices in ``predicted``, the event's in
    ``truth``."""
    iou, matched = matching(truth, predicted)
    found = []
    for column in sorted(set(range(len(predicted))) - set(matched.values())):
        over = np.flatnonzero(iou[:, column] > 0).tolist()
        if len(over) == 1 and over[0] in matched:
            found.append((column, over[0], matched[over[0]]))
    return found


def join_second_pieces(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``predicted`` with each second piece (:func:`causes`) that touches one true event joined
    to the prediction that matched that event (the span of both), where that span overlaps no
    other prediction: regions as they would be had the event's pieces been reported as one.
    A piece over several events, or one whose join would overlap another region, stays."""
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1, 2)
    pieces: dict[int, list[int]] = {}  # the matched prediction -> its event's second pieces
    for column, _, owner in second_pieces(truth, predicted):
        pieces.setdefault(owner, []).append(column)
    joined = predicted.copy()
    keep = np.ones(len(predicted), dtype=bool)
    for owner, columns in pieces.items():
        group = [owner, *columns]
        start, end = int(predicted[group, 0].min()), int(predicted[group, 1].max())
        others = np.ones(len(predicted), dtype=bool)
        others[group] = False
        if np.any((joined[others, 0] < end) & (joined[others, 1] > start)):
            continue
        joined[owner] = (start, end)
        keep[columns] = False
    return joined[keep]


SLOW_DECAY = 20.0  # samples: an exponential or oscillation decaying slower is labelled for 46 samples or more


def piece_report(truth: np.ndarray, predicted: np.ndarray, pulses: list[dict],
                 mask: np.ndarray | None = None) -> list[dict]:
    """What each second piece over one event is: the pulses its event holds (a burst counts as
    one), whether one of them is a burst (labelled over its ringing), the slowest decay, in
    samples, of the event's exponentials and oscillations that are not a burst's (labelled to a
    tenth of their envelope, the decay times ln 10 after the onset), the gap in samples between
    the piece and the prediction that matched its event (served regions are at least the merge
    gap apart), and, given the truth ``mask``, the share of that gap that is labelled."""
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1, 2)
    out = []
    for column, event, owner in second_pieces(truth, predicted):
        start, end = truth[event].tolist()
        inside = [pulse for pulse in pulses if start <= pulse["onset"] < end]
        decays = [pulse["decay"] for pulse in inside
                  if pulse.get("source") != "burst" and pulse.get("family") in ("exponential", "oscillation")]
        piece, region = predicted[column], predicted[owner]
        first, last = (int(region[1]), int(piece[0])) if piece[0] >= region[1] else (int(piece[1]), int(region[0]))
        entry = {"pulses": len(inside), "burst": any(pulse.get("source") == "burst" for pulse in inside),
                 "slowest_decay": max(decays, default=0.0), "gap": last - first}
        if mask is not None:
            entry["labelled"] = float(np.mean(mask[first:last])) if last > first else 1.0
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(_bootstrap.ROOT / "model_store" / "weights"))
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--tiers", nargs="+", default=["30w", "20w", "14w", "30i", "20i", "14i", "10i"],
                        help="SNR in dB, then w (white) or i (interference)")
    parser.add_argument("--validation", action="store_true",
                        help="the training generator's validation split instead of its test split")
    args = parser.parse_args()
    segmenter, _ = served_segmenter(Path(args.weights))
    seed = VALIDATION_SEED if args.validation else EVAL_SEED
    print(f"the training generator's {'validation' if args.validation else 'test'} tiers\n")
    reports = [tier_report(segmenter, tier, args.count, args.length, seed) for tier in args.tiers]
    print("| tier | true events | " + " | ".join(CAUSES) + " | F1 | F1 cut at true starts | F1 with second pieces joined |")
    print("|---|---|" + "---|" * len(CAUSES) + "---|---|---|")
    for report in reports:
        print(f"| {report['name']} | {report['events']} | "
              + " | ".join(str(v) for v in report["causes"].values())
              + f" | {report['f1']:.3f} | {report['f1_cut']:.3f} | {report['f1_joined']:.3f} |")
    print()
    print("| tier | second pieces over one event | in an event of 2 or more pulses | ... holding a burst "
          f"| ... holding an exponential or oscillation decaying over {SLOW_DECAY:g} samples or more "
          "| pulses in their events | gap to the region that matched, samples (least / median / most) "
          "| labelled share of the gap (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for report in reports:
        pieces = report["pieces"]
        several = [piece for piece in pieces if piece["pulses"] >= 2]
        counts, gaps = [piece["pulses"] for piece in pieces], [piece["gap"] for piece in pieces]
        print(f"| {report['name']} | {len(pieces)} | {len(several)} | {sum(piece['burst'] for piece in several)} | "
              f"{sum(piece['slowest_decay'] >= SLOW_DECAY for piece in several)} | "
              + (f"{min(counts)}-{max(counts)} | {min(gaps)} / {np.median(gaps):g} / {max(gaps)} | "
                 f"{np.median([piece['labelled'] for piece in pieces]):.2f} |" if pieces else "- | - | - |"))
    print()
    print(f"| tier | missed | beside an unlabelled peak >= half theirs (within {NEAR} samples) | "
          "in the 4 captures with the most |")
    print("|---|---|---|---|")
    for report in reports:
        print(f"| {report['name']} | " + " | ".join(str(v) for v in report["misses"]) + " |")
    print()
    print("| tier | " + " | ".join(f"{name}: missed / events" for name in SHAPE_CLASSES) + " |")
    print("|---|" + "---|" * len(SHAPE_CLASSES))
    for report in reports:
        print(f"| {report['name']} | " + " | ".join(
            f"{missed} / {events}" for events, missed in report["by_shape"].values()) + " |")
    if any("f1_without_notches" in report for report in reports):
        print()
        print("| tier | F1 | F1, the same captures without converter notches |")
        print("|---|---|---|")
        for report in reports:
            if "f1_without_notches" in report:
                print(f"| {report['name']} | {report['f1']:.3f} | {report['f1_without_notches']:.3f} |")
    print()
    print("| tier | " + " | ".join(f"F1 (P / R), events joined below {gap} samples" for gap in JOIN_GAPS) + " |")
    print("|---|" + "---|" * len(JOIN_GAPS))
    for report in reports:
        print(f"| {report['name']} | " + " | ".join(f"{c.f1:.3f} ({c.precision:.3f} / {c.recall:.3f})"
                                                   for c in report["by_join_gap"].values()) + " |")


def tier_report(segmenter, tier: str, count: int, length: int, seed: int = EVAL_SEED) -> dict:
    """Every figure of one tier ("30w": 30 dB, white noise; "30i": with interference)."""
    snr, interference = float(tier[:-1]), tier[-1] == "i"
    captures = list(synthetic.evaluation_set(snr, interference, count, length, seed))
    results = segmenter.analyse([c.signal for c in captures])
    totals = dict.fromkeys(CAUSES, 0)
    counts, bound, joined, events = EventCounts(), EventCounts(), EventCounts(), 0
    by_join_gap = {gap: EventCounts() for gap in JOIN_GAPS}
    per_capture = []
    by_shape = {name: [0, 0] for name in SHAPE_CLASSES}
    pieces = []
    for capture, result in zip(captures, results):
        truth = truth_events(capture.mask, segmenter.min_gap)
        events += len(truth)
        for cause, value in causes(truth, result.regions).items():
            totals[cause] += value
        counts.add(match_events(truth, result.regions))
        bound.add(match_events(truth, cut_at(result.regions, truth[:, 0])))
        joined.add(match_events(truth, join_second_pieces(truth, result.regions)))
        pieces += piece_report(truth, result.regions, capture.pulses, capture.mask)
        per_capture.append(missed_beside_interference(truth, result.regions, capture.mask,
                                                      result.conditioned.filtered))
        for name, (shaped, missed) in missed_by_shape(truth, result.regions, capture.pulses).items():
            by_shape[name][0] += shaped
            by_shape[name][1] += missed
        for gap in JOIN_GAPS:
            by_join_gap[gap].add(match_events(mask_to_regions(capture.mask, gap), result.regions))
    missed_each = sorted((missed for missed, _ in per_capture), reverse=True)
    report = {"name": f"{snr:.0f} dB {'interference' if interference else 'white'}",
              "events": events, "causes": totals, "f1": counts.f1, "f1_cut": bound.f1,
              "f1_joined": joined.f1, "pieces": pieces,
              "misses": (sum(missed_each), sum(beside for _, beside in per_capture),
                         sum(missed_each[:4])),
              "by_join_gap": by_join_gap, "by_shape": by_shape}
    if interference:
        clean = list(synthetic.evaluation_set(snr, interference, count, length, seed,
                                              converter_notches=False))
        report["f1_without_notches"] = score(
            clean, [r.regions for r in segmenter.analyse([c.signal for c in clean])], MIN_IOU,
            segmenter.min_gap).f1
    return report


if __name__ == "__main__":
    main()
