"""report.html: one self-contained page over a whole run (images embedded as data: URIs).

Settings and model version, the run's PRPD summary and plot (:mod:`pdseg.prpd`, the functions
the service uses per request), pictures of the signals with the most PD (:mod:`pdseg.render`),
failures, and a table per file and signal.
"""
from __future__ import annotations

import base64
import html
from collections import defaultdict
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from pdseg import prpd
from pdseg.render import SignalPanel, render_signals_png, without_carrier

TOP_SIGNALS = 6  # time-domain pictures: the signals with the most PD regions

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child, table.text td { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; }
.failed { color: #a00; }
"""


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence], text: bool = False) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    kind = ' class="text"' if text else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def summary_rows(summary: Mapping) -> list[tuple[str, object]]:
    """The PRPD summary as (quantity, value) rows, IEC 60270's names where it has one."""
    unit = summary["magnitude_unit"]
    rows = [("signals", summary["signals"]), ("pulse count", summary["pulse_count"]),
            ("cycles of the test voltage", summary["cycles"]),
            ("pulse repetition rate n, per cycle", summary["repetition_rate_per_cycle"]),
            *([("pulse repetition rate n, per second", summary["repetition_rate_per_s"])]
              if summary["repetition_rate_per_s"] is not None else []),
            (f"largest peak ({unit})", summary["largest_peak"])]
    for name in prpd.POLARITIES:
        entry = summary["polarity"][name]
        rows += [(f"{name}: pulse count", entry["pulse_count"]),
                 (f"{name}: pulses per cycle", entry["repetition_rate_per_cycle"]),
                 (f"{name}: largest peak ({unit})", entry["largest_peak"]),
                 (f"{name}: mean peak ({unit})", entry["mean_peak"])]
    if summary["signals_without_cycles"]:
        rows.append(("signals without a carrier period (not in the per-cycle rates)",
                     summary["signals_without_cycles"]))
    return rows


def _signal_row(record: Mapping) -> tuple:
    answer = record["answer"]
    stats = answer.get("stats", {})
    regions = answer.get("regions", [])
    polarity = [region.get("polarity") for region in regions]
    tones = ", ".join(f"{tone['cycles_per_sample']:g}" for tone in stats.get("tones_removed", [])) or "none"
    bursts = ", ".join(f"{burst['cycles_per_sample']:g} at {burst['start']}-{burst['end']}"
                       for burst in stats.get("tone_bursts_removed", [])) or "none"  # absent before it
    wandering = ", ".join(f"{tone['cycles_per_sample']:g} ± {tone['deviation_cycles_per_sample']:g}"
                          for tone in stats.get("wandering_tones_removed", [])) or "none"  # absent before it
    train = stats.get("commutation_removed")
    commutation = (f"{train['samples_per_sixth']:g}" + (" (toward zero)" if train.get("toward_zero") else "")
                   if train else "none")
    repeating = stats.get("phase_locked_removed")
    phase_locked = f"{repeating['peak']:g}" if repeating else "none"
    regular = stats.get("regular_train_removed")  # absent from answers of releases before it
    spaced = f"{regular['samples_apart']:g}" if regular else "none"
    whitening = stats.get("noise_whitening")
    whitened = f"{whitening:g}" if whitening is not None else "no"
    clipped = stats.get("clipped_carrier_restored")  # absent from answers of releases before it
    restored = f"{clipped['plateaus']}" if clipped else "no"
    return (record["signal"], answer.get("length"), len(regions), stats.get("cycles"),
            stats.get("regions_per_cycle"), max((r["peak"] for r in regions), default=None),
            polarity.count("positive"), polarity.count("negative"), tones, bursts, wandering, commutation, phase_locked,
            spaced, whitened, restored)


def most_pd(records: Sequence[Mapping], count: int = TOP_SIGNALS) -> list[Mapping]:
    with_pd = [record for record in records if record["answer"].get("regions")]
    return sorted(with_pd, key=lambda record: -len(record["answer"]["regions"]))[:count]


def signal_pictures(records: Sequence[Mapping],
                    load: Callable[[str, object], np.ndarray | None]) -> list[tuple[str, bytes]]:
    """(caption, PNG) of the signals with the most PD, each read again from its file."""
    pictures = []
    for record in most_pd(records):
        values = load(record["file"], record["signal"])
        if values is None:
            continue
        regions = record["answer"]["regions"]
        title = (f"{record['file']}, signal {record['signal']}: {len(regions)} PD regions, "
                 f"largest peak {max(r['peak'] for r in regions):.4g}")
        drawn, label = without_carrier(values, record["answer"].get("stats", {}).get("carrier"))
        panel = SignalPanel(drawn, [(r["start"], r["end"]) for r in regions], title, label=label)
        pictures.append((title, render_signals_png([panel])))
    return pictures


def signal_warnings(records: Sequence[Mapping]) -> list[tuple[str, object, str]]:
    """(file, signal, its warnings joined) for each answer that carries ``warnings``."""
    return [(record["file"], record["signal"], "; ".join(map(str, record["answer"]["warnings"])))
            for record in records if isinstance(record["answer"].get("warnings"), list)
            and record["answer"]["warnings"]]


def build_report(records: Sequence[Mapping], settings: Mapping, failures: Sequence[Mapping],
                 load: Callable[[str, object], np.ndarray | None],
                 sampling_rate_hz: float | None = None) -> tuple[str, bytes, dict]:
    """(the page, the run's PRPD picture, the run's PRPD summary)."""
    entries = [record["answer"] for record in records]
    summary = prpd.summarise(entries, sampling_rate_hz)
    prpd_png = prpd.render_prpd_png(entries, summary)
    models = sorted({f"{r['model'].get('name', '?')} {r['model'].get('version', '?')}" for r in records
                     if r.get("model")})
    setting_rows = [(key, value) for key, value in settings.items()] + [("model", ", ".join(models) or "-")]
    parts = [f"<h1>PD analysis: {summary['pulse_count']} pulses in {summary['signals']} signals</h1>",
             "<h2>Run</h2>", _table(("setting", "value"), setting_rows, text=True),
             "<h2>Phase-resolved PD (all signals)</h2>",
             _image(prpd_png, "PRPD plot over all signals"),
             f"<p>Magnitudes are peaks of the signal with its carrier removed, in the input's units "
             f"(no charge calibration). Phase histogram: {prpd.PHASE_BINS} bins of "
             f"{prpd.BIN_WIDTH_DEG:.0f}°.</p>",
             _table(("quantity (IEC 60270 names)", "value"), summary_rows(summary))]
    pictures = signal_pictures(records, load)
    if pictures:
        parts.append("<h2>Signals with the most PD</h2>")
        parts += [f"<figure>{_image(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
                  for caption, png in pictures]
    warned = signal_warnings(records)
    if warned:
        # The service's own caveats on a signal's answer (a given period far from the fitted
        # one, a view left out for the work limit): the phases or regions depend on them.
        parts.append(f'<h2 class="failed">Warnings from the service ({len(warned)} signals)</h2>')
        parts.append(_table(("file", "signal", "warning"), warned, text=True))
    if failures:
        parts.append(f'<h2 class="failed">Failures ({len(failures)})</h2>')
        parts.append(_table(("file", "signal", "status", "message (the service's, where it answered)"),
                            [(f["file"], f["signal"], f["status"], f["error"]) for f in failures], text=True))
    by_file: dict[str, list] = defaultdict(list)
    for record in records:
        by_file[record["file"]].append(record)
    parts.append("<h2>Per file and signal</h2>")
    for file, file_records in by_file.items():
        file_summary = prpd.summarise(record["answer"] for record in file_records)
        parts.append(f"<h3>{html.escape(file)}: {file_summary['pulse_count']} pulses in "
                     f"{file_summary['signals']} signals, {_cell(file_summary['repetition_rate_per_cycle'])} per cycle</h3>")
        parts.append(_table(("signal", "samples", "PD regions", "cycles", "regions per cycle",
                             f"largest peak ({prpd.MAGNITUDE_UNIT})", "positive", "negative",
                             "tones removed (cycles/sample)", "tone bursts removed (cycles/sample at samples)",
                             "wandering tones removed (cycles/sample ± deviation)",
                             "commutation removed (samples per sixth)",
                             f"once-a-cycle pattern removed (peak, {prpd.MAGNITUDE_UNIT})",
                             "regular train removed (samples apart)",
                             "also seen whitened (coefficient)",
                             "clipped carrier restored (plateaus)"),
                            [_signal_row(record) for record in file_records]))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>PD analysis report</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    return page, prpd_png, summary
