"""The shipped weights against the classical detector, and on the real captures."""
import numpy as np
import pytest
import scipy.signal as sps
import torch

from pdseg import preprocess
from pdseg.model import UNet1D, load_trained
from pdseg.pipeline import Segmenter, SignalOptions
from training import classical, synthetic
from training.scoring import EventCounts, match_events, truth_events
from serve import ROOT
from dense_trains import regular_train


@pytest.fixture(scope="module")
def shipped():
    network, record = load_trained(ROOT / "model_store" / "weights")
    return Segmenter.from_record(network, record)


@pytest.fixture(scope="module")
def small_eval_set():
    captures = []
    for snr in (20.0, 10.0):
        for interference in (False, True):
            captures += list(synthetic.evaluation_set(snr, interference, 4, 8192, seed=777))
    return captures


def f1(captures, regions, merge_gap: int = 16) -> float:
    counts = EventCounts()
    for capture, found in zip(captures, regions):
        counts.add(match_events(truth_events(capture.mask, merge_gap), found))
    return counts.f1


def network_f1(segmenter, captures) -> float:
    return f1(captures, [r.regions for r in segmenter.analyse([c.signal for c in captures])],
              segmenter.min_gap)


@pytest.fixture(scope="module")
def best_classical(small_eval_set) -> float:
    # The classical detector gets its best settings on this very set: an advantage.
    return max(f1(small_eval_set, [classical.detect(c.signal, k, gap) for c in small_eval_set])
               for k in (3, 4, 5, 6, 8, 10, 12) for gap in (8, 32, 128))


def beats_classical(model_f1: float, classical_f1: float) -> bool:
    return model_f1 >= 0.5 and model_f1 >= classical_f1 + 0.2


def test_shipped_weights_beat_the_best_classical_detector(shipped, small_eval_set, best_classical):
    model = network_f1(shipped, small_eval_set)
    assert beats_classical(model, best_classical), (model, best_classical)


def test_untrained_weights_fail_the_same_bar(shipped, small_eval_set, best_classical):
    torch.manual_seed(0)
    untrained = UNet1D(shipped.network.config).eval()
    untrained_segmenter = Segmenter(untrained, shipped.threshold, shipped.plan,
                                    min_gap=shipped.min_gap, min_length=shipped.min_length)
    assert not beats_classical(network_f1(untrained_segmenter, small_eval_set), best_classical)


def test_quiet_pd_free_captures_stay_quiet(shipped):
    """The goal (<= 0.1 false alarms per cycle) on the PD-free captures with interference that
    `make evaluate` reports, and a guard on a harder draw: seed 31's 20 captures, where two
    captures of 1/f noise and tones under 8 cycles hold most regions (0.110 per cycle for the
    shipped weights, 0.094 for the weights before their fine-tuning stage; docs/model-card.md)."""
    from evaluate import EVAL_SEED

    for count, seed, most in ((40, EVAL_SEED, 0.1), (20, 31, 0.15)):
        captures = list(synthetic.pd_free_set(True, count, 16384, seed=seed))
        cycles = sum(c.signal.size / c.samples_per_cycle for c in captures)
        false_alarms = sum(len(r.regions) for r in shipped.analyse([c.signal for c in captures]))
        assert false_alarms / cycles <= most, (seed, false_alarms, cycles)


def test_real_captures_alone_together_and_scaled(shipped, real_captures):
    together = shipped.analyse(list(real_captures))
    for capture, result in zip(real_captures, together):
        assert len(result.regions) > 0
        assert np.array_equal(shipped.analyse([capture])[0].regions, result.regions)
        for factor in (0.5, 2.0):
            scaled = shipped.analyse([capture * factor])[0].regions
            assert scaled.shape == result.regions.shape
            assert np.abs(scaled - result.regions).max() <= 2


def test_real_captures_offset_moves_no_region(shipped, real_captures):
    """A constant offset (an amplifier's bias, a unipolar converter's mid-scale) is no signal:
    1e6 on the 7e5 carrier once raised the noise floor and lost 11 of the 62 regions. Short
    windows (the robust-trend path) cut around a burst keep theirs too."""
    for capture in real_captures:
        regions = shipped.analyse([capture])[0].regions
        for offset in (1e6, -1e7):
            moved = shipped.analyse([capture + offset])[0].regions
            assert moved.shape == regions.shape
            assert np.abs(moved - regions).max() <= 2
        peak = int(np.argmax(np.abs(preprocess.remove_carrier(capture))))
        window = capture[max(peak - 128, 0): max(peak - 128, 0) + 256]
        alone, shifted = shipped.analyse([window, window + 1e6])
        assert len(alone.regions) > 0
        assert np.array_equal(alone.regions, shifted.regions)


def commutation_notches(samples_per_cycle: float, per_cycle: int, cycles: float, width: float,
                        depth: float) -> np.ndarray:
    """Equal converter commutation notches, ``per_cycle`` at regular phases of every cycle."""
    t = np.arange(int(samples_per_cycle * cycles), dtype=np.float64)
    notches = np.zeros(t.size)
    for centre in np.arange(samples_per_cycle / per_cycle / 3, t.size, samples_per_cycle / per_cycle):
        notches -= depth * 0.5 * (np.tanh((t - centre + width / 2) / 1.5) - np.tanh((t - centre - width / 2) / 1.5))
    return notches


@pytest.mark.parametrize("per_cycle", [6, 12])
def test_converter_commutation_is_not_reported(shipped, per_cycle):
    """Equal notches at regular phases, over whole cycles of a carrier with white noise, are
    interference, not PD: they are taken out before the network (pdseg.commutation), so at
    most one region is left over three cycles (a notch cut by the capture's end keeps its
    shape), while a PD pulse of the same height added at a wandering phase is found."""
    rng = np.random.default_rng(per_cycle)
    period, cycles = 3333.0, 3.0
    noise = 50.0
    notches = commutation_notches(period, per_cycle, cycles, width=10.0, depth=20 * noise)
    t = np.arange(notches.size)
    carrier = 5e5 * np.sin(2 * np.pi * t / period)
    signal = carrier + notches + noise * rng.normal(size=t.size)
    result, without = shipped.analyse([signal, signal - notches])
    regions = result.regions
    assert len(regions) <= 1, regions.tolist()
    # the answer says what was taken out, and nothing where there was nothing
    taken = result.to_json(0)["stats"]["commutation_removed"]
    assert taken["samples_per_sixth"] == pytest.approx(period / 6, abs=0.5)
    assert taken["peak"] > 10 * noise
    assert without.to_json(0)["stats"]["commutation_removed"] is None
    onset = int(period * 1.37)
    pulse = np.zeros(t.size)
    pulse[onset: onset + 40] = 20 * noise * np.exp(-np.arange(40) / 4.0)
    with_pd = shipped.analyse([signal + pulse])[0].regions
    assert any(start <= onset + 2 and end >= onset + 2 for start, end in with_pd.tolist()), with_pd.tolist()


