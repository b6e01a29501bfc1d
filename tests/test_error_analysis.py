"""The error classes of scripts/error_analysis.py, on hand-made events and regions."""
import numpy as np
import pytest

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


def test_second_pieces_are_joined_to_the_region_that_matched_their_event():
    from error_analysis import join_second_pieces

    truth = np.array([[0, 100], [300, 310]])
    predicted = np.array([
        [0, 40],     # matches the first event (IoU 0.4)
        [70, 90],    # a second piece of it: joined, the region becomes [0, 90)
        [150, 160],  # touches no event: spurious, kept as it is
        [300, 310],  # matches the second event
    ])
    joined = join_second_pieces(truth, predicted)
    assert joined.tolist() == [[0, 90], [150, 160], [300, 310]]
    assert causes(truth, joined)["second piece"] == 0
    # a piece before the region that matched joins it from the front
    assert join_second_pieces(np.array([[0, 100]]), np.array([[5, 15], [40, 100]])).tolist() == [[5, 100]]
    # two pieces before it join together with it
    assert join_second_pieces(np.array([[0, 100]]), np.array([[0, 10], [20, 30], [50, 90]])).tolist() == [[0, 90]]
    # with no second piece nothing moves
    assert join_second_pieces(truth, np.array([[0, 100], [300, 310]])).tolist() == [[0, 100], [300, 310]]


def test_a_join_never_overlaps_another_region_nor_spans_two_events():
    from error_analysis import join_second_pieces

    # the piece [90, 160) touches two matched events: it stays, and nothing overlaps
    truth = np.array([[0, 100], [120, 200]])
    predicted = np.array([[0, 60], [150, 200], [90, 160]])
    assert join_second_pieces(truth, predicted).tolist() == predicted.tolist()
    # joining the piece [0, 10) to [60, 100) would overlap [95, 120), matched to the next event
    truth = np.array([[0, 100], [110, 120]])
    predicted = np.array([[0, 10], [60, 100], [95, 120]])
    assert causes(truth, predicted)["second piece"] == 1
    assert join_second_pieces(truth, predicted).tolist() == predicted.tolist()


def test_a_piece_report_names_its_events_pulses_and_its_gap():
    from error_analysis import piece_report

    truth = np.array([[0, 100], [300, 310]])
    predicted = np.array([[0, 40], [75, 90], [300, 310]])
    pulses = [{"onset": 0, "family": "exponential", "decay": 30.0, "source": "corona"},
              {"onset": 75, "family": "oscillation", "decay": 4.0, "source": "corona"},
              {"onset": 300, "family": "exponential", "decay": 90.0, "source": "corona"}]  # another event's
    mask = np.zeros(400, dtype=bool)
    mask[0:60] = mask[70:100] = mask[300:310] = True  # the gap [40, 75) is labelled over 25 of 35
    (report,) = piece_report(truth, predicted, pulses, mask)
    assert report["labelled"] == pytest.approx(25 / 35)
    assert {k: v for k, v in report.items() if k != "labelled"} == {
        "pulses": 2, "burst": False, "slowest_decay": 30.0, "gap": 35}
    assert piece_report(truth, np.array([[0, 100], [300, 310]]), pulses) == []
    # a piece before the region that matched: the gap is measured to that region's start; a
    # slow bipolar pulse and a burst's slow primary spike are not counted as slow decays
    pulses = [{"onset": 0, "family": "bipolar", "decay": 50.0, "source": "void"},
              {"onset": 50, "family": "exponential", "decay": 80.0, "source": "burst"}]
    assert piece_report(np.array([[0, 100]]), np.array([[0, 10], [50, 90]]), pulses) == [
        {"pulses": 2, "burst": True, "slowest_decay": 0.0, "gap": 40}]
