"""Pure signal steps: carrier removal and scaling, windowing and stitching, regions, phase."""
import numpy as np
import pytest

from pdseg import phase, preprocess
from pdseg.regions import describe_regions, mask_to_regions, probability_to_regions
from pdseg.window import WindowPlan


def carrier(length, period=3333.0, amplitude=7e5, phase_deg=30.0):
    samples = np.arange(length)
    return amplitude * np.sin(2 * np.pi * samples / period + np.deg2rad(phase_deg))


def test_carrier_removed_and_pulse_kept_in_place():
    raw = carrier(8000)
    raw[4000:4010] += 5e4 * np.exp(-np.arange(10) / 3.0)
    filtered = preprocess.remove_carrier(raw)
    quiet = np.r_[filtered[500:3500], filtered[4500:7500]]
    assert np.abs(quiet).max() < 1.0  # a 7e5 carrier leaves less than one unit
    assert int(np.argmax(np.abs(filtered))) == 4000
    assert filtered[4000] == pytest.approx(5e4, rel=0.15)


@pytest.mark.parametrize("length", [1, 2, 27, 28, 1000])
def test_condition_any_length(length):
    conditioned = preprocess.condition(np.random.default_rng(0).normal(size=length))
    assert conditioned.network_input.shape == (preprocess.INPUT_CHANNELS, length)
    assert conditioned.network_input.dtype == np.float32
    assert np.all(np.isfinite(conditioned.network_input))


def test_constant_signal_stays_finite():
    conditioned = preprocess.condition(np.full(5000, 3.0))
    assert np.all(np.isfinite(conditioned.network_input))
    assert np.abs(conditioned.network_input).max() < 1.0


def test_local_peak_channel_singles_out_the_spike():
    raw = carrier(8000)
    raw[4000:4008] += 1.5e5 * np.exp(-np.arange(8) / 2.0)
    raw[4100:4300] += 1e4 * np.sin(np.arange(200) / 3.0)  # ringing at a fifteenth of the spike
    log_channel, local_channel = preprocess.condition(raw).network_input
    assert local_channel[4000] == pytest.approx(1.0, abs=0.05)
    assert np.abs(local_channel[4100:4300]).max() < 0.1
    assert np.abs(log_channel[4100:4300]).max() > 0.6 * log_channel[4000]  # squeezed by asinh


def test_scaling_invariance():
    rng = np.random.default_rng(1)
    raw = carrier(6000) + rng.normal(scale=50, size=6000)
    raw[3000:3005] += 3e4
    reference = preprocess.condition(raw).network_input
    for factor in (0.5, 2.0, 1e-3, 1e3):
        np.testing.assert_allclose(preprocess.condition(raw * factor).network_input, reference, atol=1e-4)


def test_cycle_difference_cancels_what_repeats_every_cycle_and_keeps_pulses():
    """Converter-like notches at a fractional period cancel; a pulse that comes once stays,
    and its copy one cycle later is the only other trace it leaves."""
    period, length = 1234.56, 6000
    samples = np.arange(length, dtype=np.float64)
    notches = np.zeros(length)
    for centre in np.arange(100.3, length + period, period / 6):
        notches += 40.0 * 0.5 * (np.tanh((samples - centre + 6) / 1.5) - np.tanh((samples - centre - 6) / 1.5))
    pulse = np.zeros(length)
    pulse[3000:3030] = 100.0 * np.exp(-np.arange(30) / 5.0)
    difference = preprocess.cycle_difference(notches + pulse, period)
    inside = (samples >= 20) & (samples < length - 20)
    residue = np.where(np.abs(samples - 3000) < 40, 0.0, np.where(np.abs(samples - 3000 - period) < 40, 0.0,
                                                                   difference))
    assert np.abs(residue[inside]).max() < 0.05 * 40.0
    assert difference[3000] == pytest.approx(100.0, rel=0.05)
    # the first cycle is compared with the next one
    early = np.zeros(length)
    early[200:230] = pulse[3000:3030]
    assert preprocess.cycle_difference(early, period)[200] == pytest.approx(100.0, rel=0.05)
    # with a wrong period the notches stay
    assert np.abs(preprocess.cycle_difference(notches, period + 3)[inside]).max() > 20.0
    assert not preprocess.cycle_difference(notches, None).any()
    assert not preprocess.cycle_difference(notches, float(length)).any()


