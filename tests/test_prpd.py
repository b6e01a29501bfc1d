"""The PRPD summary and pictures (pdseg.prpd, pdseg.render's JSON-only panels), without a server."""
import io

import numpy as np
import pytest
from PIL import Image

from pdseg import prpd
from pdseg.render import SignalPanel, overlaps, render_signals_png, without_carrier


def region(peak, polarity="positive", phase=None, start=0):
    described = {"start": start, "end": start + 10, "duration": 10, "peak": peak, "peak_index": start + 2,
                 "polarity": polarity, "energy": peak**2, "score": 0.9}
    if phase is not None:
        described["phase_deg"] = phase
    return described


def signal(regions, cycles=None, length=10_000):
    return {"index": 0, "length": length, "regions": regions,
            "stats": {"regions": len(regions), "cycles": cycles, "carrier": {"detected": cycles is not None}}}


def test_summary_counts_rates_peaks_and_phase_bins():
    answers = [
        signal([region(4.0, "positive", 0.0), region(2.0, "negative", 9.99), region(6.0, "negative", 10.0)], cycles=2.0),
        signal([region(1.0, "positive", 359.99), region(3.0, "positive", 185.0)], cycles=3.0),
        # No carrier period: its pulses count, but neither in the per-cycle rate nor by phase.
        signal([region(10.0, "negative")], cycles=None),
        signal([], cycles=1.0),
    ]
    summary = prpd.summarise(answers)
    assert summary["signals"] == 4 and summary["pulse_count"] == 6
    assert summary["cycles"] == 6.0 and summary["signals_without_cycles"] == 1
    assert summary["repetition_rate_per_cycle"] == pytest.approx(5 / 6, abs=1e-4)
    assert summary["repetition_rate_per_s"] is None and summary["duration_s"] is None
    assert summary["largest_peak"] == 10.0 and summary["magnitude_unit"] == "input units"
    positive, negative = summary["polarity"]["positive"], summary["polarity"]["negative"]
    assert (positive["pulse_count"], positive["largest_peak"], positive["mean_peak"]) == (3, 4.0, pytest.approx(8 / 3, abs=1e-4))
    assert (negative["pulse_count"], negative["largest_peak"], negative["mean_peak"]) == (3, 10.0, 6.0)
    assert positive["repetition_rate_per_cycle"] == pytest.approx(3 / 6, abs=1e-4)
    assert negative["repetition_rate_per_cycle"] == pytest.approx(2 / 6, abs=1e-4)
    histogram = summary["phase_histogram"]
    assert histogram["bin_width_deg"] == 10.0 and len(histogram["counts"]) == 36
    expected = [0] * 36
    for phase_bin in (0, 0, 1, 35, 18):  # 0°, 9.99°, 10°, 359.99°, 185°
        expected[phase_bin] += 1
    assert histogram["counts"] == expected and summary["phase_resolved_pulses"] == 5
    assert np.add(positive["phase_counts"], negative["phase_counts"]).tolist() == expected
    assert positive["phase_counts"][35] == 1 and negative["phase_counts"][1] == 1


def test_summary_peaks_keep_their_significant_digits_in_any_unit():
    """A capture in volts: peaks of microvolts (a stranger's probe read 0.0 for a largest peak of
    5.89174e-06 when the summary rounded to four decimals), and large ones to six digits."""
    summary = prpd.summarise([signal([region(5.89174e-06, "positive", 30.0), region(3.58166e-06, "positive", 45.0),
                                      region(1.23456789e7, "negative", 210.0)], cycles=2.0)])
    positive, negative = summary["polarity"]["positive"], summary["polarity"]["negative"]
    assert positive["largest_peak"] == 5.89174e-06
    assert positive["mean_peak"] == pytest.approx(4.7367e-06, rel=1e-5) and positive["mean_peak"] == 4.7367e-06
    assert negative["largest_peak"] == 1.23457e7 and summary["largest_peak"] == 1.23457e7


def test_rate_per_second_with_the_sampling_rate():
    summary = prpd.summarise([signal([region(1.0, phase=5.0)] * 4, cycles=2.0, length=2_000_000)],
                             sampling_rate_hz=50e6)
    assert summary["duration_s"] == pytest.approx(0.04)
    assert summary["repetition_rate_per_s"] == pytest.approx(100.0)


def test_empty_summary_has_no_rates():
    summary = prpd.summarise([])
    assert summary["pulse_count"] == 0 and summary["repetition_rate_per_cycle"] is None
    assert summary["largest_peak"] is None and summary["polarity"]["negative"]["mean_peak"] is None
    assert "no carrier period" in prpd.prpd_title(summary)


def test_title_gives_pulses_per_cycle_per_polarity():
    summary = prpd.summarise([signal([region(1.0, "positive", 45.0), region(2.0, "negative", 225.0),
                                      region(2.0, "negative", 230.0)], cycles=2.0)])
    title = prpd.prpd_title(summary)
    assert "3 pulses in 1 signals" in title and "1.5 pulses per cycle" in title
    assert "+ 0.5" in title and "− 1" in title


