"""scripts/region_rules.py measures the served region rules: its ``served`` variant gives the
segmenter's own regions, and its two joining rules join only what they say."""
from pathlib import Path

import numpy as np

from region_rules import VARIANTS, bridged, grown, variant_regions
from evaluate import served_segmenter
from training import synthetic

ROOT = Path(__file__).resolve().parents[1]


def test_the_served_variant_gives_the_segmenters_regions():
    segmenter, record = served_segmenter(ROOT / "model_store" / "weights")
    rng = np.random.default_rng(11)
    signals = [synthetic.make_capture(rng, length, samples_per_cycle=3333.0, snr_db=snr, interference=interference).signal
               for length, snr, interference in ((16384, 20.0, False), (8192, 14.0, True), (2048, 30.0, False))]
    signals.append(rng.normal(size=4096))  # no carrier: a slower view
    conditioned = [segmenter.condition(signal) for signal in signals]
    probabilities = segmenter.probabilities(conditioned)
    assert any(item.slow is not None for item in conditioned)
    for item, probability in zip(conditioned, probabilities):
        expected = segmenter.regions(probability, None, item)
        assert np.array_equal(variant_regions(segmenter, VARIANTS[0], probability, item, record), expected)
    # and a variant that changes the rules changes some regions
    lowered = next(variant for variant in VARIANTS if variant.threshold == 0.8)
    assert any(not np.array_equal(variant_regions(segmenter, lowered, p, c, record), segmenter.regions(p, None, c))
               for c, p in zip(conditioned, probabilities))


def test_bridged_joins_only_gaps_short_and_high_enough():
    regions = np.array([[0, 10], [20, 30], [40, 50], [400, 410]])
    level = np.zeros(500)
    level[10:20] = 2.0  # the first gap stands high, the second does not, the third is too long
    level[50:400] = 2.0
    joined = bridged(regions, lambda start, end: float(level[start:end].mean()), 1.5, 256)
    assert joined.tolist() == [[0, 30], [40, 50], [400, 410]]


def test_grown_moves_an_end_over_what_stands_out_and_not_into_the_next_region():
    filtered = np.zeros(300)
    filtered[10:60] = 3.0  # stands out to 60
    filtered[100:300] = 3.0
    grown_regions = grown(np.array([[0, 12], [100, 110]]), filtered, 1.0, width=8, level=2.0)
    assert 56 <= grown_regions[0, 1] <= 64  # over what stands out, not much past it
    assert grown_regions[1, 1] > 110 and grown_regions[1, 1] <= 300
    assert grown(np.array([[0, 12], [40, 50]]), filtered, 1.0, width=8, level=2.0)[0, 1] <= 40
