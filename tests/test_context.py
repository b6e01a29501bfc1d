"""pdseg.context: the second, calmed pass for windows that hold a very loud sample."""
import numpy as np
import pytest
from scipy import ndimage

from pdseg import context


@pytest.mark.parametrize("seed", range(6))
def test_near_loud_is_the_loud_samples_widened_by_the_reach(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(1, 3000))
    planes = rng.normal(size=(2, length))
    loud = rng.random(length) < rng.choice([0.0, 0.001, 0.01, 0.2])
    planes[0, loud] = rng.choice([-1.0, 1.0], loud.sum()) * rng.uniform(5.01, 9.0, loud.sum())
    reach = int(rng.integers(0, 300))
    expected = ndimage.binary_dilation(loud, np.ones(2 * reach + 1, dtype=bool)) if loud.any() else loud
    np.testing.assert_array_equal(context.near_loud(planes, reach), expected)


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
