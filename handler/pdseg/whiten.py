"""A second view of a capture whose noise is strongly correlated from sample to sample: the
carrier-free signal through a whitening filter (each sample less what the ones before it
predict, as in the quiet stretches), for the network to look at beside the signal as recorded.

The network was trained on white noise. Behind a band-limited sensor or an AR(1)-like
amplifier (an HFCT whose noise follows each sample to 0.87 of the one before) it gave smooth
pulses standing 35-48 noise units out of that noise a probability of 0.2-0.5, and the same
pulses in the whitened signal over 0.95 (docs/model-card.md, Known failure modes). Whitening
alone moves every pulse's shape and extent (a slow RC pulse becomes a spike at its onset), so
the whitened view mostly adds: its probability counts near samples that stand out of the
noise in the signal as recorded (:func:`combine`), and what the signal as recorded finds keeps
its extent, unless nothing backs it (a bump of the coloured noise, which the network, trained
on white noise, took for a pulse).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg, ndimage
from scipy import signal as sps

BLOCK = 64  # samples per block, as the noise scale's
QUIET_SHARE = 0.5  # the quieter half of the blocks: pulses stay out of the estimate
# Lag-1 correlation of the quiet samples from which a capture gets the whitened view. White
# noise after the carrier filter shows -0.05 to 0.15; the training generator's captures with
# interference 0.0-0.45 (one 0.9); the independent generator's AR(1) and band-limited noise
# up to 0.97 (docs/model-card.md, Conditioning).
WHITEN_FROM = 0.5
WHITEN_MOST = 0.95  # the reported coefficient at most (the one-pole filter it named until 2026-12-07 neared a differentiator)
VIEW_LOUD = 6.0  # noise units in the signal as recorded, near which the view may add ...
VIEW_REACH = 32  # ... within this many samples (the merge gap)
# In correlated noise the signal as recorded keeps a stretch of probability (a run at or above
# RUN_LEVEL) only where something backs it: a sample VIEW_LOUD noise units out, or the whitened
# view's probability at least VIEW_BACKING, within BACKING_REACH samples.
RUN_LEVEL = 0.1
VIEW_BACKING = 0.5
BACKING_REACH = 8


def quiet_blocks(filtered: np.ndarray) -> np.ndarray:
    """The quieter half (:data:`QUIET_SHARE`) of ``filtered``'s whole 64-sample blocks by their
    rms, ``(blocks, 64)`` float64: where pulses are not."""
    blocks = filtered.size // BLOCK
    trimmed = np.asarray(filtered[: blocks * BLOCK], dtype=np.float64).reshape(blocks, BLOCK)
    rms = np.sqrt(np.mean(trimmed**2, axis=1))
    return trimmed[rms <= np.quantile(rms, QUIET_SHARE)]


def noise_correlation(filtered: np.ndarray) -> float:
    """The lag-1 correlation coefficient of the quieter half of ``filtered``'s 64-sample
    blocks (0 where there are fewer than four blocks or nothing but zeros). Pulses stay out of
    it; correlated noise reads a little low (0.44 for a one-pole noise of 0.5, 0.80 for 0.87):
    its quietest blocks are where it wandered least."""
    if filtered.size // BLOCK < 4:
        return 0.0
    quiet = quiet_blocks(filtered)
    power = float(np.sum(quiet[:, 1:] ** 2))
    return float(np.sum(quiet[:, 1:] * quiet[:, :-1]) / power) if power > 0 else 0.0


def least_block_correlation(filtered: np.ndarray) -> float:
    """The smallest lag-1 correlation coefficient among ``filtered``'s 64-sample blocks (-1
    where there are fewer than four, 0 for a block of zeros). Stationary correlated noise
    shows in every block; a pulse, however long, leaves some block to the noise, whose
    correlation is that of the noise."""
    blocks = filtered.size // BLOCK
    if blocks < 4:
        return -1.0
    trimmed = np.asarray(filtered[: blocks * BLOCK], dtype=np.float64).reshape(blocks, BLOCK)
    power = np.sum(trimmed[:, 1:] ** 2, axis=1)
    lagged = np.sum(trimmed[:, 1:] * trimmed[:, :-1], axis=1)
    return float(np.min(np.divide(lagged, power, out=np.zeros_like(power), where=power > 0)))


def whitening_coefficient(filtered: np.ndarray) -> float | None:
    """The lag-1 correlation of ``filtered``'s quiet samples (the one-pole whitener's
    coefficient, as the answer's ``noise_whitening`` reports it), or None where they are not
    correlated enough (:data:`WHITEN_FROM`, either sign) to need a whitened view. Noise
    that alternates from sample to sample (an amplifier's AR(1) with a negative coefficient)
    is whitened too: its swings of two or three samples look like short oscillations."""
    correlation = noise_correlation(filtered)
    if abs(correlation) < WHITEN_FROM:
        return None
    return float(np.clip(correlation, -WHITEN_MOST, WHITEN_MOST))


# The whitener predicts each sample from the WHITEN_ORDER before it (a one-pole one left the
# bumps of band-passed noise, as an IEC 60270 instrument's 100-400 kHz band gives it, standing
# in the view as short oscillations). Its fit assumes white noise of WHITEN_LOADING of the
# noise's power under it, so that it stays short of a differentiator.
WHITEN_ORDER = 8
WHITEN_LOADING = 0.01


def whitening_filter(filtered: np.ndarray) -> np.ndarray:
    """The causal prediction-error filter ``[1, a1, ..., ap]`` (``p`` =
    :data:`WHITEN_ORDER`) that whitens the quieter half of ``filtered``'s 64-sample blocks:
    Yule-Walker on their autocorrelation, loaded by :data:`WHITEN_LOADING`."""
    quiet = quiet_blocks(filtered)
    lags = np.array([np.sum(quiet[:, lag:] * quiet[:, : BLOCK - lag]) / (quiet.shape[0] * (BLOCK - lag))
                     for lag in range(WHITEN_ORDER + 1)])
    if not lags[0] > 0.0:
        return np.array([1.0])
    lags = lags / lags[0]
    column = lags[:WHITEN_ORDER].copy()
    column[0] += WHITEN_LOADING
    coefficients = linalg.solve_toeplitz(column, lags[1:])
    return np.concatenate(([1.0], -coefficients))


def whiten(filtered: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``filtered`` through the prediction-error filter ``coefficients``
    (:func:`whitening_filter`): causal, so a pulse keeps its onset."""
    return sps.lfilter(np.asarray(coefficients, dtype=np.float64), [1.0], filtered)


def combine(probability: np.ndarray, whitened_probability: np.ndarray, filtered: np.ndarray,
            scale: float) -> np.ndarray:
    """The per-sample maximum of the two views' probabilities, the whitened view's counted
    only within :data:`VIEW_REACH` samples of a sample of ``filtered`` (the signal as
    recorded) at least :data:`VIEW_LOUD` noise units out. Band-limited noise was only roughly
    whitened by one pole (the filter before 2026-12-07), and its bumps of 3-5 units stood out in
    the whitened view as regions (docs/model-card.md, Conditioning).

    The signal as recorded, whose noise the network never saw so coloured, gave its own
    bumps of 3-5 noise units a region as well: a run of its probability is kept only where a
    loud sample or the whitened view backs it (:data:`VIEW_BACKING`), a pulse standing out
    of the noise once whitened, which a bump of the noise does not."""
    loud = np.abs(filtered) >= VIEW_LOUD * scale
    backing = loud | (whitened_probability >= VIEW_BACKING)
    runs, count = ndimage.label(probability >= RUN_LEVEL)
    if count:
        backed = np.zeros(count + 1, dtype=bool)
        backed[np.unique(runs[ndimage.binary_dilation(backing, iterations=BACKING_REACH) & (runs > 0)])] = True
        backed[0] = True  # below the run level: left as it is
        probability = np.where(backed[runs], probability, 0.0)
    if not loud.any():
        return probability
    near = ndimage.binary_dilation(loud, iterations=VIEW_REACH)
    return np.maximum(probability, np.where(near, whitened_probability, 0.0))


SKIPPED_WARNING = ("the noise is correlated, but the signal was not also analysed whitened: "
                   "that would have taken the request over its work limit")
