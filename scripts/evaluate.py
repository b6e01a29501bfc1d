"""Evaluate the served model against the tuned classical detector on fixed synthetic tiers,
and run the real captures.

    python scripts/evaluate.py                  # full run; updates docs/model-card.md
    python scripts/evaluate.py --count 5 --no-write   # a quick look
    python scripts/evaluate.py --held-out [--without-whitened-view] [--without-isolated-transients]
                                                # validation splits, print only

Per tier (per-pulse peak SNR 30/20/14/10/6 dB, white noise only and with full interference):
event precision, recall and F1 (one-to-one matching, hit at IoU >= 0.3, F1 also at IoU >= 0.5)
and median onset error; false alarms per cycle on PD-free captures. The classical detector's
k is tuned on a separate validation split in the same run.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
import torch

from pdseg import preprocess, transients
from pdseg.model import export_torchscript, flops_per_window, load_trained, parameter_count
from pdseg.pipeline import Segmenter
from pdseg.render import render_png
from training import classical, independent, synthetic
from training.scoring import EventCounts, match_events, truth_events

ROOT = _bootstrap.ROOT
EVAL_SEED = 424242
VALIDATION_SEED = 515151
K_GRID = (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)
GAP_GRID = (8, 32, 128)  # samples: merging crossings of one oscillating pulse into one region
REAL_CAPTURES = ROOT.parent / "shared" / "data" / "real_pd_signals.npy"


def served_segmenter(weights_dir: Path, threads: int = 2) -> tuple[Segmenter, dict]:
    """The network exactly as the default archive serves it: frozen TorchScript on ``threads``
    torch threads (the ONNX archive gives the same regions: tests/test_server.py)."""
    network, record = load_trained(weights_dir)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        export_torchscript(network, path, window=record["window"]["window"])
        served = torch.jit.load(str(path)).eval()
    return Segmenter.from_record(served, record), record


def capture_mask(capture) -> np.ndarray:
    """The labelled samples of a capture from either generator (the independent one lists
    its events as intervals)."""
    if hasattr(capture, "mask"):
        return capture.mask
    mask = np.zeros(capture.signal.size, dtype=bool)
    for start, end in np.asarray(capture.events).reshape(-1, 2):
        mask[start:end] = True
    return mask


def score(captures, predicted_regions, min_iou, merge_gap: int) -> EventCounts:
    """Events matched one-to-one by IoU; true events closer than the service's merge gap
    are one event (scoring.truth_events)."""
    counts = EventCounts()
    for capture, predicted in zip(captures, predicted_regions):
        counts.add(match_events(truth_events(capture_mask(capture), merge_gap), predicted, min_iou))
    return counts


def tune_classical(captures, merge_gap: int) -> tuple[tuple[float, int], dict]:
    """k (threshold in MAD sigmas) and the gap that merges crossings with the best F1 over
    ``captures``, a validation split of the set the detector is then tested on."""
    scores = {}
    for k in K_GRID:
        for gap in GAP_GRID:
            found = [classical.detect(c.signal, k, gap) for c in captures]
            scores[f"k={k:g},gap={gap}"] = (round(score(captures, found, 0.3, merge_gap).f1, 4), (k, gap))
    best = max(scores.values())[1]
    return best, {name: value[0] for name, value in scores.items()}


def in_distribution_validation(count: int, length: int) -> list:
    return [capture for snr in synthetic.SNR_TIERS_DB for interference in (False, True)
            for capture in synthetic.evaluation_set(snr, interference, count, length, VALIDATION_SEED)]


def independent_report(segmenter: Segmenter, count: int, length: int, split: str = "test") -> dict:
    """The model against the classical detector tuned on the independent generator's own
    validation split, on that generator's test split (training/independent.py: shares no
    code with the training generator, never used to train or tune the network)."""
    gap = segmenter.min_gap
    validation = [c for snr, interference in independent.TIERS
                  for c in independent.tier(snr, interference, "validation", max(count // 4, 3), length)]
    (best_k, best_gap), _ = tune_classical(validation, gap)
    report = {"classical_k": best_k, "classical_gap": best_gap, "tiers": [], "false_alarms": []}
    for snr, interference in independent.TIERS:
        captures = independent.tier(snr, interference, split, count, length)
        model_regions = [r.regions for r in segmenter.analyse([c.signal for c in captures])]
        classic_regions = [classical.detect(c.signal, best_k, best_gap) for c in captures]
        report["tiers"].append({
            "snr_db": snr, "interference": interference,
            "model": row(score(captures, model_regions, 0.3, gap), score(captures, model_regions, 0.5, gap)),
            "classical": row(score(captures, classic_regions, 0.3, gap),
                             score(captures, classic_regions, 0.5, gap))})
    for interference in (False, True):
        captures = independent.pd_free_tier(interference, split, count, length)
        model_count = sum(len(r.regions) for r in segmenter.analyse([c.signal for c in captures]))
        classic_count = sum(len(classical.detect(c.signal, best_k, best_gap)) for c in captures)
        report["false_alarms"].append({
            "interference": interference, "captures": len(captures),
            "model_per_capture": round(model_count / len(captures), 3),
            "classical_per_capture": round(classic_count / len(captures), 3)})
    return report


def print_tier_table(tiers: list[dict]) -> None:
    print(f"{'tier':>18} | {'model P':>7} {'R':>5} {'F1':>5} {'F1@.5':>5} {'onset':>5} | "
          f"{'class P':>7} {'R':>5} {'F1':>5} {'F1@.5':>5} | {'ΔF1':>5}")
    for entry in tiers:
        m, c = entry["model"], entry["classical"]
        name = f"{entry['snr_db']:.0f} dB {'interference' if entry['interference'] else 'white'}"
        print(f"{name:>18} | {m['precision']:7.3f} {m['recall']:5.3f} {m['f1']:5.3f} {m['f1_iou05']:5.3f} "
              f"{m['median_onset_error'] if m['median_onset_error'] is not None else '-':>5} | "
              f"{c['precision']:7.3f} {c['recall']:5.3f} {c['f1']:5.3f} {c['f1_iou05']:5.3f} | "
              f"{m['f1'] - c['f1']:+.3f}")


def row(counts: EventCounts, counts_05: EventCounts) -> dict:
    return {"precision": round(counts.precision, 3), "recall": round(counts.recall, 3),
            "f1": round(counts.f1, 3), "f1_iou05": round(counts_05.f1, 3),
            "median_onset_error": counts.median_onset_error,
            "events": counts.true_positive + counts.false_negative}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "model_store" / "weights"))
    parser.add_argument("--count", type=int, default=40, help="captures per tier")
    parser.add_argument("--length", type=int, default=16384, help="samples per capture")
    parser.add_argument("--real", default=str(REAL_CAPTURES))
    parser.add_argument("--no-write", action="store_true", help="print only, write no docs")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--held-out", action="store_true",
                        help="the validation splits instead of the test splits (print only): where a "
                             "conditioning choice is made, so that the test splits stay untouched")
    parser.add_argument("--without-isolated-transients", action="store_true",
                        help="report only the network's regions, not the isolated short transients far "
                             "out of the noise that it leaves undecided (print only)")
    parser.add_argument("--without-whitened-view", action="store_true",
                        help="condition without the whitened view of correlated noise (print only)")
    args = parser.parse_args()
    if args.held_out or args.without_whitened_view or args.without_isolated_transients:
        args.no_write = True
    if args.without_whitened_view:
        preprocess.with_whitened_view = lambda conditioned, *_: conditioned
    if args.without_isolated_transients:
        transients.LEVEL = transients.QUANTUM_LEVEL = math.inf  # no sample is loud enough
    seed, split = (VALIDATION_SEED, "validation") if args.held_out else (EVAL_SEED, "test")
    torch.set_num_threads(2)
    started = time.time()

    segmenter, record = served_segmenter(Path(args.weights))
    (best_k, best_gap), k_scores = tune_classical(
        in_distribution_validation(max(args.count // 4, 3), args.length), segmenter.min_gap)
    results = {"tiers": [], "false_alarms": [], "classical_k": best_k, "classical_gap": best_gap,
               "classical_validation_f1": k_scores, "threshold": segmenter.threshold,
               "region_rules": {"extent_threshold": segmenter.extent_for(segmenter.threshold),
                                "min_gap": segmenter.min_gap, "min_length": segmenter.min_length}}
    print(f"classical detector: k = {best_k}, gap = {best_gap} (best validation F1 "
          f"{max(k_scores.values())} over {len(k_scores)} settings)")
    for interference in (False, True):
        for snr in synthetic.SNR_TIERS_DB:
            captures = list(synthetic.evaluation_set(snr, interference, args.count, args.length, seed))
            model_regions = [r.regions for r in segmenter.analyse([c.signal for c in captures])]
            classic_regions = [classical.detect(c.signal, best_k, best_gap) for c in captures]
            entry = {
                "snr_db": snr, "interference": interference,
                "model": row(score(captures, model_regions, 0.3, segmenter.min_gap),
                             score(captures, model_regions, 0.5, segmenter.min_gap)),
                "classical": row(score(captures, classic_regions, 0.3, segmenter.min_gap),
                                 score(captures, classic_regions, 0.5, segmenter.min_gap)),
            }
            results["tiers"].append(entry)
    print(f"in-distribution tiers (the training generator's, {'validation' if args.held_out else 'fixed'} seeds):")
    print_tier_table(results["tiers"])
    for interference in (False, True):
        captures = list(synthetic.pd_free_set(interference, args.count, args.length, seed))
        cycles = sum(c.signal.size / c.samples_per_cycle for c in captures)
        model_count = sum(len(r.regions) for r in segmenter.analyse([c.signal for c in captures]))
        classic_count = sum(len(classical.detect(c.signal, best_k, best_gap)) for c in captures)
        entry = {"interference": interference, "cycles": round(cycles, 1),
                 "model_per_cycle": round(model_count / cycles, 4),
                 "classical_per_cycle": round(classic_count / cycles, 4)}
        results["false_alarms"].append(entry)
        print(f"PD-free {'interference' if interference else 'white'}: false alarms per cycle "
              f"model {entry['model_per_cycle']}, classical {entry['classical_per_cycle']} over {cycles:.0f} cycles")

    results["independent"] = independent_report(segmenter, args.count, args.length, split)
    print(f"independent generator ({split} split; classical k = {results['independent']['classical_k']}, "
          f"gap = {results['independent']['classical_gap']}, tuned on its validation split):")
    print_tier_table(results["independent"]["tiers"])
    for entry in results["independent"]["false_alarms"]:
        print(f"independent PD-free {'interference' if entry['interference'] else 'white'}: regions per "
              f"capture model {entry['model_per_capture']}, classical {entry['classical_per_capture']}")

    real_path = Path(args.real)
    if real_path.is_file():
        results["real"] = real_capture_checks(segmenter, np.load(real_path), None if args.no_write else ROOT / "docs" / "figures")
    network, _ = load_trained(Path(args.weights))
    results["model"] = {"parameters": parameter_count(network),
                        "flops_per_sample": flops_per_window(network, 4096) / 4096,
                        "weights_bytes": (Path(args.weights) / "pd_segmenter.state.pt").stat().st_size}
    results["machine"] = (f"{platform.machine()}, network in frozen TorchScript on {torch.get_num_threads()} "
                          f"threads, torch {torch.__version__}")
    results["command"] = "python scripts/evaluate.py " + " ".join(sys.argv[1:])
    results["seconds"] = round(time.time() - started, 1)
    print(f"done in {results['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_write:
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
        write_card_tables(results, record)


def real_capture_checks(segmenter: Segmenter, captures: np.ndarray, figures: Path | None) -> list[dict]:
    together = segmenter.analyse(list(captures))
    report = []
    for index, (capture, result) in enumerate(zip(captures, together)):
        alone = segmenter.analyse([capture])[0]
        boundary_shift = 0
        same_count = True
        for factor in (0.5, 2.0):
            scaled = segmenter.analyse([capture * factor])[0].regions
            if scaled.shape != result.regions.shape:
                same_count = False
            elif scaled.size:
                boundary_shift = max(boundary_shift, int(np.abs(scaled - result.regions).max()))
        described = result.to_json(index)
        report.append({
            "capture": index,
            "regions": [{k: r[k] for k in ("start", "end", "peak", "polarity", "phase_deg")} for r in described["regions"]],
            "alone_equals_together": bool(np.array_equal(alone.regions, result.regions)),
            "scaling_same_region_count": same_count,
            "scaling_max_boundary_shift": boundary_shift,
        })
        print(f"real capture {index}: {len(result.regions)} regions "
              f"{result.regions.tolist()} phases {[r['phase_deg'] for r in described['regions']]}")
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "real-captures.png").write_bytes(render_png(together))
    return report


def write_card_tables(results: dict, record: dict) -> None:
    lines = tier_lines(results["tiers"])
    lines += ["", "| PD-free captures | cycles | model false alarms / cycle | classical false alarms / cycle |",
              "|---|---|---|---|"]
    for entry in results["false_alarms"]:
        lines.append(f"| {'with interference' if entry['interference'] else 'white noise'} | {entry['cycles']} | "
                     f"{entry['model_per_cycle']} | {entry['classical_per_cycle']} |")
    if "real" in results:
        lines += ["", "| real capture | regions (start-end, phase°) | alone = together | ×0.5/×2: same count, max boundary shift |",
                  "|---|---|---|---|"]
        for entry in results["real"]:
            spans = ", ".join(f"{r['start']}-{r['end']} ({r['phase_deg']:.0f}°)" for r in entry["regions"])
            lines.append(f"| {entry['capture']} | {spans} | {entry['alone_equals_together']} | "
                         f"{entry['scaling_same_region_count']}, {entry['scaling_max_boundary_shift']} samples |")
    model, rules = results["model"], results["region_rules"]
    lines += ["", f"Model: {model['parameters']:,} parameters, {model['flops_per_sample']:,.0f} FLOP per sample, "
              f"weights {model['weights_bytes'] / 1e6:.2f} MB; decision threshold {results['threshold']}, "
              f"regions extend while the probability is at least {rules['extent_threshold']}, merge gap "
              f"{rules['min_gap']}, shortest region {rules['min_length']} samples (all chosen on "
              f"validation); classical detector k = {results['classical_k']}, merge gap "
              f"{results['classical_gap']} samples (tuned on a validation split).",
              f"Produced by `{results['command'].strip()}` in {results['seconds']} s on {results['machine']}."]
    write_card_section("results", lines)
    independent_lines = tier_lines(results["independent"]["tiers"]) + [
        "", "| PD-free captures (independent) | captures | model regions / capture | classical regions / capture |",
        "|---|---|---|---|"]
    for entry in results["independent"]["false_alarms"]:
        independent_lines.append(
            f"| {'with interference' if entry['interference'] else 'white noise'} | {entry['captures']} | "
            f"{entry['model_per_capture']} | {entry['classical_per_capture']} |")
    independent_lines += ["", f"Classical detector k = {results['independent']['classical_k']}, merge gap "
                          f"{results['independent']['classical_gap']} samples, tuned on the independent "
                          f"generator's validation split; the tiers above are its test split. Produced by "
                          f"`{results['command'].strip()}` (same run as the table above)."]
    write_card_section("independent", independent_lines)


def tier_lines(tiers: list[dict]) -> list[str]:
    lines = ["| tier | model P | model R | model F1 | F1 @IoU.5 | onset err | classical P | classical R | classical F1 | F1 @IoU.5 | ΔF1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in tiers:
        m, c = entry["model"], entry["classical"]
        name = f"{entry['snr_db']:.0f} dB {'+ interference' if entry['interference'] else 'white'}"
        lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | **{m['f1']:.3f}** | {m['f1_iou05']:.3f} | "
                     f"{m['median_onset_error']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | "
                     f"{c['f1_iou05']:.3f} | {m['f1'] - c['f1']:+.3f} |")
    return lines


CARD = ROOT / "docs" / "model-card.md"


def write_card_section(marker: str, lines: list[str]) -> None:
    """Replace the model card's text between ``<!-- marker:start -->`` and ``<!-- marker:end -->``
    (the figures a rerun updates)."""
    text = CARD.read_text()
    head, rest = text.split(f"<!-- {marker}:start -->", 1)
    _, tail = rest.split(f"<!-- {marker}:end -->", 1)
    CARD.write_text(head + f"<!-- {marker}:start -->\n" + "\n".join(lines) + f"\n<!-- {marker}:end -->" + tail)


def regions_of(segmenter, conditioned) -> np.ndarray:
    """The served region rules on one conditioned signal (``pdseg.preprocess.Conditioned``):
    the network over it, then ``Segmenter.regions``."""
    return segmenter.regions(segmenter.probabilities([conditioned])[0], None, conditioned)


def card_section_command(description: str, marker: str, lines_for) -> None:
    """The command line of a script that measures the served model and prints one model-card
    section (``--weights``, ``--no-write``): ``lines_for(segmenter, started)`` gives its lines
    (``started``: ``time.time()`` before the model was loaded), written between the ``marker``'s
    comments unless ``--no-write``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--weights", default=str(ROOT / "model_store" / "weights"))
    parser.add_argument("--no-write", action="store_true", help="print only, write no docs")
    args = parser.parse_args()
    started = time.time()
    segmenter, _ = served_segmenter(Path(args.weights))
    lines = lines_for(segmenter, started)
    print("\n".join(lines))
    if not args.no_write:
        write_card_section(marker, lines)


if __name__ == "__main__":
    main()
