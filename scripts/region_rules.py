"""The served region rules against variants of them, on fixed sets whose network output is
computed once: how far each rule is from what the validation splits prefer.

    python scripts/region_rules.py              # writes the model card's "region-rules" table
    python scripts/region_rules.py --no-write --count 20 --atlas-trials 24   # a quick look

The network's probability and the conditioned signals of every set are computed once; each
variant then only re-runs the region rules (:meth:`pdseg.pipeline.Segmenter.regions_and_added`:
decision and extent levels, :func:`pdseg.regions.trim_to_signal`, the isolated transients, the
slower view's regions). The variant ``served`` must give exactly the regions the segmenter
gives (checked on every signal before anything is printed).

Variants: the served knobs moved (decision threshold, extent level, the trim's floor, fraction,
ceiling, largest move and tail ratio), and three rules that are not served, defined here:

* ``grow``: each region's end moved out while the mean magnitude of the next 8 samples stays at
  2 noise units or more (a slow pulse's tail that the network's extent leaves out);
* ``bridge signal``: neighbouring regions joined where the gap between them (at most 256 samples)
  has a mean magnitude of 1.5 noise units or more (a dense cluster's weak tails);
* ``bridge probability``: the same where the gap (at most 128 samples) has a mean probability
  of 0.1 or more.

Sets: the training generator's validation split (per-pulse peak SNR 30 / 20 / 14 dB, white and
with interference; F1 at IoU 0.3 with the served merge gap as the event rule) and its PD-free
captures (regions per capture); the independent generator's validation split and PD-free
captures; the real captures (regions per capture, where the file is at hand); and the pulse
atlas at 20 and 30 dB (a test set, printed as a check: no rule is chosen on it).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import REAL_CAPTURES, VALIDATION_SEED, score, served_segmenter, write_card_section
from pdseg import regions as regions_mod
from pdseg import slow, transients
from pdseg.pipeline import Segmenter
from pdseg.regions import probability_to_regions
from training import atlas, independent, synthetic

ROOT = _bootstrap.ROOT
ATLAS_SNRS_DB = (20.0, 30.0)


def grown(regions: np.ndarray, filtered: np.ndarray, scale: float, width: int = 8, level: float = 2.0,
          reach: int = 256) -> np.ndarray:
    """Each region's end moved out while the mean magnitude of the next ``width`` samples is at
    least ``level`` noise units (``scale``), by at most ``reach`` samples and never into the next
    region."""
    if len(regions) == 0 or scale <= 0:
        return regions
    units = np.abs(filtered) / scale
    running = np.concatenate(([0.0], np.cumsum(units)))
    out = regions.copy()
    for index, (start, end) in enumerate(regions.tolist()):
        following = int(regions[index + 1][0]) if index + 1 < len(regions) else units.size
        limit = min(units.size - width, end + reach, following)
        new_end = end
        while new_end < limit and (running[new_end + width] - running[new_end]) / width >= level:
            new_end += 1
        out[index, 1] = min(following, new_end + width // 2) if new_end > end else end
    return out


def bridged(regions: np.ndarray, gap_level: Callable[[int, int], float], level: float, longest: int) -> np.ndarray:
    """Neighbouring regions joined where the gap between them is at most ``longest`` samples and
    ``gap_level(start, end)`` of the gap is at least ``level``."""
    if len(regions) < 2:
        return regions
    out = [list(regions[0])]
    for start, end in regions[1:].tolist():
        gap = start - out[-1][1]
        if 0 < gap <= longest and gap_level(out[-1][1], start) >= level:
            out[-1][1] = end
        else:
            out.append([start, end])
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    threshold: float | None = None  # None: the model's
    extent: float | None = None  # None: the model's
    trim: tuple[tuple[str, float], ...] = ()  # trim_to_signal's keywords
    grow: bool = False
    bridge_signal: bool = False
    bridge_probability: bool = False


VARIANTS = (
    Variant("served"),
    Variant("threshold 0.9", threshold=0.9),
    Variant("threshold 0.8", threshold=0.8),
    Variant("extent 0.2", extent=0.2),
    Variant("extent 0.4", extent=0.4),
    Variant("trim floor 2 units", trim=(("floor", 2.0),)),
    Variant("trim floor 3 units", trim=(("floor", 3.0),)),
    Variant("trim fraction 0.05", trim=(("fraction", 0.05),)),
    Variant("trim fraction 0.2", trim=(("fraction", 0.2),)),
    Variant("trim ceiling 3 units", trim=(("ceiling", 3.0),)),
    Variant("trim ceiling 8 units", trim=(("ceiling", 8.0),)),
    Variant("trim moves 16 samples", trim=(("most", 16),)),
    Variant("trim tail ratio 4", trim=(("tail_ratio", 4.0),)),
    Variant("grow", grow=True),
    Variant("bridge signal", bridge_signal=True),
    Variant("bridge probability", bridge_probability=True),
)


def variant_regions(segmenter: Segmenter, variant: Variant, probability: np.ndarray, conditioned,
                    record: dict) -> np.ndarray:
    """The regions of one prepared signal under ``variant``: the steps of
    ``Segmenter.regions_and_added``, with the variant's settings and rules."""
    threshold = record["threshold"] if variant.threshold is None else variant.threshold
    extent = segmenter.extent_for(threshold) if variant.extent is None else min(variant.extent, threshold)
    trim = functools.partial(regions_mod.trim_to_signal, **dict(variant.trim))

    def rules(probability, conditioned) -> np.ndarray:
        found = probability_to_regions(probability, threshold, segmenter.min_gap, segmenter.min_length, extent)
        if variant.bridge_probability:
            found = bridged(found, lambda s, e: float(probability[s:e].mean()), 0.1, 128)
        found = trim(found, conditioned.filtered, conditioned.scale)
        found = segmenter.with_near_regions(found, threshold, conditioned)  # the served extent level
        if variant.grow:
            found = grown(found, conditioned.filtered, conditioned.scale)
        if variant.bridge_signal:
            units = np.abs(conditioned.filtered) / conditioned.scale
            found = bridged(found, lambda s, e: float(units[s:e].mean()), 1.5, 256)
        found = transients.with_isolated_transients(found, conditioned.filtered, conditioned.scale,
                                                    segmenter.min_gap, conditioned.quantum)
        view = conditioned.slow
        if view is None:
            return found
        view_regions = rules(segmenter.view_probability(view), view)
        return slow.added_regions(found, slow.to_full_rate(view_regions, view.length, conditioned.length),
                                  segmenter.min_gap)[0]

    return rules(probability, conditioned)


