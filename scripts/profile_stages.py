"""Where one request's time goes, stage by stage, in-process with the served network (frozen TorchScript).

    python scripts/profile_stages.py

For an 800,000-sample capture and a 7,920-sample signal: conditioning (high-pass, tones,
carrier fit, converter commutation, noise scale, local-peak channel) and, within it, the
commutation step alone; network (all windows), regions (the carrier fit is conditioning's) and,
within them, the isolated short transients' search (pdseg.transients); JSON description;
medians of repeats, 2 torch threads. "CPU / wall" is the process's CPU time over the wall time of
the conditioning repeats: over 1, some library call wakes threads that spin beside the one doing
the work (BLAS beyond a small matrix does; conditioning runs on one core per worker, so that is
CPU taken from the other worker, docs/benchmarks.md).
"""
from __future__ import annotations

import statistics
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import served_segmenter
from pdseg import commutation, phase, preprocess, transients
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


if __name__ == "__main__":
    main()
