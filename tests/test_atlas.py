"""The pulse atlas (training/atlas.py): its pulses, captures and scoring, and the served model on
it. The atlas tests at 30 dB hold the model to its goal: every isolated pulse that stands out of
the noise is found, whatever its shape and the capture's length."""
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import hilbert

from evaluate import served_segmenter
from serve import ROOT
from training import atlas

SHAPES = atlas.shape_grid()
BY_NAME = {shape.name: shape for shape in SHAPES}
ATLAS_LENGTHS = (64, 256, 1024, 8192, 65536)
ATLAS_TRIALS = 16 * len(ATLAS_LENGTHS)  # every (length, polarity, carrier, tones) twice per cell


@pytest.fixture(scope="module")
def segmenter():
    served, _ = served_segmenter(ROOT / "model_store" / "weights", threads=1)
    return served


def oracle(config: atlas.AtlasConfig, shift: int = 0, extra: int | None = None, truncated: bool = True):
    """A detector that knows the truth (the atlas's captures in the same order), optionally
    shifted by ``shift`` samples and with an extra region ``extra`` samples after each pulse;
    ``truncated=False``: blind to pulses cut by their capture's end."""
    captures = atlas.iter_captures(config)

    def detect(signals):
        out = []
        for signal in signals:
            capture = next(captures)
            assert np.array_equal(capture.signal, signal)
            regions = [(p.start + shift, p.end + shift) for p in capture.pulses if truncated or not p.truncated]
            if extra is not None:
                regions += [(p.end + extra, p.end + extra + 3) for p in capture.pulses
                            if p.end + extra + 3 <= capture.length]
            out.append(np.array(sorted(regions), dtype=np.int64).reshape(-1, 2))
        return out
    return detect


# --------------------------------------------------------------------------- pulses

def test_grid_has_the_four_families_and_their_parameters():
    families = [shape.family for shape in SHAPES]
    assert families.count("exponential") == 14  # 3 rises x 6 decays, rise > decay skipped
    assert families.count("oscillation") == 20 and families.count("bipolar") == 4
    assert families.count("gaussian") == 4
    assert all(s.param("rise") <= s.param("decay") for s in SHAPES if s.family == "exponential")
    assert len({shape.name for shape in SHAPES}) == len(SHAPES)


def test_truth_lengths_follow_the_envelope_rule():
    # Closed forms: e^-t - e^-5t falls to 10 % of its peak at t = 2.93; a damped oscillation's
    # envelope exp(-t/d) at d ln 10.
    assert BY_NAME["exponential rise=0.2 decay=1"].truth_span == pytest.approx(2.93, abs=0.01)
    for decay in atlas.OSCILLATION_DECAYS:
        assert BY_NAME[f"oscillation f=0.1 decay={decay:g}"].truth_span == pytest.approx(decay * math.log(10), rel=1e-3)
    assert BY_NAME["exponential rise=1 decay=100"].truth_span == pytest.approx(235.9, abs=0.2)
    # The bipolar pulse's envelope is its analytic signal's magnitude: checked against an FFT
    # Hilbert transform of the waveform on a fine grid.
    for width in atlas.BIPOLAR_WIDTHS:
        shape = BY_NAME[f"bipolar width={width:g}"]
        t = np.arange(-60 * width, 80 * width, width / 200)
        magnitude = np.abs(hilbert(shape.waveform(t)))
        above = t[magnitude >= atlas.LABEL_FRACTION * magnitude.max()]
        assert above[0] == pytest.approx(0.0, abs=0.02 * width)  # the onset is the first 10 % point
        assert above[-1] - above[0] == pytest.approx(shape.truth_span, rel=0.01)
    # A Gaussian is at 10 % of its peak 2.146 sigma either side of it: onset to the last 10 %
    # point is 4.29 sigma, and the onset is the first.
    for width in atlas.GAUSSIAN_WIDTHS:
        shape = BY_NAME[f"gaussian width={width:g}"]
        assert shape.truth_span == pytest.approx(4.292 * width, rel=0.01)
        assert shape.waveform(np.array([0.0]))[0] == pytest.approx(atlas.LABEL_FRACTION)

    rng = np.random.default_rng(5)
    short = BY_NAME["exponential rise=0.2 decay=1"]
    for _ in range(20):
        capture = atlas.make_capture(rng, 1024, [short], [1], 30.0, False, False)
        pulse = capture.pulses[0]
        assert 2 <= pulse.end - pulse.start <= 3  # a decay-1 exponential is a few samples long
        assert pulse.start == math.ceil(pulse.onset)
    # Every sample of the truth is at or after the onset; the last one's envelope is still at
    # least 10 % of the peak, the next one's below.
    for shape in SHAPES:
        peak = shape.envelope(np.linspace(0, shape.support[1], 20001)).max()
        for onset in (20.0, 20.37, 20.99):
            start, end, truncated = atlas.truth_interval(shape, onset)
            assert not truncated and start >= onset and end - start >= 1
            assert shape.envelope(np.array([end - 1 - onset]))[0] >= 0.1 * peak * 0.999 or end - start == 1
            assert shape.envelope(np.array([end - onset]))[0] < 0.1 * peak
    lengths = [math.floor(shape.truth_span) for shape in SHAPES]
    assert min(lengths) <= 3 and max(lengths) >= 200