def test_three_channel_conditioning_uses_the_fitted_or_given_period():
    rng = np.random.default_rng(4)
    raw = carrier(8000, period=1500.0) + rng.normal(scale=20, size=8000)
    raw[4000:4010] += 3e3 * np.exp(-np.arange(10) / 3.0)
    with_cycle = preprocess.DEFAULT_PLANES + ("cycle_difference",)
    conditioned = preprocess.condition(raw, with_cycle)
    assert conditioned.network_input.shape == (3, 8000)
    assert conditioned.carrier.detected
    assert conditioned.carrier.samples_per_cycle == pytest.approx(1500.0, abs=0.2)
    two = preprocess.condition(raw).network_input
    np.testing.assert_array_equal(conditioned.network_input[:2], two)  # the first two unchanged
    assert conditioned.network_input[2, 4000] == pytest.approx(two[0, 4000], abs=0.2)
    given = preprocess.condition(raw, with_cycle, samples_per_cycle=1499.0)
    assert given.carrier.samples_per_cycle == 1499.0
    for factor in (0.5, 2.0):  # still scale-free
        np.testing.assert_allclose(preprocess.condition(raw * factor, with_cycle).network_input,
                                   conditioned.network_input, atol=1e-4)
    with pytest.raises(ValueError, match="unknown input planes"):
        preprocess.condition(raw, ("signal", "spectrogram"))
    assert preprocess.planes_for(3) == with_cycle and preprocess.planes_for(2) == preprocess.DEFAULT_PLANES
    with pytest.raises(ValueError):
        preprocess.planes_for(4)


def test_envelope_follows_an_oscillatory_pulse_through_its_zero_crossings():
    """The envelope plane: smooth over an oscillating pulse's crests and zero crossings, down
    at the label's 10 % where the decay says, the same for either polarity and any scale."""
    length, onset, decay, period = 4000, 2000, 40.0, 30.0
    t = np.arange(length - onset, dtype=np.float64)
    pulse = np.zeros(length)
    pulse[onset:] = np.exp(-t / decay) * np.sin(2 * np.pi * t / period)
    envelope = preprocess.envelope(pulse)
    inside = envelope[onset + 10: onset + 120]  # the abrupt onset leaves a ripple of ~15 %
    expected = np.exp(-np.arange(10, 120) / decay)
    np.testing.assert_allclose(inside, expected, rtol=0.2, atol=0.01)
    # a sinusoid's envelope is flat (a misaligned quadrature ripples), as the taps' docstring says
    for frequency, ripple in ((0.04, 1e-3), (0.1, 1e-3), (0.3, 1e-3), (0.45, 1e-3), (0.03, 0.03), (0.02, 0.2)):
        sinusoid = np.cos(2 * np.pi * frequency * np.arange(1000))
        np.testing.assert_allclose(preprocess.envelope(sinusoid)[100:-100], 1.0, atol=ripple)
    # the signal itself is near zero at its zero crossings; the envelope is not
    crossing = onset + int(period)
    assert abs(pulse[crossing]) < 0.05 < 0.3 < envelope[crossing]
    assert envelope[:onset - 100].max() < 0.02 and envelope[onset + 400:].max() < 0.02
    rng = np.random.default_rng(9)
    raw = rng.normal(scale=5, size=length) + 500 * pulse
    planes = ("signal", "relative", "envelope")
    conditioned = preprocess.condition(raw, planes).network_input
    flipped = preprocess.condition(-raw, planes).network_input
    np.testing.assert_allclose(flipped[2], conditioned[2], atol=1e-5)  # even in the signal
    np.testing.assert_allclose(flipped[:2], -conditioned[:2], atol=1e-5)  # odd
    np.testing.assert_allclose(preprocess.condition(raw * 2, planes).network_input, conditioned, atol=1e-4)
    # a large spike's envelope stays local (no 1/t tail over the capture)
    spike = np.zeros(length)
    spike[1000] = 1e4
    assert preprocess.envelope(spike)[1000 + preprocess.HILBERT_HALF_SPAN + 1:].max() == 0.0
    assert preprocess.envelope(np.zeros(1)).shape == (1,) and preprocess.envelope(np.zeros(0)).size == 0


def test_noise_scale_ignores_dense_bursts():
    rng = np.random.default_rng(2)
    noise = rng.normal(scale=10.0, size=20000)
    bursts = noise.copy()
    bursts[:14000] += 500 * np.sin(np.arange(14000) / 4.0)  # ringing over 70 % of the capture
    assert preprocess.noise_scale(bursts, 1.0) == pytest.approx(preprocess.noise_scale(noise, 1.0), rel=0.3)


