"""The batched path: every window of every signal through the network at once must give each
signal exactly what it gets alone."""
import numpy as np
import pytest
import torch

from pdseg.model import load_trained
from pdseg.pipeline import Segmenter, SignalOptions
from training import synthetic
from serve import ROOT


@pytest.fixture(scope="module")
def segmenter():
    network, record = load_trained(ROOT / "model_store" / "weights")
    return Segmenter.from_record(network, record)


def mixed_signals(count, seed=5):
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 100, 3583, 3584, 3585, 4096, 9000, 20000]
    signals = []
    for index in range(count):
        length = lengths[index % len(lengths)]
        signals.append(synthetic.make_capture(rng, max(length, 1)).signal[:length])
    return signals


@pytest.mark.parametrize("batch", [1, 2, 7, 16, 32])
def test_batched_equals_one_at_a_time(segmenter, batch):
    signals = mixed_signals(batch)
    together = segmenter.analyse(signals)
    for signal, result in zip(signals, together):
        alone = segmenter.analyse([signal])[0]
        assert np.array_equal(alone.regions, result.regions)
        np.testing.assert_allclose(alone.probability, result.probability, atol=1e-5)
        assert result.probability.shape == (signal.size,)


def test_chunk_size_does_not_change_results(segmenter):
    signals = mixed_signals(9, seed=8)
    reference = segmenter.analyse(signals)
    small_chunks = Segmenter(segmenter.network, segmenter.threshold, segmenter.plan, chunk_windows=1,
                             min_gap=segmenter.min_gap, min_length=segmenter.min_length,
                             extent_threshold=segmenter.extent_threshold)
    for first, second in zip(reference, small_chunks.analyse(signals)):
        assert np.array_equal(first.regions, second.regions)
        np.testing.assert_allclose(first.probability, second.probability, atol=1e-5)


def test_a_signal_ignores_its_batch_mates(segmenter):
    """The predecessor normalised a batch by its largest value: a loud neighbour hid PD."""
    rng = np.random.default_rng(11)
    quiet = synthetic.make_capture(rng, 8192, snr_db=20.0, pd_free=False, interference=False).signal
    loud = quiet * 1e4 + 1e9 * np.sin(np.arange(8192) / 50.0)
    alone = segmenter.analyse([quiet])[0]
    with_loud = segmenter.analyse([loud, quiet, quiet[:500]])[1]
    assert len(alone.regions) > 0
    assert np.array_equal(alone.regions, with_loud.regions)


def test_caller_threshold_and_options_apply_per_signal(segmenter):
    signals = mixed_signals(2, seed=3)[1:] * 2
    strict, loose = segmenter.analyse(signals, [SignalOptions(threshold=0.99), SignalOptions(threshold=0.01)])
    assert strict.threshold == 0.99 and loose.threshold == 0.01
    assert len(loose.regions) >= len(strict.regions)


def test_network_sees_float32_windows(segmenter):
    seen = []

    def spy(windows: torch.Tensor) -> torch.Tensor:
        seen.append((windows.dtype, tuple(windows.shape)))
        return segmenter.network(windows)

    signals = mixed_signals(9) + [np.zeros(40_000)]
    Segmenter(spy, plan=segmenter.plan, chunk_windows=4).analyse(signals)
    channels = segmenter.network.config.in_channels
    assert all(dtype == torch.float32 and shape[1] == channels for dtype, shape in seen)
    widths = {shape[2] for _, shape in seen}
    assert segmenter.plan.window in widths and len(widths) > 1  # tiles and single windows
    assert max(shape[0] * shape[2] for _, shape in seen) <= 4 * segmenter.plan.window


def test_a_request_threshold_keeps_the_extent_level_unless_lower(segmenter):
    """The shipped rules end regions at an extent level under the decision threshold; a
    caller's threshold moves the decision, and the extent only where it would be higher."""
    assert segmenter.extent_threshold is not None and segmenter.extent_threshold < segmenter.threshold
    signals = [capture.signal for capture in synthetic.evaluation_set(10.0, True, 4, 8192, seed=21)]
    added = 0
    for signal in signals:
        default, = segmenter.analyse([signal])
        lower, = segmenter.analyse([signal], [SignalOptions(threshold=segmenter.extent_threshold)])
        lowest, = segmenter.analyse([signal], [SignalOptions(threshold=0.05)])
        assert default.to_json(0)["stats"]["extent_threshold"] == segmenter.extent_threshold
        assert lower.to_json(0)["stats"]["extent_threshold"] == segmenter.extent_threshold
        assert lowest.to_json(0)["stats"]["extent_threshold"] == 0.05
        # the same extent: a lower decision only adds regions, it never moves one
        assert set(map(tuple, default.regions.tolist())) <= set(map(tuple, lower.regions.tolist()))
        added += len(lower.regions) - len(default.regions)
        # every region at the default lies inside one found at the lowest levels
        for start, end in default.regions.tolist():
            assert any(a <= start and end <= b for a, b in lowest.regions.tolist())
    assert added > 0