def test_truth_stays_inside_short_captures_and_pulses_are_isolated():
    config = atlas.AtlasConfig(snrs_db=(20.0,), trials=48)
    for capture in atlas.iter_captures(config):
        starts = [p.start for p in capture.pulses]
        assert starts == sorted(starts)
        assert starts[0] >= atlas.EDGE_MARGIN
        if capture.length <= atlas.SINGLE_PULSE_MAX_LENGTH:
            assert len(capture.pulses) == 1
        else:
            assert len(capture.pulses) > 1  # long captures hold several pulses
        for pulse in capture.pulses:
            shape = SHAPES[pulse.shape_index]
            fits = math.floor(shape.truth_span) + 2 + 2 * atlas.EDGE_MARGIN <= capture.length
            assert pulse.end <= capture.length
            if fits:
                assert not pulse.truncated and pulse.end <= capture.length - atlas.EDGE_MARGIN
            if pulse.truncated:  # clipped at the capture's end, only in the shortest captures
                assert capture.length <= 256 and pulse.end == capture.length
                assert math.floor(pulse.onset + shape.truth_span) + 1 > capture.length
        for first, second in zip(capture.pulses, capture.pulses[1:]):
            assert second.onset - first.onset >= atlas.MIN_SPACING + (first.end - first.start)


def test_sub_sample_onsets_differ_between_trials_and_both_polarities_occur():
    config = atlas.AtlasConfig(snrs_db=(30.0,), lengths=(64, 256, 8192), trials=24)
    fractions: dict[int, list[float]] = {}
    polarities: dict[int, set] = {}
    for capture in atlas.iter_captures(config, keep_parts=True):
        for pulse in capture.pulses:
            fractions.setdefault(pulse.shape_index, []).append(pulse.onset % 1.0)
            polarities.setdefault(pulse.shape_index, set()).add(pulse.polarity)
            # the pulse in the capture is the shape's waveform times its polarity
            first, samples = atlas.render_pulse(SHAPES[pulse.shape_index], pulse.onset, capture.length)
            count = pulse.end - first  # beyond the truth a long tail may meet the next pulse's
            drawn = capture.clean[first: pulse.end] / 10 ** (capture.snr_db / 20)
            assert np.allclose(drawn, pulse.polarity * samples[:count], atol=1e-3)
    assert len(fractions) == len(SHAPES)
    for shape_index, values in fractions.items():
        assert len(values) == 24
        assert len(set(np.round(values, 6))) == len(values)  # every trial its own sub-sample onset
        assert max(values) - min(values) > 0.5
        assert polarities[shape_index] == {1, -1}
    # A different sub-sample onset samples the same shape differently.
    shape = BY_NAME["bipolar width=0.7"]
    first = atlas.render_pulse(shape, 100.0, 400)[1]
    second = atlas.render_pulse(shape, 100.5, 400)[1]
    assert np.max(np.abs(first[: min(first.size, second.size)] - second[: min(first.size, second.size)])) > 0.3


