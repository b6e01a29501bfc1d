"""TorchServe handler for the PD segmenter: a thin layer over :mod:`pdseg`.

TorchServe hands us a batch of requests; each may carry several signals. The batch's requests
are decoded and charged their work (:class:`pdseg.decode.WorkLimits`), then analysed in groups
that together cost at most one request's limit: within a group all signals' windows go through
the network together, and a batch of the largest requests needs the memory of one. Decoding
errors and bad input stay with their own request: ``context.set_response_status`` answers that
request with a 4xx and a JSON message, and the rest of the batch is answered normally.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import time
from http import HTTPStatus
from types import SimpleNamespace

import torch
from ts.torch_handler.base_handler import BaseHandler

from pdseg import prpd
from pdseg.cache import ResultCache, cache_directives, model_identity
from pdseg.decode import InputError, WorkLimits, answer_type, check_content_encoding, decode_request, work_groups
from pdseg.model import OnnxNetwork, TorchThreads
from pdseg.pipeline import Segmenter

logger = logging.getLogger(__name__)
RECORD_FILE = "pd_segmenter.json"


def _new_request(accept: str) -> SimpleNamespace:
    """Per-request state through the three stages (TorchServe wants one class per handler
    module, so this is a namespace rather than a dataclass)."""
    return SimpleNamespace(accept=accept, decoded=None, answer=None, error=None,
                           cache_key=None, cache_status=None, store=False)


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


def reason_phrase(status: int) -> str:
    """The status line's reason for a failed request: the standard one, never the message, which
    goes in the JSON body. The message repeats what the request sent, and TorchServe 0.12's worker
    frames a phrase by its length in characters but writes its UTF-8 bytes: one accented letter
    in an unknown field's name broke the frame, killed the worker and failed its batch-mates with
    500; a 100,000-character name made a status line that HTTP clients refuse."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


EXPLANATIONS_REFUSED = ("this model gives no explanations: the answer of POST /predictions/pd_segmenter "
                        "already holds each region's peak, energy and score")
# Batches of at least this many samples are followed by _release_freed_memory().
TRIM_FROM_SAMPLES = 262_144
# TorchServe's worker parses every application/json body of a batch into Python lists before the
# handler runs (~70 bytes per sample, eight bodies at once) unless this is "false"; the handler
# parses them itself, one at a time and after checking what they would cost (pdseg.decode).
RAW_BODIES_SETTING = ("TS_DECODE_INPUT_REQUEST", "false")