@dataclasses.dataclass
class Prepared:
    name: str
    kind: str  # "f1": captures with labels; "per_capture": regions per capture; "atlas"
    captures: list
    signals: list  # (conditioned, probability) per capture


def prepare(segmenter: Segmenter, name: str, kind: str, captures: list, signals: list | None = None) -> Prepared:
    raw = signals if signals is not None else [capture.signal for capture in captures]
    prepared = []
    for first in range(0, len(raw), 64):
        conditioned = [segmenter.condition(signal) for signal in raw[first: first + 64]]
        prepared += list(zip(conditioned, segmenter.probabilities(conditioned)))
    return Prepared(name, kind, captures, prepared)


def sets(segmenter: Segmenter, count: int, length: int, atlas_trials: int, real: Path) -> list[Prepared]:
    out = []
    for snr in synthetic.SNR_TIERS_DB[:3]:
        for interference in (False, True):
            captures = list(synthetic.evaluation_set(snr, interference, count, length, VALIDATION_SEED))
            out.append(prepare(segmenter, f"training gen. {snr:.0f} dB {'interf.' if interference else 'white'}",
                               "f1", captures))
    for interference in (False, True):
        captures = list(synthetic.pd_free_set(interference, count, length, VALIDATION_SEED))
        out.append(prepare(segmenter, f"training gen. PD-free {'interf.' if interference else 'white'}",
                           "per_capture", captures))
    for snr, interference in independent.TIERS:
        captures = independent.tier(snr, interference, "validation", count, length)
        out.append(prepare(segmenter, f"independent {snr:.0f} dB {'interf.' if interference else 'white'}",
                           "f1", captures))
    for interference in (False, True):
        captures = independent.pd_free_tier(interference, "validation", count, length)
        out.append(prepare(segmenter, f"independent PD-free {'interf.' if interference else 'white'}",
                           "per_capture", captures))
    if real.is_file():
        captures = list(np.load(real))
        out.append(prepare(segmenter, "real captures", "per_capture", captures, captures))
    if atlas_trials:
        config = atlas.AtlasConfig(snrs_db=ATLAS_SNRS_DB, trials=atlas_trials)
        out.append(prepare(segmenter, "atlas", "atlas", list(atlas.iter_captures(config))))
    return out


