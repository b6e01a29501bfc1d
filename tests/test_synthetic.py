import numpy as np
import pytest

from pdseg.preprocess import remove_carrier
from pdseg.regions import mask_to_regions
from training import synthetic


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
    capture = synthetic.make_capture(np.random.default_rng(0), 10000, samples_per_cycle=3333.0, carrier=True)
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


def test_pulse_families_span_short_and_long_shapes():
    """Every family, either side of a few samples long: PD at 40 MS/s and more is often only
    a few samples long, so short pulses must be as common in training as long ones."""
    rng = np.random.default_rng(4)
    lengths: dict[str, list[int]] = {family: [] for family in synthetic.PULSE_FAMILIES}
    for _ in range(600):
        waveform, envelope, shape = synthetic._pulse(rng)
        assert np.max(np.abs(waveform)) == pytest.approx(1.0) and envelope.max() == pytest.approx(1.0)
        lengths[shape["family"]].append(synthetic._label_length(envelope))
    for family, values in lengths.items():
        assert len(values) > 80, family
        assert np.mean(np.array(values) <= 12) > 0.25, family  # a fair share of short ones
    assert max(lengths["exponential"]) > 150  # and long ones
    bipolar, _, _ = synthetic._pulse(np.random.default_rng(1), "bipolar")
    assert bipolar.min() < -0.05 < 0.05 < bipolar.max()  # two lobes of opposite sign


def test_carrier_and_quantisation_are_drawn_in_training_and_fixed_in_tiers():
    rng = np.random.default_rng(30)
    without_carrier = quantised = 0
    for _ in range(60):
        capture = synthetic.make_capture(rng, 4096)
        raw_peak = np.abs(capture.signal).max()
        residue = np.abs(remove_carrier(capture.signal)).max()
        without_carrier += raw_peak < 3 * residue  # no AC voltage under the pulses
        values = np.unique(capture.signal)
        steps = np.diff(values)
        quantised += bool(steps.size) and np.allclose(steps / steps.min(), np.round(steps / steps.min()))
    assert 5 <= without_carrier <= 30 and 4 <= quantised <= 25
    for capture in synthetic.evaluation_set(20.0, False, 4, 4096, seed=2):
        assert np.abs(capture.signal).max() > 50 * capture.noise_sigma  # the carrier is there


def test_isolated_pulses_are_positives_at_any_phase():
    """No isolated pulse is a negative: pulses at random phases are labelled PD."""
    rng = np.random.default_rng(3)
    phases = synthetic._source_phases(rng, "isolated", 40)
    degrees = np.array([phase % 360 for phase, _ in phases])
    assert len(phases) > 40 and {polarity for _, polarity in phases} == {-1, 1}
    assert np.histogram(degrees, bins=4, range=(0, 360))[0].min() > 0


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
            assert pulse["family"] in synthetic.PULSE_FAMILIES
            assert 0.2 <= pulse["rise"] <= 5.0 and 0.7 <= pulse["decay"] <= 100.0
            assert pulse["frequency"] is None or 0.02 <= pulse["frequency"] <= 0.45
            assert capture.mask[pulse["onset"]]
        shapes += len(capture.pulses)
    assert shapes > 20



def test_gaussian_pulses_are_labelled_from_their_first_tenth_and_leave_the_base_mix_alone():
    # The fine-tuning stage's pulses with no sharp onset: a label runs from where the bump
    # first reaches 10 % of its peak to where it last does, and the option drawn at 0 (the
    # base recipe) leaves every capture as it was.
    rng = np.random.default_rng(11)
    for _ in range(50):
        waveform, envelope, shape = synthetic._gaussian_pulse(rng)
        assert shape["family"] == "gaussian" and np.array_equal(waveform, envelope)
        above = np.flatnonzero(envelope >= synthetic.LABEL_FRACTION)
        assert shape["lead"] == above[0] > 0 and waveform[: shape["lead"]].max() < synthetic.LABEL_FRACTION
        assert np.all(np.diff(above) == 1)  # one bump
    base = synthetic.make_capture(np.random.default_rng(3), 8192)
    explicit = synthetic.make_capture(np.random.default_rng(3), 8192, gaussian_fraction=0.0)
    np.testing.assert_array_equal(base.signal, explicit.signal)
    capture = synthetic.make_capture(np.random.default_rng(9), 20000, snr_db=30.0, interference=False,
                                     pd_free=False, carrier=False, quantised=False, gaussian_fraction=1.0)
    gaussians = [p for p in capture.pulses if p["family"] == "gaussian"]
    assert len(gaussians) >= 3
    regions = mask_to_regions(capture.mask, min_gap=0, min_length=1)
    starts = set(regions[:, 0].tolist())
    assert all(p["onset"] in starts or capture.mask[p["onset"] - 1] for p in gaussians)
    for start, end in regions.tolist():
        # the clean bump at a label's first sample is at least a tenth of the label's peak
        assert abs(capture.signal[start]) >= 0.05 * np.abs(capture.signal[start:end]).max()
