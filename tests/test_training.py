import numpy as np
import torch

from pdseg import training
from pdseg.model import UNet1D, UNetConfig


def test_short_training_lowers_the_loss():
    torch.set_num_threads(1)
    config = training.TrainConfig(train_captures=64, capture_length=2048, crop=1024, batch_size=8,
                                  steps=100, learning_rate=5e-3)
    inputs, labels = training.make_dataset(config.train_captures, config.capture_length, seed=1)
    network = UNet1D(UNetConfig(features=(4, 8, 16), dilations=(1, 2, 4), in_channels=2))
    losses = training.train(network, inputs, labels, config, progress=False)
    assert len(losses) == 100
    assert np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10])


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
