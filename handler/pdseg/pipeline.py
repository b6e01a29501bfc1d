"""The whole analysis of a batch of signals: condition, window, infer, stitch, find regions.

The network is any callable from a ``(windows, channels, width)`` float32 tensor to
``(windows, width)`` probabilities: the ONNX Runtime session in the server and in evaluation
(:class:`pdseg.model.OnnxNetwork`), the eager model in training. All windows of all signals go through it together, in chunks that bound memory.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch

from . import phase as phase_mod
from . import context, limiter, preprocess, slow, transients, whiten
from .model import ThreadPolicy
from .regions import (DEFAULT_MIN_GAP, DEFAULT_MIN_LENGTH, describe_regions, probability_to_regions, significant,
                      trim_to_signal)

# A caller's period further than this from a clearly visible carrier's is reported, not used
# silently: phases computed from it would drift through the capture.
PERIOD_DISAGREEMENT = 0.05
# Within it, over two cycles or more, phases follow the carrier's own period
# (:func:`pdseg.phase.fit_carrier`); said where it is this far from the given one.
PERIOD_FOLLOWED_NOTE = 0.001
from .window import WindowPlan

Network = Callable[[torch.Tensor], torch.Tensor]
logger = logging.getLogger(__name__)
DEFAULT_CHUNK_WINDOWS = 32  # 32 windows of 4,096 samples: ~130 k samples per forward pass
# Noise signals a worker analyses before its first request (Segmenter.warm_up): a triggered
# window and a capture of a few cycles.
WARM_UP_LENGTHS = (256, 7920)


@dataclasses.dataclass
class SignalOptions:
    threshold: float | None = None
    samples_per_cycle: float | None = None
    sampling_rate_hz: float | None = None
    power_frequency_hz: float | None = None

    def period(self) -> float | None:
        if self.samples_per_cycle:
            return float(self.samples_per_cycle)
        if self.sampling_rate_hz and self.power_frequency_hz:
            return float(self.sampling_rate_hz) / float(self.power_frequency_hz)
        return None


@dataclasses.dataclass
class SignalResult:
    conditioned: preprocess.Conditioned
    probability: np.ndarray
    regions: np.ndarray  # (k, 2) [start, end)
    carrier: phase_mod.CarrierFit
    threshold: float
    options: SignalOptions
    extent_threshold: float | None = None  # where regions end (hysteresis); None: threshold
    merge_gap: int = DEFAULT_MIN_GAP  # the time resolution: closer pulses are one region
    warnings: list[str] = dataclasses.field(default_factory=list)
    # the signal the regions' peaks, polarities and energies are read from where it is not the
    # conditioned one: over the regions the slower view added, that view's (pdseg.slow)
    described: np.ndarray | None = None

    def phase_deg(self) -> np.ndarray | None:
        return self.carrier.phase_deg(self.conditioned.length)

    def to_json(self, index: int) -> dict:
        length = self.conditioned.length
        regions = describe_regions(self.regions, self.conditioned.filtered if self.described is None else self.described,
                                   self.probability,
                                   self.phase_deg(), self.options.sampling_rate_hz)
        cycles = (length / self.carrier.samples_per_cycle) if self.carrier.samples_per_cycle else None
        stats = {
            "regions": len(regions),
            "pd_samples": int(sum(r["duration"] for r in regions)),
            "noise_scale": significant(self.conditioned.scale),
            "max_probability": round(float(self.probability.max()), 4) if length else 0.0,
            "threshold": self.threshold,
            "extent_threshold": self.extent_threshold if self.extent_threshold is not None else self.threshold,
            "merge_gap": self.merge_gap,
            "carrier": self.carrier.to_dict(),
            "tones_removed": tone_list(self.conditioned.tones, self.options.sampling_rate_hz),
            "tone_bursts_removed": burst_list(self.conditioned.tone_bursts, self.options.sampling_rate_hz),
            "wandering_tones_removed": wandering_list(self.conditioned.wandering_tones, self.options.sampling_rate_hz),
            "commutation_removed": (None if self.conditioned.commutation is None
                                    else self.conditioned.commutation.to_dict()),
            "phase_locked_removed": (None if self.conditioned.phase_locked is None
                                     else self.conditioned.phase_locked.cycle_dict()),
            "regular_train_removed": (None if self.conditioned.regular_train is None
                                      else self.conditioned.regular_train.spacing_dict()),
            "noise_whitening": (None if self.conditioned.whitening is None
                                else round(float(self.conditioned.whitening), 3)),
            "clipped_carrier_restored": self.conditioned.clipped,
            # Significant digits, not decimals: a 1,000-sample window at 100 MS/s and 50 Hz is
            # 0.0005 cycles, which three decimals made 0.001 and a summary over them twice as long.
            "cycles": None if cycles is None else significant(cycles),
            "regions_per_cycle": None if not cycles else significant(len(regions) / cycles),
        }
        answer = {"index": index, "length": length, "regions": regions, "stats": stats}
        if self.warnings:
            answer["warnings"] = self.warnings
        return answer


def tone_list(frequencies: np.ndarray, sampling_rate_hz: float | None) -> list[dict]:
    """The stationary tones conditioning took out, for the answer: cycles per sample, and Hz
    where the caller gave the sampling rate."""
    out = []
    for frequency in frequencies:
        tone = {"cycles_per_sample": round(float(frequency), 5)}
        if sampling_rate_hz:
            tone["hz"] = significant(float(frequency) * float(sampling_rate_hz))
        out.append(tone)
    return out


def burst_list(bursts, sampling_rate_hz: float | None) -> list[dict]:
    """The tone bursts conditioning took out (:class:`pdseg.tones.Burst`), for the answer: each
    one's frequency as :func:`tone_list` gives it, and the samples ``[start, end)`` it was on."""
    return [tone_list(np.array([burst.frequency]), sampling_rate_hz)[0] | {"start": burst.start, "end": burst.end}
            for burst in bursts]