def figures(segmenter: Segmenter, prepared: Prepared, regions: list[np.ndarray]) -> dict[str, float]:
    if prepared.kind == "f1":
        return {prepared.name: score(prepared.captures, regions, 0.3, segmenter.min_gap).f1}
    if prepared.kind == "per_capture":
        return {prepared.name: float(np.mean([len(r) for r in regions]))}
    found: dict[float, list[bool]] = {}
    for capture, predicted in zip(prepared.captures, regions):
        found.setdefault(capture.snr_db, []).extend(atlas.score_capture(capture, predicted, segmenter.min_gap).hit)
    return {f"atlas {snr:.0f} dB (test set)": float(np.mean(hits)) for snr, hits in sorted(found.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "model_store" / "weights"))
    parser.add_argument("--count", type=int, default=40, help="captures per validation tier")
    parser.add_argument("--length", type=int, default=16384, help="samples per validation capture")
    parser.add_argument("--atlas-trials", type=int, default=96, help="atlas pulses per cell (0: no atlas)")
    parser.add_argument("--real", default=str(REAL_CAPTURES))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.time()
    segmenter, record = served_segmenter(Path(args.weights))
    prepared = sets(segmenter, args.count, args.length, args.atlas_trials, Path(args.real))
    for group in prepared:  # the harness must measure the served rules
        for conditioned, probability in group.signals:
            expected = segmenter.regions(probability, None, conditioned)
            got = variant_regions(segmenter, VARIANTS[0], probability, conditioned, record)
            if not np.array_equal(expected, got):
                raise SystemExit(f"the harness's served rules differ from the segmenter's on {group.name}")
    table: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        row: dict[str, float] = {}
        for group in prepared:
            regions = [variant_regions(segmenter, variant, p, c, record) for c, p in group.signals]
            row |= figures(segmenter, group, regions)
        table[variant.name] = row
        print(f"{variant.name:>22}: " + " | ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    seconds = round(time.time() - started, 1)
    command = "python scripts/region_rules.py " + " ".join(sys.argv[1:])
    machine = f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    lines = card_lines(table, command, seconds, machine, args)
    print("\n".join(lines))
    if not args.no_write:
        write_card_section("region-rules", lines)


def card_lines(table: dict[str, dict[str, float]], command: str, seconds: float, machine: str, args) -> list[str]:
    served = table["served"]
    columns = list(served)
    lines = ["| figure | served | " + " | ".join(name for name in table if name != "served") + " |",
             "|---|---|" + "---|" * (len(table) - 1)]
    for column in columns:
        cells = []
        for name, row in table.items():
            if name == "served":
                continue
            difference = row[column] - served[column]
            cells.append("=" if abs(difference) < 5e-4 else f"{difference:+.3f}")
        lines.append(f"| {column} | {served[column]:.3f} | " + " | ".join(cells) + " |")
    lines += ["", f"F1 at IoU 0.3 (training generator's and independent validation splits, {args.count} captures of "
              f"{args.length:,} samples a tier), regions per capture (PD-free and real captures), recall (atlas, "
              f"{args.atlas_trials} pulses a cell); each variant as a difference from the served rules. "
              f"Produced by `{command.strip()}` in {seconds} s on {machine}."]
    return lines


if __name__ == "__main__":
    main()