@pytest.mark.parametrize("snr", atlas.SNRS_DB)
def test_snr_of_generated_captures_matches_the_cell(snr):
    config = atlas.AtlasConfig(snrs_db=(snr,), lengths=(64, 256, 8192, 65536), trials=32)
    for capture in atlas.iter_captures(config, keep_parts=True):
        background = capture.signal - capture.clean - (capture.carrier_wave if capture.carrier else 0.0)
        rms = math.sqrt(float(np.mean(background**2)))
        assert np.allclose(background, capture.background, atol=1e-6 * max(1.0, np.abs(capture.signal).max()))
        for pulse in capture.pulses:
            window = slice(max(0, pulse.start - 20), min(capture.length, pulse.end + 1))
            peak = float(np.max(np.abs(capture.clean[window])))
            assert abs(20 * math.log10(peak / rms) - snr) < 1.0
        if capture.carrier and capture.length >= 8192:
            amplitude = float(np.max(np.abs(capture.carrier_wave)))
            assert 0.99e4 <= amplitude <= 1.01e6
    # From the signal alone (no carrier, tones on): the pulses' peaks over the rms far from them.
    if snr >= 30:
        rng = np.random.default_rng(11)
        shapes = [SHAPES[i % len(SHAPES)] for i in range(60)]
        capture = atlas.make_capture(rng, 65536, shapes, [1, -1] * 30, snr, carrier=False, tones=True)
        quiet = np.ones(capture.length, dtype=bool)
        for pulse in capture.pulses:
            quiet[max(0, pulse.start - 300): pulse.end + 300] = False
        rms = math.sqrt(float(np.mean(capture.signal[quiet] ** 2)))
        peaks = [np.max(np.abs(capture.signal[max(0, p.start - 10): p.end])) for p in capture.pulses]
        assert abs(20 * math.log10(float(np.median(peaks)) / rms) - snr) < 1.0


def test_captures_are_deterministic_and_an_snr_subset_gives_the_same_captures():
    small = atlas.AtlasConfig(snrs_db=(10.0,), lengths=(256, 8192), trials=8)
    both = atlas.AtlasConfig(snrs_db=(10.0, 20.0), lengths=(256, 8192), trials=8)
    first = list(atlas.iter_captures(small))
    again = list(atlas.iter_captures(small))
    subset = [c for c in atlas.iter_captures(both) if c.snr_db == 10.0]
    assert len(first) == len(again) == len(subset)
    for a, b, c in zip(first, again, subset):
        assert np.array_equal(a.signal, b.signal) and np.array_equal(a.signal, c.signal)


# --------------------------------------------------------------------------- scoring

def test_scoring_counts_each_pulse_and_charges_false_regions_to_cells():
    config = atlas.AtlasConfig(snrs_db=(20.0,), lengths=(256, 8192), trials=16)
    pulses = len(SHAPES) * 16
    perfect = atlas.run_atlas(oracle(config), config, batch_captures=7)
    assert perfect.pulse_hit.size == pulses and perfect.recall == 1.0 and perfect.false_shape.size == 0
    assert all(v == 1.0 for row in perfect.table("shape")["recall"] for v in row)
    # Shifted by more than the shortest pulses' lengths: those are missed, each a false region too.
    shifted = atlas.run_atlas(oracle(config, shift=6), config)
    missed = ~shifted.pulse_hit
    assert missed.any() and shifted.pulse_hit.any()
    # IoU of a run of n samples with itself shifted by 6: (n - 6) / (n + 6) >= 0.3 from n = 12.
    assert np.all(shifted.pulse_truth_length[missed] <= 11)
    assert np.all(shifted.pulse_truth_length[~missed] >= 12)
    assert shifted.false_shape.size == missed.sum()
    # A stray region 100 samples after each pulse is charged to that pulse's cell.
    stray = atlas.run_atlas(oracle(config, extra=100), config)
    assert stray.recall == 1.0
    table = stray.table("shape")
    assert sum(map(sum, table["false_regions"])) == stray.false_shape.size > 0
    assert np.all(stray.false_shape >= 0)
    text = __import__("atlas").card_table(stray.to_json())  # scripts/atlas.py
    assert "Worst shape cells per SNR" in text and "Recall by capture length" in text
    assert "| 8,192 |" in text and "| carrier, white + tones |" in text