def colour_pixels(png: bytes, rgb, tolerance=40) -> np.ndarray:
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return np.all(np.abs(image - np.asarray(rgb)) < tolerance, axis=-1)


POSITIVE_RGB, NEGATIVE_RGB = (0xC0, 0x39, 0x2B), (0x1F, 0x5F, 0xA8)


def test_prpd_png_draws_each_polarity_on_its_side_of_zero():
    only_positive = prpd.render_prpd_png([signal([region(5.0, "positive", 60.0)] * 20, cycles=1.0)])
    both = prpd.render_prpd_png([signal([region(5.0, "positive", 60.0), region(5.0, "negative", 240.0)] * 10, cycles=1.0)])
    image = Image.open(io.BytesIO(both))
    assert image.format == "PNG" and image.size == (800, 512)
    assert colour_pixels(only_positive, POSITIVE_RGB).any() and not colour_pixels(only_positive, NEGATIVE_RGB).any()
    blue = colour_pixels(both, NEGATIVE_RGB)
    red = colour_pixels(both, POSITIVE_RGB)
    # The scatter panel is the top 3/4: a positive pulse above the negative one, left of it (60° vs 240°).
    top = slice(0, int(image.size[1] * 0.7))
    red_rows, red_columns = np.nonzero(red[top])
    blue_rows, blue_columns = np.nonzero(blue[top])
    assert np.median(red_rows) < np.median(blue_rows) and np.median(red_columns) < np.median(blue_columns)


def test_the_legend_and_title_say_how_many_pulses_are_placed():
    """A stranger's probe: the legend said "positive (10)" over 5 dots, the other 5 in a signal
    without a phase (counted, not placed), and nothing in the figure said so."""
    mixed = [signal([region(5.0, "positive", 60.0), region(4.0, "negative", 240.0)] * 5, cycles=1.0),
             signal([region(5.0, "positive"), region(4.0, "negative")] * 5, cycles=None)]
    summary = prpd.summarise(mixed)
    assert prpd.legend_label(summary, "positive") == "positive (5 placed of 10)"
    assert prpd.legend_label(summary, "negative") == "negative (5 placed of 10)"
    assert prpd.unplaced_note(summary) == "; 10 without a phase, not placed"
    placed = prpd.summarise(mixed[:1])
    assert prpd.legend_label(placed, "positive") == "positive (5)" and prpd.unplaced_note(placed) == ""
    assert Image.open(io.BytesIO(prpd.render_prpd_png(mixed))).size == (800, 512)


def test_prpd_png_without_any_phase_still_renders():
    png = prpd.render_prpd_png([signal([region(1.0)], cycles=None)])
    assert Image.open(io.BytesIO(png)).size == (800, 512)


def test_without_carrier_removes_the_fitted_sinusoid():
    samples = np.arange(10_000)
    carrier = {"detected": True, "samples_per_cycle": 3333.0, "amplitude": 1e5, "phase_offset_deg": 30.0}
    pulse = np.zeros(samples.size)
    pulse[5000:5010] = 50.0
    values = 7.0 + carrier["amplitude"] * np.sin(np.radians(360 * samples / 3333.0 + 30.0)) + pulse
    rest, label = without_carrier(values, carrier)
    assert label == "signal less fitted carrier"
    assert np.allclose(rest, pulse, atol=1e-6)
    unchanged, label = without_carrier(values, {"detected": False})
    assert np.array_equal(unchanged, values) and label.startswith("signal")


def test_planted_events_are_marked_found_or_missed():
    assert overlaps((10, 20), [(19, 30)]) and not overlaps((10, 20), [(20, 30)])
    values = np.random.default_rng(0).normal(size=4000)
    found_only = render_signals_png([SignalPanel(values, [(100, 200)], "signal 3", planted=[(150, 160)])])
    with_miss = render_signals_png([SignalPanel(values, [(100, 200)], "signal 3", planted=[(150, 160), (3000, 3100)])])
    green, red = (0x2C, 0xA0, 0x2C), (0xD6, 0x27, 0x28)
    # Both legends show both colours; the strip of a missed event adds red, nothing else does.
    assert colour_pixels(found_only, green, 20).sum() == colour_pixels(with_miss, green, 20).sum() > 0
    assert colour_pixels(with_miss, red, 20).sum() > colour_pixels(found_only, red, 20).sum() + 100


def test_every_region_shows_as_a_band_however_narrow():
    """36 regions of 3 samples in a 30,000-sample signal, each a fraction of a pixel wide: every
    one is a band of the region colour in the picture (a stranger's probe saw 4 of 36)."""
    length = 30_000
    regions = [(start, start + 3) for start in range(400, 29_000, 800)]
    png = render_signals_png([SignalPanel(values=np.zeros(length), regions=regions, title="narrow regions")])
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # the region colour (#ff7f0e) at alpha 0.3 over white: about (255, 216, 183)
    tinted = (red > 240) & (green > 190) & (green < 235) & (blue > 150) & (blue < 215)
    columns = np.flatnonzero(tinted.sum(axis=0) > 20)
    bands = 0 if columns.size == 0 else 1 + int(np.sum(np.diff(columns) > 1))
    assert bands == len(regions)