def test_a_contradicted_period_is_kept_and_warned_about(segmenter):
    from pdseg.pipeline import SignalOptions

    samples = np.arange(12000)
    signal = 5e5 * np.sin(2 * np.pi * samples / 3333.0) + np.random.default_rng(0).normal(size=samples.size)
    wrong, near, exact, none = segmenter.analyse([signal] * 4, [SignalOptions(samples_per_cycle=2000.0),
                                                                SignalOptions(samples_per_cycle=3300.0),
                                                                SignalOptions(samples_per_cycle=3333.0),
                                                                SignalOptions()])
    described = wrong.to_json(0)
    assert described["stats"]["carrier"]["samples_per_cycle"] == 2000.0  # the caller's value kept
    assert len(described["warnings"]) == 1 and "3333" in described["warnings"][0]
    assert "warnings" not in exact.to_json(0) and "warnings" not in none.to_json(0)
    # A nominal period 1 % off (a grid off 50 Hz): the phases follow the carrier's, and say so
    # (a stranger's probe: 17.7 degrees of drift over 10 cycles, and at 4 % phases from sample 0).
    followed = near.to_json(0)
    assert abs(followed["stats"]["carrier"]["samples_per_cycle"] - 3333.0) < 0.5
    assert len(followed["warnings"]) == 1 and "phases follow the carrier" in followed["warnings"][0]
    truth = np.degrees(2 * np.pi * samples / 3333.0) % 360.0
    for answer in (near, exact):
        assert np.max(np.abs((answer.carrier.phase_deg(samples.size) - truth + 180.0) % 360.0 - 180.0)) < 0.5


def test_answer_figures_are_rounded_to_what_they_mean(segmenter):
    signal = np.random.default_rng(1).normal(size=4000)
    signal[2000:2006] += [0.44477999999999973 * 40, 9, 5, 2, 1, 0.5]
    answer = segmenter.analyse([signal])[0].to_json(0)
    numbers = [answer["stats"]["noise_scale"]] + [r[k] for r in answer["regions"] for k in ("peak", "energy")]
    assert numbers and all(len(repr(n).replace("-", "").replace(".", "").lstrip("0").split("e")[0]) <= 6 for n in numbers)


def test_the_answer_names_the_tones_it_took_out(segmenter):
    """A pulse under three radio-like tones (together 6 times the noise) is found once the
    tones are out, and the answer lists them, in Hz where the rate is given."""
    time = np.arange(16384)
    rng = np.random.default_rng(8)
    tones = sum(3.0 * np.sin(2 * np.pi * f * time + p) for f, p in ((0.0625, 0.1), (0.2, 1.0), (0.33, 2.0)))
    signal = 5e5 * np.sin(2 * np.pi * time / 3333.0) + rng.normal(size=time.size) + tones
    signal[8000:8012] += 25.0 * np.exp(-np.arange(12) / 2.0)  # 28 dB over the noise, 10 dB over the tones
    with_tones, plain = segmenter.analyse([signal, signal - tones], [SignalOptions(sampling_rate_hz=1e7), SignalOptions()])
    listed = with_tones.to_json(0)["stats"]["tones_removed"]
    assert [round(t["cycles_per_sample"], 2) for t in listed] == [0.06, 0.2, 0.33]
    assert listed[0]["hz"] == pytest.approx(625_000, rel=0.01)
    assert plain.to_json(0)["stats"]["tones_removed"] == []
    assert any(start <= 8000 < end for start, end in with_tones.regions)
    assert with_tones.conditioned.scale == pytest.approx(plain.conditioned.scale, rel=0.15)


def test_short_windows_with_a_known_period_count_their_cycles_and_rate(segmenter):
    """Found 2026-12-06 by a stranger's probe: each answer's cycles had three decimals, so 200
    windows of 1,000 samples at 100 MS/s and 50 Hz (0.0005 cycles each) summed to 0.2 cycles, not
    0.1, and a repetition rate of half the true one; windows of 600 samples read 0 cycles, as if
    no period had been given."""
    from pdseg import prpd
    from pdseg.pipeline import SignalOptions

    rng = np.random.default_rng(3)
    windows = []
    for _ in range(20):
        window = rng.normal(size=1000)
        window[400:404] += [40.0, -25.0, 12.0, -5.0]
        windows.append(window)
    for length, per_window in ((1000, 0.0005), (600, 0.0003)):
        results = segmenter.analyse([window[:length] for window in windows],
                                    [SignalOptions(samples_per_cycle=2e6)] * len(windows))
        answers = [result.to_json(index) for index, result in enumerate(results)]
        assert all(answer["stats"]["cycles"] == per_window for answer in answers)
        summary = prpd.summarise(answers)
        pulses = sum(len(answer["regions"]) for answer in answers)
        assert pulses >= len(windows)  # every window's pulse found
        assert summary["signals_without_cycles"] == 0
        assert summary["cycles"] == pytest.approx(per_window * len(windows), rel=1e-6)
        assert summary["repetition_rate_per_cycle"] == pytest.approx(pulses / (per_window * len(windows)), rel=1e-4)


