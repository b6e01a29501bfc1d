"""PNGs of analysed signals. ``render_png``: raw capture, conditioned signal with the PD
probability, detected regions shaded (the server's ``Accept: image/png``). ``render_signals_png``:
a signal and its regions from the JSON answer alone, with planted events where they are known
(the client's report and the demo)."""
from __future__ import annotations

import dataclasses
import io
from typing import TYPE_CHECKING, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:  # the client draws without the pipeline (and torch) loaded
    from .pipeline import SignalResult

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
REGION_COLOUR = "#ff7f0e"


PNG_DPI = 80
# A band is drawn at least this wide, so that a spike drawn over it leaves it showing either side:
# a region of a few samples in a long capture is a fraction of a pixel, and such bands vanished
# (36 regions of a 30,000-sample capture showed as 4 bands).
MIN_BAND_PIXELS = 3.0


def _least_width(axis, length: int, dpi: float) -> float:
    """Samples that :data:`MIN_BAND_PIXELS` span on ``axis``, which shows ``length`` samples."""
    pixels = axis.get_position().width * axis.figure.get_figwidth() * dpi
    return MIN_BAND_PIXELS * max(length, 1) / max(pixels, 1.0)


def _bands(regions, least: float) -> list[tuple[float, float]]:
    """(start, width) of each [start, end), widened about its middle to at least ``least``."""
    spans = []
    for start, end in regions:
        width = max(end - start, 1)
        spans.append((start + 0.5 * (width - least), least) if width < least else (start, width))
    return spans


def _shade_regions(axis, regions, least: float) -> None:
    """Full-height bands at least ``least`` samples wide (:func:`_least_width`), all in one
    collection: an artist per region (axvspan) made a picture of 8 signals with ~800 regions each
    take 17 s instead of 2 (docs/reliability.md)."""
    spans = _bands(regions, least)
    if spans:
        axis.broken_barh(spans, (0, 1), transform=axis.get_xaxis_transform(), color=REGION_COLOUR,
                         alpha=0.3, linewidth=0)


def _draw(result: SignalResult, raw_axis, filtered_axis, title: str) -> None:
    conditioned = result.conditioned
    raw_axis.plot(*_decimate(conditioned.raw), color="#1f4e79", linewidth=0.6, label="raw")
    raw_axis.set_ylabel("raw")
    raw_axis.set_title(title, fontsize=10)
    shown = conditioned.filtered if result.described is None else result.described  # a slower view's pulses as described
    filtered_axis.plot(*_decimate(shown), color="#333333", linewidth=0.6, label="carrier removed")
    filtered_axis.set_ylabel("carrier removed")
    probability_axis = filtered_axis.twinx()
    probability_axis.plot(*_decimate(result.probability), color="#d62728", linewidth=0.6, alpha=0.7,
                          label="PD probability")
    probability_axis.set_ylim(0, 1.05)
    probability_axis.set_ylabel("PD probability", color="#d62728")
    regions = result.regions.tolist()
    for axis in (raw_axis, filtered_axis):
        _shade_regions(axis, regions, _least_width(axis, conditioned.raw.size, PNG_DPI))
        axis.set_xlim(0, max(conditioned.raw.size - 1, 1))  # a band widened at an end stays inside
    region_patch = Patch(color=REGION_COLOUR, alpha=0.3, label=f"PD region ({len(regions)})")
    raw_axis.legend(handles=[*raw_axis.get_lines(), region_patch], loc="upper right", fontsize=7)
    filtered_axis.legend(handles=[*filtered_axis.get_lines(), *probability_axis.get_lines()],
                         loc="upper left", fontsize=7)


def extent_note(result: SignalResult) -> str:
    extent = result.extent_threshold
    return "" if extent is None or extent >= result.threshold else f", extent {extent:.2f}"


