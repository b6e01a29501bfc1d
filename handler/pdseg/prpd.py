"""Phase-resolved PD (PRPD): a summary and a picture over many analysed signals.

Both take the service's per-signal answers (``{"regions": [...], "stats": {...}}``, the entries
of ``"signals"`` in the JSON answer), so the handler can describe one request and the client a
whole run with the same functions. Pure: numpy, and matplotlib only when a picture is drawn.

Names follow IEC 60270 where it names the quantity: every region is one PD *pulse*, and the
*pulse repetition rate* n is pulses per time, here per cycle of the test voltage (and per second
when the sampling rate is known). IEC's magnitudes are apparent charge; without a charge
calibration ours are peaks of the signal with its carrier removed, in the input's units.
"""
from __future__ import annotations

import io
from typing import Iterable, Mapping, Sequence

import numpy as np

from .regions import significant

PHASE_BINS = 36
BIN_WIDTH_DEG = 360.0 / PHASE_BINS
MAGNITUDE_UNIT = "input units"
POLARITIES = ("positive", "negative")
# The request option "view" with Accept: image/png: the signals (render.render_png, the default)
# or this module's phase-resolved plot of all the request's pulses.
VIEWS = ("signals", "prpd")
# Above this many pulses the scatter shows an even subsample (the histogram counts all):
# beyond it the points only overdraw each other and Agg slows down.
MAX_PLOTTED_PULSES = 200_000


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _magnitude(value: float | None) -> float | None:
    """A measured magnitude to significant digits, as the regions give theirs: rounded to
    decimals, a capture in volts read 0.0 for a largest peak of 5.9e-6."""
    return None if value is None else significant(float(value))


def _phase_bin(phase_deg: float) -> int:
    return int(phase_deg % 360.0 // BIN_WIDTH_DEG) % PHASE_BINS


def _new_polarity() -> dict:
    return {"pulse_count": 0, "counted_in_cycles": 0, "peak_sum": 0.0, "largest_peak": None,
            "phase_counts": [0] * PHASE_BINS}


def summarise(signals: Iterable[Mapping], sampling_rate_hz: float | None = None) -> dict:
    """Request- or run-level PRPD summary of the service's per-signal answers.

    ``cycles`` adds up ``stats.cycles`` of the signals whose carrier period is known, and the
    rate per cycle counts only their pulses; ``sampling_rate_hz`` (the request's option)
    adds the rate per second over all signals' samples."""
    signal_count = samples = pulses = pulses_with_cycles = phase_resolved = 0
    cycles = 0.0
    without_cycles = 0
    per_polarity = {polarity: _new_polarity() for polarity in POLARITIES}
    histogram = [0] * PHASE_BINS
    for signal in signals:
        regions = signal.get("regions") or []
        signal_cycles = (signal.get("stats") or {}).get("cycles")
        signal_count += 1
        samples += int(signal.get("length") or 0)
        pulses += len(regions)
        if signal_cycles:
            cycles += float(signal_cycles)
            pulses_with_cycles += len(regions)
        else:
            without_cycles += 1
        for region in regions:
            entry = per_polarity["negative" if region.get("polarity") == "negative" else "positive"]
            peak = abs(float(region["peak"]))
            entry["pulse_count"] += 1
            entry["counted_in_cycles"] += 1 if signal_cycles else 0
            entry["peak_sum"] += peak
            entry["largest_peak"] = peak if entry["largest_peak"] is None else max(entry["largest_peak"], peak)
            if region.get("phase_deg") is not None:
                phase_bin = _phase_bin(float(region["phase_deg"]))
                histogram[phase_bin] += 1
                entry["phase_counts"][phase_bin] += 1
                phase_resolved += 1
    duration_s = samples / sampling_rate_hz if sampling_rate_hz else None
    return {
        "signals": signal_count,
        "pulse_count": pulses,
        "cycles": significant(cycles),
        "signals_without_cycles": without_cycles,
        "repetition_rate_per_cycle": _rounded(pulses_with_cycles / cycles) if cycles else None,
        "duration_s": _rounded(duration_s, 9),
        "repetition_rate_per_s": _rounded(pulses / duration_s, 3) if duration_s else None,
        "magnitude_unit": MAGNITUDE_UNIT,
        "largest_peak": _magnitude(max((p["largest_peak"] for p in per_polarity.values()
                                        if p["largest_peak"] is not None), default=None)),
        "polarity": {name: {"pulse_count": entry["pulse_count"],
                            "repetition_rate_per_cycle": _rounded(entry["counted_in_cycles"] / cycles)
                            if cycles else None,
                            "largest_peak": _magnitude(entry["largest_peak"]),
                            "mean_peak": _magnitude(entry["peak_sum"] / entry["pulse_count"])
                            if entry["pulse_count"] else None,
                            "phase_counts": entry["phase_counts"]}
                     for name, entry in per_polarity.items()},
        "phase_resolved_pulses": phase_resolved,
        "phase_histogram": {"bin_width_deg": BIN_WIDTH_DEG, "counts": histogram},
    }


def pulse_points(signals: Iterable[Mapping]) -> tuple[np.ndarray, np.ndarray]:
    """(phase in degrees, signed peak) of every pulse that has a phase; the sign is its polarity."""
    phases, peaks = [], []
    for signal in signals:
        for region in signal.get("regions") or []:
            if region.get("phase_deg") is None:
                continue
            phases.append(float(region["phase_deg"]) % 360.0)
            sign = -1.0 if region.get("polarity") == "negative" else 1.0
            peaks.append(sign * abs(float(region["peak"])))
    return np.asarray(phases, dtype=np.float64), np.asarray(peaks, dtype=np.float64)


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.3g}{unit}"