class PDSegmenterHandler(BaseHandler):
    def initialize(self, context):
        settings = (getattr(context, "model_yaml_config", None) or {}).get("handler", {})
        # The threads a large network call is shared over (pdseg.model.ThreadPolicy);
        # PD_TORCH_THREADS lets an operator match them to the pod's CPU limit without rebuilding
        # the archive.
        threads = int(os.environ.get("PD_TORCH_THREADS") or settings.get("torch_threads", os.cpu_count() or 1))
        # Network calls on fewer samples than this run on one thread (tail latency on a small
        # pod, docs/benchmarks.md).
        parallel_from = int(os.environ.get("PD_PARALLEL_FROM_SAMPLES") or settings.get("parallel_from_samples", 0))
        # Every thread that runs the network does so on one intra-op thread (pdseg.model.ThreadPolicy).
        torch.set_num_threads(1)
        # BaseHandler loads the archive's serialized file: frozen TorchScript by default, or an
        # ONNX graph (make archive RUNTIME=onnx), for which it opens an ONNX Runtime session ...
        super().initialize(context)
        if isinstance(self.model, torch.nn.Module):
            self.model = TorchThreads(self.model, threads, parallel_from)
            if threads > 1 and os.environ.get("OMP_WAIT_POLICY", "").strip().upper() != "PASSIVE":
                # Read by OpenMP when torch loads, before this handler: only the server's
                # environment can set it (the image does; scripts/serve.py too). ONNX Runtime's
                # threads do not spin (pdseg.model.OnnxNetwork).
                logger.warning("OMP_WAIT_POLICY is not PASSIVE: the network's %d OpenMP threads spin while "
                               "they wait, and with a second worker busy, large requests run several times "
                               "slower (docs/operations.md)", threads)
        else:  # ... whose threads are one per host CPU: ours follow the archive's settings.
            self.model = OnnxNetwork(self.model_pt_path, threads, parallel_from)
        model_dir = context.system_properties["model_dir"]
        with open(os.path.join(model_dir, RECORD_FILE)) as handle:
            record = json.load(handle)
        # A long capture's slower view starts on a second thread beside its own conditioning
        # (pdseg.pipeline.Segmenter); 0 turns that off (a one-core pod gains nothing from it).
        view_ahead_from = int(os.environ.get("PD_VIEW_AHEAD_FROM_SAMPLES") or settings.get("view_ahead_from_samples", 0))
        self.segmenter = Segmenter.from_record(
            self.model, record, chunk_windows=int(settings.get("chunk_windows", 32)),
            view_ahead_from=view_ahead_from if view_ahead_from > 0 else None)
        self.limits = WorkLimits.from_settings(settings, min_window=self.segmenter.plan.width(1))
        # Before the worker reports ready, so no user's request pays for it (1-2 s on one core).
        started = time.perf_counter()
        self.segmenter.warm_up()
        logger.info("warmed up in %.2f s", time.perf_counter() - started)
        # Read by the worker for every request after this one (ts.protocol.otf_message_handler).
        os.environ[RAW_BODIES_SETTING[0]] = RAW_BODIES_SETTING[1]
        manifest_model = (getattr(context, "manifest", None) or {}).get("model", {})
        self.model_info = {
            "name": manifest_model.get("modelName", getattr(context, "model_name", "pd_segmenter")),
            "version": manifest_model.get("modelVersion", "unknown"),
        }
        # Answers to repeated requests (docs/cache.md). The archive's fingerprint is in every
        # key, so a shared Redis never answers for another build of the same version.
        self.cache = ResultCache.from_settings(settings.get("cache") or {},
                                               model_identity(self.model_info, model_dir))

    # --- helpers -------------------------------------------------------------------------

    def _headers(self, index: int) -> dict:
        try:
            headers = self.context.get_all_request_header(index) or {}
        except (AttributeError, IndexError, TypeError):
            return {}
        # TorchServe files each multipart field's own content type under the field's name in the
        # same mapping: a field named "accept" must not pass for the header.
        return {str(key).lower(): (value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value)
                for key, value in headers.items() if isinstance(value, (str, bytes, bytearray))}

    def _is_explain(self) -> bool:
        # BaseHandler asks this of the batch's first request and then explains every request of
        # the batch: one request to /explanations failed its batch-mates with 503. preprocess
        # answers that request alone.
        return False

    def _is_describe(self) -> bool:
        # Asked of request 0 too, and answered with one description for the whole batch: a
        # client's own "describe: True" header failed its batch-mates (503), and alone got a 200
        # with "null" for its answer, its signal neither read nor analysed. preprocess answers
        # TorchServe's describe call itself, whatever shares its batch.
        return False

    def _is_describe_call(self, index: int, row) -> bool:
        """TorchServe's describe call (the management API's ``customized=true``): its key, and no
        body. A request that sends a signal is analysed, whatever its headers say."""
        if self.context.get_request_header(index, "describe") != "True":
            return False
        return not isinstance(row, dict) or not any(row.get(key) for key in ("body", "data"))

    def _fail(self, index: int, request: SimpleNamespace, error: InputError) -> None:
        request.error = error
        self.context.set_response_status(error.status, reason_phrase(error.status), index)

    def _timed(self, name: str, milliseconds: float) -> None:
        self.context.metrics.add_time(name, round(milliseconds, 3), None, "ms")

    # --- the three stages ----------------------------------------------------------------

    def preprocess(self, data):
        started = time.perf_counter()
        requests = []
        for index, row in enumerate(data):
            headers = self._headers(index)
            request = _new_request("application/json")
            requests.append(request)
            if self._is_describe_call(index, row):
                request.answer, request.counts = {"model": self.model_info}, (0, 0, 0)
                continue
            try:
                # The exact key TorchServe sets; _headers merges a client's own "Explain" into it.
                if self.context.get_request_header(index, "explain") == "True":
                    raise InputError(EXPLANATIONS_REFUSED, 404)
                request.accept = answer_type(headers.get("accept"))
                check_content_encoding(headers.get("content-encoding"))  # before the cache, whose key leaves it out
                if self._answer_from_cache(request, row, headers):
                    continue  # neither decoded nor analysed
                request.decoded = decode_request(row, headers.get("content-type"), self.limits,
                                                 picture=request.accept == "image/png")
            except InputError as error:
                self._fail(index, request, error)
            except Exception:  # a bug, not bad input: answer 500 for this request only
                logger.exception("reading request %d failed", index)
                self._fail(index, request, InputError("internal error while reading the signal", 500))
        self.stage_ms = {"PreprocessTime": (time.perf_counter() - started) * 1000,
                         "InferenceTime": 0.0, "PostprocessTime": 0.0}
        return requests

    def _answer_from_cache(self, request: SimpleNamespace, row, headers: dict) -> bool:
        """Whether a stored answer now answers ``request``. Its key is kept either way, for
        storing the answer once it is known."""
        read, request.store = cache_directives(headers.get("cache-control"))
        if read or request.store:
            request.cache_key = self.cache.key(row, headers.get("content-type"), request.accept)
        if request.cache_key is None:
            return False
        if not read:
            request.cache_status = "fwd=request"  # the caller asked for a fresh analysis
            return False
        request.answer = self.cache.get(request.cache_key)
        request.cache_status = "hit" if request.answer is not None else "fwd=miss"
        return request.answer is not None

    def inference(self, requests, *args, **kwargs):
        """Condition, infer and describe one work group at a time; each stage's time still
        goes to its own metric. A group's arrays are dropped before the next one starts."""
        # Neither refused nor answered already (from the cache, or TorchServe's describe call).
        good = [request for request in requests if request.error is None and request.answer is None]
        for group in work_groups([request.decoded.work for request in good], self.limits.max_work):
            members = [good[position] for position in group]
            started = time.perf_counter()
            conditioned = [self._condition(request) for request in members]
            self.stage_ms["PreprocessTime"] += (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            probabilities = iter(self.segmenter.probabilities([item for items in conditioned for item in items]))
            self.stage_ms["InferenceTime"] += (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            for request, items in zip(members, conditioned):
                outputs = [next(probabilities) for _ in items]
                if request.error is None:
                    self._describe(request, items, outputs)
                request.decoded.signals = []  # the raw samples are no longer needed
            del conditioned, probabilities, outputs  # before the next group's arrays exist
            self.stage_ms["PostprocessTime"] += (time.perf_counter() - started) * 1000
        return requests

    def _condition(self, request: SimpleNamespace) -> list:
        # A whitened view runs the network a second time over its signal, a slower view over a
        # quarter of it, and a pulse cut by an end beside a train conditions it up to twice more:
        # only within what the request's work limit leaves over its own signals.
        room, conditioned = self.limits.max_work - request.decoded.work, []
        try:
            for signal in request.decoded.signals:
                conditioned.append(self.segmenter.condition(signal, request.decoded.options, view_room=room,
                                                            view_cost=self.limits.signal_work))
                room -= conditioned[-1].extra_work(self.limits.signal_work)
            return conditioned
        except Exception:  # a bug, not bad input: answer 500 for this request only
            logger.exception("conditioning a request's signals failed")
            request.error = InputError("internal error while reading the signal", 500)
            return []

    def _describe(self, request: SimpleNamespace, conditioned: list, probabilities: list) -> None:
        """The request's answer (JSON or PNG) from its signals' network output."""
        try:
            results = self.segmenter.finish(conditioned, probabilities,
                                            [request.decoded.options] * len(conditioned))
            request.counts = (len(results), sum(result.conditioned.length for result in results),
                              sum(len(result.regions) for result in results))
            described = [result.to_json(number) for number, result in enumerate(results)]
            summary = prpd.summarise(described, request.decoded.options.sampling_rate_hz)
            if request.accept == "image/png":
                # matplotlib costs the worker ~40 MB: loaded only once a picture is asked for.
                from pdseg.render import render_png

                request.answer = (prpd.render_prpd_png(described, summary) if request.decoded.view == "prpd"
                                  else render_png(results))
            else:
                request.answer = {"model": self.model_info, "summary": summary, "signals": described}
        except Exception:
            logger.exception("describing a request's result failed")
            request.error = InputError("internal error while describing the result", 500)

    def postprocess(self, requests):
        started = time.perf_counter()
        responses = []
        signals = samples = regions = 0
        for index, request in enumerate(requests):
            if request.error is not None:
                self._fail(index, request, request.error)  # again for errors found after decoding
                self.context.set_response_content_type(index, "application/json")
                responses.append({"error": request.error.message, "status": request.error.status})
                continue
            if request.cache_status != "hit":  # counts (0, 0, 0) for a description
                signals, samples, regions = (total + count for total, count in
                                             zip((signals, samples, regions), request.counts))
                if request.store:
                    self.cache.put(request.cache_key, request.answer)
            if request.cache_status is not None:  # RFC 9211: whether the answer was stored before
                self.context.set_response_header(index, "Cache-Status",
                                                 f"{self.model_info['name']}; {request.cache_status}")
            is_png = isinstance(request.answer, (bytes, bytearray))
            self.context.set_response_content_type(index, "image/png" if is_png else "application/json")
            responses.append(request.answer)
        metrics = self.context.metrics
        metrics.add_counter("PDSignalsProcessed", signals)
        metrics.add_counter("PDSamplesProcessed", samples)
        metrics.add_counter("PDRegionsFound", regions)
        if self.cache.enabled:
            statuses = [request.cache_status for request in requests]
            metrics.add_counter("PDCacheHits", statuses.count("hit"))
            metrics.add_counter("PDCacheMisses", statuses.count("fwd=miss"))
        self.stage_ms["PostprocessTime"] += (time.perf_counter() - started) * 1000
        for name, milliseconds in self.stage_ms.items():
            self._timed(name, milliseconds)
        if samples >= TRIM_FROM_SAMPLES:
            _release_freed_memory()
        return responses