@pytest.mark.parametrize("length", [1, 3583, 3584, 3585, 4095, 4096, 4097, 7920, 15872, 15873, 40000])
def test_window_cut_then_stitch_is_identity(length):
    plan = WindowPlan(window=4096, context=256, max_single=16384)
    samples = np.arange(1, length + 1, dtype=np.float32)
    windows = plan.cut(samples)
    assert windows.shape == (plan.count(length), plan.width(length))
    np.testing.assert_array_equal(plan.stitch(windows, length), samples)
    channels = plan.cut(np.stack((samples, -samples)))
    assert channels.shape == (plan.count(length), 2, plan.width(length))
    np.testing.assert_array_equal(plan.stitch(channels[:, 1], length), -samples)
    # a network with two outputs per sample (PD, onset) is stitched per output
    np.testing.assert_array_equal(plan.stitch(channels, length), np.stack((samples, -samples)))


def test_window_sizes_avoid_needless_work():
    plan = WindowPlan(window=4096, context=256, max_single=16384)
    assert (plan.count(1), plan.width(1)) == (1, 1024)
    assert (plan.count(3584), plan.width(3584)) == (1, 4096)
    assert (plan.count(7920), plan.width(7920)) == (1, 8704)  # not three 4,096 windows
    assert (plan.count(800_000), plan.width(800_000)) == (224, 4096)
    for length in (1, 500, 3585, 7920, 12000, 20000, 800_000):
        work = plan.count(length) * plan.width(length)
        assert work <= max(1.2 * (length + 2 * plan.context), 1024)


def test_every_kept_sample_has_full_context():
    plan = WindowPlan(window=512, context=64, max_single=512)
    samples = np.arange(1, 2001, dtype=np.float32)
    windows = plan.cut(samples)
    assert windows.shape == (6, 512)
    for index, window in enumerate(windows):
        first_kept = index * plan.core
        assert window[plan.context] == samples[first_kept]
        left = window[: plan.context]
        expected = samples[max(first_kept - plan.context, 0): first_kept]
        np.testing.assert_array_equal(left[plan.context - expected.size:], expected)
        kept_end = min(first_kept + plan.core, samples.size)
        right = window[plan.context + plan.core:]
        expected_right = samples[kept_end: kept_end + plan.context]
        if first_kept + plan.core <= samples.size:
            np.testing.assert_array_equal(right[: expected_right.size], expected_right)


def test_window_plan_rejects_bad_geometry():
    with pytest.raises(ValueError):
        WindowPlan(window=512, context=256)
    with pytest.raises(ValueError):
        WindowPlan(window=1000, context=100)


def test_mask_to_regions_known_runs():
    mask = np.zeros(100, dtype=bool)
    mask[10:20] = True
    mask[24:30] = True   # gap of 4 < 8: merged with the first
    mask[50:51] = True   # single sample: dropped by min_length=2
    mask[90:100] = True  # touches the end
    assert mask_to_regions(mask).tolist() == [[10, 30], [90, 100]]
    assert mask_to_regions(mask, min_gap=0, min_length=1).tolist() == [[10, 20], [24, 30], [50, 51], [90, 100]]
    assert mask_to_regions(np.zeros(0, dtype=bool)).shape == (0, 2)
    assert mask_to_regions(np.ones(1, dtype=bool), min_length=1).tolist() == [[0, 1]]


def test_probability_threshold_and_region_facts():
    probability = np.zeros(50)
    probability[5:15] = 0.9
    filtered = np.zeros(50)
    filtered[8] = -7.0
    regions = probability_to_regions(probability, 0.5)
    phases = np.linspace(0, 360, 50, endpoint=False)
    [region] = describe_regions(regions, filtered, probability, phases, sampling_rate_hz=1000.0)
    assert (region["start"], region["end"], region["duration"]) == (5, 15, 10)
    assert region["peak"] == 7.0 and region["polarity"] == "negative" and region["peak_index"] == 8
    assert region["phase_deg"] == pytest.approx(phases[8])
    assert region["start_s"] == pytest.approx(0.005)
    assert probability_to_regions(probability, 0.95).shape == (0, 2)


