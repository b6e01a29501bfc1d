"""The independent evaluation generator (training/independent.py): determinism, ground truth,
SNR calibration, carrier/ADC variety, and its independence from the training generator."""

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from training import independent

SOURCE = Path(independent.__file__)
LENGTH = 4096  # short captures keep the suite light


def _same(a, b):
    return (
        np.array_equal(a.signal, b.signal)
        and np.array_equal(a.events, b.events)
        and a.samples_per_cycle == b.samples_per_cycle
        and a.sensor == b.sensor
    )


def test_splits_are_fixed_and_disjoint():
    first = independent.tier(20.0, True, "validation", 3, length=LENGTH)
    again = independent.tier(20.0, True, "validation", 3, length=LENGTH)
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    # A shorter request is a prefix of a longer one: counts can grow without changing captures.
    assert _same(independent.tier(20.0, True, "validation", 1, length=LENGTH)[0], first[0])
    test = independent.tier(20.0, True, "test", 3, length=LENGTH)
    assert not any(np.array_equal(a.signal, b.signal) for a in first for b in test)
    # Tiers and PD-free sets are separate draws too.
    other = independent.tier(14.0, True, "validation", 3, length=LENGTH)
    assert not any(np.array_equal(a.signal, b.signal) for a in first for b in other)
    free = independent.pd_free_tier(True, "validation", 2, length=LENGTH)
    assert all(_same(a, b) for a, b in zip(free, independent.pd_free_tier(True, "validation", 2, LENGTH)))
    assert not any(np.array_equal(a.signal, b.signal) for a in free for b in first)
    with pytest.raises(ValueError):
        independent.tier(20.0, True, "train", 1)


def _check_events(capture, length):
    events = capture.events
    assert events.dtype == np.int64 and events.ndim == 2 and events.shape[1] == 2
    assert np.all(events[:, 0] >= 0) and np.all(events[:, 1] <= length)
    assert np.all(events[:, 1] > events[:, 0])
    assert np.all(np.diff(events[:, 0]) >= 0)  # sorted by start
    assert capture.pulse_snr_db.shape == (len(events),)


@pytest.mark.parametrize(("snr_db", "interference"), independent.TIERS)
def test_events_valid_for_each_tier(snr_db, interference):
    for capture in independent.tier(snr_db, interference, "test", 4, length=LENGTH):
        assert capture.signal.dtype == np.float64 and capture.signal.shape == (LENGTH,)
        assert np.all(np.isfinite(capture.signal))
        assert capture.interference is interference
        assert len(capture.events) > 0
        _check_events(capture, LENGTH)
        assert np.all(np.abs(capture.pulse_snr_db - snr_db) <= 1.0 + 1e-9)


def test_pd_free_captures_have_no_events():
    for interference in (False, True):
        for capture in independent.pd_free_tier(interference, "validation", 4, length=LENGTH):
            assert capture.events.shape == (0, 2) and capture.events.dtype == np.int64
            assert capture.interference is interference


@pytest.mark.parametrize("length", [256, 800_000])
def test_other_lengths(length):
    rng = np.random.default_rng(length)
    for _ in range(3 if length < 1000 else 1):
        capture = independent.make_capture(rng, length, 14.0, True)
        assert capture.signal.shape == (length,) and np.all(np.isfinite(capture.signal))
        assert len(capture.events) > 0
        _check_events(capture, length)
    if length > 100_000:
        assert len(capture.events) > 100


def _measured_snrs(capture):
    """Per isolated pulse: |peak| of the clean pulse over the rms of the measured background."""
    length = capture.signal.size
    background = capture.signal - capture.components["baseline"] - capture.components["pulses"]
    events, half = capture.events, independent.BACKGROUND_WINDOW // 2
    measured, drawn = [], []
    for i, (start, end) in enumerate(events):
        others = np.delete(events, i, axis=0)
        near = (others[:, 0] < end + independent.MIN_GAP) & (others[:, 1] > start - independent.MIN_GAP)
        if near.any() or end == length:  # overlapping or truncated: peak is not the pulse's own
            continue
        peak = np.abs(capture.components["pulses"][start:end]).max()
        lo = min(max(start - half, 0), max(length - 2 * half, 0))
        rms = np.sqrt(np.mean(background[lo : lo + 2 * half] ** 2))
        measured.append(20 * np.log10(peak / rms))
        drawn.append(capture.pulse_snr_db[i])
    return measured, drawn


@pytest.mark.parametrize(("snr_db", "interference"), independent.TIERS)
def test_peak_snr_matches_tier(snr_db, interference):
    rng = np.random.default_rng(int(snr_db) + 100 * interference)
    measured, drawn, quantised = [], [], 0
    for count in range(1, 61):  # at least 10 captures, two of them quantised (~20 % are)
        capture = independent.make_capture(rng, 8192, snr_db, interference, keep_components=True)
        m, d = _measured_snrs(capture)
        measured += m
        drawn += d
        quantised += capture.adc_step is not None and len(m) > 0
        if count >= 10 and quantised >= 2:
            break
    measured, drawn = np.array(measured), np.array(drawn)
    assert measured.size >= 30
    assert np.all(np.abs(measured - snr_db) <= 2.0), measured
    assert abs(np.mean(measured) - snr_db) <= 0.5
    # Each pulse gets the SNR it was drawn (neighbours' sub-10 % tails account for the slack).
    assert np.all(np.abs(measured - drawn) <= 0.75)
    assert quantised >= 2  # the quantisation noise is part of the background being measured
    # The jitter is real (drawn per pulse) and what is measured follows it.
    assert np.std(drawn) > 0.3 and np.corrcoef(measured, drawn)[0, 1] > 0.8


