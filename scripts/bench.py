"""Speed benchmark over HTTP, with the predecessor's approach measured in the same run.

    python scripts/bench.py                      # starts its own TorchServe on free ports
    python scripts/bench.py --url http://127.0.0.1:8080   # an already running server
    python scripts/bench.py --quick --no-write   # tiny sizes (the smoke test uses this)
    python scripts/bench.py --runtimes onnx      # only the ONNX Runtime archive

Every figure is taken for each archive, one after the other, packed from the shipped weights:
frozen TorchScript (the default) and ONNX Runtime (--runtime onnx); the first is reported in
full, both side by side.

Measures: one long capture (800,000 samples, one 20 ms cycle at 40 MS/s) sent as .npy;
7,920-sample signals at 1, 4, 8 and 16 concurrent clients, a warm-up and 3 rounds each,
medians (requests/s, p50/p95/p99, errors; an asyncio load generator, light on the cores the
server shares);
RSS of the frontend and each worker before and after the load, and the CPU time they use per
request; the predecessor's approach in-process on the same capture (its 12.1 M-parameter
network, eager, one 1,024-sample window at a time, 50 % overlap), timed for 1.6 s after each
long-capture request, so that each speed-up is a pair measured at the same moment; the model's
FLOP per sample against a matmul measured here; a repeated
request answered from the result cache (docs/cache.md: everything else is sent with
Cache-Control: no-cache, so it measures analysis). Prints a table and writes docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
import psutil
import requests
import torch
import yaml
from scipy import signal as sps

from pdseg.model import PRESETS, UNet1D, flops_per_window, load_trained
from pdseg.window import WindowPlan
from serve import LocalServer, shipped_model_config, wait_policy
from training import synthetic

ROOT = _bootstrap.ROOT
PREDECESSOR_WINDOW = 1024
RUNTIMES = ("torchscript", "onnx")  # the default archive first (scripts/export.py --runtime)
# Sent with every measured request but the cache's own: the same payloads are sent many times,
# and each should be analysed (its answer is still stored, as a first request's would be).
FRESH = "no-cache"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


# --- the server side ----------------------------------------------------------------------

def server_processes(server: LocalServer | None) -> dict[str, list[psutil.Process]]:
    """The JVM frontend and the Python workers of the server we started."""
    found = {"frontend": [], "workers": []}
    if server is None or server.process is None:
        return found
    try:
        family = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.Error:
        return found
    for process in family:
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "org.pytorch.serve.ModelServer" in command:
            found["frontend"].append(process)
        elif "model_service_worker" in command:
            found["workers"].append(process)
    return found


def rss_mib(server: LocalServer | None) -> dict:
    processes = server_processes(server)
    sizes = {}
    for role, members in processes.items():
        values = []
        for process in members:
            try:
                values.append(process.memory_info().rss / 2**20)
            except psutil.Error:
                pass
        sizes[role] = [round(v, 1) for v in values]
    sizes["total"] = round(sum(sum(v) for v in sizes.values()), 1)
    return sizes


def cpu_seconds(server: LocalServer | None) -> dict[str, float]:
    """User + system CPU seconds the frontend and the workers have used so far."""
    used = {}
    for role, members in server_processes(server).items():
        total = 0.0
        for process in members:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        used[role] = total
    return used


class RssSampler(threading.Thread):
    """Frontend + worker RSS every ``period`` seconds while the load runs."""

    def __init__(self, server: LocalServer | None, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.server, self.period, self.samples = server, period, []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append(rss_mib(self.server)["total"])
            self.stopping.wait(self.period)

    def stop(self) -> list[float]:
        self.stopping.set()
        self.join()
        return self.samples


def long_capture_over_http(url: str, capture: np.ndarray, repeats: int,
                           predecessor: "Predecessor | None" = None, predecessor_s: float = 1.6) -> dict:
    """The long capture ``repeats`` times over HTTP; with ``predecessor``, its approach timed for
    ``predecessor_s`` after each request, and the speed-up as the median of the pairs' ratios."""
    payload = npy_bytes(capture)
    durations, rates, regions = [], [], None
    for _ in range(repeats):
        started = time.perf_counter()
        response = requests.post(url, data=payload, headers={"Content-Type": "application/x-npy",
                                                             "Cache-Control": FRESH}, timeout=300)
        durations.append(time.perf_counter() - started)
        response.raise_for_status()
        regions = len(response.json()["signals"][0]["regions"])
        if predecessor is not None:
            rates.append(predecessor.rate(predecessor_s))
    median = statistics.median(durations)
    figures = {"samples": int(capture.size), "payload_mb": round(len(payload) / 1e6, 2), "repeats": repeats,
               "seconds_median": round(median, 4), "seconds_all": [round(d, 4) for d in durations],
               "samples_per_s": round(capture.size / median), "regions": regions}
    if rates:
        ratios = [capture.size / seconds / rate for seconds, rate in zip(durations, rates)]
        figures["predecessor_samples_per_s_all"] = [round(rate) for rate in rates]
        figures["speedup_all"] = [round(ratio, 1) for ratio in ratios]
        figures["speedup_median"] = round(statistics.median(ratios), 1)
    return figures


