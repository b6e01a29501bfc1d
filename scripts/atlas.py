"""The pulse atlas of the served model: recall of isolated pulses per shape, SNR, capture length
and background condition, as heat maps (see training/atlas.py for the grid and the scoring).

    python scripts/atlas.py                     # full run (192 pulses per cell); writes
                                                # docs/atlas.json and docs/figures/atlas.png
    python scripts/atlas.py --quick --no-write  # a quick look (24 pulses per cell)
    python scripts/atlas.py --snr 30 40 --trials 48

``card_table(results)`` turns the written JSON into a markdown summary for the model card.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np

from training import atlas

ROOT = _bootstrap.ROOT

JSON_PATH = ROOT / "docs" / "atlas.json"
FIGURE_PATH = ROOT / "docs" / "figures" / "atlas.png"
WORST_PER_SNR = 3


def _fmt(value) -> str:
    if value is None:
        return "-"
    return "1" if value >= 1.0 else f"{value:.2f}".lstrip("0") if value > 0 else "0"


def text_table(table: dict, width: int = 40) -> str:
    """Rows x SNR recall (compact), with the row's pulses and false regions summed over SNRs."""
    snrs = table["snrs_db"]
    lines = [f"{'':>{width}} " + " ".join(f"{s:>5g}" for s in snrs) + "   pulses  false"]
    for index, label in enumerate(table["rows"]):
        cells = " ".join(f"{_fmt(v):>5}" for v in table["recall"][index])
        false = sum(table["false_regions"][index]) if "false_regions" in table else "-"
        lines.append(f"{label:>{width}} {cells}   {sum(table['pulses'][index]):>6} {false:>6}")
    return "\n".join(lines)


def card_table(results: dict) -> str:
    """A markdown summary of an atlas run (the JSON written to docs/atlas.json, or
    ``AtlasResult.to_json()``): overall recall per SNR, the worst shape cells per SNR, recall by
    capture length and by background condition."""
    shape_map, snrs = results["maps"]["shape"], results["maps"]["shape"]["snrs_db"]
    header = "| | " + " | ".join(f"{s:g} dB" for s in snrs) + " |"
    rule = "|---|" + "---|" * len(snrs)

    def totals(table: dict) -> list[str]:
        out = []
        for column in range(len(snrs)):
            pulses = sum(row[column] for row in table["pulses"])
            found = sum(row[column] for row in table["found"])
            out.append(f"{found / pulses:.3f}" if pulses else "-")
        return out

    lines = [f"Pulse atlas: {results['pulses']:,} isolated pulses, "
             f"{results['config']['trials']} per (shape, SNR) cell over {len(shape_map['rows'])} shapes; "
             f"found = matched one to one at IoU >= {results.get('min_iou', atlas.MIN_IOU)}; "
             f"overall recall {results['recall']:.3f}.", "", header, rule,
             "| all shapes | " + " | ".join(totals(shape_map)) + " |", "",
             f"Worst shape cells per SNR (recall, the {WORST_PER_SNR} lowest):", "",
             "| SNR | cells below 0.99 | worst cells |", "|---|---|---|"]
    for column, snr in enumerate(snrs):
        cells = [(row[column], shape_map["rows"][index]) for index, row in enumerate(shape_map["recall"])
                 if row[column] is not None]
        cells.sort(key=lambda item: (item[0], item[1]))
        worst = ", ".join(f"{name} {value:.2f}" for value, name in cells[:WORST_PER_SNR])
        below = sum(value < 0.99 for value, _ in cells)
        lines.append(f"| {snr:g} dB | {below} of {len(cells)} | {worst} |")
    for by, title in (("length", "capture length"), ("whole_length", "capture length"),
                      ("condition", "background condition"), ("family", "family")):
        table = results["maps"][by]
        intro = f"Recall by {title}:"
        if by == "whole_length":
            whole = [sum(row) for row in table["pulses"]]
            every = [sum(row) for row in results["maps"]["length"]["pulses"]]
            cut = ", ".join(f"{every[i] - whole[i]:,} of {every[i]:,} at {label} samples"
                            for i, label in enumerate(table["rows"]) if every[i] > whole[i])
            intro = ("Recall by capture length, only the pulses that end inside their capture "
                     f"(left out, the pulses longer than it: {cut or 'none'}):")
        lines += ["", intro, "", header.replace("| |", f"| {title} |", 1), rule]
        for index, label in enumerate(table["rows"]):
            lines.append(f"| {label} | " + " | ".join("-" if v is None else f"{v:.2f}"
                                                     for v in table["recall"][index]) + " |")
    background = results.get("background_false_regions", {})
    if background:
        rates = ", ".join(f"{snr} dB {value['per_million_samples']}" for snr, value in background.items()
                          if value["per_million_samples"] is not None)
        lines += ["", f"False regions away from any pulse, per million samples: {rates}."]
    return "\n".join(lines) + "\n"