def test_pulses_longer_than_their_capture_are_counted_apart_by_length():
    config = atlas.AtlasConfig(snrs_db=(30.0,), lengths=(64, 256, 1024), trials=12)
    blind = atlas.run_atlas(oracle(config, truncated=False), config)
    assert blind.pulse_truncated.any() and np.all(blind.pulse_length[blind.pulse_truncated] <= 256)
    assert np.array_equal(blind.pulse_hit, ~blind.pulse_truncated)
    every, whole = blind.table("length"), blind.table("whole_length")
    assert every["rows"] == whole["rows"] == ["64", "256", "1,024"]
    assert every["recall"][0][0] < 1.0 and every["recall"][2][0] == 1.0
    assert all(row == [1.0] for row in whole["recall"])
    cut = int(np.sum(blind.pulse_truncated & (blind.pulse_length == 64)))
    assert whole["pulses"][0][0] == every["pulses"][0][0] - cut
    text = __import__("atlas").card_table(blind.to_json())  # scripts/atlas.py
    assert f"{cut:,} of {every['pulses'][0][0]:,} at 64 samples" in text


def test_false_regions_are_charged_to_the_nearest_pulse_within_reach():
    capture = atlas.Capture(signal=np.zeros(4000), snr_db=30.0, carrier=False, tones=False, pulses=[
        atlas.Pulse(3, 1, 100.0, 100, 130), atlas.Pulse(7, -1, 2000.0, 2000, 2010)])
    predicted = np.array([[100, 128], [150, 160], [1000, 1010], [1995, 2012], [2200, 2205], [3900, 3950]])
    score = atlas.score_capture(capture, predicted, min_gap=16)
    assert score.hit.tolist() == [True, True]
    assert score.false_regions.tolist() == [[150, 160], [1000, 1010], [2200, 2205], [3900, 3950]]
    assert score.false_owner.tolist() == [0, -1, 1, -1]


def test_nearby_pulses_merge_into_one_event_with_the_detector_gap():
    shape = BY_NAME["exponential rise=0.2 decay=1"]
    capture = atlas.Capture(signal=np.zeros(200), snr_db=30.0, carrier=False, tones=False, pulses=[
        atlas.Pulse(0, 1, 50.0, 50, 53), atlas.Pulse(0, 1, 60.0, 60, 63)])
    assert shape.truth_span < 3
    merged = atlas.score_capture(capture, np.array([[50, 63]]), min_gap=16)
    assert merged.hit.tolist() == [True, True] and merged.false_regions.size == 0
    apart = atlas.score_capture(capture, np.array([[50, 63]]), min_gap=4)
    assert apart.hit.sum() == 0 and len(apart.false_regions) == 1


# --------------------------------------------------------------------------- the served model

def _failures(result: atlas.AtlasResult, minimum: float) -> str:
    table = result.table("shape")
    lines = []
    for name, recalls, found, pulses in zip(table["rows"], table["recall"], table["found"], table["pulses"]):
        for snr, recall, f, p in zip(table["snrs_db"], recalls, found, pulses):
            if recall is not None and recall < minimum:
                lines.append(f"{name} @ {snr:g} dB: recall {recall:.3f} ({f}/{p})")
    by_length = result.table("length")
    lines.append("by length: " + ", ".join(f"{row} {values[0]:.3f}" for row, values
                                            in zip(by_length["rows"], by_length["recall"]) if values[0] is not None))
    by_condition = result.table("condition")
    lines.append("by condition: " + ", ".join(f"{row} {values[0]:.3f}" for row, values
                                               in zip(by_condition["rows"], by_condition["recall"])))
    return "\n".join(lines)


# The goal of issue #14, not met by the shipped model: a few pulses a cell in 11 of the 42 shapes
# (slow exponentials, the broadest Gaussian, one-sample spikes; docs/model-card.md, "Pulse atlas"
# and "Known failure modes"). Strict: the day it passes, the marker must go.
@pytest.mark.xfail(strict=True, reason="issue #14 open: shape cells under 0.99 at 30 dB (model card, Goals)")
def test_served_model_finds_every_isolated_pulse_at_30_db(segmenter):
    """THE atlas test: all shapes x lengths 64-65,536 x carrier on/off x white/tones x both
    polarities (one pulse of each per shape), 30 dB; recall >= 0.99 in every cell."""
    config = atlas.AtlasConfig(snrs_db=(30.0,), lengths=ATLAS_LENGTHS, trials=ATLAS_TRIALS)
    result = atlas.run_atlas(atlas.segmenter_detector(segmenter), config, min_gap=segmenter.min_gap)
    assert result.pulse_hit.size == len(SHAPES) * ATLAS_TRIALS
    recall = result.recall_matrix("shape")
    assert not np.isnan(recall).any()
    assert recall.min() >= 0.99, "cells below 0.99:\n" + _failures(result, 0.99)


