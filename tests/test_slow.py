"""The slower view (pdseg.slow): which captures get one, how its regions map back and join the
capture's own, and that the served model finds smooth wide pulses with it (no server needed)."""
import numpy as np
import pytest

from pdseg import preprocess, slow


def test_view_regions_map_back_and_only_add_where_the_capture_has_none():
    view = np.array([[2, 6], [40, 50], [100, 120], [240, 250]])
    mapped = slow.to_full_rate(view, view_length=256, length=1000)
    # the first and the last lie within END_SAMPLES of the view's ends; the others are times 4
    assert mapped.tolist() == [[160, 200], [400, 480]]
    own = np.array([[150, 170], [600, 610]])
    joined, added = slow.added_regions(own, mapped, min_gap=32)
    assert joined.tolist() == [[150, 170], [400, 480], [600, 610]]  # [160, 200) overlaps: not added
    assert added.tolist() == [[400, 480]]
    assert slow.added_regions(own, np.array([[200, 230]]), min_gap=32)[0].tolist() == own.tolist()  # within the gap
    assert slow.added_regions(np.zeros((0, 2)), mapped, 32)[0].tolist() == mapped.tolist()
    assert slow.added_regions(own, np.zeros((0, 2)), 32)[0].tolist() == own.tolist()
    # an added region is described from the view, each view sample held for 4; the rest is left
    probability, described = slow.as_full_rate(added, np.zeros(1000), np.zeros(1000),
                                                np.full(250, 0.99), np.arange(250.0))
    assert probability[400:480].min() == 0.99 and probability[:400].max() == 0.0 and probability[480:].max() == 0.0
    assert described[400:404].tolist() == [100.0] * 4 and described[480:].max() == 0.0


def test_which_captures_get_a_slower_view():
    rng = np.random.default_rng(5)
    white = rng.normal(size=20_000)
    assert preprocess.condition(white).slow is not None
    assert preprocess.condition(white, slow_view=False).slow is None
    assert preprocess.condition(white[:1000]).slow is None  # too short
    n = np.arange(20_000)
    with_carrier = white + 1e5 * np.sin(2 * np.pi * n / 3333.0)
    assert preprocess.condition(with_carrier).slow is None  # a carrier was fitted
    flank = white[:1024] + 1e5 * np.sin(2 * np.pi * np.arange(1024) / 3333.0)
    conditioned = preprocess.condition(flank)
    assert not conditioned.carrier.detected and conditioned.slow is None  # a carrier too short to fit
    correlated = np.convolve(rng.normal(size=20_000), np.ones(6) / 6, mode="same")
    assert preprocess.condition(correlated).slow is None  # correlated noise
    from scipy import signal as sps

    short_correlated = sps.lfilter([1.0], [1.0, -0.9], rng.normal(size=2000))
    assert preprocess.condition(short_correlated).slow is None  # under the whitened view's 2,176 samples too
    train = white.copy()
    for at in range(20, 19_900, 250):
        train[at: at + 8] += 20 * np.exp(-np.arange(8) / 2.0)
    conditioned = preprocess.condition(train)
    assert conditioned.regular_train is not None and conditioned.slow is None
    # within a work limit: charged as a signal of a quarter of the samples, left out when it does not fit
    assert preprocess.condition(white, view_room=5_000, view_cost=lambda samples: samples + 4096).slow_skipped
    kept = preprocess.condition(white, view_room=10_000, view_cost=lambda samples: samples + 4096)
    assert kept.slow is not None and not kept.slow_skipped


@pytest.fixture(scope="module")
def shipped():
    from evaluate import served_segmenter
    from serve import ROOT

    segmenter, _ = served_segmenter(ROOT / "model_store" / "weights", threads=2)
    return segmenter


@pytest.mark.parametrize("sigma", [12, 16, 24])
def test_smooth_wide_pulses_are_found_and_noise_stays_quiet(shipped, sigma):
    """A stranger's probe found 19 of 50 sigma-12 bumps at 26 dB, 1 of 50 at sigma 16 and none
    at 24; white noise with an offset (whose zero-padded edges the first version reported)
    gets no region."""
    rng = np.random.default_rng(sigma)
    signal, onsets, signs = rng.normal(size=20_000), [], []
    t = np.arange(-4 * sigma, 4 * sigma + 1)
    for number in range(5):
        at = 2000 + 4000 * number + int(rng.integers(-100, 100))
        signs.append(int(rng.choice([-1, 1])))
        signal[at + t] += signs[-1] * 20.0 * np.exp(-0.5 * (t / sigma) ** 2)
        onsets.append(at)
    [result] = shipped.analyse([signal])
    assert all(any(start <= at < end for start, end in result.regions.tolist()) for at in onsets), result.regions
    assert len(result.regions) == 5
    # described from the view: its score over the threshold, its sign, most of its height
    for region, sign in zip(result.to_json(0)["regions"], signs):
        assert region["score"] >= shipped.threshold and region["polarity"] == ("positive" if sign > 0 else "negative")
        assert region["peak"] > 5.0  # of 20: the full rate's filter takes much of what it finds itself
    [quiet] = shipped.analyse([rng.normal(size=20_000) + 50.0])
    assert len(quiet.regions) == 0
    without = preprocess.condition(signal, slow_view=False)
    assert sum(any(start <= at < end for start, end in
                   shipped.regions(shipped.probabilities([without])[0], None, without).tolist()) for at in onsets) < 5


