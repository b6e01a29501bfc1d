"""Where one request's time goes, stage by stage, in-process with the served network (frozen TorchScript).

    python scripts/profile_stages.py

For an 800,000-sample capture and a 7,920-sample signal: conditioning (high-pass, tones,
carrier fit, converter commutation, noise scale, local-peak channel) and, within it, the
commutation step alone; network (all windows), regions (the carrier fit is conditioning's),
JSON description; medians of repeats, 2 torch threads. Then what the second look at loud
undecided samples (pdseg.polarity) costs ``make bench``'s eight 7,920-sample signals: CPU time
per signal, analysed one at a time on one thread, with and without it, alternating rounds.
"""
from __future__ import annotations

import math
import statistics
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from evaluate import served_segmenter
from pdseg import commutation, phase, polarity, preprocess
from pdseg.pipeline import SignalOptions
from training import synthetic


def timed(function, repeats: int) -> tuple[float, object]:
    result, times = None, []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    torch.set_num_threads(2)
    segmenter, record = served_segmenter(_bootstrap.ROOT / "model_store" / "weights")
    rng = np.random.default_rng(2026)
    print("| signal | conditioning ms | (commutation step) | (carrier fit) | network ms | regions ms | JSON ms |")
    print("|---|---|---|---|---|---|---|")
    for length, period, repeats in ((800_000, 800_000.0, 3), (7_920, 3333.0, 20)):
        raw = synthetic.make_capture(rng, length, samples_per_cycle=period, pd_free=False,
                                     snr_db=24.0, interference=True).signal
        segmenter.analyse([raw])  # warm-up for this window shape
        condition_ms, conditioned = timed(lambda: segmenter.condition(raw), repeats)
        network_ms, probabilities = timed(lambda: segmenter.probabilities([conditioned]), repeats)
        finish_ms, results = timed(lambda: segmenter.finish([conditioned], probabilities, [SignalOptions()]), repeats)
        fit_ms, _ = timed(lambda: phase.fit_carrier(conditioned.raw, conditioned.filtered, conditioned.scale), repeats)
        period = conditioned.carrier.samples_per_cycle if conditioned.carrier.detected else None
        commutation_ms, _ = timed(lambda: commutation.remove_commutation(conditioned.filtered, conditioned.scale, period),
                                  repeats)
        json_ms, _ = timed(lambda: results[0].to_json(0), repeats)
        print(f"| {length:,} samples | {condition_ms:.1f} | {commutation_ms:.1f} | {fit_ms:.1f} | {network_ms:.1f} "
              f"| {finish_ms:.1f} | {json_ms:.1f} |")
    second_look_cost(segmenter)


def second_look_cost(segmenter, rounds: int = 25) -> None:
    """Median CPU ms per signal over ``rounds`` of the benchmark's short signals (drawn as
    scripts/bench.py draws them), with the second look and without it (no sample loud enough)."""
    rng = np.random.default_rng(2026)
    synthetic.make_capture(rng, 800_000, samples_per_cycle=800_000.0, pd_free=False, snr_db=24.0, interference=True)
    signals = [synthetic.make_capture(rng, 7920, samples_per_cycle=3333.0).signal for _ in range(8)]
    threads, level = torch.get_num_threads(), polarity.LOOK_LOUD
    torch.set_num_threads(1)
    cpu_ms: dict[float, list[float]] = {level: [], math.inf: []}
    try:
        for _ in range(rounds):
            for loud in cpu_ms:
                polarity.LOOK_LOUD = loud
                started = time.process_time()
                for raw in signals:
                    segmenter.analyse([raw])
                cpu_ms[loud].append((time.process_time() - started) * 1000 / len(signals))
    finally:
        polarity.LOOK_LOUD = level
        torch.set_num_threads(threads)
    with_look, without = (statistics.median(cpu_ms[key]) for key in (level, math.inf))
    print(f"\nmake bench's 7,920-sample signals, CPU ms per signal on one thread (median of {rounds} rounds): "
          f"{with_look:.2f} with the second look, {without:.2f} without ({with_look / without - 1:+.1%})")


if __name__ == "__main__":
    main()