@pytest.mark.parametrize("family", ["exponential", "oscillation", "bipolar", "gaussian"])
def test_served_model_finds_a_clean_isolated_pulse_of_any_length(segmenter, family):
    """White noise, no carrier, 30 dB, an 8,192-sample capture: two pulses (one of each
    polarity) of every shape of the family, truth lengths from a few samples to 35-250."""
    shapes = [shape for shape in SHAPES if shape.family == family]
    rng = np.random.default_rng(2024)
    captures = [atlas.make_capture(rng, 8192, [shape, shape], [1, -1], 30.0, carrier=False, tones=False)
                for shape in shapes]
    lengths = [p.end - p.start for c in captures for p in c.pulses]
    assert min(lengths) <= 6 and max(lengths) >= 34
    predicted = atlas.segmenter_detector(segmenter)([c.signal for c in captures])
    missed = []
    for shape, capture, regions in zip(shapes, captures, predicted):
        score = atlas.score_capture(capture, regions, segmenter.min_gap)
        for pulse, hit, iou in zip(capture.pulses, score.hit, score.iou):
            if not hit:
                missed.append(f"{shape.name} ({pulse.end - pulse.start} samples, polarity {pulse.polarity:+d}, "
                              f"best IoU {iou:.2f})")
    assert not missed, "missed:\n" + "\n".join(missed)


@pytest.mark.parametrize("snr", [50.0, 60.0])
def test_served_model_finds_one_sample_spikes_far_above_the_noise(segmenter, snr):
    """A one-sample spike 300-1,000 times the noise (a calibrator's pulse on a slow digitiser)
    in captures of 64-8,192 samples, with and without a carrier, either polarity. The carrier
    filter's pit around such a spike stands 8-25 noise units out, and the spike's region took it
    in (IoU 0.05-0.25): 21 and 35 of these 48 were missed at 50 and 60 dB before the very loud
    pulses' pits were filled (``preprocess.very_loud_transients``)."""
    spike = BY_NAME["exponential rise=0.2 decay=0.3"]
    rng = np.random.default_rng(60)
    captures = [atlas.make_capture(rng, length, [spike], [polarity], snr, carrier=carrier, tones=False)
                for length in (64, 256, 1024, 8192) for carrier in (False, True) for polarity in (1, -1)
                for _ in range(3)]
    predicted = atlas.segmenter_detector(segmenter)([c.signal for c in captures])
    missed = [f"{c.signal.size} samples, carrier {c.carrier}, polarity {c.pulses[0].polarity:+d}, best IoU "
              f"{atlas.score_capture(c, regions, segmenter.min_gap).iou[0]:.2f}"
              for c, regions in zip(captures, predicted) if not atlas.score_capture(c, regions, segmenter.min_gap).hit[0]]
    assert not missed, "missed:\n" + "\n".join(missed)


def test_served_model_gives_a_spike_at_20_db_a_region_as_short_as_the_spike(segmenter):
    """One-sample spikes 10 times the noise in captures of 256-65,536 samples, with and without
    a carrier, either polarity: a spike's region is at most four samples long, so it matches
    its one- or two-sample truth. Its 10 % level is one noise unit there, which the noise
    beside it passes; before a spike's region was cut to the spike (``regions.spike_extent``),
    the regions ran 8-16 samples and 13 of these 48 were missed."""
    spike = BY_NAME["exponential rise=0.2 decay=0.3"]
    rng = np.random.default_rng(20)
    captures = [atlas.make_capture(rng, length, [spike], [polarity], 20.0, carrier=carrier, tones=False)
                for length in (256, 1024, 8192, 65536) for carrier in (False, True) for polarity in (1, -1)
                for _ in range(3)]
    predicted = atlas.segmenter_detector(segmenter)([c.signal for c in captures])
    scores = [atlas.score_capture(c, regions, segmenter.min_gap) for c, regions in zip(captures, predicted)]
    found = sum(bool(score.hit[0]) for score in scores)
    lengths = [int(end - start) for c, regions in zip(captures, predicted) for start, end in regions.tolist()
               if start < c.pulses[0].end and end > c.pulses[0].start]
    assert found >= 46, found  # 48 with the step; a margin of two for other noise draws
    assert max(lengths) <= 4, lengths