def test_extent_level_ends_regions_and_the_threshold_decides_them():
    """Hysteresis: two pulses whose probability dips to 0.35 between them and decays slowly at
    the ends, and a bump that never reaches the decision threshold."""
    probability = np.zeros(400)
    probability[50:60] = 0.95
    probability[60:80] = np.linspace(0.9, 0.25, 20)   # first pulse's tail
    probability[80:90] = 0.1                          # the gap between the two events
    probability[90:120] = 0.95
    probability[120:140] = np.linspace(0.6, 0.25, 20)
    probability[300:320] = 0.5                        # a bump under the decision threshold
    one_level = probability_to_regions(probability, 0.8, min_gap=8)
    assert one_level.tolist() == [[50, 63], [90, 120]]  # cut short at the tails
    both = probability_to_regions(probability, 0.8, min_gap=8, extent_threshold=0.2)
    assert both.tolist() == [[50, 80], [90, 140]]  # to the tails' ends; the bump is not reported
    low_only = probability_to_regions(probability, 0.2, min_gap=8)
    assert low_only.tolist() == [[50, 80], [90, 140], [300, 320]]
    # an extent level at or above the threshold is the single-level rule
    assert probability_to_regions(probability, 0.8, 8, 2, 0.9).tolist() == one_level.tolist()
    # a region that reaches the threshold only at its very last sample counts
    edge = np.zeros(50)
    edge[40:50] = 0.3
    edge[49] = 0.9
    assert probability_to_regions(edge, 0.8, extent_threshold=0.2).tolist() == [[40, 50]]
    # a dropped short run above the threshold does not lend its peak to its neighbour
    short = np.zeros(50)
    short[10:20] = 0.3
    short[30] = 0.99
    assert probability_to_regions(short, 0.8, min_gap=0, min_length=2, extent_threshold=0.2).shape == (0, 2)


def test_phase_from_visible_carrier():
    raw = carrier(7920, period=3333.0, phase_deg=40.0)
    filtered = preprocess.remove_carrier(raw)
    fit = phase.fit_carrier(raw, filtered, noise_scale=1.0)
    assert fit.detected
    assert fit.samples_per_cycle == pytest.approx(3333.0, rel=1e-3)
    assert fit.phase_offset_deg == pytest.approx(40.0, abs=1.0)
    phases = fit.phase_deg(7920)
    positive_zero_crossing = int(round((360 - 40.0) / 360 * 3333))
    assert min(phases[positive_zero_crossing], 360 - phases[positive_zero_crossing]) < 1.0


def test_phase_from_caller_period_without_carrier():
    noise = np.random.default_rng(3).normal(size=2000)
    filtered = preprocess.remove_carrier(noise)
    fit = phase.fit_carrier(noise, filtered, preprocess.noise_scale(filtered, 1.0), samples_per_cycle=500)
    assert not fit.detected
    assert fit.phase_deg(2000)[250] == pytest.approx(180.0)
    assert phase.fit_carrier(noise, filtered, 1.0).phase_deg(2000) is None


def test_ringing_fragments_after_a_large_region_are_dropped():
    from pdseg.regions import drop_ringing_fragments
    filtered = np.zeros(6000)
    regions = np.array([[0, 10], [20, 30], [40, 50], [60, 70], [5000, 5010]])
    for (start, _), peak in zip(regions, (-10.0, 2.0, 5.0, 1.0, 1.0)):
        filtered[start + 3] = peak
    kept = drop_ringing_fragments(regions, filtered, ratio=0.3, reach=100)
    # 2 < 0.3 * 10: a fragment; 5 is a pulse of its own and becomes the reference, so 1 < 1.5
    # goes too; the last is beyond the reach of any kept region.
    assert kept.tolist() == [[0, 10], [40, 50], [5000, 5010]]
    assert drop_ringing_fragments(regions, filtered, ratio=0.0, reach=100).tolist() == regions.tolist()
    assert drop_ringing_fragments(regions, filtered * 1e6, ratio=0.3, reach=100).tolist() == kept.tolist()


def test_regions_are_cut_where_a_new_event_starts():
    from pdseg.regions import split_at_onsets
    probability = np.zeros(300)
    probability[20:60] = 0.9   # first event
    probability[60:70] = 0.3   # its tail, under the threshold: merged by the gap rule
    probability[70:120] = 0.9  # second event
    probability[200:240] = 0.9
    onset = np.zeros(300)
    onset[19:23] = [0.5, 0.8, 0.9, 0.6]  # the first region's own start: not a cut
    onset[69:73] = [0.4, 0.9, 0.7, 0.4]
    onset[235:238] = 0.9  # within MIN_PIECE of the end: not a cut
    merged = probability_to_regions(probability, 0.5, min_gap=32)
    assert merged.tolist() == [[20, 120], [200, 240]]
    cut = split_at_onsets(merged, probability, onset, 0.5, 0.6)
    assert cut.tolist() == [[20, 60], [70, 120], [200, 240]]
    assert split_at_onsets(merged, probability, onset, 0.5, 0.95).tolist() == merged.tolist()
    assert split_at_onsets(merged, probability, onset, 0.5, 0.0).tolist() == merged.tolist()