def test_phases_fitted_over_under_half_a_cycle_carry_a_warning(segmenter):
    """Found 2026-12-07 by a stranger's probe: over 0.22 of a cycle of a carrier with 3 % third and
    fifth harmonics, a pulse's phase was up to 13 degrees off (one at 2.85 was reported at 349.5),
    with no warning. From half a cycle on, the phases carry none."""
    from pdseg import phase
    from pdseg.pipeline import SignalOptions

    rng = np.random.default_rng(5)
    period = 4000.0
    signals = []
    for cycles in (0.22, 0.4, 0.6, 2.0):
        samples = int(cycles * period)
        angle = 2 * np.pi * np.arange(samples) / period + 1.0
        signal = 1e5 * (np.sin(angle) + 0.03 * np.sin(3 * angle + 2.0) + 0.03 * np.sin(5 * angle + 4.0))
        signal += rng.normal(0.0, 3.0, samples)
        signal[samples // 2: samples // 2 + 10] += 150.0 * np.exp(-np.arange(10) / 1.5)
        signals.append(signal)
    results = segmenter.analyse(signals, [SignalOptions(sampling_rate_hz=200e3, power_frequency_hz=50.0)] * 4)
    answers = [result.to_json(index) for index, result in enumerate(results)]
    for answer, warned in zip(answers, (True, True, False, False)):
        assert all("phase_deg" in region for region in answer["regions"]) and answer["regions"]
        short = [text for text in answer.get("warnings", []) if "of a cycle" in text]
        assert bool(short) == warned, answer.get("warnings")
    assert phase.SHORT_FIT_WARNING.format(cycles=0.22) in answers[0]["warnings"]


def test_phases_are_within_0_and_360_degrees_after_rounding(segmenter):
    """A phase that rounds to 360.00 is 0.00 (a 37th bin for whoever bins by floor(phase / 10)):
    found with spikes one period apart at a period of 1000.001 samples."""
    from pdseg.pipeline import SignalOptions
    from pdseg.regions import wrapped_degrees

    assert wrapped_degrees(359.996) == 0.0 and wrapped_degrees(359.994) == 359.99 and wrapped_degrees(-0.006) == 359.99
    signal = np.random.default_rng(4).normal(size=4000)
    signal[[2000, 3000]] += 60.0
    [result] = segmenter.analyse([signal], [SignalOptions(samples_per_cycle=1000.001)])
    answer = result.to_json(0)
    phases = [region["phase_deg"] for region in answer["regions"]]
    assert len(phases) == 2 and all(0.0 <= phase < 360.0 for phase in phases)
    assert 0.0 <= answer["stats"]["carrier"]["phase_offset_deg"] < 360.0


def test_a_pulse_cut_beside_a_train_is_checked_again_only_within_the_room_left(segmenter):
    """A pulse cut by an end, in a signal that a converter train is taken out of, conditions the
    signal again to tell a notch cut by that end from a pulse: charged as a view. Without room
    for it the cut pulse stands and the answer says so (a stranger's probe: 180 such signals of
    2,189 samples took 8.8 s on one core where the budget is 5 s)."""
    from reliability import _notched_carrier_cut_ends
    from pdseg import preprocess
    from pdseg.decode import WorkLimits
    raw = _notched_carrier_cut_ends(np.random.default_rng(3), 2260)
    charge = WorkLimits().signal_work
    free = segmenter.condition(raw)
    assert free.end_pulses and free.rechecks >= 1 and not free.ends_unchecked
    tight = segmenter.condition(raw, view_room=charge(raw.size) - 1, view_cost=charge)
    assert tight.rechecks == 0 and tight.ends_unchecked
    roomy = segmenter.condition(raw, view_room=free.rechecks * charge(raw.size), view_cost=charge)
    assert roomy.rechecks == free.rechecks and not roomy.ends_unchecked
    assert roomy.extra_work(charge) == roomy.rechecks * charge(raw.size) and tight.extra_work(charge) == 0
    np.testing.assert_array_equal(roomy.network_input, free.network_input)
    answers = [segmenter.finish([item], segmenter.probabilities([item]), [SignalOptions()])[0].to_json(0)
               for item in (tight, roomy)]
    assert preprocess.ENDS_UNCHECKED_WARNING in answers[0]["warnings"]
    assert preprocess.ENDS_UNCHECKED_WARNING not in answers[1].get("warnings", [])