@pytest.mark.parametrize("cycles,depth", [(1.2, 20.0), (3.0, 10.0), (3.0, 100.0)])
def test_notches_toward_zero_are_not_reported(shipped, cycles, depth):
    """A rectifier's notches on a line voltage pull it toward zero, down in one half-cycle and
    up in the next (a stranger's probe: 6-10 regions a cycle); they are taken out, and a PD
    pulse of their height beside them is still found."""
    from test_commutation import toward_zero_train

    rng = np.random.default_rng(int(cycles * depth))
    period, noise, phase = 3333.0, 50.0, 0.3
    length = int(cycles * period)
    t = np.arange(length)
    notches = toward_zero_train(length, period, 12.0, depth * noise, phase)
    signal = 5e5 * np.sin(2 * np.pi * t / period + phase) + notches + noise * rng.normal(size=length)
    [result] = shipped.analyse([signal])
    assert result.to_json(0)["stats"]["commutation_removed"]["toward_zero"] is True
    assert len(result.regions) <= 1, result.regions.tolist()
    onset = int(period * 0.37)
    pulse = np.zeros(length)
    pulse[onset: onset + 40] = -depth * noise * np.exp(-np.arange(40) / 4.0)
    with_pd = shipped.analyse([signal + pulse])[0].regions
    assert any(start <= onset + 2 and end >= onset + 2 for start, end in with_pd.tolist()), with_pd.tolist()


@pytest.mark.parametrize("per_cycle", [6, 12])
@pytest.mark.parametrize("cycles", [1.0, 1.2])
def test_converter_commutation_over_one_cycle_is_not_reported(shipped, per_cycle, cycles):
    """One power cycle is the usual PD acquisition window: its equal notches are taken out as
    over three cycles (a whole cycle holds 5.99 sixths where the period is fitted a sample
    long), and a PD pulse of the same height beside them is still found."""
    rng = np.random.default_rng(per_cycle + int(10 * cycles))
    period, noise = 3333.0, 50.0
    notches = commutation_notches(period, per_cycle, cycles, width=10.0, depth=20 * noise)
    t = np.arange(notches.size)
    signal = 5e5 * np.sin(2 * np.pi * t / period + 0.3) + notches + noise * rng.normal(size=t.size)
    [result] = shipped.analyse([signal])
    assert result.conditioned.commutation is not None
    assert len(result.regions) <= 1, result.regions.tolist()
    onset = int(period * 0.37)
    pulse = np.zeros(t.size)
    pulse[onset: onset + 40] = 20 * noise * np.exp(-np.arange(40) / 4.0)
    with_pd = shipped.analyse([signal + pulse])[0].regions
    assert any(start <= onset + 2 and end >= onset + 2 for start, end in with_pd.tolist()), with_pd.tolist()


@pytest.mark.parametrize("width", [6.0, 10.0, 16.0])
def test_a_twelve_pulse_train_in_half_a_cycle_is_not_reported(shipped, width):
    """A capture of 0.55 of a cycle holds 6 notches of a 12-pulse converter: too few sixths for
    the commutation step, so the regular-train step must take them. It did not: each notch's
    filter side lobes (55-76 samples out) took the four places it paired transients over and
    stood at its window's edges, and the 6 notches, 54 noise units deep, were 7 regions (a
    PD-free capture of the training generator showed it). At most two are left (an end)."""
    period = 3637.0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        notches = commutation_notches(period, 12, 0.55, width=width, depth=54.0)
        samples = np.arange(notches.size)
        signal = 1e5 * np.sin(2 * np.pi * (samples / period + rng.uniform())) + notches + rng.normal(size=samples.size)
        regions = shipped.analyse([signal])[0].regions
        assert len(regions) <= 2, (seed, regions.tolist())


@pytest.mark.parametrize("per_cycle,cycles", [(6, 1.0), (12, 1.0), (6, 3.0)])
def test_converter_commutation_seen_without_a_carrier_is_not_reported(shipped, per_cycle, cycles):
    """An HFCT or UHF sensor filters the carrier out but passes a converter's notch edges: equal
    transients at a regular spacing and no cycle to place them in. They are taken out on their
    own grid (pdseg.commutation.remove_regular_train), the answer names their spacing, and a PD
    pulse of the same height between them is still found."""
    rng = np.random.default_rng(per_cycle + int(cycles))
    period, noise = 3333.0, 50.0
    notches = commutation_notches(period, per_cycle, cycles, width=10.0, depth=20 * noise)
    # The sensor's high-pass turns each notch into a pair of short pulses of opposite sign.
    edges = sps.sosfilt(sps.butter(2, 0.05, "highpass", output="sos"), notches)
    signal = edges + noise * rng.normal(size=edges.size)
    [result] = shipped.analyse([signal])
    assert result.conditioned.carrier.detected is False and result.conditioned.commutation is None
    assert len(result.regions) <= 1, result.regions.tolist()
    taken = result.to_json(0)["stats"]["regular_train_removed"]
    assert taken["samples_apart"] == pytest.approx(period / per_cycle, abs=0.5)
    onset = int(period / per_cycle * 2.61)
    pulse = np.zeros(signal.size)
    pulse[onset: onset + 40] = np.abs(edges).max() * np.exp(-np.arange(40) / 4.0)
    [with_pd] = shipped.analyse([signal + pulse])
    assert any(start <= onset + 2 and end >= onset + 2 for start, end in with_pd.regions.tolist()), with_pd.regions.tolist()
    assert len(with_pd.regions) <= 2


def test_a_switching_supplys_edges_are_not_reported_and_pd_among_them_is(shipped):
    """A switched-mode supply rings at every switching edge, here every 97.3 samples at 30
    noise units: a comb of lines too dense for the tones' step, and no carrier. PD pulses of
    the same height between the edges, varying in size, are still found."""
    rng = np.random.default_rng(97)
    length, spacing, noise = 8192, 97.3, 1.0
    t = np.arange(24, dtype=np.float64)
    signal = noise * rng.normal(size=length)
    for at in np.arange(20.6, length - 30, spacing):
        whole = int(at)
        u = np.maximum(t - (at - whole), 0.0)
        signal[whole: whole + t.size] += 30 * noise * np.exp(-u / 2.5) * np.sin(2 * np.pi * 0.3 * u)
    [alone] = shipped.analyse([signal])
    assert len(alone.regions) <= 2, alone.regions.tolist()
    onsets = [int(20.6 + spacing * k + rng.uniform(35, 55)) for k in range(3, 80, 9)]
    pulses = np.zeros(length)
    for onset in onsets:
        pulses[onset: onset + 30] += rng.uniform(20, 40) * noise * np.exp(-np.arange(30) / 3.0)
    [with_pd] = shipped.analyse([signal + pulses])
    found = [any(start <= onset + 1 < end for start, end in with_pd.regions.tolist()) for onset in onsets]
    assert all(found), (onsets, with_pd.regions.tolist())


