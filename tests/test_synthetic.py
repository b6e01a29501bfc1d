import numpy as np
import pytest

from pdseg import synthetic
from pdseg.preprocess import remove_carrier
from pdseg.regions import mask_to_regions


def test_seeds_reproduce():
    first = synthetic.make_capture(np.random.default_rng(5), 6000)
    second = synthetic.make_capture(np.random.default_rng(5), 6000)
    np.testing.assert_array_equal(first.signal, second.signal)
    np.testing.assert_array_equal(first.mask, second.mask)
    third = synthetic.make_capture(np.random.default_rng(6), 6000)
    assert not np.array_equal(first.signal, third.signal)
    evaluation = [c.signal for c in synthetic.evaluation_set(14.0, True, 3, 4096, seed=1)]
    again = [c.signal for c in synthetic.evaluation_set(14.0, True, 3, 4096, seed=1)]
    assert all(np.array_equal(a, b) for a, b in zip(evaluation, again))


@pytest.mark.parametrize("interference", [False, True])
def test_pd_free_captures_have_no_labels(interference):
    for capture in synthetic.pd_free_set(interference, 5, 8192, seed=3):
        assert not capture.mask.any() and capture.sources == ()


def test_labels_sit_where_the_pulses_are():
    rng = np.random.default_rng(8)
    for _ in range(10):
        capture = synthetic.make_capture(rng, 16384, snr_db=30.0, pd_free=False, interference=False)
        assert capture.mask.any()
        filtered = remove_carrier(capture.signal)
        noise = capture.noise_sigma
        for start, end in mask_to_regions(capture.mask, min_gap=0, min_length=1):
            if start == 0 or end == capture.signal.size:
                continue  # cut by the capture's edge
            # A 30 dB pulse stands about 30x above the noise inside its label.
            assert np.abs(filtered[start:end]).max() > 8 * noise
        outside = ~np.convolve(capture.mask, np.ones(1201), mode="same").astype(bool)  # bursts pre-ring
        quiet = filtered[outside][200:-200]
        if quiet.size:
            assert np.abs(quiet).max() < 8 * noise


def test_capture_matches_the_real_ones_scale():
    capture = synthetic.make_capture(np.random.default_rng(0), 10000, samples_per_cycle=3333.0)
    assert 1e5 * 0.9 < np.abs(capture.signal).max() < 1.1e6
    spectrum = np.abs(np.fft.rfft(capture.signal))
    assert abs(int(np.argmax(spectrum[1:])) + 1 - 3) <= 1  # ~3 cycles in 10,000 samples


def test_every_pd_source_appears_and_bursts_ring():
    rng = np.random.default_rng(21)
    seen = set()
    for _ in range(60):
        capture = synthetic.make_capture(rng, 8192, pd_free=False)
        seen.update(str(s) for s in capture.sources)
    assert seen == set(synthetic.PD_SOURCES)
    waveform, envelope, _ = synthetic._burst(np.random.default_rng(2))
    assert waveform.size >= 300 and np.argmax(np.abs(waveform)) < 20
    assert waveform.min() < 0 < waveform.max()  # the opposite spike and the ringing


def test_snr_tier_sets_pulse_height():
    for snr in (30.0, 10.0):
        capture = next(synthetic.evaluation_set(snr, False, 1, 16384, seed=4))
        if not capture.mask.any():
            continue
        filtered = remove_carrier(capture.signal)
        peaks = [np.abs(filtered[s:e]).max() for s, e in mask_to_regions(capture.mask)]
        ratio_db = 20 * np.log10(np.median(peaks) / capture.noise_sigma)
        assert snr - 5 < ratio_db < snr + 5


def test_short_pulse_fraction_shortens_training_pulses_only_when_asked():
    default = synthetic.make_capture(np.random.default_rng(4), 8192, snr_db=30.0, pd_free=False)
    explicit = synthetic.make_capture(np.random.default_rng(4), 8192, snr_db=30.0, pd_free=False,
                                      short_pulse_fraction=0.0)
    np.testing.assert_array_equal(default.signal, explicit.signal)  # evaluation sets unchanged

    def mean_event_length(fraction):
        rng = np.random.default_rng(9)
        lengths = []
        for _ in range(20):
            capture = synthetic.make_capture(rng, 8192, snr_db=30.0, pd_free=False,
                                             short_pulse_fraction=fraction)
            if "burst" not in capture.sources:
                lengths += [end - start for start, end in mask_to_regions(capture.mask).tolist()]
        return np.mean(lengths)

    assert mean_event_length(1.0) < 0.5 * mean_event_length(0.0)


def test_leaving_out_converter_notches_changes_only_the_notch_train():
    """The same tier without notches: identical labels, and the difference is 6 or 12
    equal bumps per AC cycle where a capture drew notches."""
    with_notches = list(synthetic.evaluation_set(20.0, True, 6, 16384, seed=11))
    without = list(synthetic.evaluation_set(20.0, True, 6, 16384, seed=11, converter_notches=False))
    seen = 0
    for first, second in zip(with_notches, without):
        assert np.array_equal(first.mask, second.mask)
        difference = first.signal - second.signal
        if not difference.any():
            continue
        seen += 1
        bumps = mask_to_regions(np.abs(difference) > 0.5 * np.abs(difference).max(), 0, 1)
        per_cycle = len(bumps) / (difference.size / first.samples_per_cycle)
        assert min(abs(per_cycle - 6), abs(per_cycle - 12)) < 1.0
    assert seen >= 2


def test_every_labelled_onset_comes_with_the_shape_drawn():
    rng = np.random.default_rng(12)
    shapes = 0
    for _ in range(6):
        capture = synthetic.make_capture(rng, 16384, snr_db=20.0, pd_free=False)
        assert sorted(pulse["onset"] for pulse in capture.pulses) == capture.pulse_onsets
        for pulse in capture.pulses:
            assert pulse["source"] in capture.sources
            assert 0.3 <= pulse["rise"] <= 3.0 and 2.0 <= pulse["decay"] <= 60.0
            assert pulse["frequency"] is None or 0.02 <= pulse["frequency"] <= 0.4
            assert capture.mask[pulse["onset"]]
        shapes += len(capture.pulses)
    assert shapes > 20