def wandering_list(wandering, sampling_rate_hz: float | None) -> list[dict]:
    """The wandering tones conditioning took out (:class:`pdseg.tones.WanderingTone`), for the
    answer: the middle of each one's band as :func:`tone_list` gives a frequency, and the
    half-width of the band it occupied (``deviation_cycles_per_sample``, and ``deviation_hz``)."""
    out = []
    for tone in wandering:
        entry = tone_list(np.array([tone.frequency]), sampling_rate_hz)[0]
        entry["deviation_cycles_per_sample"] = round(float(tone.deviation), 5)
        if sampling_rate_hz:
            entry["deviation_hz"] = significant(float(tone.deviation) * float(sampling_rate_hz))
        out.append(entry)
    return out


def period_warnings(item: preprocess.Conditioned, given: float | None,
                    carrier: phase_mod.CarrierFit | None = None) -> list[str]:
    """A warning where the caller's period contradicts the carrier the capture shows by more
    than :data:`PERIOD_DISAGREEMENT` (the caller's value is kept: it is the caller's call), or
    where the phases follow the ``carrier`` fitted near it, at a period more than
    :data:`PERIOD_FOLLOWED_NOTE` from it."""
    if not given:
        return []
    if carrier is not None and carrier.detected and carrier.samples_per_cycle \
            and abs(carrier.samples_per_cycle - given) > PERIOD_FOLLOWED_NOTE * given:
        return [f"the carrier's period is {carrier.samples_per_cycle:.6g} samples per cycle, "
                f"{100 * (carrier.samples_per_cycle / given - 1):+.2f} % from the given {given:g}; "
                f"phases follow the carrier"]
    seen = item.carrier if item.carrier is not None else phase_mod.fit_carrier(item.carrier_course(), item.filtered,
                                                                                 item.scale)
    if not seen.detected or not seen.samples_per_cycle:
        return []
    if abs(given - seen.samples_per_cycle) <= PERIOD_DISAGREEMENT * seen.samples_per_cycle:
        return []
    return [f"the given period of {given:g} samples per cycle differs by more than "
            f"{PERIOD_DISAGREEMENT:.0%} from the carrier visible in the signal "
            f"({seen.samples_per_cycle:.1f} samples per cycle); phases use the given period"]


def short_fit_warnings(length: int, carrier: phase_mod.CarrierFit | None) -> list[str]:
    """A warning where the phases come from a carrier fitted over less than
    :data:`pdseg.phase.SHORT_FIT_CYCLES` of a cycle (possible only with the caller's period)."""
    if carrier is None or not carrier.detected or not carrier.samples_per_cycle:
        return []
    cycles = length / carrier.samples_per_cycle
    return [phase_mod.SHORT_FIT_WARNING.format(cycles=cycles)] if cycles < phase_mod.SHORT_FIT_CYCLES else []