def prpd_title(summary: Mapping) -> str:
    """One line: pulses, cycles and pulses per cycle, overall and per polarity."""
    cycles = summary["cycles"]
    polarity = summary["polarity"]
    if cycles:
        rate = (f"{_fmt(summary['repetition_rate_per_cycle'])} pulses per cycle "
                f"(+ {_fmt(polarity['positive']['repetition_rate_per_cycle'])}, "
                f"− {_fmt(polarity['negative']['repetition_rate_per_cycle'])})")
    else:
        rate = "no carrier period: pulses per cycle unknown"
    return (f"PRPD: {summary['pulse_count']} pulses in {summary['signals']} signals, "
            f"{cycles:.4g} cycles; {rate}")


def legend_label(summary: Mapping, polarity: str) -> str:
    """A polarity's entry in the scatter's legend: the pulses placed, and of how many where the
    pulses of signals without a phase (counted, not placed) are among them."""
    placed = sum(summary["polarity"][polarity]["phase_counts"])
    counted = summary["polarity"][polarity]["pulse_count"]
    return f"{polarity} ({placed:,})" if placed == counted else f"{polarity} ({placed:,} placed of {counted:,})"


def unplaced_note(summary: Mapping) -> str:
    """What the title adds where pulses without a phase are counted but not placed."""
    unplaced = summary["pulse_count"] - summary["phase_resolved_pulses"]
    return f"; {unplaced:,} without a phase, not placed" if unplaced else ""


def _even_subsample(count: int, limit: int) -> np.ndarray:
    return np.arange(count) if count <= limit else np.linspace(0, count - 1, limit).astype(np.int64)


def render_prpd_png(signals: Sequence[Mapping], summary: Mapping | None = None,
                    title: str | None = None, dpi: int = 80) -> bytes:
    """Pulses by carrier phase (x, 0-360°) and signed peak (y), coloured by polarity, over a
    sine of the carrier for orientation; below, the phase histogram per polarity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summary or summarise(signals)
    phases, peaks = pulse_points(signals)
    shown = _even_subsample(phases.size, MAX_PLOTTED_PULSES)
    figure, (scatter_axis, histogram_axis) = plt.subplots(
        2, 1, figsize=(10, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True)
    largest = float(np.max(np.abs(peaks))) if peaks.size else 1.0
    angle = np.linspace(0.0, 360.0, 361)
    scatter_axis.plot(angle, largest * np.sin(np.radians(angle)), color="#999999", linestyle="--",
                      linewidth=1.0, label="carrier (scaled, for orientation)")
    colours = {"positive": "#c0392b", "negative": "#1f5fa8"}
    for name, selected in (("positive", peaks[shown] >= 0), ("negative", peaks[shown] < 0)):
        scatter_axis.scatter(phases[shown][selected], peaks[shown][selected], s=10, alpha=0.6,
                             color=colours[name], linewidths=0, label=legend_label(summary, name))
    scatter_axis.axhline(0.0, color="#cccccc", linewidth=0.8)
    scatter_axis.set_ylabel(f"peak ({MAGNITUDE_UNIT}), signed by polarity")
    scatter_axis.legend(loc="upper right", fontsize=8)
    note = "" if shown.size == phases.size else f" ({shown.size:,} of {phases.size:,} pulses drawn)"
    note += unplaced_note(summary)
    scatter_axis.set_title((title or prpd_title(summary)) + note, fontsize=10)
    edges = np.arange(PHASE_BINS) * BIN_WIDTH_DEG
    positive = np.asarray(summary["polarity"]["positive"]["phase_counts"])
    negative = np.asarray(summary["polarity"]["negative"]["phase_counts"])
    histogram_axis.bar(edges, positive, width=BIN_WIDTH_DEG, align="edge", color=colours["positive"],
                       alpha=0.8, label="positive")
    histogram_axis.bar(edges, negative, width=BIN_WIDTH_DEG, align="edge", bottom=positive,
                       color=colours["negative"], alpha=0.8, label="negative")
    histogram_axis.set_ylabel(f"pulses per {BIN_WIDTH_DEG:.0f}°")
    histogram_axis.set_xlabel("phase of the carrier (°): 0 = positive-going zero crossing, 90 = positive peak")
    histogram_axis.set_xlim(0.0, 360.0)
    histogram_axis.set_xticks(np.arange(0, 361, 45))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()