def test_background_holds_no_pulse():
    # At 30 dB a pulse left in the background would stand far above its rms.
    rng = np.random.default_rng(7)
    for _ in range(6):
        capture = independent.make_capture(rng, LENGTH, 30.0, False, keep_components=True)
        background = capture.signal - capture.components["baseline"] - capture.components["pulses"]
        assert np.abs(background).max() < 10 * np.sqrt(np.mean(background**2))


def _many(count=60, length=2048, **kwargs):
    rng = np.random.default_rng(2024)
    return [independent.make_capture(rng, length, 20.0, True, keep_components=True, **kwargs) for _ in range(count)]


def test_carrier_and_no_carrier_captures():
    captures = _many()
    without = [c for c in captures if c.samples_per_cycle is None]
    with_carrier = [c for c in captures if c.samples_per_cycle is not None]
    assert len(without) >= 10 and len(with_carrier) >= 10
    for capture in without:
        assert np.ptp(capture.components["baseline"]) == 0.0  # at most a DC offset
    checked = 0
    for capture in independent.tier(30.0, False, "validation", 30):
        period = capture.samples_per_cycle
        if period is None or period > capture.signal.size / 4:
            continue
        # The carrier dominates the spectrum at its own frequency.
        spectrum = np.abs(np.fft.rfft(capture.signal - capture.signal.mean()))
        assert abs(spectrum.argmax() - capture.signal.size / period) <= 1.0
        checked += 1
    assert checked >= 5


def test_pulses_prefer_rising_flanks():
    inside = total = 0
    for capture in independent.tier(20.0, False, "validation", 40):
        if capture.samples_per_cycle is None:
            continue
        theta = np.mod(
            2 * np.pi * capture.events[:, 0] / capture.samples_per_cycle + capture.params["carrier_phase"], 2 * np.pi
        )
        inside += np.sum((theta < np.pi / 2) | ((theta >= np.pi) & (theta < 1.5 * np.pi)))
        total += theta.size
    assert total >= 100 and 0.65 <= inside / total < 0.99  # preferred, not exclusive


def test_quantised_captures_sit_on_a_grid():
    captures = _many()
    quantised = [c for c in captures if c.adc_step is not None]
    assert 5 <= len(quantised) < len(captures)
    for capture in quantised:
        codes = capture.signal / capture.adc_step
        assert np.allclose(codes, np.round(codes), rtol=0, atol=1e-6)
        assert 6 <= capture.params["bits"] <= 12
        assert np.ptp(np.round(codes)) <= 2 ** capture.params["bits"] + 1
        assert len(np.unique(codes)) > 8  # the grid resolves the background
    # Float captures are not on any grid of their smallest step.
    for capture in (c for c in captures if c.adc_step is None):
        steps = np.diff(np.unique(capture.signal))
        codes = capture.signal / steps.min()
        assert not np.allclose(codes, np.round(codes), rtol=0, atol=1e-3)


def test_sensors_and_pulse_lengths_vary():
    captures = [c for s, i in independent.TIERS for c in independent.tier(s, i, "validation", 8)]
    assert set(Counter(c.sensor for c in captures)) == set(independent.SENSORS)
    lengths = np.concatenate([c.events[:, 1] - c.events[:, 0] for c in captures])
    assert np.mean(lengths <= 5) > 0.05 and np.mean(lengths >= 60) > 0.02
    assert any(c.params["clustered"] for c in captures) and not all(c.params["clustered"] for c in captures)


def test_imports_nothing_from_the_training_generator():
    tree = ast.parse(SOURCE.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m.split(".")[0] for m in modules} <= {"__future__", "dataclasses", "math", "numpy", "scipy"}
    code = (
        "import sys; import training.independent; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pdseg', 'handler', 'pd_handler', 'synthetic')))"
    )
    root = SOURCE.parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_quantisation_resolves_the_noise_everywhere():
    # Where an AM tone fades, a step sized on the tones would flatten the background to a
    # constant; the step must resolve the noise itself, so no stretch of background goes flat.
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(60):
        capture = independent.make_capture(rng, LENGTH, 20.0, True, keep_components=True)
        if capture.adc_step is None:
            continue
        assert capture.adc_step <= 2.0 * capture.params["noise_scale"]  # the documented rule
        background = capture.signal - capture.components["baseline"] - capture.components["pulses"]
        window_rms = np.sqrt(np.mean(background.reshape(-1, 128) ** 2, axis=1))
        assert window_rms.min() >= 0.7 * capture.params["noise_scale"]
        checked += 1
    assert checked >= 5
