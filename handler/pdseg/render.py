"""A PNG of one analysed signal: raw capture, conditioned signal with the PD probability,
detected regions shaded. Used by the server (``Accept: image/png``), the demo and reports."""
from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .pipeline import SignalResult  # noqa: E402

MAX_PLOT_POINTS = 20_000  # min/max decimation keeps every spike visible in a long capture


def _decimate(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions and values reduced to per-bucket minimum and maximum."""
    if values.size <= MAX_PLOT_POINTS:
        return np.arange(values.size), values
    bucket = -(-values.size // (MAX_PLOT_POINTS // 2))
    count = values.size // bucket
    trimmed = values[: count * bucket].reshape(count, bucket)
    positions = np.repeat(np.arange(count) * bucket + bucket // 2, 2)
    extremes = np.stack((trimmed.min(axis=1), trimmed.max(axis=1)), axis=1).reshape(-1)
    return positions, extremes


MAX_PANELS = 8


def _draw(result: SignalResult, raw_axis, filtered_axis, title: str) -> None:
    conditioned = result.conditioned
    raw_axis.plot(*_decimate(conditioned.raw), color="#1f4e79", linewidth=0.6)
    raw_axis.set_ylabel("raw")
    raw_axis.set_title(title, fontsize=10)
    filtered_axis.plot(*_decimate(conditioned.filtered), color="#333333", linewidth=0.6)
    filtered_axis.set_ylabel("carrier removed")
    probability_axis = filtered_axis.twinx()
    probability_axis.plot(*_decimate(result.probability), color="#d62728", linewidth=0.6, alpha=0.7)
    probability_axis.set_ylim(0, 1.05)
    probability_axis.set_ylabel("PD probability", color="#d62728")
    for start, end in result.regions.tolist():
        for axis in (raw_axis, filtered_axis):
            axis.axvspan(start, max(end, start + 1), color="#ff7f0e", alpha=0.3, linewidth=0)


def extent_note(result: SignalResult) -> str:
    extent = result.extent_threshold
    return "" if extent is None or extent >= result.threshold else f", extent {extent:.2f}"


def render_png(results: Sequence[SignalResult], titles: Sequence[str] | None = None) -> bytes:
    """Two panels per signal (raw; carrier removed with probability), at most ``MAX_PANELS``
    signals, regions shaded in both."""
    shown = list(results)[:MAX_PANELS]
    figure, axes = plt.subplots(2 * len(shown), 1, figsize=(12, 3.2 * len(shown)),
                                constrained_layout=True, squeeze=False)
    for number, result in enumerate(shown):
        title = titles[number] if titles else (
            f"signal {number}: {len(result.regions)} PD regions "
            f"(threshold {result.threshold:.2f}{extent_note(result)}, {result.conditioned.length} samples)")
        _draw(result, axes[2 * number, 0], axes[2 * number + 1, 0], title)
    axes[-1, 0].set_xlabel("sample")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
