"""pdseg.context: the second, calmed pass for windows that hold a very loud sample, and the near look."""
import dataclasses

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


def test_near_tiles_are_the_near_windows_whose_cores_hold_a_loud_sample_and_their_neighbours():
    length, reach = 5000, 1400
    planes = np.zeros((2, length), dtype=np.float32)
    assert context.near_tiles(planes, reach).size == 0
    planes[0, [10, 600, 700, 4999]] = context.LOUD_INPUT + 0.1
    planes[0, 2000] = -context.LOUD_INPUT - 0.1
    planes[1, 3000] = 50.0  # the relative plane is never loud
    # Loud samples alike: none has a transient ten times louder near it, none adds a region.
    assert context.near_tiles(planes, reach).size == 0
    planes[0, 2400] = np.arcsinh(context.DOMINANCE * np.sinh(context.LOUD_INPUT + 0.1)) + 0.01
    core = context.NEAR_PLAN.core
    # The loud tiles and their neighbours run 0-5 and 8-9; the louder sample lies within reach of
    # the first run only.
    loud = {10 // core, 600 // core, 2000 // core, 2400 // core, 4999 // core}
    with_neighbours = sorted({tile + step for tile in loud for step in (-1, 0, 1)} & set(range(4999 // core + 1)))
    assert with_neighbours == [0, 1, 2, 3, 4, 5, 8, 9] and 8 * core - reach - context.JOIN > 2400
    np.testing.assert_array_equal(context.near_tiles(planes, reach), [0, 1, 2, 3, 4, 5])
    # ... a hair less loud, and it dwarfs none.
    planes[0, 2400] -= 0.03
    assert context.near_tiles(planes, reach).size == 0
    short = planes[:, : context.NEAR_MIN_SIGNAL - 1]
    assert context.near_tiles(short, 10 * length).size == 0  # its one window holds hardly more context


def test_a_run_of_near_tiles_is_looked_at_whole_where_its_edge_comes_near_a_far_louder_transient():
    """A region of the near windows may run over many of them (a burst of wavelets), and is added
    where a transient ten times its peak lies within reach of the region's edge: the whole run of
    windows is looked at, not only those within reach of the louder one (a review's probe: the
    burst's region was cut at a window's edge, 3,498-7,505 -> 3,498-6,143 and 6,201-7,494)."""
    length, reach = 12_000, 4096
    planes = np.zeros((2, length), dtype=np.float32)
    planes[0, 500] = np.arcsinh(2e5)
    planes[0, 3500:7501:30] = np.arcsinh(200.0)
    core = context.NEAR_PLAN.core
    tiles = context.near_tiles(planes, reach)
    burst = np.arange(3500 // core - 1, 7500 // core + 2)
    assert 7500 - 500 > reach + 2 * core  # its last wavelets lie far beyond reach of the loud one
    np.testing.assert_array_equal(tiles, burst)  # the loud one itself has none louder


def test_the_near_probability_is_each_looked_windows_core_and_zero_elsewhere():
    length = 3000
    tiles = np.array([1, 5])
    outputs = np.stack([np.arange(context.NEAR_WINDOW, dtype=np.float32) + 1000 * tile for tile in tiles])
    probability = context.near_probability(outputs, tiles, length)
    core = context.NEAR_PLAN.core
    assert probability.shape == (length,)
    np.testing.assert_array_equal(probability[core: 2 * core], np.arange(core) + 1000 + context.NEAR_CONTEXT)
    last = 5 * core
    np.testing.assert_array_equal(probability[last:], np.arange(length - last) + 5000 + context.NEAR_CONTEXT)
    assert not probability[:core].any() and not probability[2 * core: last].any()


def test_near_regions_only_add_what_holds_a_loud_sample_no_region_comes_near():
    gap = 32
    planes = np.zeros((2, 4000))
    planes[0, [100, 500, 900, 1500]] = context.LOUD_INPUT + 1.0
    filtered = np.sinh(planes[0])  # the signal in noise units
    filtered[3000] = -context.DOMINANCE * filtered[500]  # a far louder transient in reach of all
    regions = np.array([[95, 110], [1400, 1480], [2990, 3010]])
    found = np.array([[90, 120],     # over a region
                      [480, 520],    # loud and alone: added
                      [700, 720],    # alone but nothing loud in it
                      [890, 910],    # loud and alone: added
                      [1485, 1520]])  # loud, but within the merge gap of a region
    np.testing.assert_array_equal(context.near_regions(found, regions, planes, gap, filtered, 4096),
                                  [[480, 520], [890, 910]])
    assert context.near_regions(np.zeros((0, 2)), regions, planes, gap, filtered, 4096).shape == (0, 2)
    # Out of reach of the far louder transient, or beside one not DOMINANCE times as loud: none.
    np.testing.assert_array_equal(context.near_regions(found, regions, planes, gap, filtered, 2100), [[890, 910]])
    filtered[3000] *= 0.99
    assert context.near_regions(found, regions, planes, gap, filtered, 4096).shape == (0, 2)


def test_a_signal_that_a_train_was_taken_out_of_gets_no_near_look():
    from pdseg import commutation, preprocess
    conditioned = preprocess.condition(np.random.default_rng(0).normal(size=4096))
    assert not context.took_out_a_train(conditioned)
    train = commutation.Train(slot=555.5, template=np.ones(555))
    for name in ("commutation", "phase_locked", "regular_train"):
        assert context.took_out_a_train(dataclasses.replace(conditioned, **{name: train}))


def test_an_added_region_is_scored_by_the_look_that_found_it():
    probability = np.full(100, 0.1, dtype=np.float32)
    probability[10:20] = 0.99  # the network's own region
    near = np.zeros(100, dtype=np.float32)
    near[50:60] = 0.97
    near[10:20] = 0.2
    scored = context.scored(probability, near, np.array([[10, 20], [50, 60], [80, 90]]), 0.95)
    assert scored[10:20].max() == pytest.approx(0.99) and scored[50:60].max() == pytest.approx(0.97)
    assert scored[80:90].max() == pytest.approx(0.1)  # an isolated transient's: neither look reached it
    assert probability[50:60].max() == pytest.approx(0.1)  # a new array, the given one unchanged


def test_a_loud_transients_own_ringing_is_not_what_dwarfs_a_near_region():
    """The louder transient must be another one: a region over the ringing of the pulse whose
    stretch it lies in (samples standing out, joined within JOIN) is not added, one in a stretch of
    its own beside that pulse is."""
    length = 6000
    units = np.zeros(length)
    t = np.arange(2500.0)
    units[1000:3500] = 1e5 * np.exp(-t / 300.0) * np.cos(2 * np.pi * 0.1 * t)  # one stretch to ~4,500
    units[5000:5010] = 2000.0  # a lone transient, a stretch of its own
    planes = np.stack((np.arcsinh(units), np.zeros(length)))
    regions = np.array([[1000, 1800]])
    tail = int(np.flatnonzero(np.abs(units[:3500]) > np.sinh(context.LOUD_INPUT))[-1])
    found = np.array([[2600, tail + 1], [4995, 5015]])
    np.testing.assert_array_equal(context.near_regions(found, regions, planes, 32, units, 4096), [[4995, 5015]])


def test_no_region_is_added_at_an_adcs_rails():
    added = np.array([[100, 120], [400, 420], [700, 720]])
    rails = np.zeros(1000, dtype=bool)
    rails[440:600] = True  # a run on a rail: the region 20 samples before it is its corner
    np.testing.assert_array_equal(context.off_the_rails(added, rails, 32), [[100, 120], [700, 720]])
    np.testing.assert_array_equal(context.off_the_rails(added, None, 32), added)