def test_a_view_region_at_the_echo_of_a_loud_transient_is_not_taken():
    """The view's carrier filter echoes a loud transient ECHO_LAG view samples away at a few per
    cent of its height; a region there is dropped, one beside a transient of similar height or at
    another distance is kept."""
    view = np.zeros(1000)
    view[500:504] = [300.0, -280.0, 200.0, -120.0]  # a loud ringing transient
    echo = 500 - slow.ECHO_LAG
    view[echo: echo + 3] = [6.0, -5.0, 4.0]
    view[200:203] = [6.0, -5.0, 4.0]  # the same, far from any transient
    view[700:703] = [60.0, -50.0, 40.0]  # a tenth of the transient's height and more: kept
    regions = np.array([[echo - 1, echo + 4], [199, 204], [499, 506], [699, 704]])
    kept = slow.without_echoes(regions, view)
    assert kept.tolist() == [[199, 204], [499, 506], [699, 704]]
    assert slow.without_echoes(np.zeros((0, 2)), view).shape == (0, 2)


def test_loud_ringing_pulses_without_a_carrier_leave_no_region_in_the_noise_before_them(shipped):
    """A stranger's probe: ringing pulses of 300-1,000 noise units (0.05 cycles per sample) in
    carrier-free captures each got a second region 296 samples before them, in plain noise: the
    slower view's echo."""
    rng = np.random.default_rng(7)
    time = np.arange(126.0)
    ringing = (1 - np.exp(-time / 0.7)) * np.exp(-time / 20.0) * np.sin(2 * np.pi * 0.05 * time)
    ringing /= np.abs(ringing).max()
    signal = rng.normal(size=40_000)
    onsets = list(range(1000, 39_000, 2000))
    for at in onsets:
        signal[at: at + ringing.size] += float(rng.choice([-1, 1])) * rng.uniform(300, 1000) * ringing
    [result] = shipped.analyse([signal])
    assert result.conditioned.slow is not None
    assert all(any(start <= at + 5 < end for start, end in result.regions.tolist()) for at in onsets)
    stray = [(start, end) for start, end in result.regions.tolist()
             if not any(start < at + 320 and end > at for at in onsets)]
    assert stray == []


def test_a_slower_view_left_out_for_the_work_limit_is_said_in_the_answer(shipped):
    from pdseg.pipeline import SignalOptions

    signal = np.random.default_rng(9).normal(size=8192)
    skipped = shipped.condition(signal, view_room=100, view_cost=lambda samples: samples)
    [result] = shipped.finish([skipped], shipped.probabilities([skipped]), [SignalOptions()])
    assert result.to_json(0)["warnings"] == [slow.SKIPPED_WARNING]
    kept = shipped.condition(signal)
    [result] = shipped.finish([kept], shipped.probabilities([kept]), [SignalOptions()])
    assert "warnings" not in result.to_json(0)


def test_a_slower_views_probability_is_kept_per_network(shipped):
    """The view's probability is computed with the signals' and kept; a segmenter with another
    network computes its own instead of reusing it."""
    import torch

    from pdseg.pipeline import Segmenter

    rng = np.random.default_rng(11)
    signal = rng.normal(size=8192)
    t = np.arange(-64, 65)
    signal[4000 + t] += 20.0 * np.exp(-0.5 * (t / 16) ** 2)
    conditioned = shipped.condition(signal)
    probability = shipped.probabilities([conditioned])[0]
    assert conditioned.slow.probability is not None
    assert any(start <= 4000 < end for start, end in shipped.regions(probability, None, conditioned).tolist())
    silent = Segmenter(lambda windows: torch.zeros(windows.shape[0], windows.shape[-1]), threshold=shipped.threshold,
                       plan=shipped.plan, min_gap=shipped.min_gap)
    quiet = silent.regions(np.zeros(signal.size), None, conditioned)
    assert not any(start <= 4000 < end for start, end in quiet.tolist()), quiet