def render_png(results: Sequence[SignalResult], titles: Sequence[str] | None = None) -> bytes:
    """Two panels per signal (raw; carrier removed with probability), at most ``MAX_PANELS``
    signals, regions shaded in both."""
    shown = list(results)[:MAX_PANELS]
    height = 3.2 * len(shown)
    figure, axes = plt.subplots(2 * len(shown), 1, figsize=(12, height), squeeze=False)
    # Fixed margins (the top and bottom ones a constant height in inches) instead of constrained
    # layout, whose solver measured every label and tick again and again: about 40 % of an
    # 8-signal picture's time.
    figure.subplots_adjust(left=0.095, right=0.93, top=1.0 - 0.3 / height, bottom=0.45 / height,
                           hspace=0.55)
    for number, result in enumerate(shown):
        title = titles[number] if titles else (
            f"signal {number}: {len(result.regions)} PD regions "
            f"(threshold {result.threshold:.2f}{extent_note(result)}, {result.conditioned.length} samples)")
        _draw(result, axes[2 * number, 0], axes[2 * number + 1, 0], title)
    axes[-1, 0].set_xlabel("sample")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI)
    plt.close(figure)
    return buffer.getvalue()


# --- a signal and its regions from the JSON answer (no pipeline objects needed) ----------------

FOUND_COLOUR = "#2ca02c"
MISSED_COLOUR = "#d62728"


def overlaps(span: Sequence[int], others: Sequence[Sequence[int]]) -> bool:
    """Whether [start, end) shares a sample with any of ``others``."""
    return any(span[0] < end and start < span[1] for start, end in others)


def without_carrier(values: np.ndarray, carrier: dict | None) -> tuple[np.ndarray, str]:
    """The signal less the carrier sinusoid the service fitted (``stats.carrier`` of its
    answer), and a label saying which was drawn. The carrier is orders of magnitude above the
    pulses; without it they show. A capture without a detected carrier is drawn as it is."""
    values = np.asarray(values, dtype=np.float64)
    if not carrier or not carrier.get("detected"):
        return values, "signal (input units)"
    angle = np.radians(360.0 * np.arange(values.size) / carrier["samples_per_cycle"] + carrier["phase_offset_deg"])
    rest = values - carrier["amplitude"] * np.sin(angle)
    return rest - np.median(rest), "signal less fitted carrier"


@dataclasses.dataclass
class SignalPanel:
    values: np.ndarray  # what to draw: the signal as sent, or without_carrier() of it
    regions: list[tuple[int, int]]  # found PD regions, [start, end)
    title: str
    planted: list[tuple[int, int]] | None = None  # true events, where known (synthetic captures)
    label: str = "signal (input units)"


def _draw_panel(panel: SignalPanel, axis, dpi: float = PNG_DPI) -> None:
    axis.plot(*_decimate(np.asarray(panel.values, dtype=np.float64)), color="#1f4e79", linewidth=0.6,
              label=panel.label)
    least = _least_width(axis, len(panel.values), dpi)
    _shade_regions(axis, panel.regions, least)
    handles = [*axis.get_lines(), Patch(color=REGION_COLOUR, alpha=0.3, label=f"PD region found ({len(panel.regions)})")]
    if panel.planted is not None:
        # Planted events as a strip along the bottom: green where a region covers them.
        low, high = axis.get_ylim()
        strip = (low, (high - low) * 0.06)
        found = [event for event in panel.planted if overlaps(event, panel.regions)]
        missed = [event for event in panel.planted if not overlaps(event, panel.regions)]
        for events, colour in ((found, FOUND_COLOUR), (missed, MISSED_COLOUR)):
            axis.broken_barh(_bands(events, least), strip, color=colour)
        axis.set_ylim(low, high)
        handles += [Patch(color=FOUND_COLOUR, label=f"planted event, found ({len(found)})"),
                    Patch(color=MISSED_COLOUR, label=f"planted event, missed ({len(missed)})")]
    axis.legend(handles=handles, loc="upper right", fontsize=7)
    axis.set_title(panel.title, fontsize=10)
    axis.set_ylabel("input units")
    axis.set_xlim(0, max(len(panel.values) - 1, 1))


def render_signals_png(panels: Sequence[SignalPanel], dpi: int = PNG_DPI) -> bytes:
    """One panel per signal (at most ``MAX_PANELS``): the signal, its regions shaded, and
    planted events found or missed where they are known; each with its legend."""
    shown = list(panels)[:MAX_PANELS]
    figure, axes = plt.subplots(len(shown), 1, figsize=(12, 2.8 * len(shown)), constrained_layout=True,
                                squeeze=False)
    for panel, axis in zip(shown, axes[:, 0]):
        _draw_panel(panel, axis, dpi)
    axes[-1, 0].set_xlabel("sample")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