async def _http_client(host: str, port: int, path: str, payloads: list[bytes], number: int,
                       count: int, latencies: list[float], failures: list[int]) -> None:
    """One closed-loop client on one keep-alive connection: send, read the whole answer, repeat.
    Plain asyncio streams: a few tens of microseconds of client CPU per request, where a
    requests.Session in a thread costs about a millisecond and the GIL; the server shares
    this machine's cores with the load generator."""
    reader = writer = None
    for index in range(count):
        body = payloads[(number + index) % len(payloads)]
        request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-npy\r\n"
                   f"Cache-Control: {FRESH}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            status = await asyncio.wait_for(_exchange(reader, writer, request), timeout=60)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            status = None
            if writer is not None:
                writer.close()
            reader = writer = None
        if status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            failures.append(status or 0)
    if writer is not None:
        writer.close()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status


def concurrent_load(url: str, signals: list[np.ndarray], clients: int, requests_per_client: int) -> dict:
    payloads = [npy_bytes(s) for s in signals]
    parsed = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    failures: list[int] = []

    async def run_all() -> None:
        await asyncio.gather(*(
            _http_client(parsed.hostname, parsed.port or 80, parsed.path, payloads, number,
                         requests_per_client, latencies, failures) for number in range(clients)))

    started = time.perf_counter()
    asyncio.run(run_all())
    wall = time.perf_counter() - started
    total = clients * requests_per_client
    return {"clients": clients, "requests": total, "errors": len(failures),
            "requests_per_s": round(total / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 95) * 1000, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1)}


def repeated_load(url: str, signals: list[np.ndarray], clients: int, requests_per_client: int,
                  rounds: int) -> dict:
    """A warm-up round, then ``rounds`` runs of :func:`concurrent_load`; each figure is the
    median over the rounds (errors: the sum), every round's figures are kept under "rounds"."""
    # One uncounted round first: the frontend's JIT compiler and ONNX Runtime's per-shape
    # kernel setup cost the first few hundred requests at a new load, which a running service
    # has long paid.
    concurrent_load(url, signals, clients, requests_per_client)
    runs = [concurrent_load(url, signals, clients, requests_per_client) for _ in range(rounds)]
    summary = {"clients": clients, "requests": sum(r["requests"] for r in runs),
               "errors": sum(r["errors"] for r in runs)}
    for key in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms"):
        summary[key] = round(statistics.median(r[key] for r in runs), 1)
    if rounds > 1:
        summary["rounds"] = runs
    return summary


def cache_hit_latency(url: str, signal_: np.ndarray, repeats: int) -> dict:
    """One request sent ``repeats`` + 1 times in a row on one connection: the first is analysed
    and stored, the others are answered from the result cache (with several workers, some may
    land on a worker that has not seen it yet: "hits" counts those that did not)."""
    payload = npy_bytes(signal_)
    durations, statuses = [], []
    with requests.Session() as session:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            response = session.post(url, data=payload, headers={"Content-Type": "application/x-npy"}, timeout=120)
            durations.append(time.perf_counter() - started)
            response.raise_for_status()
            statuses.append(response.headers.get("Cache-Status", ""))
    repeated = durations[1:]
    return {"samples": int(signal_.size), "first_ms": round(durations[0] * 1000, 1), "repeats": repeats,
            "hits": sum(status.endswith("; hit") for status in statuses[1:]),
            "p50_ms": round(percentile(repeated, 50) * 1000, 2), "p99_ms": round(percentile(repeated, 99) * 1000, 2)}