@pytest.mark.parametrize("overdrive, noise_steps", [(1.2, 3.0), (1.05, 3.0), (1.5, 1.0), (2.0, 1.0)])
def test_an_overdriven_adcs_rails_do_not_set_the_noise(shipped, overdrive, noise_steps):
    """A 16-bit ADC whose carrier runs past full scale holds the rails, noise-free, for hundreds
    of samples a half cycle. The noise was read there (half a step), and the unclipped part of
    a PD-free capture came out as PD: 12 regions covering 64 % of 20,000 samples at 1.2 times
    full scale and 3 steps of noise (a stranger's probe, 2026-12-06). PD on the flanks between
    the rails is still found. The corners of sharper clipping, 1.5 and 2 times full scale over
    1 step of noise, were still reported at some cycles until the limiter step restored the
    rails as plateaus (pdseg.limiter, 2026-12-06)."""
    rng = np.random.default_rng(int(overdrive * 100 + noise_steps))
    length, period, full_scale = 20_000, 3333.3, 32767.0
    n = np.arange(length)
    carrier = overdrive * full_scale * np.sin(2 * np.pi * n / period + 0.7)

    def digitised(values):
        return np.clip(np.round(values + noise_steps * rng.normal(size=length)), -full_scale - 1, full_scale)

    free = digitised(carrier)
    assert np.count_nonzero(free == full_scale) > 1000  # the rails are really held
    [quiet] = shipped.analyse([free])
    assert len(quiet.regions) <= 1, quiet.regions.tolist()
    assert quiet.conditioned.scale > 0.5 * noise_steps
    # pulses of 30 noise units where the carrier crosses zero, far from either rail
    onsets = [int(k * period - 0.7 / (2 * np.pi) * period) + 40 for k in range(1, 6)]
    pulses = np.zeros(length)
    for onset in onsets:
        pulses[onset: onset + 20] += 30 * noise_steps * np.exp(-np.arange(20) / 3.0)
    [with_pd] = shipped.analyse([digitised(carrier + pulses)])
    found = [any(start <= onset + 1 < end for start, end in with_pd.regions.tolist()) for onset in onsets]
    assert all(found) and len(with_pd.regions) <= len(onsets) + 1, (onsets, with_pd.regions.tolist())


@pytest.mark.parametrize("threshold", [None, 0.6])
def test_no_region_at_a_signals_ends_comes_from_the_filter_edge(shipped, threshold):
    """Issue #16: regions at the first or last samples of the bundled captures came from the
    high-pass's edge transient (seen at threshold 0.6); with the polynomial baseline a region
    there is a true event. (At 0.1 a steep flank's residue of ~5 noise units at the very first
    samples can still be reported: docs/model-card.md, Known failure modes.)"""
    import json

    from pdseg.pipeline import SignalOptions

    captures = np.load(ROOT / "data" / "sample_captures.npy")
    truth = [np.array(entry["true_events"]).reshape(-1, 2)
             for entry in json.loads((ROOT / "data" / "sample_captures.json").read_text())]
    results = shipped.analyse(list(captures), [SignalOptions(threshold=threshold)] * len(captures))
    at_ends = 0
    for result, events, capture in zip(results, truth, captures):
        for start, end in result.regions.tolist():
            if start < 8 or end > capture.size - 8:
                at_ends += 1
                assert any(a < end and start < b for a, b in events.tolist()), (start, end)
    # a carrier whose steep flanks sit at the ends, no PD: nothing at either end
    t = np.arange(8192)
    for seed, phase in enumerate((0.0, 1.0, 2.5, 4.0)):
        flank = 7e5 * np.sin(2 * np.pi * t / 3333.0 + phase) + np.random.default_rng(seed).normal(size=t.size)
        regions = shipped.analyse([flank], [SignalOptions(threshold=threshold)])[0].regions
        assert not any(start < 64 or end > t.size - 64 for start, end in regions.tolist()), regions.tolist()


