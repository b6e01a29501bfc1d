"""Whole signals grouped into requests that stay under the service's limits.

The service charges each signal its samples, at least one smallest window, plus an overhead,
and limits a request's total and its number of signals (``max_work_per_request``,
``max_signals_per_request`` in config/model-config.yaml). The budget here reckons the same way
with the shipped figures; a batch that a differently configured service still refuses with 413
is split (:mod:`pdclient.service`), and a signal over the budget on its own goes alone, so the
service names its limit.

A signal may also need a second look within its request's limit: a whitened view (correlated
noise) or a slower one (smooth pulses without a carrier), at most one of them and at most its
own cost. The service leaves a view out where the request has no room left, and the pulses only
that view finds go unreported (a stranger's probe: 60 carrier-free captures of broad pulses,
361 regions one per request, 31 in requests filled to the limit). So a batch here is filled to
half the budget: every signal's view has room. (A signal with a pulse cut by an end beside a
converter train may also be conditioned once or twice more from the same room; a request of
such signals at half the budget has room for one each, and the service says where one is left
out.)
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import numpy as np

MIN_SIGNAL_COST = 1024  # the shipped model's smallest window: a 10-sample signal costs as much
SIGNAL_OVERHEAD = 14336  # each signal's own filtering, fitting and description
# The shipped server's limits (config/model-config.yaml, docs/reliability.md); a server with
# others answers 413 and the batch is split.
DEFAULT_MAX_SIGNALS = 88
DEFAULT_MAX_COST = 1_500_000
# TorchServe's max_request_size (config/config.properties: 8 MiB), less room for the multipart
# form around the .npy: a larger body is refused 413 with an empty answer.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024 - 64 * 1024


@dataclasses.dataclass(frozen=True)
class Budget:
    max_signals: int = DEFAULT_MAX_SIGNALS
    max_cost: int = DEFAULT_MAX_COST
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @staticmethod
    def cost(length: int) -> int:
        return max(int(length), MIN_SIGNAL_COST) + SIGNAL_OVERHEAD

    @staticmethod
    def with_view(length: int) -> int:
        """What a signal may cost its request: its own cost, and as much again for a view."""
        return 2 * Budget.cost(length)


@dataclasses.dataclass
class Item:
    """One signal on its way: where it came from and its values."""
    file: str
    signal: int | str
    values: np.ndarray

    @property
    def key(self) -> tuple[str, str]:
        return self.file, str(self.signal)


@dataclasses.dataclass
class Batch:
    items: list[Item]

    @property
    def cost(self) -> int:
        return sum(Budget.cost(item.values.size) for item in self.items)

    def stacked(self) -> np.ndarray:
        """Rows are signals: one 2-D array, as the service reads a ``.npy``."""
        return np.stack([item.values for item in self.items])

    def halves(self) -> tuple["Batch", "Batch"]:
        middle = len(self.items) // 2
        return Batch(self.items[:middle]), Batch(self.items[middle:])


def wire_dtype(values: np.ndarray) -> np.dtype:
    """The dtype a signal travels in: its own where the service reads it exactly (ints, floats
    of 32/64 bits), float64 otherwise."""
    dtype = values.dtype
    if dtype.kind in "iu" or dtype in (np.float32, np.float64):
        return dtype
    return np.dtype(np.float64)


def narrowest_exact(values: np.ndarray) -> np.ndarray:
    """``values`` as float32 (from float64) or int32 (from int64) where that holds every value
    exactly, else as they are: a long signal then fits a body half the size."""
    if values.dtype == np.float64:
        narrow = values.astype(np.float32)
        if np.array_equal(narrow.astype(np.float64), values, equal_nan=True):
            return narrow
    elif values.dtype == np.int64 and values.size:
        if np.iinfo(np.int32).min <= values.min() and values.max() <= np.iinfo(np.int32).max:
            return values.astype(np.int32)
    return values


def batches(items: Iterable[Item], budget: Budget) -> Iterator[Batch]:
    """Consecutive signals of one length and dtype (one 2-D array per request), at most
    ``budget.max_signals`` of them, ``budget.max_cost`` in all with room for their views
    (:meth:`Budget.with_view`) and ``budget.max_body_bytes`` of samples; a signal over the cost
    or the body budget travels alone, as float32 or int32 where that holds its values exactly
    and its own dtype would be over the body budget."""
    pending: list[Item] = []
    pending_cost = pending_bytes = 0
    shape_key = None
    for item in items:
        item.values = np.asarray(item.values, dtype=wire_dtype(item.values))
        if item.values.nbytes > budget.max_body_bytes:
            item.values = narrowest_exact(item.values)
        cost = Budget.with_view(item.values.size)
        key = (item.values.size, item.values.dtype.str)
        # Signals of one sample go one a request: stacked they are a (n, 1) array, which the
        # service reads as one signal, a column (a review).
        if pending and (key != shape_key or item.values.size == 1 or len(pending) >= budget.max_signals
                        or pending_cost + cost > budget.max_cost
                        or pending_bytes + item.values.nbytes > budget.max_body_bytes):
            yield Batch(pending)
            pending, pending_cost, pending_bytes = [], 0, 0
        pending.append(item)
        pending_cost += cost
        pending_bytes += item.values.nbytes
        shape_key = key
    if pending:
        yield Batch(pending)
