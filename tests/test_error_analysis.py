"""The error classes of scripts/error_analysis.py, on hand-made events and regions."""
import numpy as np

from error_analysis import causes


def test_every_error_lands_in_its_class():
    truth = np.array([[0, 10], [20, 30], [34, 44], [100, 110], [300, 340]])
    predicted = np.array([
        [0, 10],     # matches the first event
        [8, 12],     # a second piece over the first, already matched, event
        [20, 44],    # one region over two events: one matched, the other merged
        [200, 210],  # touches nothing: spurious
        [300, 305],  # over the last event with IoU 0.125: low IoU
    ])
    found = causes(truth, predicted)
    assert found == {"merged": 1, "split": 0, "missed": 1, "low IoU": 1, "spurious": 1,
                     "second piece": 1}


def test_two_predictions_over_one_unmatched_event_are_a_split():
    truth = np.array([[0, 100]])
    found = causes(truth, np.array([[0, 20], [60, 80]]))  # IoU 0.2 each
    assert found["split"] == 1 and found["second piece"] == 0 and found["spurious"] == 0