def test_served_model_finds_a_slow_pulse_outlasting_a_short_window(segmenter):
    """Slow exponentials (decay 30 or 100 samples, rise 0.2 or 1) starting 8-10 samples into a
    64-sample capture at 30 dB, with and without a carrier, either polarity: the truth runs to
    the capture's end. The short window's trend followed the pulse's body, and its region
    covered only the onset: 12 of these 48 were found (``preprocess.onset_step_trend``)."""
    shapes = [BY_NAME[f"exponential rise={rise} decay={decay}"] for rise in ("0.2", "1") for decay in ("30", "100")]
    rng = np.random.default_rng(64)
    captures = [atlas.make_capture(rng, 64, [shape], [polarity], 30.0, carrier=carrier, tones=False)
                for shape in shapes for carrier in (False, True) for polarity in (1, -1) for _ in range(3)]
    assert all(c.pulses[0].truncated for c in captures)
    predicted = atlas.segmenter_detector(segmenter)([c.signal for c in captures])
    found = sum(bool(atlas.score_capture(c, regions, segmenter.min_gap).hit[0]) for c, regions in zip(captures, predicted))
    assert found >= 46, found


def test_served_model_finds_a_loud_slow_pulse_in_a_128_sample_window(segmenter):
    """A slow pulse 1,000 noise units high (60 dB, decay 30 or 100) from 40-60 samples into a
    128-sample window, half on a 1e6 carrier: a step fitted beside the ladder's degree 7-9 took
    the decay into the trend and left a flat box to the window's end, whose region shrank to the
    onset (a read-only review's case: 10 of these 24 found). Beside the cubic, or with the samples
    before the edge explained to within the noise, 19 (IoU 0.79-0.99 for 14 of them); without any
    step 21, most at an IoU of 0.33-0.42 (the region covered the onset's part)."""
    rng = np.random.default_rng(128)
    t = np.arange(128, dtype=np.float64)
    found = total = 0
    for decay in (30.0, 100.0):
        for onset in (40.0, 50.0, 60.0):
            for number in range(4):
                after = np.maximum(t - onset, 0.0)
                pulse = 1000.0 * np.where(t >= onset, (1 - np.exp(-after / 0.2)) * np.exp(-after / decay), 0.0)
                raw = pulse + rng.normal(size=t.size)
                if number % 2:
                    raw += 1e6 * np.sin(2 * np.pi * t / rng.uniform(2500.0, 4500.0) + rng.uniform(0.0, 6.3))
                truth = np.flatnonzero(pulse >= 0.1 * pulse.max())
                regions = segmenter.analyse([raw])[0].regions
                best = max((atlas.interval_iou(np.array([[truth[0], truth[-1] + 1]]), regions).max()
                            if len(regions) else 0.0), 0.0)
                found += best >= 0.3
                total += 1
    assert found >= 18, f"{found} of {total}"


def test_served_model_keeps_the_atlas_recall_it_shipped_with(segmenter):
    """A guard for what the shipped model reaches at 30 dB (docs/atlas.json), until the goal
    above holds: recall by capture length, all shapes, conditions and polarities together.
    Short windows shown amid zeros instead of their own noise gave 0.80 (64) and 0.94 (256);
    without a slow pulse's onset step (``preprocess.onset_step_trend``) 64 samples gave 0.85."""
    config = atlas.AtlasConfig(snrs_db=(30.0,), lengths=ATLAS_LENGTHS, trials=ATLAS_TRIALS)
    result = atlas.run_atlas(atlas.segmenter_detector(segmenter), config, min_gap=segmenter.min_gap)
    by_length = dict(zip(result.table("length")["rows"], (row[0] for row in result.table("length")["recall"])))
    floors = {"64": 0.94, "256": 0.95, "1,024": 0.97, "8,192": 0.97, "65,536": 0.97}
    assert {row: by_length[row] >= floor for row, floor in floors.items()} == dict.fromkeys(floors, True), by_length


def test_atlas_script_writes_nothing_with_no_write(tmp_path):
    script = Path(ROOT / "scripts" / "atlas.py")
    assert script.is_file()
    import atlas as atlas_script  # scripts/atlas.py
    results = atlas_script.main(["--snr", "40", "--trials", "6", "--no-write", "--threads", "1",
                                 "--json", str(tmp_path / "atlas.json")])
    assert (tmp_path / "atlas.json").is_file()
    assert results["pulses"] == len(SHAPES) * 6 and set(results["maps"]) >= {"shape", "length", "condition"}
    assert results["seconds"] > 0 and "scripts/atlas.py" in results["command"]
