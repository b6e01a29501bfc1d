"""pdseg.limiter: a carrier clipped flat by a limiter gets its plateaus back on the carrier's
course, and nothing else is touched."""
from __future__ import annotations

import numpy as np
import pytest

from pdseg import limiter, preprocess

PERIOD = 3333.3
LENGTH = 40_000


def clipped(amplitude: float, clip: float, seed: int = 0, length: int = LENGTH,
            noise: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """A carrier clipped at ``clip`` of its ``amplitude`` with white noise added after the
    limiter; also the unclipped carrier and the level."""
    rng = np.random.default_rng(seed)
    n = np.arange(length)
    carrier = amplitude * np.sin(2 * np.pi * n / PERIOD + 0.4)
    level = clip * amplitude
    return np.clip(carrier, -level, level) + noise * rng.normal(size=length), carrier, level


def test_the_gain_for_a_corner_is_the_carrier_filters():
    """KINK_GAIN: the carrier filter's largest output for a corner whose slope changes by one
    unit a sample, which decides whether corners are sharp enough to restore."""
    t = np.arange(8192) - 4000.3
    response = preprocess.carrier_filter(np.minimum(t, 0.0))
    assert float(np.max(np.abs(response[2000:6000]))) == pytest.approx(limiter.KINK_GAIN, rel=0.05)


@pytest.mark.parametrize("amplitude, clip", [(3e4, 0.5), (3e5, 0.8), (1e6, 0.5), (1e6, 0.95)])
def test_a_clipped_carriers_corners_leave_nothing_after_the_carrier_filter(amplitude, clip):
    """As recorded, each corner leaves a transient of tens to thousands of noise units after
    the carrier filter; restored, what is left is the noise."""
    signal, _, level = clipped(amplitude, clip, seed=int(amplitude) % 97)
    restoration = limiter.restore(signal)
    assert restoration is not None
    cycles = LENGTH / PERIOD
    assert len(restoration.plateaus) >= 2 * int(cycles) - 1
    assert sorted(restoration.to_dict()["levels"]) == pytest.approx([-level, level], abs=0.5)
    margin = 600  # the filters' start and end

    def largest(values):
        return float(np.max(np.abs(preprocess.carrier_filter(values)[margin:-margin])))
    assert largest(signal) > 20.0
    assert largest(restoration.signal) < 6.0


def test_pulses_on_a_plateau_keep_their_shape():
    """What is added to a plateau is a smooth course: a pulse on it is as recorded."""
    signal, _, _ = clipped(3e5, 0.5, seed=3)
    restoration = limiter.restore(signal)
    added = restoration.signal - signal
    corners = np.array([time for _, times in restoration.plateaus for time in times])
    away = np.min(np.abs(np.arange(LENGTH - 3)[:, None] + 1.5 - corners[None, :]), axis=1) > 4
    assert np.max(np.abs(np.diff(added, 3)[away])) < 0.05  # a smooth course between the corners
    with_pulse = signal.copy()
    at = int(PERIOD / 4 - 0.4 / (2 * np.pi) * PERIOD)  # the middle of the first top plateau
    pulse = 30.0 * (np.exp(-np.arange(24) / 3.0) - np.exp(-np.arange(24) / 1.0))
    with_pulse[at: at + 24] += pulse
    restored = limiter.restore(with_pulse)
    assert restored is not None
    np.testing.assert_allclose((restored.signal - with_pulse)[at: at + 24], added[at: at + 24], atol=1e-6)


def test_the_same_for_the_negated_and_the_scaled_capture():
    """The noise units set every threshold and the top and bottom are alike."""
    signal, _, _ = clipped(3e5, 0.8, seed=5)
    restoration = limiter.restore(signal)
    for factor in (-1.0, 0.5, 2.0, 3.7, -1e-3, 1e4):
        other = limiter.restore(factor * signal)
        assert other is not None and len(other.plateaus) == len(restoration.plateaus)
        np.testing.assert_allclose(other.signal, factor * restoration.signal, rtol=1e-8, atol=1e-6 * abs(factor))


@pytest.mark.parametrize("case", ["noise", "pulses in noise", "carrier", "small carrier", "step",
                                  "one plateau", "short"])
def test_captures_without_a_limiters_plateaus_are_left_alone(case):
    rng = np.random.default_rng(11)
    n = np.arange(LENGTH)
    noise = rng.normal(size=LENGTH)
    if case == "noise":
        signal = noise
    elif case == "pulses in noise":
        signal = noise.copy()
        for at in range(500, LENGTH - 500, 777):  # slow and fast, both polarities
            decay = 100.0 if at % 2 else 3.0
            signal[at: at + 400] += (-1) ** (at // 777) * 40.0 * np.exp(-np.arange(400) / decay)
    elif case == "carrier":
        signal = 3e5 * np.sin(2 * np.pi * n / PERIOD) + noise
    elif case == "small carrier":  # its rounded peaks lie within the band for a hundred samples
        signal = 1e3 * np.sin(2 * np.pi * n / PERIOD) + noise
    elif case == "step":  # a level that switches: no carrier's flank leads to it
        signal = np.where((n // 3000) % 2 == 0, 500.0, -500.0) + noise
    elif case == "one plateau":  # a triggered window over one clipped peak
        carrier = 3e5 * np.sin(2 * np.pi * n[:1500] / PERIOD + 0.4)
        signal = np.clip(carrier, -2.5e5, 2.5e5) + noise[:1500]
    else:
        signal = clipped(3e5, 0.5)[0][:100]
    assert limiter.restore(signal) is None


def test_a_capture_restorable_only_in_part_is_left_alone():
    """Where pulses spoil the flanks of many corners the capture keeps all its corners, which
    repeat once a cycle (pdseg.commutation's step takes such a repeat out), rather than a mix."""
    signal, carrier, level = clipped(3e5, 0.5, seed=7)
    corners = np.flatnonzero(np.diff((np.abs(carrier) >= level).astype(int)) != 0)
    spoilt = signal.copy()
    side = [-1 if abs(carrier[corner + 5]) >= level else 1 for corner in corners]  # where the flank lies
    for corner, towards in list(zip(corners, side))[::6]:  # a pulse on every sixth corner's flank
        at = corner + towards * 12
        spoilt[at - 4: at + 4] += 30.0 * np.hanning(8)
    # such a corner takes the course its kind shares, timed by the flank samples it explains
    assert limiter.restore(signal) is not None
    restored = limiter.restore(spoilt)
    assert restored is not None and restored.corners == limiter.restore(signal).corners
    spoilt = signal.copy()
    for corner, towards in list(zip(corners, side))[::3]:  # most of every third corner's flank
        at = corner + towards * 12
        spoilt[at - 11: at + 11] += 30.0 * np.hanning(22)
    assert limiter.restore(spoilt) is None


def test_the_carrier_fit_and_filter_see_the_restored_course():
    """preprocess.condition restores before the carrier filter and says so; the rails, the
    quantum and the raw signal stay as recorded."""
    signal, _, _ = clipped(3e5, 0.5, seed=9)
    restored = preprocess.condition(signal)
    as_recorded = preprocess.condition(signal, restore_clipped=False)
    assert restored.clipped is not None and as_recorded.clipped is None
    assert restored.clipped["plateaus"] >= 20
    np.testing.assert_array_equal(restored.raw, signal)
    assert np.max(np.abs(restored.filtered[600:-600])) < 8 * restored.scale
    assert np.max(np.abs(as_recorded.filtered[600:-600])) > 50 * as_recorded.scale
    assert restored.carrier.detected
    assert restored.carrier.samples_per_cycle == pytest.approx(PERIOD, rel=1e-3)


def test_a_capture_of_more_plateaus_than_the_bound_is_left_alone():
    """Bounded work: a carrier of a short period clipped over 1.5 million samples (an
    adversary's, or a carrier sampled too slowly for a limiter's plateaus to mean anything)
    holds thousands of plateaus; past MAX_PLATEAUS none is looked at."""
    period = 1200.3
    n = np.arange(1_495_904)
    signal = np.clip(3e4 * np.sin(2 * np.pi * n / period), -1.5e4, 1.5e4) + np.random.default_rng(1).normal(size=n.size)
    assert 2 * n.size / period > limiter.MAX_PLATEAUS
    assert limiter.restore(signal) is None
    assert limiter.restore(signal[: int(limiter.MAX_PLATEAUS / 2 * period) - 400]) is not None


@pytest.mark.parametrize("length", [7_000, 10_000, 40_000])
def test_plateaus_cut_by_the_capture_ends_follow_a_whole_plateau(length):
    """A plateau that runs into the capture's start or end (or stops within a flank of it) has
    one corner: it takes the course of a whole plateau of its kind from there. A flank's own
    quadratic, continued, overshot the carrier by half as much again and pulled the carrier fit
    (a review's probe, 2026-12-06). Every phase is restored, the corners leave nothing, and the
    course added to the plateaus at the ends stays within the carrier's."""
    rng = np.random.default_rng(length)
    n = np.arange(length)
    margin = 600
    for phase in np.linspace(0.0, 2 * np.pi, 24, endpoint=False):
        carrier = 3e5 * np.sin(2 * np.pi * n / PERIOD + phase)
        signal = np.clip(carrier, -1.5e5, 1.5e5) + rng.normal(size=length)
        restoration = limiter.restore(signal)
        assert restoration is not None, phase
        added = restoration.signal - signal
        # what the limiter took, never more than the carrier's excess over the level (and noise)
        assert np.all(np.abs(added) <= np.maximum(np.abs(carrier) - 1.5e5, 0.0) + 2e3), phase
        filtered = preprocess.carrier_filter(restoration.signal)[margin:-margin]
        assert np.max(np.abs(filtered)) < 6.0, phase


def test_the_carrier_fitted_with_and_without_a_given_period_is_the_restored_one():
    """The answer's carrier is fitted to the restored course whether or not the caller gives a
    period: the restored filtered signal beside the recorded raw gave the clipped amplitude."""
    from pdseg import phase

    signal, _, _ = clipped(3e5, 0.5, seed=13)
    conditioned = preprocess.condition(signal)
    assert conditioned.carrier_course() is not conditioned.raw
    own = phase.fit_carrier(conditioned.carrier_course(), conditioned.filtered, conditioned.scale)
    given = phase.fit_carrier(conditioned.carrier_course(), conditioned.filtered, conditioned.scale, PERIOD)
    assert own.amplitude == pytest.approx(3e5, rel=0.01)
    assert given.amplitude == pytest.approx(3e5, rel=0.01)
    assert conditioned.carrier.amplitude == pytest.approx(3e5, rel=0.01)


@pytest.mark.parametrize("overdrive", [1.2, 1.5, 2.0])
def test_an_overdriven_adcs_rails_are_restored_too(overdrive):
    """An ADC's rails are a limiter's plateaus without noise: the noise is read off the samples
    off the rails (half of them or fewer at 1.2 times full scale and more), so the step applies
    where a carrier overdrives a 16-bit ADC over one step of noise, and its corners leave
    nothing after the carrier filter."""
    rng = np.random.default_rng(int(overdrive * 10))
    n = np.arange(LENGTH)
    full_scale = 32767.0
    signal = np.clip(np.round(overdrive * full_scale * np.sin(2 * np.pi * n / PERIOD + 0.7) + rng.normal(size=LENGTH)),
                     -full_scale - 1, full_scale)
    assert np.count_nonzero(signal == full_scale) > 0.1 * LENGTH  # the rails are really held
    restoration = limiter.restore(signal)
    assert restoration is not None
    assert sorted(restoration.to_dict()["levels"]) == [-full_scale - 1, full_scale]
    margin = 600
    assert np.max(np.abs(preprocess.carrier_filter(signal)[margin:-margin])) > 50.0
    assert np.max(np.abs(preprocess.carrier_filter(restoration.signal)[margin:-margin])) < 6.0
