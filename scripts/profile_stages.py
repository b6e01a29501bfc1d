"""Where one request's time goes, stage by stage, in-process with the served network (frozen TorchScript).

    python scripts/profile_stages.py

For an 800,000-sample capture and a 7,920-sample signal: conditioning (high-pass, tones,
carrier fit, converter commutation, noise scale, local-peak channel) and, within it, the
commutation step alone; network (all windows), regions (the carrier fit is conditioning's) and,
within them, the isolated short transients' search (pdseg.transients); JSON description;
medians of repeats, 2 torch threads. Then the whole analysis of the 800,000-sample capture
(a carrier-free one, which gets a slower view) on the handler's thread policy
(model-config.yaml), with its slower view made after the capture's conditioning and beside it
(``view_ahead_from_samples``), and the network over that capture's windows with each chunk on two
intra-op threads and, as the handler runs it, in two parts on a thread each (run it with the
workers' ``OMP_WAIT_POLICY=PASSIVE``, as ``make bench`` serves them). "CPU / wall" is the process's CPU time over the wall time of
the conditioning repeats: over 1, some library call wakes threads that spin beside the one doing
the work (BLAS beyond a small matrix does; conditioning runs on one core per worker, so that is
CPU taken from the other worker, docs/benchmarks.md).
"""
from __future__ import annotations

import os
import statistics
import time

import _bootstrap
import numpy as np
import torch
import yaml

from evaluate import served_segmenter
from pdseg import commutation, phase, preprocess, transients
from pdseg.model import TorchThreads
from pdseg.pipeline import SignalOptions
from training import synthetic


def timed(function, repeats: int) -> tuple[float, object]:
    result, times = None, []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def cpu_over_wall(function, repeats: int) -> float:
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)


def main() -> None:
    _bootstrap.command_line(__doc__)
    torch.set_num_threads(2)
    segmenter, record = served_segmenter(_bootstrap.ROOT / "model_store" / "weights")
    rng = np.random.default_rng(2026)
    print("| signal | conditioning ms | CPU / wall | (commutation step) | (carrier fit) | network ms | regions ms "
          "| (isolated transients) | JSON ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for length, period, repeats in ((800_000, 800_000.0, 3), (7_920, 3333.0, 20)):
        raw = synthetic.make_capture(rng, length, samples_per_cycle=period, pd_free=False,
                                     snr_db=24.0, interference=True).signal
        segmenter.analyse([raw])  # warm-up for this window shape
        condition_ms, conditioned = timed(lambda: segmenter.condition(raw), repeats)
        condition_cpu = cpu_over_wall(lambda: segmenter.condition(raw), repeats)
        network_ms, probabilities = timed(lambda: segmenter.probabilities([conditioned]), repeats)
        finish_ms, results = timed(lambda: segmenter.finish([conditioned], probabilities, [SignalOptions()]), repeats)
        fit_ms, _ = timed(lambda: phase.fit_carrier(conditioned.raw, conditioned.filtered, conditioned.scale), repeats)
        period = conditioned.carrier.samples_per_cycle if conditioned.carrier.detected else None
        commutation_ms, _ = timed(lambda: commutation.remove_commutation(conditioned.filtered, conditioned.scale, period),
                                  repeats)
        network_regions = results[0].regions
        transients_ms, _ = timed(lambda: transients.with_isolated_transients(
            network_regions, conditioned.filtered, conditioned.scale, segmenter.min_gap, conditioned.quantum), repeats)
        json_ms, _ = timed(lambda: results[0].to_json(0), repeats)
        print(f"| {length:,} samples | {condition_ms:.1f} | {condition_cpu:.2f} | {commutation_ms:.1f} | {fit_ms:.1f} | {network_ms:.1f} "
              f"| {finish_ms:.1f} | {transients_ms:.2f} | {json_ms:.1f} |")
    long_capture = synthetic.make_capture(np.random.default_rng(2026), 800_000, samples_per_cycle=800_000.0,
                                          pd_free=False, snr_db=24.0, interference=True).signal
    network_in_parts(segmenter, long_capture)
    view_ahead(segmenter, long_capture)


def network_in_parts(segmenter, raw: np.ndarray, repeats: int = 7) -> None:
    """The network over ``raw``'s windows in the pipeline's chunks: each chunk one call on two
    intra-op threads, against the handler's policy (pdseg.model.ThreadPolicy: each chunk's
    windows in two parts, each on a thread of its own with one intra-op thread)."""
    settings = yaml.safe_load((_bootstrap.ROOT / "config" / "model-config.yaml").read_text())["handler"]
    module = segmenter.network
    policy = TorchThreads(module, settings["torch_threads"], settings["parallel_from_samples"])
    windows = torch.from_numpy(np.ascontiguousarray(segmenter.windows(segmenter.condition(raw))))
    step = segmenter.chunk_windows

    def intra_op() -> torch.Tensor:
        torch.set_num_threads(settings["torch_threads"])
        return torch.cat([module(windows[first: first + step]) for first in range(0, len(windows), step)])

    def in_parts() -> torch.Tensor:
        return torch.cat([policy(windows[first: first + step]) for first in range(0, len(windows), step)])

    times: dict[str, list[float]] = {}
    with torch.inference_mode():
        outputs = {name: function() for name, function in (("intra", intra_op), ("parts", in_parts))}
        for _ in range(repeats):  # alternated
            for name, function in (("intra", intra_op), ("parts", in_parts)):
                times.setdefault(name, []).append(timed(function, 1)[0])
    torch.set_num_threads(settings["torch_threads"])
    difference = float((outputs["intra"] - outputs["parts"]).abs().max())
    print()
    print(f"| network over the 800,000-sample capture's {len(windows)} windows, chunks of {step} | one call on "
          f"{settings['torch_threads']} intra-op threads ms | in parts, one thread each ms | largest difference |")
    print("|---|---|---|---|")
    print(f"| OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', '(unset)')} | {statistics.median(times['intra']):.1f} "
          f"| {statistics.median(times['parts']):.1f} | {difference:.2g} |")


def view_ahead(segmenter, raw: np.ndarray, repeats: int = 7) -> None:
    """The whole analysis of ``raw`` with its slower view after and beside its conditioning."""
    settings = yaml.safe_load((_bootstrap.ROOT / "config" / "model-config.yaml").read_text())["handler"]
    segmenter.network = TorchThreads(segmenter.network, settings["torch_threads"], settings["parallel_from_samples"])
    print()
    print("| 800,000-sample capture, whole analysis | slower view after conditioning ms | beside it ms | same regions |")
    print("|---|---|---|---|")
    times: dict[int | None, list[float]] = {}
    answers = {}
    for _ in range(repeats):  # alternated, so that the machine's drift falls on both
        for ahead_from in (None, settings["view_ahead_from_samples"]):
            segmenter.view_ahead_from = ahead_from
            milliseconds, [answers[ahead_from]] = timed(lambda: segmenter.analyse([raw]), 1)
            times.setdefault(ahead_from, []).append(milliseconds)
    after_ms, beside_ms = (statistics.median(values) for values in times.values())
    after, beside = answers.values()
    assert beside.conditioned.slow is not None and segmenter.views_ahead["run"] > 0
    print(f"| {raw.size:,} samples, {len(beside.regions)} regions | {after_ms:.1f} | {beside_ms:.1f} "
          f"| {np.array_equal(after.regions, beside.regions)} |")


if __name__ == "__main__":
    main()