# --- the predecessor's approach, in-process ------------------------------------------------

class Predecessor:
    """Its preprocessing (3rd-order Butterworth high-pass, one maximum for the whole input) and
    its inference loop: the 12.1 M-parameter UNet1D in eager mode, one 1,024-sample window at a
    time, stride 512. Random weights: the speed does not depend on them. :meth:`rate` runs the
    loop for a time budget, going on where the last call stopped, and extrapolates to the whole
    capture; calls between the long-capture requests make each ratio a pair measured at the
    same moment of a machine whose speed drifts by 20-30 % within an hour."""

    def __init__(self, capture: np.ndarray) -> None:
        torch.manual_seed(0)
        self.network = UNet1D(PRESETS["predecessor"]).eval()
        self.size = capture.size
        self.stride = PREDECESSOR_WINDOW // 2
        started = time.perf_counter()
        b, a = sps.butter(3, 0.4 / 0.5, btype="high")
        filtered = sps.filtfilt(b, a, capture).astype(np.float32)
        filtered /= max(np.abs(filtered).max(), 1e-30)
        self.preprocess_s = time.perf_counter() - started
        self.filtered = filtered
        self.starts = range(0, filtered.size - PREDECESSOR_WINDOW + 1, self.stride)
        self.next = 0
        self.windows_timed, self.seconds_timed = 0, 0.0
        with torch.no_grad():
            self.network(torch.zeros(1, 1, PREDECESSOR_WINDOW))  # warm-up

    def rate(self, seconds_budget: float) -> float:
        """Samples per second over the whole capture, from windows timed for ``seconds_budget``."""
        windows_done, inference_s = 0, 0.0
        with torch.no_grad():
            loop_started = time.perf_counter()
            while inference_s <= seconds_budget:
                start = self.starts[self.next % len(self.starts)]
                self.next += 1
                window = torch.from_numpy(self.filtered[start: start + PREDECESSOR_WINDOW]).view(1, 1, -1)
                self.network(window).squeeze().numpy()
                windows_done += 1
                inference_s = time.perf_counter() - loop_started
        self.windows_timed += windows_done
        self.seconds_timed += inference_s
        return self._extrapolated(windows_done, inference_s)

    def _extrapolated(self, windows: int, seconds: float) -> float:
        return self.size / (self.preprocess_s + seconds * self.size / (windows * self.stride))

    def overall(self) -> dict:
        """Its figures over every window timed so far."""
        rate = self._extrapolated(self.windows_timed, self.seconds_timed)
        return {"windows_timed": self.windows_timed, "seconds_timed": round(self.seconds_timed, 2),
                "seconds_per_capture_extrapolated": round(self.size / rate, 2), "samples_per_s": round(rate)}


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    first, second = torch.randn(size, size), torch.randn(size, size)
    torch.mm(first, second)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(first, second)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.release()}"


def versions() -> str:
    import importlib.metadata as metadata

    names = ("torch", "torchserve", "numpy", "scipy")
    return ", ".join(f"{n} {metadata.version(n)}" for n in names) + f", Python {platform.python_version()}"


# --- report ----------------------------------------------------------------------------------

