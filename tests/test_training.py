import numpy as np
import pytest
import torch

from pdseg import training
from pdseg.model import UNet1D, UNetConfig


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16-autocast"])
def test_short_training_lowers_the_loss(bf16):
    torch.set_num_threads(1)
    config = training.TrainConfig(train_captures=64, capture_length=2048, crop=1024, batch_size=8,
                                  steps=100, learning_rate=5e-3, bf16=bf16)
    inputs, labels = training.make_dataset(config.train_captures, config.capture_length, seed=1)
    network = UNet1D(UNetConfig(features=(4, 8, 16), dilations=(1, 2, 4), in_channels=2))
    losses = training.train(network, inputs, labels, config, progress=False)
    assert len(losses) == 100
    assert np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10])
    # autocast computes in bfloat16 but keeps (and exports) float32 weights
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in network.parameters())


def test_threshold_choice_prefers_the_separating_value():
    labels = np.zeros((2, 200), dtype=bool)
    labels[:, 50:80] = True
    probabilities = np.where(labels, 0.7, 0.1).astype(np.float32)
    probabilities[:, 120:125] = 0.45  # a false bump only a low threshold reports
    threshold, scores = training.choose_threshold(probabilities, labels)
    assert 0.45 < threshold <= 0.7
    assert scores[threshold] == 1.0 and scores[0.4] < 1.0


def test_gap_weights_mark_only_short_gaps_between_events():
    labels = np.zeros((1, 100), dtype=bool)
    labels[0, 10:20] = True
    labels[0, 30:40] = True   # gap 20-30: short, between two events
    labels[0, 90:95] = True   # gap 40-90: too long
    weights = training.gap_weights(labels, span=16, weight=5.0)[0]
    assert weights[20:30].tolist() == [5.0] * 10
    assert set(weights[:20].tolist() + weights[30:].tolist()) == {1.0}


def test_joined_onsets_are_pulses_inside_an_earlier_event():
    mask = np.zeros(100, dtype=bool)
    mask[10:40] = True        # a pulse at 10, a second one at 25 whose label overlaps it
    mask[43:50] = True        # a pulse 3 samples after that label ends: the same event
    mask[70:80] = True        # an event of its own
    joined = training.joined_onsets(mask, [10, 25, 43, 70])
    assert np.flatnonzero(joined).tolist() == [25, 43]


def test_joined_weights_raise_only_labelled_samples_before_a_joined_pulse():
    labels = np.zeros((1, 100), dtype=bool)
    labels[0, 10:40] = True
    labels[0, 43:50] = True
    joined = np.zeros((1, 100), dtype=bool)
    joined[0, 43] = True
    weights = training.joined_weights(np.ones((1, 100), dtype=np.float32), labels, joined,
                                      span=8, weight=4.0)[0]
    assert np.flatnonzero(weights == 4.0).tolist() == [35, 36, 37, 38, 39]
    assert set(weights[weights != 4.0].tolist()) == {1.0}


def test_joined_weighting_leaves_the_default_training_unchanged():
    """The option draws no random numbers: with weight 1 the batches, and so the shipped
    weights' training, are what they were without it."""
    config = training.TrainConfig(train_captures=32, capture_length=2048, crop=2048, batch_size=16,
                                  edge_probability=0.0)
    inputs, labels, joined = training.make_dataset(32, 2048, seed=3, keep_joined=True)
    assert joined.sum() > 0
    plain = training._batch(np.random.default_rng(5), inputs, labels, config)
    with_joined = training._batch(np.random.default_rng(5), inputs, labels, config, joined=joined)
    for first, second in zip(plain[:3], with_joined[:3]):
        assert torch.equal(first, second)
    weighted = training._batch(np.random.default_rng(5), inputs, labels,
                               training.TrainConfig(**{**config.__dict__, "joined_weight": 9.0}),
                               joined=joined)
    assert torch.equal(weighted[0], plain[0]) and not torch.equal(weighted[2], plain[2])


def test_onset_targets_mark_each_event_start_once():
    labels = np.zeros((1, 100), dtype=bool)
    labels[0, :8] = True      # begins before the crop: no onset
    labels[0, 20:30] = True
    labels[0, 33:40] = True   # 3 samples after the last: the same event by the region rule
    labels[0, 60:70] = True
    targets = training.onset_targets(labels, span=(-1, 3))[0]
    assert np.flatnonzero(targets).tolist() == [19, 20, 21, 22, 59, 60, 61, 62]


