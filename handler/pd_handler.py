"""TorchServe handler for the PD segmenter: a thin layer over :mod:`pdseg`.

TorchServe hands us a batch of requests; each may carry several signals. All signals' windows
go through the network together (one batched pass), while decoding errors and bad input stay
with their own request: ``context.set_response_status`` answers that request with a 4xx and a
JSON message, and the rest of the batch is answered normally.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import time
from types import SimpleNamespace

import torch
from ts.torch_handler.base_handler import BaseHandler

from pdseg.decode import DEFAULT_MAX_SAMPLES, InputError, decode_request
from pdseg.model import OnnxNetwork
from pdseg.pipeline import Segmenter

logger = logging.getLogger(__name__)
RECORD_FILE = "pd_segmenter.json"


def _new_request(accept: str) -> SimpleNamespace:
    """Per-request state through the three stages (TorchServe wants one class per handler
    module, so this is a namespace rather than a dataclass)."""
    return SimpleNamespace(accept=accept, decoded=None, conditioned=[], probabilities=[], error=None)


try:
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 - glibc only
except (OSError, AttributeError):
    _LIBC = None


def _release_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim). A long capture
    leaves tens of MB of freed buffers in malloc's heap, which glibc keeps; without this the
    worker's RSS ratchets up with every large request (docs/benchmarks.md)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


# Batches of at least this many samples are followed by _release_freed_memory().
TRIM_FROM_SAMPLES = 262_144


class PDSegmenterHandler(BaseHandler):
    def initialize(self, context):
        settings = (getattr(context, "model_yaml_config", None) or {}).get("handler", {})
        # The network's intra-op threads; PD_TORCH_THREADS lets an operator match them to the
        # pod's CPU limit without rebuilding the archive.
        threads = int(os.environ.get("PD_TORCH_THREADS") or settings.get("torch_threads", os.cpu_count() or 1))
        # Network calls on fewer samples than this run on one thread: their convolutions are too
        # short for a second thread to pay, and on a small pod its wait would hold up the
        # frontend and the next batch (tail latency, docs/benchmarks.md).
        parallel_from = int(os.environ.get("PD_PARALLEL_FROM_SAMPLES") or settings.get("parallel_from_samples", 0))
        # torch only carries arrays here; ONNX Runtime runs the network (below).
        torch.set_num_threads(1)
        super().initialize(context)  # BaseHandler opens pd_segmenter.onnx with ONNX Runtime ...
        # ... with a thread per host CPU; ours follows the archive's settings instead.
        self.model = OnnxNetwork(self.model_pt_path, threads, parallel_from)
        model_dir = context.system_properties["model_dir"]
        with open(os.path.join(model_dir, RECORD_FILE)) as handle:
            record = json.load(handle)
        self.max_samples = int(settings.get("max_samples_per_request", DEFAULT_MAX_SAMPLES))
        self.segmenter = Segmenter.from_record(
            self.model, record, chunk_windows=int(settings.get("chunk_windows", 32)))
        manifest_model = (getattr(context, "manifest", None) or {}).get("model", {})
        self.model_info = {
            "name": manifest_model.get("modelName", getattr(context, "model_name", "pd_segmenter")),
            "version": manifest_model.get("modelVersion", "unknown"),
        }

    # --- helpers -------------------------------------------------------------------------

    def _headers(self, index: int) -> dict:
        try:
            headers = self.context.get_all_request_header(index) or {}
        except (AttributeError, IndexError, TypeError):
            return {}
        return {str(key).lower(): value for key, value in headers.items()}

    def _fail(self, index: int, request: SimpleNamespace, error: InputError) -> None:
        request.error = error
        self.context.set_response_status(error.status, error.message, index)

    def _timed(self, name: str, started: float) -> None:
        self.context.metrics.add_time(name, round((time.perf_counter() - started) * 1000, 3), None, "ms")

    # --- the three stages ----------------------------------------------------------------

    def preprocess(self, data):
        started = time.perf_counter()
        requests = []
        for index, row in enumerate(data):
            headers = self._headers(index)
            request = _new_request(str(headers.get("accept", "application/json")))
            requests.append(request)
            try:
                request.decoded = decode_request(row, headers.get("content-type"), self.max_samples)
                request.conditioned = [self.segmenter.condition(signal, request.decoded.options)
                                       for signal in request.decoded.signals]
            except InputError as error:
                self._fail(index, request, error)
            except Exception:  # a bug, not bad input: answer 500 for this request only
                logger.exception("preprocessing request %d failed", index)
                self._fail(index, request, InputError("internal error while reading the signal", 500))
        self._timed("PreprocessTime", started)
        return requests

    def inference(self, requests, *args, **kwargs):
        started = time.perf_counter()
        conditioned = [item for request in requests if request.error is None for item in request.conditioned]
        probabilities = iter(self.segmenter.probabilities(conditioned))
        for request in requests:
            if request.error is None:
                request.probabilities = [next(probabilities) for _ in request.conditioned]
        self._timed("InferenceTime", started)
        return requests

    def postprocess(self, requests):
        started = time.perf_counter()
        responses = []
        signals = samples = regions = 0
        for index, request in enumerate(requests):
            if request.error is not None:
                responses.append({"error": request.error.message, "status": request.error.status})
                continue
            try:
                results = self.segmenter.finish(request.conditioned, request.probabilities,
                                                [request.decoded.options] * len(request.conditioned))
                signals += len(results)
                samples += sum(result.conditioned.length for result in results)
                regions += sum(len(result.regions) for result in results)
                if "image/png" in request.accept:
                    # matplotlib costs the worker ~40 MB: loaded only once a picture is asked for.
                    from pdseg.render import render_png

                    self.context.set_response_content_type(index, "image/png")
                    responses.append(render_png(results))
                else:
                    responses.append({
                        "model": self.model_info,
                        "signals": [result.to_json(number) for number, result in enumerate(results)],
                    })
            except Exception:
                logger.exception("postprocessing request %d failed", index)
                error = InputError("internal error while describing the result", 500)
                self._fail(index, request, error)
                responses.append({"error": error.message, "status": error.status})
        metrics = self.context.metrics
        metrics.add_counter("PDSignalsProcessed", signals)
        metrics.add_counter("PDSamplesProcessed", samples)
        metrics.add_counter("PDRegionsFound", regions)
        self._timed("PostprocessTime", started)
        if samples >= TRIM_FROM_SAMPLES:
            _release_freed_memory()
        return responses