def test_a_slower_view_started_ahead_gives_the_same_answer(shipped):
    """``view_ahead_from``: the view and the network's run over it (on one thread) start beside
    the capture's own conditioning; the regions are the ones without, the probabilities the same
    to float32 rounding. A capture with a carrier, or on an ADC's rails, has the view given up on
    the second thread; short captures, views the work limit leaves out and networks without
    a thread policy are not started."""
    from pdseg.model import TorchThreads
    from pdseg.pipeline import Segmenter

    network = TorchThreads(shipped.network, threads=2, parallel_from_samples=131072)
    settings = dict(threshold=shipped.threshold, plan=shipped.plan, min_gap=shipped.min_gap,
                    extent_threshold=shipped.extent_threshold)
    plain = Segmenter(network, **settings)
    ahead = Segmenter(network, view_ahead_from=8192, **settings)
    rng = np.random.default_rng(21)
    smooth = rng.normal(size=600_000)  # a view of 150,000 samples: two threads, but for the one it gets
    t = np.arange(-64, 65)
    for at in range(20_000, 600_000, 97_000):
        smooth[at + t] += 20.0 * np.exp(-0.5 * (t / 16) ** 2)
    n = np.arange(40_000)
    with_carrier = rng.normal(size=n.size) + 1e5 * np.sin(2 * np.pi * n / 3333.0)
    railed = rng.normal(size=30_000)
    for at in range(1000, 29_000, 3000):  # bursts that drive the ADC onto both rails
        railed[at: at + 40] += 500.0 * np.sin(np.arange(40) / 3.0)
    railed = np.clip(railed, -100.0, 100.0)
    assert preprocess.rail_samples(railed) is not None
    # (started, given up, run through the network)
    cases = [("smooth pulses", smooth, (1, 0, 1)), ("carrier", with_carrier, (1, 1, 0)),
             ("zeros", np.zeros(30_000), (1, 0, 0)), ("rails", railed, (1, 1, 0)), ("short", smooth[:8000], (0, 0, 0))]
    for name, signal, counts in cases:
        [expected] = plain.analyse([signal])
        before = dict(ahead.views_ahead)
        network.calls_by_threads.clear()
        [result] = ahead.analyse([signal])
        ahead.wait_for_views_ahead()
        assert tuple(ahead.views_ahead[key] - before[key] for key in ("started", "given_up", "run")) == counts, name
        assert np.array_equal(result.regions, expected.regions), name
        # the view's windows went through the network in other chunks, on another thread count:
        # the same to float32 rounding, as a signal's windows batched with another request's
        assert np.allclose(result.probability, expected.probability, rtol=0, atol=1e-6), name
        assert (result.conditioned.slow is None) == (expected.conditioned.slow is None), name
        if name == "smooth pulses":
            assert result.conditioned.slow is not None and len(result.regions) == 6
            # the capture's 168 windows: 5 calls of 32 on two threads, the last 8 on one; the
            # view's 42: 32 and 10 on one thread (32 alone would have had two), and not again
            assert ahead.plan.count(smooth.size) == 168 and ahead.plan.count(smooth.size // 4) == 42
            assert network.calls_by_threads == {2: 5, 1: 1 + 2}
    assert plain.analyse([railed])[0].conditioned.slow is None and plain.analyse([with_carrier])[0].conditioned.slow is None
    # within a work limit: not started where the view could not fit, and said so as before
    before = dict(ahead.views_ahead)
    skipped = ahead.condition(smooth[:100_000], view_room=20_000, view_cost=lambda samples: samples + 4096)
    assert skipped.slow_skipped and ahead.views_ahead == before
    # a network without a thread policy (which cannot be asked for one thread): not started
    bare = Segmenter(shipped.network, view_ahead_from=8192, **settings)
    assert bare.condition(smooth[:100_000]).slow is not None and bare.views_ahead["started"] == 0


def test_a_slower_view_given_up_but_due_after_all_is_made_as_without():
    """The quick look's carrier fit is a guess: where it sees a carrier the capture's own
    conditioning does not, the view is made in line, the same one."""
    from unittest import mock

    from pdseg.model import ThreadPolicy
    from pdseg.pipeline import Segmenter

    class Silent(ThreadPolicy):
        def __call__(self, windows, one_thread=False):
            import torch

            return torch.zeros(windows.shape[0], windows.shape[-1])

    segmenter = Segmenter(Silent(), view_ahead_from=8192)
    signal = np.random.default_rng(3).normal(size=40_000)
    with mock.patch.object(preprocess, "slow_view_shows_a_carrier", return_value=True):
        conditioned = segmenter.condition(signal)
    assert segmenter.views_ahead == {"started": 1, "given_up": 1, "run": 0}
    inline = preprocess.condition(signal)
    assert conditioned.slow is not None and conditioned.slow.probability is None
    assert np.array_equal(conditioned.slow.network_input, inline.slow.network_input)
