"""pdseg.context: the second, calmed pass for windows that hold a very loud sample."""
import numpy as np
import pytest
from scipy import ndimage

from pdseg import context


def reference_near(signal: np.ndarray, reach: int) -> np.ndarray:
    """The rule written out sample by sample: stretches of standing samples, each within JOIN of
    the last, that hold a loud one, widened by ``reach``."""
    near = np.zeros(signal.size, dtype=bool)
    standing = [index for index in range(signal.size) if abs(signal[index]) > context.STANDING]
    stretches, current = [], []
    for index in standing:
        if current and index - current[-1] > context.JOIN:
            stretches.append(current)
            current = []
        current.append(index)
    if current:
        stretches.append(current)
    for stretch in stretches:
        if any(abs(signal[index]) > context.LOUD_INPUT for index in stretch):
            near[max(0, stretch[0] - reach): stretch[-1] + reach + 1] = True
    return near


@pytest.mark.parametrize("seed", range(8))
def test_near_loud_is_each_loud_transients_stretch_widened_by_the_reach(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(1, 3000))
    planes = rng.normal(size=(2, length))  # a few samples stand over 2.09 (asinh of 4 units)
    loud = rng.random(length) < rng.choice([0.0, 0.001, 0.01, 0.2])
    planes[0, loud] = rng.choice([-1.0, 1.0], loud.sum()) * rng.uniform(5.01, 9.0, loud.sum())
    reach = int(rng.integers(0, 300))
    np.testing.assert_array_equal(context.near_loud(planes, reach), reference_near(planes[0], reach))


def test_a_loud_pulses_ringing_is_near_it_however_long_it_rings():
    """A 1,000-unit oscillation decaying over 400 samples falls under the loud level (74 units)
    after about 1,000 samples and stands 4 units out for about 2,400: all of that, and 256
    samples more, is judged by the network's own pass."""
    t = np.arange(6000.0)
    units = 1000.0 * np.exp(-t / 400.0) * np.cos(2 * np.pi * 0.05 * t)
    signal = np.concatenate((np.zeros(1000), units, np.zeros(3000)))
    planes = np.stack((np.arcsinh(signal), np.zeros(signal.size)))
    near = context.near_loud(planes)
    last_loud = 1000 + np.flatnonzero(np.abs(units) > np.sinh(context.LOUD_INPUT))[-1]
    last_standing = 1000 + np.flatnonzero(np.abs(units) > 4.0)[-1]
    assert last_standing > last_loud + 1000
    assert near[1000 - context.NEAR: last_standing + context.NEAR + 1].all()
    assert not near[: 1000 - context.NEAR].any() and not near[last_standing + context.NEAR + 1:].any()


def test_only_the_signal_plane_decides_what_is_loud():
    planes = np.zeros((2, 100))
    planes[1, 50] = 50.0  # the relative plane is never loud
    assert not context.near_loud(planes).any()
    planes[0, 50] = -context.LOUD_INPUT  # at the level: not over it
    assert not context.near_loud(planes).any()
    planes[0, 50] = -context.LOUD_INPUT - 0.01
    assert context.near_loud(planes).sum() == 100


def test_loud_windows_are_calmed_on_their_signal_plane_only():
    windows = np.zeros((3, 2, 64), dtype=np.float32)
    windows[1, 0, 10] = 9.0
    windows[2, 0, 20] = -7.0
    windows[:, 1, :] = 8.0
    np.testing.assert_array_equal(context.loud_windows(windows), [False, True, True])
    calm = context.calmed(windows[1:])
    assert calm[0, 0, 10] == context.LOUD_INPUT and calm[1, 0, 20] == -context.LOUD_INPUT
    assert np.all(calm[:, 1, :] == 8.0) and calm.dtype == np.float32
    assert windows[1, 0, 10] == 9.0  # the input is left as it was


def test_the_blend_keeps_the_own_probability_near_loud_samples_and_the_calm_one_elsewhere():
    length = 2000
    planes = np.zeros((2, length))
    planes[0, 1000] = 8.0
    own, calm = np.zeros(length), np.ones(length)
    blend = context.blended(own, calm, planes)
    near = np.abs(np.arange(length) - 1000) <= context.NEAR
    assert np.all(blend[near] == 0.0) and np.all(blend[~near] == 1.0)
    # No loud sample of its own (only in a window's margins): its own probability.
    assert context.blended(own, calm, np.zeros((2, length))) is own
