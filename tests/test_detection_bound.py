"""The matched-filter ceiling the atlas's goals are compared against (scripts/detection_bound.py)."""
import numpy as np
import pytest
from scipy.stats import norm

import detection_bound
from training import atlas


def test_a_one_sample_pulse_has_the_textbook_detection_probability():
    # ||w|| = 1: at 14 dB (amplitude 5.01) and a 4.89-sigma threshold, Q(4.89 - 5.01).
    ratios = np.ones(4)
    expected = norm.sf(norm.isf(0.5e-6) - 10 ** 0.7) + norm.cdf(-norm.isf(0.5e-6) - 10 ** 0.7)
    assert detection_bound.recall_bound(ratios, 14.0, 1e-6) == pytest.approx(expected)
    assert 0.5 < expected < 0.6


def test_the_ceiling_rises_with_snr_and_with_the_false_alarms_allowed_and_with_energy():
    short, long = (next(s for s in atlas.shape_grid() if s.name == name)
                   for name in ("exponential rise=0.2 decay=1", "exponential rise=1 decay=30"))
    short_ratios, long_ratios = detection_bound.energy_ratios(short), detection_bound.energy_ratios(long)
    assert 1.0 <= short_ratios.min() and short_ratios.max() < 1.5 < long_ratios.min()
    assert detection_bound.recall_bound(short_ratios, 14.0, 1e-6) < detection_bound.recall_bound(short_ratios, 20.0, 1e-6)
    assert detection_bound.recall_bound(short_ratios, 14.0, 1e-6) < detection_bound.recall_bound(short_ratios, 14.0, 3e-5)
    assert detection_bound.recall_bound(short_ratios, 14.0, 1e-6) < detection_bound.recall_bound(long_ratios, 14.0, 1e-6)


def test_the_script_prints_the_table_without_writing():
    table = detection_bound.main(["--no-write"])
    assert set(table) == {(rate, snr) for rate in detection_bound.RATES for snr in detection_bound.GOALS}
    assert all(len(bounds) == len(atlas.shape_grid()) for bounds in table.values())