def figure(results: dict, path: Path) -> None:
    """Three heat maps, recall 0-1 with the numbers in the cells."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(axis, table: dict, title: str, fontsize: float) -> object:
        values = np.array([[np.nan if v is None else v for v in row] for row in table["recall"]], dtype=float)
        cmap = plt.get_cmap("RdYlGn").copy()
        cmap.set_bad("#dddddd")
        image = axis.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        for (r, c), value in np.ndenumerate(values):
            if not np.isnan(value):
                axis.text(c, r, "1" if value >= 1 else f"{value:.2f}", ha="center", va="center",
                          fontsize=fontsize, color="black")
        axis.set_xticks(range(len(table["snrs_db"])), [f"{s:g}" for s in table["snrs_db"]])
        axis.set_yticks(range(len(table["rows"])), table["rows"], fontsize=fontsize + 1)
        axis.set_xlabel("per-pulse peak SNR over background rms (dB)")
        axis.set_title(title, fontsize=10)
        return image

    trials = results["config"]["trials"]
    fig = plt.figure(figsize=(15, 14), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(1.2, 1), height_ratios=(1.1, 0.8, 0.7))
    shape_axis = fig.add_subplot(grid[:, 0])
    image = draw(shape_axis, results["maps"]["shape"],
                 f"Recall per pulse shape and SNR\n({trials} isolated pulses per cell: both polarities, "
                 "all lengths,\ncarrier on/off, white noise or + tones)", 7)
    draw(fig.add_subplot(grid[0, 1]), results["maps"]["length"],
         "Recall per capture length (samples) and SNR\n(all shapes and conditions)", 8)
    draw(fig.add_subplot(grid[1, 1]), results["maps"]["condition"],
         "Recall per background condition and SNR\n(all shapes and lengths)", 8)
    draw(fig.add_subplot(grid[2, 1]), results["maps"]["family"],
         "Recall per pulse family and SNR\n(all shapes, lengths and conditions)", 8)
    fig.colorbar(image, ax=fig.axes, shrink=0.4, label="recall (found: matched at IoU >= 0.3)")
    fig.suptitle(f"Pulse atlas: {results['pulses']:,} isolated pulses, overall recall {results['recall']:.3f} "
                 f"({results.get('detector', 'served model')})", fontsize=12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine(threads: int) -> str:
    import torch
    return (f"{platform.machine()} {platform.processor() or ''}".strip()
            + f", {os.cpu_count()} cores, network in frozen TorchScript (torch {torch.__version__}) on {threads} "
            f"thread{'s' if threads != 1 else ''}, Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "model_store" / "weights"))
    parser.add_argument("--trials", type=int, default=None,
                        help=f"pulses per (shape, SNR) cell (default {atlas.DEFAULT_TRIALS}, "
                             f"--quick {atlas.QUICK_TRIALS})")
    parser.add_argument("--snr", type=float, nargs="+", default=None, help="a subset of the SNRs (dB)")
    parser.add_argument("--quick", action="store_true", help=f"{atlas.QUICK_TRIALS} pulses per cell")
    parser.add_argument("--no-write", action="store_true", help="print only, write no docs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=atlas.DEFAULT_SEED)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    started = time.time()
    import torch
    torch.set_num_threads(args.threads)
    from evaluate import served_segmenter

    trials = args.trials or (atlas.QUICK_TRIALS if args.quick else atlas.DEFAULT_TRIALS)
    snrs = tuple(args.snr) if args.snr else atlas.SNRS_DB
    config = atlas.AtlasConfig(snrs_db=tuple(sorted(snrs)), trials=trials, seed=args.seed)
    segmenter, record = served_segmenter(Path(args.weights), threads=args.threads)
    result = atlas.run_atlas(atlas.segmenter_detector(segmenter), config, min_gap=segmenter.min_gap)
    results = result.to_json()
    results["detector"] = f"served model {record.get('name', '')} ({record.get('preset', '?')})".strip()
    results["weights"] = str(Path(args.weights).resolve().relative_to(ROOT)) \
        if Path(args.weights).resolve().is_relative_to(ROOT) else str(args.weights)
    results["command"] = "python scripts/atlas.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results["machine"] = machine(args.threads)
    results["seconds"] = round(time.time() - started, 1)

    print(f"{results['pulses']:,} pulses in {results['captures']:,} captures, overall recall "
          f"{results['recall']:.3f}, merge gap {segmenter.min_gap}\n")
    print("recall per shape (rows) and SNR dB (columns); '-' no pulses")
    print(text_table(results["maps"]["shape"]))
    for by in ("length", "whole_length", "condition", "family", "polarity"):
        print()
        print(text_table(results["maps"][by], width=24))
    print("\nfalse regions away from any pulse per million samples: " + ", ".join(
        f"{snr} dB {v['per_million_samples']}" for snr, v in results["background_false_regions"].items()))
    print(f"done in {results['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_write:
        JSON_PATH.write_text(json.dumps(results, indent=1) + "\n")
        figure(results, FIGURE_PATH)
        from evaluate import write_card_section

        write_card_section("atlas", [card_table(results), "",
                                     f"Produced by `{results['command'].strip()}` in {results['seconds']} s "
                                     f"on {results['machine']}."])
        print(f"wrote {JSON_PATH.relative_to(ROOT)}, {FIGURE_PATH.relative_to(ROOT)} and the model card's atlas section")
    return results


if __name__ == "__main__":
    main()