_GIVEN_UP = object()  # a slower view the second thread gave up on (pdseg.preprocess.slow_view_shows_a_carrier)


def _log_failure(future: Future) -> None:
    # A view that is not used is never awaited: its failure would pass unseen.
    if not future.cancelled() and future.exception() is not None:
        logger.error("making a slower view ahead failed", exc_info=future.exception())


class Segmenter:
    """Conditions signals, runs the network over them and finds their regions.

    ``view_ahead_from`` (samples; None: never) starts a capture's slower view (:mod:`pdseg.slow`),
    and the network's run over it on one thread, on a second thread as soon as the capture's own
    conditioning starts, where the capture is at least that long: the view needs only the raw
    samples, and the capture's conditioning keeps one core busy for most of a long request
    (an 800,000-sample capture: 0.30 -> 0.24 s in-process, docs/benchmarks.md). The answer is the
    same either way (the probabilities to float32 rounding). Only for a network with a
    :class:`pdseg.model.ThreadPolicy` (which can be asked for one thread). The second thread gives
    up on a capture on an ADC's rails, which keeps no view, and after a quick look where the
    view shows a carrier (:func:`pdseg.preprocess.slow_view_shows_a_carrier`), and runs the
    network only where the conditioned view shows none of what would rule it out
    (:func:`pdseg.preprocess.slow_view_likely_kept`): what it does for a capture that then keeps
    no view is work thrown away, on the other core."""

    def __init__(self, network: Network, threshold: float = 0.5, plan: WindowPlan | None = None,
                 chunk_windows: int = DEFAULT_CHUNK_WINDOWS, min_gap: int = DEFAULT_MIN_GAP,
                 min_length: int = DEFAULT_MIN_LENGTH,
                 extent_threshold: float | None = None, view_ahead_from: int | None = None) -> None:
        self.network = network
        self.threshold = threshold
        self.plan = plan or WindowPlan()
        self.chunk_windows = chunk_windows
        self.min_gap = min_gap
        self.min_length = min_length
        self.extent_threshold = extent_threshold
        self.view_ahead_from = view_ahead_from
        # slower views started on the second thread, given up after the quick look, run through the network there
        self.views_ahead = {"started": 0, "given_up": 0, "run": 0}
        self._network_lock = threading.Lock()  # the network runs for one thread at a time
        self._ahead: ThreadPoolExecutor | None = None

    @classmethod
    def from_record(cls, network: Network, record: dict, **overrides) -> "Segmenter":
        """The segmenter a trained model's record (``pd_segmenter.json``) describes."""
        postprocess = record.get("postprocess", {})
        settings = {"threshold": float(record["threshold"]), "plan": WindowPlan(**record["window"]),
                    "min_gap": int(postprocess.get("min_gap", DEFAULT_MIN_GAP)),
                    "min_length": int(postprocess.get("min_length", DEFAULT_MIN_LENGTH)),
                    "extent_threshold": (None if postprocess.get("extent_threshold") is None
                                         else float(postprocess["extent_threshold"]))}
        return cls(network, **(settings | overrides))

    def probabilities(self, conditioned: Sequence[preprocess.Conditioned]) -> list[np.ndarray]:
        """Per-sample PD probability for each conditioned signal, ``(length,)``. Windows of
        equal width, from all signals and their whitened views, go through the network
        together in chunks of about ``chunk_windows`` standard windows' worth of samples; a
        signal's whitened view adds to its probability by :func:`pdseg.whiten.combine`, and its
        slower view's probability is kept on that view for the regions."""
        signals = list(conditioned)
        owners = [index for index, item in enumerate(signals) if item.whitened is not None]
        slowed = [item.slow for item in signals if item.slow is not None
                  and (item.slow.probability is None or item.slow.probability[0] != id(self.network))]
        views = self.view_probabilities(signals + [signals[index].whitened for index in owners] + slowed)
        results = views[: len(signals)]
        for index, probability in zip(owners, views[len(signals): len(signals) + len(owners)]):
            item = signals[index]
            results[index] = whiten.combine(results[index], probability, item.filtered, item.scale)
        for view, probability in zip(slowed, views[len(signals) + len(owners):]):
            view.probability = (id(self.network), probability)  # kept for the regions (:meth:`slow_view_regions`)
        self.look_near(signals)
        return results

    def look_near(self, conditioned: Sequence[preprocess.Conditioned]) -> None:
        """Each signal's probability over windows of near context only, where it has loud samples
        (:mod:`pdseg.context`), kept on it for the regions (:meth:`regions_and_added`)."""
        todo = [(item, context.near_tiles(item.network_input, self.plan.window)) for item in conditioned
                if (item.near is None or item.near[0] != id(self.network)) and not context.took_out_a_train(item)]
        todo = [(item, tiles) for item, tiles in todo if tiles.size]
        if not todo:
            return
        windows = np.concatenate([context.NEAR_PLAN.cut(item.network_input)[tiles] for item, tiles in todo], axis=0)
        step = max(1, self.chunk_windows * self.plan.window // context.NEAR_WINDOW)
        with self._network_lock, torch.inference_mode():
            outputs = np.concatenate([
                self.network(torch.from_numpy(np.ascontiguousarray(windows[first: first + step]))).numpy()
                for first in range(0, windows.shape[0], step)], axis=0)
        first = 0
        for item, tiles in todo:
            probability = context.near_probability(outputs[first: first + tiles.size], tiles, item.length)
            item.near = (id(self.network), probability)
            first += tiles.size

    def view_probability(self, view: preprocess.Conditioned) -> np.ndarray:
        """A slower view's probability: kept from :meth:`probabilities` where this segmenter's
        network gave it, else computed (and kept)."""
        if view.probability is None or view.probability[0] != id(self.network):
            view.probability = (id(self.network), self.view_probabilities([view])[0])
        return view.probability[1]

    def view_probabilities(self, conditioned: Sequence[preprocess.Conditioned],
                           one_thread: bool = False) -> list[np.ndarray]:
        """The network's probability for each of ``conditioned`` on its own input planes; on one
        thread with ``one_thread`` where the network keeps a :class:`pdseg.model.ThreadPolicy`."""
        pieces = [self.windows(item) for item in conditioned]
        # A window that holds a very loud sample goes through again with it limited
        # (:mod:`pdseg.context`): those calmed copies follow the signals' own windows.
        loud = [context.loud_windows(piece) for piece in pieces]
        calm = [index for index, flags in enumerate(loud) if flags.any()]
        pieces = pieces + [context.calmed(pieces[index][loud[index]]) for index in calm]
        outputs: list[np.ndarray] = [np.empty(0)] * len(pieces)
        by_width: dict[int, list[int]] = {}
        for index, piece in enumerate(pieces):
            by_width.setdefault(piece.shape[-1], []).append(index)
        network = (functools.partial(self.network, one_thread=True)
                   if one_thread and isinstance(self.network, ThreadPolicy) else self.network)
        with self._network_lock, torch.inference_mode():
            for width, members in by_width.items():
                windows = np.concatenate([pieces[i] for i in members], axis=0)
                step = max(1, self.chunk_windows * self.plan.window // width)
                chunks = [network(torch.from_numpy(np.ascontiguousarray(windows[first: first + step]))).numpy()
                          for first in range(0, windows.shape[0], step)]
                results = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)
                first = 0
                for index in members:
                    count = pieces[index].shape[0]
                    outputs[index] = results[first: first + count]
                    first += count
        probabilities = [self.plan.stitch(output, item.length) for output, item in zip(outputs, conditioned)]
        for number, index in enumerate(calm):
            calmed = outputs[index].copy()
            calmed[loud[index]] = outputs[len(conditioned) + number]
            item = conditioned[index]
            probabilities[index] = context.blended(probabilities[index], self.plan.stitch(calmed, item.length),
                                                   item.network_input)
        return probabilities

    def windows(self, item: preprocess.Conditioned) -> np.ndarray:
        """The network windows of one conditioned signal. One shorter than a standard window
        is shown amid its own noise (:func:`pdseg.preprocess.planes_amid_own_noise`): amid
        zeros, the network missed pulses early in a short window that it found inside a
        longer capture. Longer signals keep zeros beyond their ends; the network finds their
        early pulses."""
        margins = self.plan.margins(item.length)
        if margins is None or item.length >= self.plan.window:
            return self.plan.cut(item.network_input)
        return preprocess.planes_amid_own_noise(item, *margins)[None]

    def condition(self, raw: np.ndarray, option: SignalOptions | None = None,
                  view_room: int | None = None, view_cost=None) -> preprocess.Conditioned:
        """One signal conditioned for the network (the options do not change it: a signal's
        input is its own); ``view_room``, ``view_cost``: see :func:`pdseg.preprocess.condition`.
        Its slower view may be started ahead (``view_ahead_from``)."""
        ahead = self._slow_view_ahead(np.asarray(raw), view_room, view_cost)
        return preprocess.condition(raw, view_room=view_room, view_cost=view_cost, slow_view_of=ahead)

    def _slow_view_ahead(self, raw: np.ndarray, room: int | None, cost) -> Callable[[], "preprocess.Conditioned | None"] | None:
        """What gives the capture's slower view, started on the second thread with the network's
        probability over it (``view_ahead_from``); None where not started: shorter signals, other
        networks, and views that the work limit's ``room`` would leave out even before any
        whitened view is charged."""
        if (self.view_ahead_from is None or not isinstance(self.network, ThreadPolicy) or raw.ndim != 1
                or raw.size < max(self.view_ahead_from, slow.MIN_SAMPLES)):
            return None
        samples = slow.view_length(raw.size)
        if room is not None and (cost(samples) if cost is not None else samples) > room:
            return None
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slow-view")
        self.views_ahead["started"] += 1
        future = self._ahead.submit(self._slow_view_with_probability, raw)
        future.add_done_callback(_log_failure)

        def view() -> preprocess.Conditioned | None:
            made = future.result()
            # given up on (a carrier in the quick look) but due after all: made here, as without
            return preprocess.slow_view_of(raw) if made is _GIVEN_UP else made

        return view

    def _slow_view_with_probability(self, raw: np.ndarray):
        # A capture on an ADC's rails keeps no view (with_slow_view); checked here, not before the
        # thread starts: the capture's own conditioning reads its rails too, on the critical path.
        if preprocess.rail_samples(np.asarray(raw, dtype=np.float64)) is not None:
            self.views_ahead["given_up"] += 1
            return _GIVEN_UP
        reduced = slow.decimated(raw)
        if preprocess.slow_view_shows_a_carrier(reduced):
            self.views_ahead["given_up"] += 1
            return _GIVEN_UP
        view = preprocess.slow_view_of(raw, reduced)
        if view is not None and preprocess.slow_view_likely_kept(view):
            self.views_ahead["run"] += 1
            view.probability = (id(self.network), self.view_probabilities([view], one_thread=True)[0])
        return view

    def wait_for_views_ahead(self) -> None:
        """Return once every slower view started ahead is done (or failed), used or not."""
        if self._ahead is not None:
            self._ahead.submit(lambda: None).result()

    def warm_up(self) -> None:
        """Do once what a worker's first requests would otherwise pay for: the short signals'
        noise calibration (:func:`pdseg.preprocess.calibrate_ringing`) and the network's first
        calls at a short and at a capture-sized window (frozen TorchScript optimises a graph on
        its first runs: a first 7,920-sample signal took 0.11 s against 0.03 s after it)."""
        preprocess.calibrate_ringing()
        noise = np.random.default_rng(0).standard_normal(WARM_UP_LENGTHS[-1])
        for _ in range(2):
            self.analyse([noise[:length] for length in WARM_UP_LENGTHS])
        self.wait_for_views_ahead()

    def analyse(self, signals: Sequence[np.ndarray],
                options: Sequence[SignalOptions] | None = None) -> list[SignalResult]:
        options = list(options) if options is not None else [SignalOptions() for _ in signals]
        conditioned = [self.condition(raw, option) for raw, option in zip(signals, options)]
        return self.finish(conditioned, self.probabilities(conditioned), options)

    def extent_for(self, threshold: float) -> float:
        """The level where regions end for a decision ``threshold``: the model's extent level,
        or the threshold itself where that is lower (a caller's low threshold is never undone)."""
        return threshold if self.extent_threshold is None else min(self.extent_threshold, threshold)

    def regions(self, probability: np.ndarray, threshold: float | None = None,
                conditioned: preprocess.Conditioned | None = None) -> np.ndarray:
        """The region rules on one signal's probability: decision threshold and extent level,
        merge gap, shortest region; given the signal it was computed from, each region's ends
        are then fitted to where that signal stands out (:func:`regions.trim_to_signal`), and
        the short transients standing far out of its noise that no region holds are added
        (:mod:`pdseg.transients`), whatever the threshold, and the regions of its slower view
        (:mod:`pdseg.slow`) where it has none."""
        if conditioned is not None:
            return self.regions_and_added(probability, threshold, conditioned)[0]
        threshold = self.threshold if threshold is None else threshold
        return probability_to_regions(probability, threshold, self.min_gap, self.min_length,
                                      self.extent_for(threshold))

    def regions_and_added(self, probability: np.ndarray, threshold: float | None,
                          conditioned: preprocess.Conditioned) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`regions` given the signal, and which of them its slower view added."""
        threshold = self.threshold if threshold is None else threshold
        regions = probability_to_regions(probability, threshold, self.min_gap, self.min_length,
                                         self.extent_for(threshold))
        regions = trim_to_signal(regions, conditioned.filtered, conditioned.scale)
        regions = self.with_near_regions(regions, threshold, conditioned)
        regions = transients.with_isolated_transients(regions, conditioned.filtered, conditioned.scale, self.min_gap,
                                                      conditioned.quantum)
        return slow.added_regions(regions, self.slow_view_regions(conditioned, threshold), self.min_gap)

    def with_near_regions(self, regions: np.ndarray, threshold: float,
                          conditioned: preprocess.Conditioned) -> np.ndarray:
        """``regions`` and those of the signal's near probability (:meth:`look_near`), by the same
        rules, that hold a loud sample none of them holds beside a far louder other transient, away
        from an ADC's rails (:func:`pdseg.context.near_regions`, :func:`pdseg.context.off_the_rails`)."""
        if conditioned.near is None or conditioned.near[0] != id(self.network):
            return regions
        found = probability_to_regions(conditioned.near[1], threshold, self.min_gap, self.min_length,
                                       self.extent_for(threshold))
        found = trim_to_signal(found, conditioned.filtered, conditioned.scale)
        added = context.near_regions(found, regions, conditioned.network_input, self.min_gap, conditioned.filtered,
                                     self.plan.window)
        if len(added):
            added = context.off_the_rails(added, preprocess.rail_samples(conditioned.raw), self.min_gap)
        if not len(added):
            return regions
        merged = np.concatenate((np.asarray(regions, dtype=np.int64).reshape(-1, 2), added))
        return merged[np.argsort(merged[:, 0], kind="stable")]

    def slow_view_regions(self, conditioned: preprocess.Conditioned, threshold: float | None = None) -> np.ndarray:
        """The regions of a signal's slower view (:mod:`pdseg.slow`) in the signal's samples (none
        where it has no view), by the same rules; the network runs over the view here unless
        :meth:`probabilities` already did."""
        view = conditioned.slow
        if view is None:
            return np.zeros((0, 2), dtype=np.int64)
        view_regions = slow.without_echoes(self.regions(self.view_probability(view), threshold, view), view.filtered)
        return slow.to_full_rate(view_regions, view.length, conditioned.length)

    def finish(self, conditioned: Sequence[preprocess.Conditioned],
               probabilities: Sequence[np.ndarray],
               options: Sequence[SignalOptions]) -> list[SignalResult]:
        results = []
        for item, probability, option in zip(conditioned, probabilities, options):
            threshold = self.threshold if option.threshold is None else float(option.threshold)
            carrier = (item.carrier if item.carrier is not None and option.period() is None
                       else phase_mod.fit_carrier(item.carrier_course(), item.filtered, item.scale, option.period()))
            regions, added = self.regions_and_added(probability, threshold, item)
            if item.near is not None and item.near[0] == id(self.network):
                probability = context.scored(probability, item.near[1], regions, threshold)
            described = None
            if len(added):
                probability, described = slow.as_full_rate(added, probability, item.filtered,
                                                           self.view_probability(item.slow), item.slow.filtered)
            results.append(SignalResult(item, probability, regions,
                                        carrier, threshold, option, self.extent_for(threshold),
                                        self.min_gap, period_warnings(item, option.period(), carrier)
                                        + short_fit_warnings(item.length, carrier)
                                        + ([limiter.CLIPPED_WARNING] if item.clipped else [])
                                        + ([whiten.SKIPPED_WARNING] if item.view_skipped else [])
                                        + ([slow.SKIPPED_WARNING] if item.slow_skipped else [])
                                        + ([preprocess.ENDS_UNCHECKED_WARNING] if item.ends_unchecked
                                           or (item.slow is not None and item.slow.ends_unchecked) else []),
                                        described))
        return results