def table(results: dict) -> str:
    lines = []
    long = results["long_capture"]
    predecessor = results["predecessor"]
    lines.append(f"Long capture: {long['samples']:,} samples ({long['payload_mb']} MB .npy), median of "
                 f"{long['repeats']}: {long['seconds_median']:.3f} s -> {long['samples_per_s']:,} samples/s over HTTP")
    lines.append(f"Predecessor approach (in-process, 12.1 M params, eager, 1,024-sample windows one at a time, "
                 f"50 % overlap): {predecessor['samples_per_s']:,} samples/s, "
                 f"{predecessor['seconds_per_capture_extrapolated']} s per capture")
    pairs = long.get("speedup_all")
    lines.append(f"Speed-up over the predecessor: {results['speedup']:.1f}x"
                 + (f" (median of {len(pairs)} pairs, each request timed beside the predecessor's approach right "
                    f"after it: {', '.join(f'{ratio:g}' for ratio in pairs)})" if pairs else ""))
    lines.append("")
    lines.append("Concurrent 7,920-sample signals (.npy), closed loop; medians over the rounds of each level:")
    lines.append("")
    lines.append("| clients | requests | errors | requests/s | p50 ms | p95 ms | p99 ms | CPU ms per request: frontend / workers |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for row in results["concurrency"]:
        cpu = row.get("cpu_ms_per_request")
        lines.append(f"| {row['clients']} | {row['requests']} | {row['errors']} | {row['requests_per_s']} | "
                     f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                     + (f"{cpu['frontend']} / {cpu['workers']} |" if cpu else "- |"))
    concurrent_long = results.get("long_concurrency")
    if concurrent_long:
        lines.append("")
        lines.append(f"Concurrent long captures ({concurrent_long['samples']:,} samples, .npy): "
                     f"{concurrent_long['clients']} clients, {concurrent_long['requests']} requests, "
                     f"{concurrent_long['errors']} errors, {concurrent_long['requests_per_s']} requests/s, "
                     f"p50 {concurrent_long['p50_ms']} ms, p99 {concurrent_long['p99_ms']} ms "
                     f"(the workers' OMP_WAIT_POLICY: {', '.join(concurrent_long['omp_wait_policy']) or '-'})")
    cached = results["cache"]
    lines.append("")
    lines.append(f"Repeated request ({cached['samples']:,} samples, .npy, one client): the first "
                 f"{cached['first_ms']} ms (analysed); {cached['hits']} of {cached['repeats']} repeats answered from "
                 f"the result cache, p50 {cached['p50_ms']} ms, p99 {cached['p99_ms']} ms")
    memory = results["memory"]
    lines.append("")
    lines.append(f"RSS MiB before load: frontend {memory['before']['frontend']}, workers {memory['before']['workers']}, "
                 f"total {memory['before']['total']}")
    lines.append(f"RSS MiB after load:  frontend {memory['after']['frontend']}, workers {memory['after']['workers']}, "
                 f"total {memory['after']['total']}; during load min {memory['during_min']}, max {memory['during_max']}")
    if len(results.get("runtimes", {})) > 1:
        lines.append("")
        lines.append("The archives side by side (same weights, same server settings, one after the other):")
        lines.append("")
        lines.append("| runtime | long capture s | speed-up | p50 / p99 ms, 1 client | p50 / p99 ms, 8 clients "
                     "| requests/s, 8 clients | RSS max MiB under load |")
        lines.append("|---|---|---|---|---|---|---|")
        for runtime, figures in results["runtimes"].items():
            by_clients = {row["clients"]: row for row in figures["concurrency"]}
            one, eight = by_clients.get(1, {}), by_clients.get(8, {})
            lines.append(f"| {runtime} | {figures['long_capture']['seconds_median']:.3f} | {figures['speedup']:.1f}x | "
                         f"{one.get('p50_ms', '-')} / {one.get('p99_ms', '-')} | {eight.get('p50_ms', '-')} / "
                         f"{eight.get('p99_ms', '-')} | {eight.get('requests_per_s', '-')} | "
                         f"{figures['memory']['during_max']} |")
    model = results["model"]
    lines.append("")
    lines.append(f"Model: {model['flops_per_sample']:,.0f} FLOP per output sample (window {model['window']}, "
                 f"core {model['core']}); achieved {model['achieved_gflops']:.1f} GFLOP/s end to end on the long "
                 f"capture vs matmul {model['matmul_gflops']:.0f} GFLOP/s measured in this run")
    return "\n".join(lines)


def write_report(results: dict, text: str) -> None:
    """Replace the generated part of docs/benchmarks.md; the written analysis around it stays."""
    path = ROOT / "docs" / "benchmarks.md"
    generated = (
        f"Produced by `{results['command'].strip()}` on {results['date']}.\n\n"
        f"- Machine: {results['machine']}\n- Versions: {results['versions']}\n"
        f"- Server: {results['server']}\n\n" + text + "\n\n"
        "<details><summary>Raw figures</summary>\n\n```json\n" + json.dumps(results, indent=2)
        + "\n```\n</details>\n")
    existing = path.read_text() if path.is_file() else "# Benchmarks\n\n<!-- bench:start -->\n<!-- bench:end -->\n"
    head, rest = existing.split("<!-- bench:start -->", 1)
    _, tail = rest.split("<!-- bench:end -->", 1)
    path.write_text(head + "<!-- bench:start -->\n" + generated + "<!-- bench:end -->" + tail)


LONG_CLIENTS, LONG_REQUESTS_EACH = 4, 3


def worker_wait_policies(server: LocalServer | None) -> list[str]:
    """The workers' OMP_WAIT_POLICY, read from their environment (a server of ours only)."""
    policies = set()
    for process in server_processes(server)["workers"]:
        try:
            policies.add(wait_policy(process.environ()))
        except psutil.Error:
            policies.add("UNKNOWN")
    return sorted(policies)


def measure(url: str, server: LocalServer | None, capture: np.ndarray, short_signals: list[np.ndarray],
            repeated: np.ndarray, quick: bool, levels, predecessor: Predecessor | None = None) -> dict:
    """Every figure of one running server: the long capture, the load levels, memory, a repeat."""
    # Warm-up: every worker sees long captures (its first costs it up to twice a warm
    # one: allocations and caches of a new size), as a running service has long done.
    workers = max(1, len(server_processes(server)["workers"]))
    for signal_ in short_signals[:2] + [capture[:50_000] if quick else capture] * (2 * workers):
        requests.post(url, data=npy_bytes(signal_), headers={"Content-Type": "application/x-npy",
                                                             "Cache-Control": FRESH}, timeout=300)
    figures = {}
    memory = {"before": rss_mib(server)}
    figures["long_capture"] = long_capture_over_http(url, capture, 1 if quick else 7, predecessor,
                                                     0.5 if quick else 1.6)
    sampler = RssSampler(server)
    sampler.start()
    figures["concurrency"] = []
    for clients in levels:
        # Where the cores go: the CPU the server's processes used over the level (its warm-up
        # round included) per request sent.
        per_client, rounds = (3, 1) if quick else (40, 3)
        before = cpu_seconds(server)
        row = repeated_load(url, short_signals, clients, per_client, rounds)
        after = cpu_seconds(server)
        if server is not None:
            sent = clients * per_client * (rounds + 1)
            row["cpu_ms_per_request"] = {role: round((after[role] - before[role]) / sent * 1000, 2) for role in after}
        figures["concurrency"].append(row)
    during = sampler.stop()
    memory["after"] = rss_mib(server)
    memory["during_min"] = round(min(during), 1) if during else None
    memory["during_max"] = round(max(during), 1) if during else None
    figures["memory"] = memory
    # Long captures at once: both workers run the network on two threads each, on two cores
    # (OpenMP threads that spun at barriers made this six times slower: docs/benchmarks.md).
    # After the load levels: the frontend's heap grows to hold their bodies (192 -> 371 MiB),
    # and would set the memory figures of the levels.
    long_clients, long_each = (2, 1) if quick else (LONG_CLIENTS, LONG_REQUESTS_EACH)
    figures["long_concurrency"] = concurrent_load(url, [capture], long_clients, long_each) | {
        "samples": int(capture.size), "omp_wait_policy": worker_wait_policies(server)}
    figures["cache"] = cache_hit_latency(url, repeated, 20 if quick else 200)
    return figures


def start_server(runtime: str, environment: dict, workers: int | None, store: Path,
                 batch_size: int | None = None) -> LocalServer:
    """A local TorchServe on the shipped weights packed for ``runtime`` into ``store`` (model_store/'s
    archive may hold either, after make archive RUNTIME=...), with ``batch_size`` instead of the
    shipped one where given. A caller's PD_CACHE_URL stays out: a shared cache would answer the
    first request of the cache figure."""
    from export import export

    model_config = ROOT / "config" / "model-config.yaml"
    if batch_size:
        model_config = store / "model-config.yaml"
        model_config.write_text(yaml.safe_dump(shipped_model_config() | {"batchSize": batch_size}, sort_keys=False))
    export(ROOT / "model_store" / "weights", "pd_segmenter", store, "1.0", model_config=model_config, runtime=runtime)
    server = LocalServer(environment={"PD_CACHE_URL": ""} | environment, model_store=store).start()
    server.wait_ready()
    if workers:
        requests.put(f"{server.management_url}/models/pd_segmenter",
                     params={"min_worker": workers, "max_worker": workers, "synchronous": "true"},
                     timeout=300).raise_for_status()
        server.wait_ready(workers=workers)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="inference base URL of a running server")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", default=None, help="also write the raw figures here")
    parser.add_argument("--clients", type=int, nargs="+", default=None, help="concurrency levels (default 1 4 8 16)")
    parser.add_argument("--workers", type=int, default=None, help="scale the started server to N workers")
    parser.add_argument("--threads", type=int, default=None, help="network threads per worker (PD_TORCH_THREADS)")
    parser.add_argument("--batch-size", type=int, default=None, help="pack the archive with this batchSize")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES),
                        help="archives to serve one after the other (the first is reported in full)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    long_length = 40_000 if args.quick else 800_000
    levels = args.clients or ((1, 2) if args.quick else (1, 4, 8, 16))
    rng = np.random.default_rng(2026)
    capture = synthetic.make_capture(rng, long_length, samples_per_cycle=float(long_length), pd_free=False,
                                     snr_db=24.0, interference=True).signal
    short_signals = [synthetic.make_capture(rng, 7920, samples_per_cycle=3333.0).signal for _ in range(8)]
    repeated = synthetic.make_capture(rng, 7920, samples_per_cycle=3333.0).signal  # a signal not sent before

    environment = {"PD_TORCH_THREADS": str(args.threads)} if args.threads else {}
    predecessor = Predecessor(capture)
    runtimes = ["(given server)"] if args.url else args.runtimes
    measured = {}
    for runtime in runtimes:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as store:
            server = None if args.url else start_server(runtime, environment, args.workers, Path(store),
                                                        args.batch_size)
            try:
                base = args.url or server.inference_url
                measured[runtime] = measure(f"{base}/predictions/pd_segmenter", server, capture, short_signals,
                                            repeated, args.quick, levels, predecessor)
            finally:
                if server is not None:
                    server.stop()

    shipped = shipped_model_config()
    results = {"command": "python scripts/bench.py " + " ".join(sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": machine(), "versions": versions(),
               "server": (f"started by the benchmark on the shipped weights, packed for {' and '.join(runtimes)} "
                          f"(scripts/export.py --runtime), config/local.properties, workers {args.workers or shipped['minWorkers']}, "
                          f"batch size {args.batch_size or shipped['batchSize']}, network threads per worker "
                          f"{args.threads or 'from model-config.yaml'}") if not args.url else args.url}
    results |= measured[runtimes[0]]
    # Every runtime's long-capture requests were paired with the predecessor's approach timed
    # right after each (Predecessor); its rate over all of them is the one reported.
    results["predecessor"] = predecessor.overall()
    for figures in measured.values():
        figures["speedup"] = figures["long_capture"]["speedup_median"]
    results["speedup"] = measured[runtimes[0]]["speedup"]
    results["runtimes"] = measured
    network, record = load_trained(ROOT / "model_store" / "weights")
    plan = WindowPlan(**record["window"])
    flops_window = flops_per_window(network, plan.window)
    flops_per_sample = flops_window / plan.core
    matmul = matmul_gflops(512 if args.quick else 2048)
    results["model"] = {"flops_per_window": flops_window, "window": plan.window, "core": plan.core,
                        "flops_per_sample": round(flops_per_sample),
                        "achieved_gflops": round(flops_per_sample * results["long_capture"]["samples_per_s"] / 1e9, 2),
                        "matmul_gflops": round(matmul, 1)}
    text = table(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_write:
        write_report(results, text)


if __name__ == "__main__":
    main()