@pytest.mark.parametrize("length", [64, 256, 4096, 20_000])
@pytest.mark.parametrize("level", [0.0, 3.0])
@pytest.mark.parametrize("where", ["middle", "first", "last"])
def test_a_lone_spike_on_a_dead_flat_line_is_reported(shipped, length, level, where):
    """A stranger's first try: zeros (or a constant) with one sample raised. Nothing else
    moves, so the spike stands out of any floor; it was missed while its height was taken
    for the capture's ADC step. On the first sample of a long capture it came out as a region
    of 0-102 (the carrier filter's swing beside it), now as one of a few samples."""
    at = {"middle": length // 2, "first": 0, "last": length - 1}[where]
    signal = np.full(length, level)
    signal[at] += 5.0
    regions = shipped.analyse([signal])[0].regions.tolist()
    assert len(regions) == 1 and regions[0][0] <= at < regions[0][1], regions
    assert regions[0][1] - regions[0][0] <= 4, regions


def regions_in_pd_free_windows(segmenter, rng, length: int, noise) -> int:
    """The regions ``segmenter`` gives 60 triggered windows of ``length`` samples without PD:
    ``noise(number)`` each, every second one on a stretch of a 1e5 carrier."""
    windows = []
    for number in range(60):
        window = noise(number)
        carrier = 1e5 * np.sin(2 * np.pi * (np.arange(length) / 3333.0 + rng.uniform())) * (number % 2)
        windows.append(window + carrier)
    return sum(len(result.regions) for result in segmenter.analyse(windows))


@pytest.mark.parametrize("length", [64, 256, 900])
def test_short_windows_of_anti_aliased_noise_stay_quiet(shipped, length):
    """Triggered windows of noise without PD, low-passed at 0.3 cycles/sample as a recorder's
    anti-alias filter leaves it, half on a stretch of carrier: at most one region in ten
    windows. Measured against third differences alone, which that filter lowers most, the
    noise's own swings stood out: 13-59 regions in these 60 windows."""
    rng = np.random.default_rng(length)
    sos = sps.butter(4, 0.3, fs=1.0, output="sos")
    regions = regions_in_pd_free_windows(shipped, rng, length,
                                         lambda number: sps.sosfilt(sos, rng.normal(size=length + 400))[400:])
    assert regions <= 6, regions


@pytest.mark.parametrize("length", [256, 600, 1000])
def test_short_windows_of_one_pole_noise_stay_quiet(shipped, length):
    """Triggered windows of 256-1,023 samples of noise without PD that follows each sample to
    0.8-0.95 of the one before (an amplifier's or sensor's AR(1)), half on a stretch of carrier:
    at most one region in ten windows (1 / 2 / 4 here). Scaled by their differences, which such
    noise barely moves, the windows read at 0.57-0.75 of their noise and its swings got 53 / 113
    / 142 regions in these 60 windows."""
    rng = np.random.default_rng(length + 1)
    regions = regions_in_pd_free_windows(shipped, rng, length, lambda number: sps.lfilter(
        [1.0], [1.0, -(0.8, 0.9, 0.95)[number % 3]], rng.normal(size=length + 400))[400:])
    assert regions <= 6, regions


@pytest.mark.parametrize("length", [256, 1000, 2000])
def test_short_windows_of_alternating_noise_stay_quiet(shipped, length):
    """Windows of 256-2,175 samples of noise without PD that alternates from sample to sample
    (an amplifier's AR(1) of -0.6 to -0.8), half on a stretch of carrier: at most one region in
    ten windows (1 / 1 / 3 here). Without the whitened view, which such windows now get, its
    swings of two or three samples passed for short oscillations: 13 / 31 / 100 regions."""
    rng = np.random.default_rng(length + 2)
    regions = regions_in_pd_free_windows(shipped, rng, length, lambda number: sps.lfilter(
        [1.0], [1.0, -(-0.6, -0.7, -0.8)[number % 3]], rng.normal(size=length + 400))[400:])
    assert regions <= 6, regions


def test_a_pulse_one_or_two_samples_long_gets_a_region_as_short(shipped):
    """Pulses decaying within a sample (rise 0.2, decay 1: two or three samples above 10 % of
    their peak) at 30 dB, on a carrier: each is found by a region that covers its peak, and
    nearly all of those are at most 4 samples long (a noise sample at 10 % of the peak beside
    it can keep a few more). The network's own extent ran to 5-9 samples around such a spike,
    which does not match a two-sample event at an IoU of 0.3."""
    rng = np.random.default_rng(41)
    lengths, found, pulses = [], 0, 0
    for capture in range(8):
        signal = rng.normal(size=4096) + 1e5 * np.sin(2 * np.pi * (np.arange(4096) / 3333.0 + rng.uniform()))
        peaks = []
        for onset in np.sort(rng.choice(np.arange(200, 3900, 400), 4, replace=False)) + rng.uniform(size=4):
            t = np.arange(4096) - onset
            shape = np.where(t >= 0, np.exp(-np.clip(t, 0, None) / 1.0) - np.exp(-np.clip(t, 0, None) / 0.2), 0.0)
            signal += rng.choice([-1.0, 1.0]) * 31.6 * shape / shape.max()
            peaks.append(int(np.argmax(shape)))
        regions = shipped.analyse([signal])[0].regions
        for peak in peaks:
            pulses += 1
            covering = [end - start for start, end in regions.tolist() if start <= peak < end]
            if covering:
                found += 1
                lengths.append(covering[0])
    assert found == pulses, (found, pulses)
    assert np.mean(np.array(lengths) <= 4) >= 0.85, str(sorted(lengths))


@pytest.mark.parametrize("length", [8, 9, 10, 11])
def test_a_spike_inside_a_signal_of_a_few_samples_is_found(shipped, length):
    """A stranger's probe: in 8-sample signals a 50-sigma spike was found 24 times in 30, and
    ``[0, 0, 0, 100, 0, 0, 0, 0]`` got no region. Third differences of so few samples are
    mostly the spike's, so the noise read as its size and the short trend bent into it. A spike
    of 50 noise units on any sample but the ends, or of 100 on zeros, is found where it is."""
    rng = np.random.default_rng(length)
    signals, places = [], []
    for place in range(1, length - 1):
        for noise in (0.0, 1.0, 1.0):
            signal = noise * rng.normal(size=length)
            signal[place] += 100.0 if noise == 0.0 else 50.0
            signals.append(signal)
            places.append(place)
    found = [any(start <= place < end for start, end in result.regions.tolist())
             for result, place in zip(shipped.analyse(signals), places)]
    assert all(found), [place for place, hit in zip(places, found) if not hit]


@pytest.mark.parametrize("length", [600, 7920])
def test_a_pulse_on_a_captures_first_or_last_sample_is_reported_with_its_sign(shipped, length):
    """A stranger's probe: a +80-unit spike on sample 0 of a capture was reported as a negative
    region from sample 1 to 41 (the filters' end fits pivot on the end sample). Spikes and fast
    decaying pulses cut by either end, of either sign, on a carrier or none, are reported from
    the end sample with their own polarity and about their height, in a region no longer than
    the pulse."""
    rng = np.random.default_rng(length)
    samples = np.arange(length)
    for with_carrier in (False, True):
        for decay in (None, 1.5):
            for sign in (1.0, -1.0):
                for at_end in (False, True):
                    signal = rng.normal(size=length)
                    if with_carrier:
                        signal += 1e5 * np.sin(2 * np.pi * (samples / 3333.0 + rng.uniform()))
                    shape = np.r_[1.0, np.zeros(11)] if decay is None else np.exp(-np.arange(12) / decay)
                    pulse = sign * 80.0 * (shape[::-1] if at_end else shape)
                    if at_end:
                        signal[-12:] += pulse
                    else:
                        signal[:12] += pulse
                    regions = shipped.analyse([signal])[0].to_json(0)["regions"]
                    case = (with_carrier, decay, sign, at_end, [(r["start"], r["end"], r["polarity"]) for r in regions])
                    assert len(regions) == 1, case
                    [region] = regions
                    assert region["polarity"] == ("positive" if sign > 0 else "negative"), case
                    assert (region["end"] == length) if at_end else (region["start"] == 0), case
                    assert region["end"] - region["start"] <= 8, case
                    assert 60.0 <= region["peak"] <= 100.0, case


def test_a_converter_notch_cut_by_an_end_is_left_to_the_trains_end_fit(shipped):
    """A notch of a converter train cut by the capture's last sample looks like a pulse cut by
    it (the training generator's 30 dB test tier with interference, capture 28: a notch edge 14
    noise units deep on the last sample, no PD there). Where the train's end fit leaves that end
    at the noise without the cut, the cut is not taken, and no region is reported there."""
    from evaluate import EVAL_SEED
    from pdseg import tones

    capture = list(synthetic.evaluation_set(30.0, True, 29, 16384, EVAL_SEED))[28]
    signal = capture.signal
    assert not capture.mask[-64:].any()
    found = tones.stationary_tones(preprocess.remove_carrier(signal))
    assert preprocess.end_pulses(signal, preprocess.quantisation_step(signal), found).end >= 1
    conditioned = preprocess.condition(signal)
    assert conditioned.commutation is not None and not conditioned.end_pulses
    regions = shipped.regions(shipped.probabilities([conditioned])[0], None, conditioned).tolist()
    assert not [region for region in regions if region[1] > signal.size - 64], regions


def test_a_pulse_early_in_a_short_window_is_found(shipped):
    """Triggered windows of 256 samples of white noise, each with one short pulse (rise 1,
    decay 3 samples, either polarity) at 20 dB, its onset anywhere from sample 8 to 120: the
    answer must not depend on how much noise comes before the pulse. Shown to the network amid
    zeros, pulses with under ~130 samples of noise before them were found in about a third of
    these windows; inside a longer capture, in all of them."""
    from training import atlas

    shape = next(shape for shape in atlas.shape_grid()
                 if shape.family == "exponential" and shape.param("rise") == 1.0 and shape.param("decay") == 3.0)
    windows, truths = [], []
    for onset in range(8, 121, 8):
        for draw in range(4):
            rng = np.random.default_rng([onset, draw])
            window = rng.normal(size=256)
            start = onset + rng.uniform()
            first, samples = atlas.render_pulse(shape, start, window.size)
            window[first: first + samples.size] += (-1) ** draw * 10.0 * samples
            windows.append(window)
            truths.append(atlas.truth_interval(shape, start, window.size)[:2])
    counts = EventCounts()
    for result, truth in zip(shipped.analyse(windows), truths):
        counts.add(match_events(np.array([truth]), result.regions))
    assert counts.true_positive >= 0.9 * len(windows), f"{counts.true_positive} of {len(windows)}"


def test_weak_pulses_in_64_sample_windows_are_measured_against_the_long_captures_noise_level(shipped):
    """Triggered windows of 64 samples of white noise, no carrier, one pulse each at 14 dB (5
    noise units; rise 1 / decay 3, a sigma-2 Gaussian, a 0.1-cycle oscillation decaying over 5
    samples; 120 windows of each, either polarity). With the noise of a window this short
    measured by the MAD of its samples, 5-8 % over the level the network learned noise at and
    moved further by the pulse, 180 of the 360 were found; measured like a long capture's, on
    small blocks put on that level, 211 (docs/model-card.md, Conditioning)."""
    from training import atlas

    shapes = {shape.name: shape for shape in atlas.shape_grid()}
    found = 0
    for name in ("exponential rise=1 decay=3", "gaussian width=2", "oscillation f=0.1 decay=5"):
        rng = np.random.default_rng(64)
        captures = [atlas.make_capture(rng, 64, [shapes[name]], [1 if k % 2 else -1], 14.0,
                                       carrier=False, tones=False) for k in range(120)]
        predicted = atlas.segmenter_detector(shipped)([c.signal for c in captures])
        found += sum(int(atlas.score_capture(c, p, shipped.min_gap).hit[0]) for c, p in zip(captures, predicted))
    assert found >= 200, f"{found} of 360"


def test_ringing_pulses_filling_64_sample_windows_are_found(shipped):
    """Triggered windows of 64 samples of white noise, no carrier, each holding a damped
    oscillation at 20 dB (0.1, 0.2 and 0.45 cycles per sample, decaying over 60 samples, so
    past the window's end; 40 windows of each, either polarity). With the noise measured by
    estimates that count the ringing, 19 of the 120 were found; measured as what the strongest
    components of the window's trajectory matrix leave, 101 (docs/model-card.md, Conditioning)."""
    from training import atlas

    shapes = {shape.name: shape for shape in atlas.shape_grid()}
    found = 0
    for frequency in ("0.1", "0.2", "0.45"):
        rng = np.random.default_rng(64)
        captures = [atlas.make_capture(rng, 64, [shapes[f"oscillation f={frequency} decay=60"]], [1 if k % 2 else -1],
                                       20.0, carrier=False, tones=False) for k in range(40)]
        predicted = atlas.segmenter_detector(shipped)([c.signal for c in captures])
        found += sum(int(atlas.score_capture(c, p, shipped.min_gap).hit[0]) for c, p in zip(captures, predicted))
    assert found >= 90, f"{found} of 120"


def test_strong_pulses_of_a_dense_burst_are_found_despite_the_carrier_filters_pits(shipped):
    """The independent generator's RC-sensor capture whose 30 dB pulses (25-38 noise units,
    60-1,200 samples apart, mostly of one polarity per half cycle) the network gave 0.01-0.44
    while they sat in the dips the carrier filter dug around them: 17 of 38 found before
    ``preprocess.restore_pulse_area``, 37 with it (docs/model-card.md, Known failure modes)."""
    from evaluate import capture_mask
    from training import independent

    capture = independent.tier(30.0, False, "test", 30)[29]
    assert capture.sensor == "rc" and capture.samples_per_cycle is not None
    truth = truth_events(capture_mask(capture), shipped.min_gap)
    found = match_events(truth, np.asarray(shipped.analyse([capture.signal])[0].regions).reshape(-1, 2))
    assert len(truth) == 38
    assert found.true_positive >= 34 and found.false_positive <= 1



def test_smooth_pulses_in_correlated_noise_are_found_with_and_without_the_whitened_view(shipped):
    """The independent generator's HFCT capture behind AR(1) noise of 0.87, whose 30 dB pulses
    (35-48 noise units) the weights before the fine-tuning stage gave 0.2-0.5: 12 of 40 found
    from the signal as recorded, 40 with its whitened view (``pdseg.whiten``). The fine-tuned
    weights, which take smooth pulses for PD, find them either way (docs/model-card.md)."""
    import dataclasses

    from evaluate import capture_mask
    from training import independent

    capture = independent.tier(30.0, False, "test", 40)[7]
    assert capture.sensor == "hfct" and capture.noise == "ar1"
    truth = truth_events(capture_mask(capture), shipped.min_gap)
    conditioned = shipped.condition(capture.signal)
    assert conditioned.whitened is not None
    for item in (conditioned, dataclasses.replace(conditioned, whitened=None)):
        probability = shipped.probabilities([item])[0]
        regions = shipped.regions(probability, conditioned=item)
        found = match_events(truth, regions)
        assert found.true_positive >= 36 and found.false_positive <= 1, found


def test_the_whitened_view_takes_regions_out_of_correlated_noise_without_pd(shipped):
    """The independent generator's PD-free captures (test split, with tones and without): in
    its AR(1) and band-limited noise the view adds no region, and the regions the signal as
    recorded gave bumps of the noise go where the view does not back them (40 without the
    view, 15 with it, on 2026-12-04)."""
    import dataclasses

    from training import independent

    with_view = without_view = viewed = 0
    for interference in (False, True):
        for capture in independent.pd_free_tier(interference, "test", 40):
            conditioned = shipped.condition(capture.signal)
            if conditioned.whitened is None:
                continue
            viewed += 1
            for item in (conditioned, dataclasses.replace(conditioned, whitened=None)):
                count = len(shipped.regions(shipped.probabilities([item])[0], conditioned=item))
                if item is conditioned:
                    with_view += count
                else:
                    without_view += count
    assert viewed >= 20 and without_view >= 20
    assert with_view <= 0.5 * without_view, (with_view, without_view)


def test_a_view_left_out_for_the_work_limit_is_said_in_the_answer(shipped):
    from pdseg import whiten
    from pdseg.pipeline import SignalOptions
    from training import independent

    capture = independent.tier(30.0, False, "test", 40)[7]
    skipped = shipped.condition(capture.signal, view_room=capture.signal.size - 1)
    [result] = shipped.finish([skipped], shipped.probabilities([skipped]), [SignalOptions()])
    answer = result.to_json(0)
    assert answer["stats"]["noise_whitening"] is None
    assert answer["warnings"] == [whiten.SKIPPED_WARNING]


def spikes_of_both_polarities(seed: int, snr_db: float = 26.0, count: int = 40, spacing: int = 400):
    rng = np.random.default_rng(seed)
    signal = rng.normal(0.0, 1.0, spacing * (count + 1))
    positions = np.arange(spacing // 2, spacing * count, spacing)
    signs = rng.choice([-1.0, 1.0], positions.size)
    signal[positions] += signs * 10 ** (snr_db / 20)
    return signal, positions, signs


def spikes_in_regions(regions: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return np.array([np.any((regions[:, 0] <= p) & (regions[:, 1] > p)) for p in positions])


@pytest.mark.parametrize("snr_db", [20.0, 26.0])
@pytest.mark.parametrize("count", [12, 40])  # one window of 5,632 samples; tiles of 4,096
def test_one_sample_spikes_are_found_whichever_their_polarity(shipped, count, snr_db):
    """A one-sample spike 10 or 20 noise units out is PD of either polarity; the network alone
    leaves many of them under its threshold, the negative ones most (docs/model-card.md,
    "One-sample spikes"), and they are reported as isolated transients (pdseg.transients)."""
    signal, positions, signs = spikes_of_both_polarities(seed=11, count=count, snr_db=snr_db)
    assert shipped.plan.count(signal.size) == (1 if count == 12 else 5)
    [result] = shipped.analyse([signal])
    found = spikes_in_regions(result.regions, positions)
    assert found[signs > 0].mean() >= 0.95 and found[signs < 0].mean() >= 0.95, (
        found[signs > 0].mean(), found[signs < 0].mean())
    # Each region holds one spike and little more: a spike's region is cut to it and a sample
    # either side (regions.spike_extent); the isolated transients' are two or three samples long.
    assert len(result.regions) == found.sum()
    assert np.all(np.diff(result.regions, axis=1) <= 4)
    # The same signal negated: the same spikes, each with the other polarity, found as well.
    [mirrored] = shipped.analyse([-signal])
    assert spikes_in_regions(mirrored.regions, positions).mean() >= 0.95
    assert len(mirrored.regions) == len(result.regions)
    if snr_db == 20.0:
        # The network alone: what the step adds.
        alone = np.array([result.probability[p - 1: p + 2].max() >= shipped.threshold for p in positions])
        assert alone.mean() < 0.8 and alone[signs < 0].mean() < found[signs < 0].mean()


@pytest.mark.parametrize("carrier_amplitude", [0.0, 2e4])
def test_very_loud_ringing_pulses_get_no_phantom_regions_beside_them(shipped, carrier_amplitude):
    """Damped oscillations of 1,000 noise units (an RLC measuring impedance), one every 1,000
    samples: one region each and none elsewhere (a stranger's probe found 30-35 phantom regions
    75 samples before and after 29 such pulses)."""
    rng = np.random.default_rng(37)
    length = 30_000
    samples = rng.normal(size=length) + carrier_amplitude * np.sin(2 * np.pi * np.arange(length) / 2000.0)
    t = np.arange(64, dtype=float)
    onsets = np.arange(500, length - 500, 1000)
    for onset in onsets:
        frequency = rng.uniform(0.1, 0.25)
        samples[onset: onset + 64] += rng.choice([-1.0, 1.0]) * 1000.0 * np.exp(-t * 2 * np.pi * frequency / 1.5) \
            * np.cos(2 * np.pi * frequency * t)
    regions = shipped.analyse([samples])[0].regions
    away = [(start, end) for start, end in regions.tolist() if np.min(np.abs(onsets - start)) > 20]
    assert away == []
    assert len(regions) == len(onsets)


@pytest.mark.parametrize("loud", ["pulse", "step"])
@pytest.mark.parametrize("length", [14_000, 28_000])  # one window of 14,336 samples; tiles of 4,096
def test_a_very_loud_transient_leaves_pulses_far_from_it_found(shipped, loud, length):
    """30 dB pulses 1,000-6,000 samples from a 10,000-noise-unit pulse, or from a 3 % step of a
    3e5 carrier's amplitude (a tap change), are found as without it: a stranger's probe found 7
    of 33 in 14,000-sample captures, whose one window the network's attention sees whole
    (pdseg.context)."""
    rng = np.random.default_rng(58)
    n = np.arange(length)
    period = 3115.0
    carrier = 3e5 * np.sin(2 * np.pi * n / period)
    samples = carrier + rng.normal(size=length)
    middle = 7000
    if loud == "pulse":
        t = np.arange(300) - 0.3
        shape = np.where(t > 0, np.exp(-t / 5.0) - np.exp(-t / 0.5), 0.0)
        samples[middle: middle + 300] += 1e4 * shape / shape.max()
    else:
        samples[middle:] += 0.03 * carrier[middle:]
    onsets = [onset for onset in range(700, length - 300, 650) if 1000 <= abs(onset - middle) <= 6000]
    for onset in onsets:
        decay = rng.uniform(2.0, 20.0)
        t = np.arange(int(decay * 8) + 8) - 0.4
        shape = np.where(t > 0, np.exp(-t / decay) - np.exp(-t / 0.5), 0.0)
        samples[onset: onset + t.size] += rng.choice([-1.0, 1.0]) * 31.6 * shape / shape.max()
    regions = shipped.analyse([samples])[0].regions
    found = [any(start < onset + 10 and end > onset for start, end in regions.tolist()) for onset in onsets]
    assert np.mean(found) >= 0.95, (np.mean(found), len(onsets))


@pytest.mark.parametrize("height", [1e3, 1e4, 1e5])
@pytest.mark.parametrize("decay,frequency", [(300.0, 0.1), (400.0, 0.05), (600.0, 0.02), (300.0, 0.15)])
def test_a_loud_pulses_long_ringing_stays_one_region(shipped, height, decay, frequency):
    """An oscillation of 1,000-100,000 units ringing for thousands of samples is one region, as
    the network's own pass reports it: judged by the calmed pass past 256 samples of its last loud
    sample, its tail got a second region from there, and where its ringing stays over the loud
    level past that region, the windows of near context gave it 3-5 more (two reviews' probes,
    pdseg.context)."""
    rng = np.random.default_rng(int(decay))
    samples = rng.normal(size=14_000)
    t = np.arange(5000.0)
    samples[5000:10_000] += height * np.exp(-t / decay) * np.cos(2 * np.pi * frequency * t)
    regions = shipped.analyse([samples])[0].regions.tolist()
    assert len(regions) == 1 and abs(regions[0][0] - 5000) <= 8, regions


def burst_then_wavelets(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A capture like the real ones (a 7e5 carrier of 3,333 samples a cycle, noise 0.1): a burst
    of ten ringing pulses of 5,000-45,000 units on one flank, then, 2,600 samples on, eight lone
    wavelets of 300-1,000 units with flat signal between them. Returns it and the wavelets' onsets."""
    n = np.arange(7920)
    samples = 7e5 * np.sin(2 * np.pi * n / 3333.0 + rng.uniform(0, 2 * np.pi)) + 0.1 * rng.normal(size=n.size)

    def ringing(onset: float, height: float, frequency: float, decay: float) -> np.ndarray:
        t = np.clip(n - onset, 0.0, None)
        return np.where(n >= onset, height * np.exp(-t / decay) * np.sin(2 * np.pi * frequency * t), 0.0)

    for onset in np.arange(2100, 3300, 120) + rng.uniform(0, 20, 10):
        samples += ringing(onset, rng.uniform(5000, 45000) * rng.choice([-1, 1]), rng.uniform(0.03, 0.08),
                           rng.uniform(8, 20))
    onsets = np.arange(5900, 6900, 140) + rng.uniform(0, 20, 8)
    for onset in onsets:
        samples += ringing(onset, rng.uniform(300, 1000) * rng.choice([-1, 1]), rng.uniform(0.04, 0.1),
                           rng.uniform(6, 15))
    return samples, onsets


def test_lone_wavelets_after_a_far_louder_burst_are_found(shipped):
    """Wavelets hundreds of noise units high, 2,600 samples after a burst a hundred times
    louder in the same window, each get a region: the network's own pass gave them 0.93 or less
    (15 of 96 found over 12 such captures, none of the burst's pulses lost), the windows of near
    context find them (pdseg.context; a stranger's probe of the real captures)."""
    found, total = 0, 0
    for seed in range(4):
        samples, onsets = burst_then_wavelets(np.random.default_rng(seed))
        regions = shipped.analyse([samples])[0].regions.tolist()
        found += sum(any(start < onset + 40 and end > onset for start, end in regions) for onset in onsets)
        total += len(onsets)
    assert found == total, (found, total)


def test_an_overdriven_adcs_corners_stay_unreported_beside_loud_pd(shipped):
    """A 16-bit ADC overdriven by its carrier (1.05-1.5 times full scale) with ten PD pulses of
    3,000 noise units: no region at the corners where it enters and leaves its rails that the
    network's own pass did not give. Beside such loud pulses the windows of near context reported
    the corners (a review's probe: 12 such regions over these three captures, 4 before the near
    look; pdseg.context.off_the_rails)."""
    full_scale, length = 32767.0, 20000
    shape = np.exp(-np.arange(40) / 3.0) - np.exp(-np.arange(40) / 1.0)
    shape /= shape.max()
    at_corners = 0
    for overdrive, noise, seed in ((1.5, 3.0, (11, 0)), (1.05, 1.0, (1, 2)), (1.05, 1.0, (1, 0))):
        rng = np.random.default_rng(seed)
        n = np.arange(length)
        analogue = overdrive * full_scale * np.sin(2 * np.pi * n / 3333.3 + rng.uniform(0, 2 * np.pi))
        analogue += noise * rng.normal(size=length)
        onsets = np.sort(rng.choice(np.arange(100, length - 100, 80), 10, replace=False))
        for onset in onsets:
            analogue[onset: onset + 40] += rng.choice([-1, 1]) * 3000 * noise * shape
        samples = np.clip(np.round(analogue), -full_scale - 1, full_scale)
        rail = (samples >= full_scale) | (samples <= -full_scale - 1)
        edges = np.flatnonzero(np.diff(rail.astype(int)))
        [result] = shipped.analyse([samples])
        own = shipped.regions(shipped.probabilities([result.conditioned])[0]).tolist()
        for start, end in result.regions.tolist():
            if (not any(start - 40 <= onset <= end + 5 for onset in onsets)
                    and np.min(np.abs(edges - (start + end) / 2)) < 30
                    and not any(a < end and b > start for a, b in own)):
                at_corners += 1
    assert at_corners == 0


def test_the_real_captures_lone_wavelets_are_found(shipped, real_captures):
    """The third capture's third burst: seven wavelets of 480-1,500 noise units, flat signal
    either side, got no region (the same samples from sample 3,500 on got one each); and the
    fourth capture's of 1,101 units at 7,048-7,128. Every region of the network's own pass stays."""
    wavelets = {2: [(5922, 6008), (6048, 6128), (6192, 6283), (6319, 6417), (6463, 6571), (6589, 6704),
                    (6739, 6872)], 3: [(7048, 7128)]}
    results = shipped.analyse([real_captures[2], real_captures[3]])
    for result, index in zip(results, (2, 3)):
        regions = result.regions.tolist()
        missed = [(a, b) for a, b in wavelets[index] if not any(start < b and end > a for start, end in regions)]
        assert missed == [], (index, missed)
        own = shipped.regions(shipped.probabilities([result.conditioned])[0]).tolist()  # the network's own pass
        assert all(any(start < b and end > a for start, end in regions) for a, b in own)


def test_the_regions_of_quiet_and_busy_captures_get_no_isolated_transient(shipped, real_captures):
    """Noise alone (16 captures of 16,384 samples of white noise) has no transient 8 noise units
    out; the real captures' loud samples are bursts that the network reports (in its own pass or
    its windows of near context), or ringing beside them: the step adds no region to either."""
    from pdseg import transients
    from pdseg.regions import trim_to_signal

    rng = np.random.default_rng(17)
    for signal in [rng.normal(0.0, 1.0, 16384) for _ in range(16)] + list(real_captures):
        [result] = shipped.analyse([signal])
        item = result.conditioned
        own = shipped.probabilities([item])[0]
        network = shipped.with_near_regions(trim_to_signal(shipped.regions(own), item.filtered, item.scale),
                                            shipped.threshold, item)
        assert transients.isolated_transients(item.filtered, item.scale, network).size == 0
        assert np.array_equal(result.regions, network)


def test_a_weaker_spike_beside_a_loud_one_is_in_a_region(shipped):
    """A one-sample spike of 25 noise units 8-25 samples before or after one of 60-100, in white
    noise (a stranger's probe, /tmp/probe62/repro_near_spike.py): the network's region stopped
    at the loud spike, and the isolated transients left what lay within the merge gap of a
    region to it, so the weaker spike was in no region in 16 of these 40 draws. Alone, it always is."""
    signals, weak_at = [], []
    for before in (False, True):
        for seed in range(20):
            rng = np.random.default_rng(seed)
            strong, weak = rng.uniform(60, 100) * rng.choice([-1, 1]), 25.0 * rng.choice([-1, 1])
            distance, at = int(rng.integers(8, 26)), int(rng.integers(1000, 3000))
            signal = rng.normal(size=4096)
            weak_index = at - distance if before else at + distance
            signal[at] += strong
            signal[weak_index] += weak
            signals.append(signal)
            weak_at.append((weak_index, at))
    missed = []
    for result, (weak_index, at) in zip(shipped.analyse(signals), weak_at):
        covering = [(start, end) for start, end in result.regions.tolist() if start <= weak_index < end]
        if not covering or not covering[0][0] <= at < covering[0][1]:  # one region holds both
            missed.append((weak_index, at, result.regions.tolist()))
    assert missed == []


def test_a_loud_spike_with_a_smaller_one_beside_it_leaves_no_echo(shipped):
    """A spike of 600 or 1,000 noise units and one of a tenth of it 20 samples later, the same
    sign, in white noise (a stranger's probe, /tmp/probe62/repro_pair_echo.py): the smaller
    spike's energy, which filling the loud one's pit leaves, kept that pit unfilled, and the
    carrier filter's echo 75 samples off was reported in 25 of these 40 captures. Both spikes are
    in one region, and nothing else is."""
    signals, places = [], []
    for loud in (600.0, 1000.0):
        for seed in range(20):
            rng = np.random.default_rng(seed)
            signal, at = rng.normal(size=4096), int(rng.integers(1000, 3000))
            sign = rng.choice([-1.0, 1.0])
            signal[at] += sign * loud
            signal[at + 20] += sign * loud / 10
            signals.append(signal)
            places.append(at)
    wrong = [(at, result.regions.tolist()) for result, at in zip(shipped.analyse(signals), places)
             if not (len(result.regions) == 1 and result.regions[0, 0] <= at and result.regions[0, 1] > at + 20)]
    assert wrong == []


@pytest.mark.parametrize("snr_db", [20.0, 26.0])
def test_a_dense_train_of_short_pulses_is_found(shipped, snr_db):
    """A spike or a short ringing pulse every 66 samples (±8), 20-32 dB, on an ADC grid of one
    noise unit (a GIS capture; scripts/dense_trains.py's pulses): no 64-sample block is free of pulses, and measured
    on the quietest blocks the noise read 1.9-3.5 times too high and 27-44 % of the pulses were
    lost (docs/model-card.md, "Dense trains of short pulses")."""
    signal, positions = regular_train(np.random.default_rng(int(snr_db)), 4096, 66, (snr_db, snr_db + 6.0))
    [result] = shipped.analyse([signal])
    assert result.conditioned.scale < 1.2
    assert spikes_in_regions(result.regions, positions).mean() >= 0.95
    assert all(((positions >= start) & (positions < end)).sum() <= 1 for start, end in result.regions)


def test_four_step_spikes_on_a_few_bit_line_are_found(shipped):
    """An ADC grid whose noise stays under half a step (a flat line that flickers by one step
    now and then) is scaled by half a step; a spike of 4 steps reads 7.8 of those units after the
    carrier filter, just under the isolated transients' 8, and 2 of these 40 were found before
    (docs/model-card.md, Inference). 4 steps is over 8 of that noise's sigmas."""
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 0.25, 20_000)
    positions = np.arange(250, 20_000, 500)
    spikes = noise.copy()
    spikes[positions] += 4.0 * rng.choice([-1.0, 1.0], positions.size)
    [result, quiet] = shipped.analyse([np.round(spikes), np.round(noise)])
    assert result.conditioned.quantum == 1.0 and result.conditioned.scale == 0.5
    found = spikes_in_regions(result.regions, positions)
    assert found.mean() >= 0.95  # a spike on a flicker sample can be 3 steps
    assert len(result.regions) == found.sum()
    assert len(quiet.regions) == 0  # the one-step flicker is the noise


def test_a_strong_stationary_tone_draws_no_region(shipped):
    """A radio tone of 10-100 noise sigmas in white noise, with and without a carrier, and no PD:
    no region anywhere. Before each end's tones were fitted through the carrier filter
    (pdseg.tones, STRONG_TONES), the step the filter leaves of a tone drew a region at one or
    both ends of nearly every such capture (docs/model-card.md, Conditioning)."""
    rng = np.random.default_rng(11)
    time = np.arange(7920, dtype=np.float64)
    signals = []
    for frequency in (0.0213, 0.05, 0.1234, 0.25, 0.4321):
        for amplitude, carrier in ((10.0, 0.0), (100.0, 7e5)):
            tone = amplitude * np.sin(2 * np.pi * frequency * time + rng.uniform(0, 6))
            signals.append(rng.normal(size=time.size) + tone
                           + carrier * np.sin(2 * np.pi * time / 3333.0 + rng.uniform(0, 6)))
    regions = [result.regions.tolist() for result in shipped.analyse(signals)]
    assert all(not found for found in regions), regions


@pytest.mark.parametrize("amplitude, clip", [(3e5, 0.5), (1e6, 0.8)])
def test_a_carrier_clipped_by_a_limiter_reports_its_pulses_not_its_corners(shipped, amplitude, clip):
    """A limiter ahead of the digitiser clips the carrier flat, noise and PD are added after it.
    As recorded, every corner of a carrier 3e5 times the noise clipped at half its amplitude was
    a region (4 a cycle), and at 1e6 the carrier filter's tail from the corners hid half of the
    pulses on the plateaus (a stranger's probe, 2026-12-06; python scripts/clipped_carrier.py).
    Restored (pdseg.limiter), the PD-free capture has no region, the pulses on the plateaus and
    the flanks are found, and the answer says what was done."""
    rng = np.random.default_rng(int(amplitude * clip) % 1000)
    length, period = 40_000, 3333.3
    n = np.arange(length)
    carrier = amplitude * np.sin(2 * np.pi * n / period + 1.1)
    level = clip * amplitude
    free = np.clip(carrier, -level, level) + rng.normal(size=length)
    [quiet, given] = shipped.analyse([free, free], [SignalOptions(), SignalOptions(samples_per_cycle=period)])
    assert len(quiet.regions) == 0, quiet.regions.tolist()
    answer = quiet.to_json(0)
    assert answer["stats"]["clipped_carrier_restored"]["plateaus"] >= 22
    assert any("clipped flat" in warning for warning in answer["warnings"])
    # the carrier the answer reports is the unclipped one, with the caller's period or without
    for result in (quiet, given):
        assert result.to_json(0)["stats"]["carrier"]["amplitude"] == pytest.approx(amplitude, rel=0.01)
    # pulses of 30 noise units in the middle of each plateau and halfway up each flank
    plateau = np.abs(carrier) >= level
    middles = [int(at) for at in np.arange(period / 4, length - 200, period / 2) - 1.1 / (2 * np.pi) * period]
    flanks = [int(at) for at in np.arange(0, length - 200, period / 2) - 1.1 / (2 * np.pi) * period + 40 if at > 100]
    onsets = [at for at in middles if plateau[at: at + 24].all()] + [at for at in flanks if not plateau[at: at + 24].any()]
    shape = 30.0 * (np.exp(-np.arange(24) / 3.0) - np.exp(-np.arange(24) / 1.0)) / 0.3849
    signal = free.copy()
    for k, onset in enumerate(onsets):
        signal[onset: onset + 24] += (-1) ** k * shape
    [with_pd] = shipped.analyse([signal])
    found = [any(start <= onset + 1 < end for start, end in with_pd.regions.tolist()) for onset in onsets]
    assert len(onsets) >= 30 and all(found), (sum(found), len(onsets))
    assert len(with_pd.regions) == len(onsets)