def test_onset_head_is_trained_to_find_starts():
    """The onset output learns from its own targets: its loss falls, and the PD output's
    loss term is the same with or without the head."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = training.TrainConfig(train_captures=64, capture_length=2048, crop=1024, batch_size=8,
                                  steps=120, learning_rate=5e-3)
    inputs, labels = training.make_dataset(config.train_captures, config.capture_length, seed=1)
    network = UNet1D(UNetConfig(features=(4, 8, 16), dilations=(1, 2, 4), in_channels=2,
                                onset_head=True))
    x = torch.from_numpy(inputs[:8, :, :1024])
    y = torch.from_numpy(labels[:8, :1024].astype(np.float32))
    onsets = torch.from_numpy(training.onset_targets(labels[:8, :1024]).astype(np.float32))

    def onset_loss():
        with torch.no_grad():
            logits = network.logits(x)
        return float(training.loss_fn(logits, y, None, onsets) - training.loss_fn(logits[:, 0], y))

    before = onset_loss()
    training.train(network, inputs, labels, config, progress=False)
    assert network(x).shape == (8, 2, 1024)
    assert onset_loss() < 0.7 * before


def test_region_rules_respect_the_false_alarm_budget():
    """A low threshold finds two faint events but also reports a bump in a PD-free capture;
    validation F1 alone takes it, a budget on regions per cycle there does not."""
    labels = np.zeros((3, 400), dtype=bool)
    labels[0, 50:80] = True
    labels[1, 100:130] = True
    labels[1, 250:280] = True
    probabilities = np.where(labels, 0.8, 0.05).astype(np.float32)
    probabilities[1] = np.where(labels[1], 0.3, 0.05)  # faint events: thresholds <= 0.3 only
    probabilities[2, 200:210] = 0.3  # PD-free capture, two cycles long
    cycles = np.full(3, 2.0)
    rules = dict(min_gaps=(8,), min_lengths=(2,), cycles=cycles)
    alone, _ = training.choose_postprocess(probabilities, labels, **rules)
    assert alone["threshold"] <= 0.3 and alone["false_alarms_per_cycle"] == 0.5
    assert alone["f1"] == round(6 / 7, 4)
    budget, _ = training.choose_postprocess(probabilities, labels, max_false_alarms=0.25, **rules)
    assert budget["threshold"] > 0.3 and budget["false_alarms_per_cycle"] == 0.0
    assert budget["f1"] == 0.5


def test_region_rules_choose_an_extent_level_where_it_helps():
    """Events whose probability is high only at their start and low along their tails: a
    single level either finds them cut short (high) or also reports a low bump in a PD-free
    capture (low); an extent level under a high threshold gets both right."""
    labels = np.zeros((3, 400), dtype=bool)
    labels[0, 50:110] = True
    labels[1, 200:260] = True
    probabilities = np.full((3, 400), 0.02, dtype=np.float32)
    for row, start in ((0, 50), (1, 200)):
        probabilities[row, start: start + 10] = 0.95
        probabilities[row, start + 10: start + 60] = 0.3  # the tail: under a decision threshold
    probabilities[2, 100:130] = 0.5  # PD-free capture: a bump a low single level reports
    cycles = np.full(3, 2.0)
    chosen, scores = training.choose_postprocess(
        probabilities, labels, min_gaps=(8,), min_lengths=(2,), cycles=cycles,
        max_false_alarms=0.1, extent_thresholds=(None, 0.2))
    assert chosen["extent_threshold"] == 0.2 and chosen["threshold"] > 0.5
    assert chosen["f1"] == 1.0 and chosen["false_alarms_per_cycle"] == 0.0
    # the single-level rules: a high level cuts both events to 10 of their 60 samples (IoU 1/6)
    assert scores["t=0.9,gap=8,len=2,fragment=0,onset=0"] == 0.0
    assert "t=0.9,gap=8,len=2,fragment=0,onset=0,extent=0.2" in scores
    assert not any(name.endswith("extent=0.2") for name in scores if name.startswith("t=0.2,"))


def test_cycle_channel_is_blanked_in_some_crops_only():
    """A 3-channel network also learns to do without the cycle difference (no visible carrier);
    the first two channels are never blanked, and 2-channel batches draw no extra numbers."""
    config = training.TrainConfig(batch_size=64, crop=256, edge_probability=0.0)
    rng_inputs = np.random.default_rng(0)
    inputs = rng_inputs.normal(size=(4, 3, 512)).astype(np.float32) + 5.0
    labels = np.zeros((4, 512), dtype=bool)
    x, *_ = training._batch(np.random.default_rng(1), inputs, labels, config,
                            planes=("signal", "relative", "cycle_difference"))
    blank = (x[:, 2] == 0).all(dim=1)
    assert 0 < int(blank.sum()) < 64
    assert (x[:, :2].abs() > 1.0).all()
    two = np.ascontiguousarray(inputs[:, :2])
    rng = np.random.default_rng(3)
    training._batch(rng, two, labels, config)
    reference = np.random.default_rng(3)
    reference.integers(0, 4, 64), reference.integers(0, 257, 64), reference.random(64), reference.random(64)
    assert rng.random() == reference.random()


def test_polarity_flips_negate_only_the_odd_planes():
    """A flipped crop is the same capture with the opposite polarity: the signal planes change
    sign, the envelope does not."""
    config = training.TrainConfig(batch_size=64, crop=256, edge_probability=0.0)
    inputs = np.abs(np.random.default_rng(0).normal(size=(4, 3, 512))).astype(np.float32) + 1.0
    labels = np.zeros((4, 512), dtype=bool)
    x, *_ = training._batch(np.random.default_rng(1), inputs, labels, config,
                            planes=("signal", "relative", "envelope"))
    flipped = x[:, 0, 0] < 0
    assert 0 < int(flipped.sum()) < 64
    assert bool((x[flipped, :2] < 0).all()) and bool((x[~flipped, :2] > 0).all())
    assert bool((x[:, 2] > 0).all())
    with pytest.raises(ValueError, match="planes"):  # three planes given, two named
        training._batch(np.random.default_rng(1), inputs, labels, config)
