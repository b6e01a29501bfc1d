"""Reliability figures against a real TorchServe; writes docs/reliability.md.

    python scripts/reliability.py                      # everything (`make reliability`, ~5 min)
    python scripts/reliability.py --only corpus,worst --no-write
    PD_INFERENCE_KEY=... PD_MANAGEMENT_KEY=... python scripts/reliability.py --container NAME \\
        --inference URL --management URL --only kill,worst   # a running container (image_test.sh)

Checks, each with its figures (a check that fails makes the exit status 1):

- properties: the decoders' Hypothesis properties (tests/test_decode_properties.py) under the
  "reliability" profile, thousands of generated bodies, no server;
- corpus: every named bad request of scripts/bad_inputs.py gets its 4xx with a JSON message,
  never a 5xx or a reset, and the worker survives them all;
- batch-mates: good and bad requests queued behind a long one, so that the worker takes them
  as one batch; each good answer must equal the same request sent alone;
- slow clients: slow-header, half-sent-body, silent and never-reading connections held open
  while locust sends normal traffic; that traffic must see no errors;
- soak: locust, 8 clients for 90 s after a warm-up: no errors, and the workers' RSS has no
  trend of 2.5 % or more per 1,000 requests (the low end of a Theil-Sen slope's 95 % interval
  over one-second readings); the frontend stays within its budget;
- worker kill: the worker is SIGKILLed under 8 clients' load: failed requests, time to the
  next success, requests that never got an answer (must be none);
- worst requests: on a server confined to one core, the largest request of each format, the
  most signals, the largest PNG answer and a batch of eight largest requests, each with the
  worker's peak RSS (must stay under 1 GiB) and its time (single requests under 5 s); three
  bursts of eight largest bodies, after each of which that body alone must be answered 200.

Local runs start their own TorchServe from model_store/pd_segmenter.mar on free loopback ports
(scripts/serve.py). With --container only the worker-kill and worst-request checks run, the
worker is killed and measured with `podman exec`.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import _bootstrap  # noqa: F401
import numpy as np
import psutil
import requests
from scipy import stats

from bad_inputs import MAX_REQUEST_SIZE, corpus
from pdseg import tones
from pdseg.decode import PICTURE_PANELS, WorkLimits
from serve import MODEL_NAME, ROOT, LocalServer, shipped_model_config, wait_policy

DOC = ROOT / "docs" / "reliability.md"
LOCUSTFILE = ROOT / "scripts" / "locustfile.py"
MEMORY_BUDGET_MIB = 1024  # one worker's peak RSS, shipped settings (k8s/base/deployment.yaml)
# The frontend JVM's: heap 384 + direct buffers 192 + metaspace 96 + code cache 64 (vmargs in
# config/*.properties) and ~96 for threads and the JVM itself.
FRONTEND_BUDGET_MIB = 832
TIME_BUDGET_S = 5.0  # the worst single request, one core
BURSTS = 3  # bursts of the largest bodies, each followed by that body alone
# Requests whose answer must come from analysis, not from the result cache (docs/cache.md).
FRESH = {"Cache-Control": "no-cache"}
RSS_GROWTH_LIMIT = 0.025  # soak: the workers' RSS per 1,000 requests, after warm-up
CHECKS = ("properties", "corpus", "batch", "slow", "soak", "kill", "worst")
CONTAINER_CHECKS = ("kill", "worst")
MIB = 2**20


def log(message: str) -> None:
    print(f"[reliability {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the server under test ------------------------------------------------------------------

class Target:
    """A running TorchServe: its URLs, and how to find, measure and kill its processes."""

    def __init__(self, inference_url: str, management_url: str, inference_key: str = "",
                 management_key: str = "", description: str = "") -> None:
        self.inference_url = inference_url.rstrip("/")
        self.management_url = management_url.rstrip("/")
        self.predict_url = f"{self.inference_url}/predictions/{MODEL_NAME}"
        self.auth = {"Authorization": f"Bearer {inference_key}"} if inference_key else {}
        self.management_auth = {"Authorization": f"Bearer {management_key}"} if management_key else {}
        self.inference_key = inference_key
        self.description = description

    def post(self, timeout: float = 120, headers: dict | None = None, **kwargs) -> requests.Response:
        return requests.post(self.predict_url, headers=self.auth | (headers or {}), timeout=timeout, **kwargs)

    def described(self) -> dict:
        """The management API's description of the model (workers, batch size, ...)."""
        response = requests.get(f"{self.management_url}/models/{MODEL_NAME}", headers=self.management_auth,
                                timeout=10)
        return response.json()[0]

    def workers(self) -> list[dict]:
        return self.described()["workers"]

    def worker_pid(self) -> int:
        return int(self.workers()[0]["pid"])

    def worker_pids(self) -> list[int]:
        """Every worker's pid (the archive starts ``minWorkers`` of them)."""
        return [int(worker["pid"]) for worker in self.workers()]

    def batch_size(self) -> int:
        return int(self.described()["batchSize"])

    def wait_new_worker(self, old_pid: int, timeout: float = 120) -> float:
        """Seconds until as many READY workers as before are there, none of them ``old_pid``."""
        started = time.monotonic()
        count = len(self.workers())
        while time.monotonic() - started < timeout:
            try:
                ready = [w for w in self.workers() if w["status"] == "READY" and int(w["pid"]) != old_pid
                         and self.alive(int(w["pid"]))]
                if len(ready) >= count:
                    return time.monotonic() - started
            except (requests.RequestException, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"no new READY worker within {timeout:.0f} s")

    # process access: local by default, overridden for a container
    def alive(self, pid: int) -> bool:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def status(self, pid: int) -> dict[str, int]:
        """/proc/<pid>/status memory lines, in kB."""
        return _memory_lines(Path(f"/proc/{pid}/status").read_text())

    def reset_peak(self, pid: int) -> bool:
        """Reset the process's peak RSS (VmHWM) to its current RSS (Linux clear_refs 5)."""
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def frontend_pid(self) -> int | None:
        return None

    def cores(self) -> int:
        """The CPUs the server's processes may run on."""
        return len(os.sched_getaffinity(0))

    def environment(self, pid: int) -> dict[str, str]:
        """The process's environment."""
        return psutil.Process(pid).environ()


def _wait_policy(target: "Target", pid: int) -> str:
    """A worker's OMP_WAIT_POLICY (serve.wait_policy; "UNKNOWN" where its environment cannot be read)."""
    try:
        return wait_policy(target.environment(pid))
    except (OSError, subprocess.SubprocessError, psutil.Error):
        return "UNKNOWN"


def _memory_lines(text: str) -> dict[str, int]:
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


class LocalTarget(Target):
    def __init__(self, server: LocalServer, description: str) -> None:
        super().__init__(server.inference_url, server.management_url, description=description)
        self.server = server

    def frontend_pid(self) -> int | None:
        for process in psutil.Process(self.server.process.pid).children(recursive=True):
            if process.name() == "java":
                return process.pid
        return None

    def cores(self) -> int:
        return len(self.server.cpus) if self.server.cpus else super().cores()

    def batches_received(self) -> int:
        """The worker logs a line for every batch it receives."""
        return self.server._read_log("model_log.log").count("Backend received inference at")


class ContainerTarget(Target):
    """A container started by scripts/image_test.sh: processes are reached with podman exec."""

    def __init__(self, container: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.container = container

    def _exec(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", "exec", self.container, *command], capture_output=True, text=True,
                              timeout=30)

    def alive(self, pid: int) -> bool:
        return self._exec("sh", "-c", f"kill -0 {pid}").returncode == 0  # the shell's kill: no procps

    def kill(self, pid: int) -> None:
        self._exec("sh", "-c", f"kill -KILL {pid}").check_returncode()

    def status(self, pid: int) -> dict[str, int]:
        result = self._exec("cat", f"/proc/{pid}/status")
        result.check_returncode()
        return _memory_lines(result.stdout)

    def reset_peak(self, pid: int) -> bool:
        return self._exec("sh", "-c", f"echo 5 > /proc/{pid}/clear_refs").returncode == 0

    def environment(self, pid: int) -> dict[str, str]:
        result = subprocess.run(["podman", "exec", self.container, "cat", f"/proc/{pid}/environ"],
                                capture_output=True, timeout=30)
        result.check_returncode()
        return dict(item.partition(b"=")[::2] for item in result.stdout.split(b"\0") if item)

    def cores(self) -> int:
        """The CPUs the container's processes may run on (its affinity; image_test.sh sets no
        CPU limit)."""
        result = self._exec("python", "-I", "-S", "-c", "import os; print(len(os.sched_getaffinity(0)))")
        return int(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip().isdigit() else super().cores()

    def frontend_pid(self) -> int | None:
        find = ("import os\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
                "    try:\n        command = open(f'/proc/{pid}/cmdline', 'rb').read()\n    except OSError:\n"
                "        continue\n    if b'org.pytorch.serve.ModelServer' in command:\n        print(pid)")
        result = self._exec("python", "-I", "-S", "-c", find)
        return int(result.stdout.split()[0]) if result.returncode == 0 and result.stdout.split() else None


class PeakSampler:
    """The largest peak RSS of any of the processes ``pids`` (the workers: a request may reach
    either) while a block runs: VmHWM after a reset where the kernel lets us, else the largest
    RSS seen every 10 ms."""

    def __init__(self, target: Target, pids: list[int]) -> None:
        self.target, self.pids = target, list(pids)
        self.peak_kb = 0
        self.method = ""

    def __enter__(self) -> "PeakSampler":
        self.exact = all([self.target.reset_peak(pid) for pid in self.pids])
        self.method = "VmHWM after clear_refs" if self.exact else "VmRSS sampled every 10 ms"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if not self.exact:
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, *(self.target.status(pid)["VmRSS"] for pid in self.pids))
            except (OSError, KeyError, subprocess.SubprocessError):
                return
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        if self.exact:
            self.peak_kb = max(self.target.status(pid)["VmHWM"] for pid in self.pids)
        else:
            self._stop.set()
            self._thread.join()

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kb / 1024, 1)


# --- locust ----------------------------------------------------------------------------------

def run_locust(target: Target, users: int, seconds: int, workdir: Path, name: str,
               request_log: Path | None = None, timeout_s: float = 60) -> dict:
    """locust headless; the aggregated figures from its CSV."""
    prefix = workdir / name
    environment = os.environ | {"PD_LOAD_TIMEOUT": str(timeout_s)}
    if target.inference_key:
        environment["PD_LOAD_TOKEN"] = target.inference_key
    if request_log:
        environment["PD_LOAD_LOG"] = str(request_log)
    locust = Path(sys.executable).parent / "locust"
    command = [str(locust), "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users),
               "-t", f"{seconds}s", "--host", target.inference_url, "--csv", str(prefix), "--only-summary",
               "--stop-timeout", str(int(timeout_s) + 10), "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True,
                            timeout=seconds + timeout_s + 120)
    if result.returncode != 0:
        raise RuntimeError(f"locust exited with {result.returncode}:\n{result.stderr[-3000:]}")
    with open(f"{prefix}_stats.csv") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = {key: (value if value != "N/A" else "0") for key, value in rows["Aggregated"].items()}
    failures = []
    if Path(f"{prefix}_failures.csv").is_file():
        with open(f"{prefix}_failures.csv") as handle:
            failures = [f"{row['Name']}: {row['Error']} (x{row['Occurrences']})" for row in csv.DictReader(handle)]
    return {"users": users, "seconds": seconds, "requests": int(total["Request Count"]),
            "failures": int(total["Failure Count"]), "requests_per_s": round(float(total["Requests/s"]), 1),
            "p50_ms": int(float(total["50%"])), "p95_ms": int(float(total["95%"])),
            "p99_ms": int(float(total["99%"])), "max_ms": int(float(total["Max Response Time"])),
            "failure_kinds": failures[:10]}


# --- checks ----------------------------------------------------------------------------------

def check_properties() -> tuple[dict, list[str]]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
               str(ROOT / "tests" / "test_decode_properties.py")]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env=os.environ | {"HYPOTHESIS_PROFILE": "reliability"}, timeout=1800)
    examples = sum(int(n) for n in re.findall(r"(\d+) passing", result.stdout))
    tests = re.search(r"(\d+) passed", result.stdout)
    figures = {"command": "HYPOTHESIS_PROFILE=reliability pytest tests/test_decode_properties.py",
               "tests_passed": int(tests.group(1)) if tests else 0, "generated_examples": examples,
               "seconds": round(time.monotonic() - started, 1)}
    failures = [] if result.returncode == 0 else [f"property tests failed:\n{result.stdout[-3000:]}"]
    return figures, failures


def check_corpus(target: LocalTarget) -> tuple[dict, list[str]]:
    limits = WorkLimits()
    cases = corpus(limits.max_work, limits.max_signals)
    pids = sorted(target.worker_pids())
    rows, failures = [], []
    for case in cases:
        started = time.monotonic()
        try:
            response = target.post(data=case.body, headers=case.headers, timeout=60)
            status = response.status_code
            ok = status == case.status
            if ok and not case.frontend:
                answer = response.json()
                ok = (answer.get("status") == status and case.words in answer.get("error", "")
                      and response.headers.get("Content-Type", "").startswith("application/json"))
            detail = "" if case.frontend else response.text[:160].replace("\n", " ")
        except (requests.RequestException, ValueError) as error:
            status, ok, detail = "no answer", False, f"{type(error).__name__}: {error}"[:160]
        seconds = time.monotonic() - started
        rows.append({"name": case.name, "content_type": case.content_type or "(none)", "bytes": len(case.body),
                     "expected": case.status, "status": status, "ok": ok, "ms": round(seconds * 1000)})
        if not ok:
            failures.append(f"corpus {case.name}: expected {case.status}, got {status} {detail}")
    healthy = requests.get(f"{target.inference_url}/ping", timeout=10).json().get("status") == "Healthy"
    survived = sorted(target.worker_pids()) == pids
    if not survived:
        failures.append("corpus: a worker was replaced while answering bad input")
    statuses = {}
    for row in rows:
        statuses[str(row["status"])] = statuses.get(str(row["status"]), 0) + 1
    return {"cases": len(rows), "as_expected": sum(row["ok"] for row in rows), "statuses": statuses,
            "server_errors": sum(1 for row in rows if isinstance(row["status"], int) and row["status"] >= 500),
            "no_answer": sum(1 for row in rows if row["status"] == "no answer"),
            "healthy_after": healthy, "same_worker_after": survived, "rows": rows}, failures


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _wait_for(counter, count: int, wait: float = 60) -> None:
    """Until ``counter()`` reaches ``count`` (or ``wait`` seconds pass)."""
    deadline = time.monotonic() + wait
    while counter() < count and time.monotonic() < deadline:
        time.sleep(0.05)


def _settled(counter, wait: float = 10) -> int:
    count, deadline = counter(), time.monotonic() + wait
    while time.monotonic() < deadline:  # the worker's log is written asynchronously
        time.sleep(0.5)
        latest = counter()
        if latest == count:
            break
        count = latest
    return count


def check_batch_mates(target: LocalTarget, rounds: int = 3) -> tuple[dict, list[str]]:
    """Per round: a long request occupies each worker, 4 good and 4 bad requests queue behind
    them, interleaved, and reach the workers in as few batches as the batch size allows. Good
    answers must equal the same requests sent alone."""
    limits = WorkLimits()
    captures = np.load(ROOT / "data" / "sample_captures.npy").astype(np.float64)
    cases = {case.name: case for case in corpus(limits.max_work, limits.max_signals)}
    bad_sets = [["issue15_booleans", "issue15_nested_10000", "npy_header_claims_a_billion_samples",
                 "issue15_form_encoded"],
                ["json_nan", "npy_pickled_objects", "csv_letters", "float32_partial_sample"],
                ["issue15_numeric_strings", "json_too_many_signals", "multipart_bad_threshold", "xml"]]
    # The slowest request the limits admit (~2.7 s): one of white noise was done in ~0.6 s once the
    # workers' threads stopped spinning against each other (OMP_WAIT_POLICY=PASSIVE), and the 8
    # requests behind it, still being queued, then reached the workers in more batches.
    blocker = most_tone_fits(limits, np.random.default_rng(5))[1]
    workers, batch_size = len(target.worker_pids()), target.batch_size()
    failures, figures = [], {"rounds": rounds, "batches": [], "good_equal_alone": 0, "good": 0, "bad_4xx": 0,
                             "bad": 0, "workers": workers, "batch_size": batch_size}
    for number in range(rounds):
        rng = np.random.default_rng(number)
        rows = captures[rng.permutation(len(captures))[:4]]
        good = [
            {"data": json.dumps({"signal": rows[0].tolist(), "threshold": 0.5}).encode(),
             "headers": {"Content-Type": "application/json"}},
            {"data": _npy(rows[1]), "headers": {"Content-Type": "application/x-npy"}},
            {"data": ",".join(map(repr, rows[2].tolist())).encode(), "headers": {"Content-Type": "text/csv"}},
            {"data": rows[3].astype("<f4").tobytes(), "headers": {"Content-Type": "application/octet-stream"}},
        ]
        bad = [cases[name] for name in bad_sets[number % len(bad_sets)]]
        alone = [target.post(**kwargs) for kwargs in good]
        # Analysed again, not answered from the result cache that `alone` just filled.
        fresh = [kwargs | {"headers": kwargs["headers"] | FRESH} for kwargs in good]
        mixed = [item for pair in zip(fresh, [{"data": c.body, "headers": c.headers} for c in bad]) for item in pair]
        before = _settled(target.batches_received)
        with ThreadPoolExecutor(max_workers=len(mixed) + workers) as pool:
            busy = []
            for held in range(1, workers + 1):
                busy.append(pool.submit(target.post, data=blocker["data"], headers=blocker["headers"] | FRESH))
                # Once a worker holds the one before: two blockers in the queue together, even
                # 0.1 s apart, can be one batch of one worker.
                _wait_for(target.batches_received, before + held)
            time.sleep(0.2)
            futures = [pool.submit(target.post, **kwargs) for kwargs in mixed]
            # All queued (the last submitted) while the blockers still hold the workers?
            blocked = not any(future.done() for future in busy)
            together = [future.result() for future in futures]
            blocker_statuses = [future.result().status_code for future in busy]
        if blocker_statuses != [200] * workers:
            failures.append(f"batch-mates round {number}: the blockers were answered {blocker_statuses}")
        if not blocked:
            failures.append(f"batch-mates round {number}: a blocker was done before its batch-mates were sent")
        batches = _settled(target.batches_received) - before - workers  # less the blockers'
        figures["batches"].append(batches)
        expected = -(-len(mixed) // batch_size)
        if batches != expected:
            failures.append(f"batch-mates round {number}: the {len(mixed)} requests took {batches} batches, "
                            f"not {expected}")
        for response, case in zip(together[1::2], bad):
            figures["bad"] += 1
            if response.status_code == case.status:
                figures["bad_4xx"] += 1
            else:
                failures.append(f"batch-mates round {number}: {case.name} got {response.status_code}")
        for index, (response, single) in enumerate(zip(together[0::2], alone)):
            figures["good"] += 1
            if response.status_code == 200 and single.status_code == 200 and response.json() == single.json():
                figures["good_equal_alone"] += 1
            else:
                failures.append(f"batch-mates round {number}: good request {index} differs from its answer alone")
    return figures, failures


class SlowClients:
    """Connections that misbehave while normal traffic flows; each kind holds its socket open."""

    def __init__(self, host: str, port: int, each: int = 12, auth: dict | None = None) -> None:
        self.host, self.port, self.each = host, port, each
        self.auth_line = "".join(f"{k}: {v}\r\n" for k, v in (auth or {}).items())
        self.sockets: dict[str, list[socket.socket]] = {}
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _connect(self, receive_buffer: int | None = None) -> socket.socket:
        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        connection.settimeout(10)
        connection.connect((self.host, self.port))
        return connection

    def start(self) -> None:
        path = f"/predictions/{MODEL_NAME}"
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth_line}"
        captures = _npy(np.load(ROOT / "data" / "sample_captures.npy").astype(np.float64))
        answered_request = (head + "Content-Type: application/x-npy\r\n"
                            f"Content-Length: {len(captures)}\r\n\r\n").encode() + captures
        for kind in ("slow headers", "half-sent body", "silent", "never reads"):
            self.sockets[kind] = []
            for _ in range(self.each):
                connection = self._connect(4096 if kind == "never reads" else None)
                if kind == "slow headers":
                    connection.sendall(head.encode())
                elif kind == "half-sent body":
                    connection.sendall((head + "Content-Type: application/x-npy\r\nContent-Length: 1000000\r\n\r\n")
                                       .encode() + b"\x93NUMPY" + b"\x00" * 1000)
                elif kind == "never reads":
                    for _ in range(2):  # pipelined: answers pile up unread
                        connection.sendall(answered_request)
                self.sockets[kind].append(connection)
        trickle = threading.Thread(target=self._trickle, daemon=True)
        trickle.start()
        self.threads.append(trickle)

    def _trickle(self) -> None:
        """One header byte per second on every slow-header connection."""
        while not self.stop.wait(1.0):
            for connection in self.sockets.get("slow headers", []):
                try:
                    connection.send(b"X")
                except OSError:
                    pass

    def finish(self) -> dict:
        """Which connections the server has closed by now; then close ours."""
        self.stop.set()
        for thread in self.threads:
            thread.join()
        closed = {}
        for kind, connections in self.sockets.items():
            count = 0
            for connection in connections:
                try:
                    connection.setblocking(False)
                    data = connection.recv(1 << 20, socket.MSG_PEEK)
                    count += data == b""
                except BlockingIOError:
                    pass
                except OSError:
                    count += 1
                connection.close()
            closed[kind] = f"{count} of {len(connections)} closed by the server"
        return closed


def check_slow_clients(target: Target, workdir: Path, seconds: int = 15) -> tuple[dict, list[str]]:
    baseline = run_locust(target, 4, seconds, workdir, "slow-baseline")
    host, port = re.match(r"http://([^:/]+):(\d+)", target.inference_url).groups()
    clients = SlowClients(host, int(port), auth=target.auth)
    clients.start()
    try:
        loaded = run_locust(target, 4, seconds, workdir, "slow-with")
    finally:
        closed = clients.finish()
    failures = []
    if loaded["failures"]:
        failures.append(f"slow clients: {loaded['failures']} normal requests failed: {loaded['failure_kinds']}")
    if loaded["requests_per_s"] < 0.5 * baseline["requests_per_s"]:
        failures.append(f"slow clients: throughput fell from {baseline['requests_per_s']} to "
                        f"{loaded['requests_per_s']} requests/s")
    healthy = requests.get(f"{target.inference_url}/ping", headers=target.auth, timeout=10).status_code == 200
    if not healthy:
        failures.append("slow clients: /ping fails afterwards")
    return {"connections_per_kind": clients.each, "baseline": baseline, "with_slow_clients": loaded,
            "server_closed": closed, "healthy_after": healthy}, failures


def _processes(target: LocalTarget) -> dict[str, float]:
    frontend = target.frontend_pid()
    result = {"frontend": psutil.Process(frontend).memory_info().rss / MIB if frontend else 0.0}
    result["workers"] = sum(p.memory_info().rss for p in psutil.Process(frontend).children()
                            if p.name().startswith("python")) / MIB if frontend else 0.0
    return result


def check_soak(target: LocalTarget, workdir: Path, seconds: int = 90, warmup: int = 40,
               users: int = 8) -> tuple[dict, list[str]]:
    """Sustained load; a leak is a trend in the workers' RSS per request served.

    Under load the RSS swings by ±7 % with the requests in flight (up to 545 MiB in a 25-minute
    soak of 31,568 requests on 2026-12-03 whose five-minute medians stayed within 506.8-510.2
    MiB), so a comparison of the first and last seconds judges noise: it failed CI once
    at +12.7 % without a leak. The trend is a Theil-Sen slope over every one-second reading,
    and the check fails when even the low end of its 95 % interval grows the RSS by
    RSS_GROWTH_LIMIT per 1,000 requests (12.5 KB a request at 500 MiB). A handler patched to
    keep 30 KB of every request failed it: 5.4 % (3.5-7.1 %) per 1,000 requests. The 40 s
    warm-up: after 20 s, 90 s soaks still read 1.2-1.7 % per 1,000 requests; 25 minutes -0.0 %."""
    warm = run_locust(target, users, warmup, workdir, "soak-warmup")
    samples: list[tuple[float, dict]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.wait(1.0):
            try:
                samples.append((time.monotonic() - started, _processes(target)))
            except psutil.Error:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        soak = run_locust(target, users, seconds, workdir, "soak")
    finally:
        stop.set()
        sampler.join()
    with open(workdir / "soak-rss.csv", "w") as series:
        series.write("seconds,frontend_mib,workers_mib\n")
        series.writelines(f"{t:.1f},{s['frontend']:.1f},{s['workers']:.1f}\n" for t, s in samples)
    figures = {"warmup": warm, "soak": soak, "rss_samples": len(samples)}
    failures = []
    if soak["failures"] or warm["failures"]:
        failures.append(f"soak: {soak['failures'] + warm['failures']} failed requests: {soak['failure_kinds']}")
    times = np.array([t for t, _ in samples])
    per_thousand = 1000 / max(soak["requests"], 1)  # growth over the soak -> per 1,000 requests
    for part in ("frontend", "workers"):
        values = np.array([s[part] for _, s in samples])
        trend = stats.theilslopes(values, times, alpha=0.95)
        level = float(np.median(values))
        growth = {name: round(slope * soak["seconds"] * per_thousand / level, 4)
                  for name, slope in (("slope", trend.slope), ("low", trend.low_slope), ("high", trend.high_slope))}
        figures[part] = {"median_mib": round(level, 1), "max_mib": round(float(values.max()), 1),
                         "growth_per_1000_requests": growth}
        # The frontend's JVM grows its heap towards -Xmx over the first minutes of traffic (266 ->
        # 294 MiB in one run whose predecessor held 300-302 MiB throughout) and cannot pass its
        # heap and direct-memory caps: its bound is the budget below. The workers have no cap.
        if part == "workers" and growth["low"] >= RSS_GROWTH_LIMIT:
            failures.append(f"soak: {part} RSS grows {growth['slope']:.1%} per 1,000 requests (95 % interval "
                            f"{growth['low']:.1%} to {growth['high']:.1%}) over {soak['requests']} requests")
    if figures["frontend"]["max_mib"] > FRONTEND_BUDGET_MIB:
        failures.append(f"soak: frontend RSS {figures['frontend']['max_mib']} MiB, over {FRONTEND_BUDGET_MIB}")
    return figures, failures


def check_kill(target: Target, workdir: Path, users: int = 8, seconds: int = 30, kill_at: float = 8,
               timeout_s: float = 20) -> tuple[dict, list[str]]:
    """SIGKILL a worker under load; every request must be answered within ``timeout_s``."""
    request_log = workdir / "kill-requests.jsonl"
    request_log.unlink(missing_ok=True)
    old_pid = target.worker_pid()
    outcome: dict = {}

    def killer() -> None:
        time.sleep(kill_at)
        outcome["kill_time"] = time.time()
        target.kill(old_pid)
        outcome["new_worker_ready_s"] = round(target.wait_new_worker(old_pid), 2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    load = run_locust(target, users, seconds, workdir, "kill", request_log=request_log, timeout_s=timeout_s)
    thread.join()
    records = [json.loads(line) for line in request_log.read_text().splitlines()]
    killed = outcome["kill_time"]
    for record in records:
        record["end"] = record["start"] + record["ms"] / 1000
        record["good"] = not record["name"].startswith("bad:")
        record["ok"] = record["error"] is None
    failed = [r for r in records if not r["ok"]]
    hung = [r for r in failed if r["ms"] >= timeout_s * 1000 * 0.99 or "imeout" in (r["error"] or "")]
    after = sorted((r for r in records if r["ok"] and r["good"] and r["start"] >= killed), key=lambda r: r["end"])
    statuses: dict[str, int] = {}
    for record in failed:
        key = str(record["status"] or record["error"].split(":")[0])
        statuses[key] = statuses.get(key, 0) + 1
    figures = {"users": users, "seconds": seconds, "killed_after_s": kill_at, "requests": len(records),
               "failed": len(failed), "failed_by_status": statuses,
               "in_flight_at_kill": sum(1 for r in records if r["start"] <= killed <= r["end"]),
               "next_success_after_kill_s": round(after[0]["end"] - killed, 2) if after else None,
               "new_worker_ready_s": outcome.get("new_worker_ready_s"),
               "longest_request_s": round(max(r["ms"] for r in records) / 1000, 2),
               "no_answer_within_timeout": len(hung), "client_timeout_s": timeout_s,
               "locust": {k: load[k] for k in ("requests", "failures", "requests_per_s", "p99_ms", "max_ms")}}
    failures = []
    if hung:
        failures.append(f"worker kill: {len(hung)} request(s) got no answer within {timeout_s:.0f} s")
    if not after:
        failures.append("worker kill: no successful request after the kill")
    return figures, failures


def _signal_with_pulses(rng: np.random.Generator, length: int, every: int = 300) -> np.ndarray:
    """Noise with a pulse every ``every`` samples: thousands of regions to describe and draw."""
    values = rng.standard_normal(length) * 0.01
    values[::every] += 50.0 * rng.choice([-1.0, 1.0], size=values[::every].size)
    return values


def _strong_tones(rng: np.random.Generator, length: int, in_phase: bool = False) -> np.ndarray:
    """Unit noise under eight tones of 30 noise sigmas' amplitude (tones.MAX_TONES): the most
    work for the tones' end fit, and, in phase, a peaky comb that takes the most refinements."""
    time_axis = np.arange(length, dtype=np.float64)
    phases = np.arange(8.0) if in_phase else rng.uniform(0, 2 * np.pi, 8)
    return rng.standard_normal(length) + sum(30.0 * np.sin(2 * np.pi * frequency * time_axis + phase)
                                             for frequency, phase in zip(np.linspace(0.03, 0.45, 8), phases))


def _notched_carrier_cut_ends(rng: np.random.Generator, length: int) -> np.ndarray:
    """A carrier (period 1,500 samples, 3,000 noise units) with a converter's notches of 60 units
    every 250 samples, kept 230 from the ends, under eight strong tones (:func:`_strong_tones`), and
    a pulse of 3,000 units cut by each end: the most conditioning a signal takes (the tones' end
    fits, the converter train, the regular-train step, the loud pulses' area, and, where the
    request leaves room, the signal conditioned again to tell a notch cut by an end from a pulse).
    A stranger's probe (2026-12-07): 180 of them took 8.8 s on one core, twice conditioned each."""
    time_axis = np.arange(length, dtype=np.float64)
    signal = 3000.0 * np.sin(2 * np.pi * time_axis / 1500.0 + rng.uniform(0, 2 * np.pi)) + _strong_tones(rng, length)
    notch = 60.0 * np.array([0.3, 1.0, 1.0, 0.8, 0.5, 0.2])
    for onset in np.arange(230.0 + rng.uniform(0, 2), length - 238, 250.0):
        signal[int(onset): int(onset) + notch.size] -= notch
    cut = 3000.0 * np.array([1.0, 0.4, 0.1])
    signal[:cut.size] += cut
    signal[-cut.size:] -= cut[::-1]
    return signal


def most_conditioning(limits: WorkLimits, rng: np.random.Generator, half: bool = False) -> tuple[str, dict]:
    """As many signals as the limits allow of the longest length that still allows the most of
    them (and whose tones are looked for), each :func:`_notched_carrier_cut_ends`; with ``half``,
    signals filling half the limit, so that the rest pays for their second conditionings.
    (description, post kwargs)."""
    length = max(tones.MIN_SAMPLES, limits.max_work // limits.max_signals - limits.signal_overhead)
    count = min(limits.max_signals, (limits.max_work // (2 if half else 1)) // limits.signal_work(length))
    signals = np.stack([_notched_carrier_cut_ends(rng, length) for _ in range(count)])
    what = ("half the limit, the rest of it spent on conditioning them again" if half
            else "the most conditioning a signal")
    return (f".npy float64, {count} signals of {length:,} samples, each a notched carrier under eight strong "
            f"tones with a pulse cut by each end ({what})", {
                "data": _npy(signals), "headers": {"Content-Type": "application/x-npy"}})


def _regular_train(rng: np.random.Generator, length: int, spacing: float = 60.7) -> np.ndarray:
    """Unit noise with an equal sharp transient of 20 noise units every ``spacing`` samples, at
    sub-sample onsets: the most transients the regular-train step lines up and takes out
    (pdseg.commutation.remove_regular_train)."""
    signal = rng.standard_normal(length)
    offsets = np.arange(24, dtype=np.float64)
    for onset in np.arange(7.3, length - offsets.size, spacing):
        whole = int(onset)
        u = np.maximum(offsets - (onset - whole), 0.0)
        signal[whole: whole + offsets.size] += 20.0 * (np.exp(-u / 3.0) - np.exp(-u / 0.5)) / 0.58
    return signal


def _correlated_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """One-pole noise (each sample 0.9 of the one before): the service analyses it twice, as
    recorded and whitened, where the request's work limit leaves room for the second pass
    (docs/model-card.md, Conditioning)."""
    from scipy import signal as sps
    return sps.lfilter([1.0], [1.0, -0.9], rng.standard_normal(length))


def _longest_within(body: Callable[[np.ndarray], bytes], values: np.ndarray, limit: int) -> tuple[int, bytes]:
    """The most leading samples of ``values`` whose ``body`` stays within ``limit`` bytes, and that body."""
    if len(body(values[:1])) > limit:
        raise ValueError(f"not even one sample fits in {limit:,} bytes")
    if len(body(values)) <= limit:
        return values.size, body(values)
    # Bodies grow with the samples: bisect on the count, from a bracket around the bytes a
    # sample takes on average (a few serialisations instead of twenty of up to 30 MB).
    per_sample = len(body(values[:4096])) / min(values.size, 4096)
    guess = int(limit / per_sample)
    low, high = max(1, int(guess * 0.97)), min(values.size, int(guess * 1.03) + 1)
    if len(body(values[:low])) > limit:
        low = 1
    if len(body(values[:high])) <= limit:
        high = values.size
    while low < high:
        middle = (low + high + 1) // 2
        if len(body(values[:middle])) <= limit:
            low = middle
        else:
            high = middle - 1
    return low, body(values[:low])


def _json_body(values: np.ndarray) -> bytes:
    return json.dumps({"signal": values.tolist()}, separators=(",", ":")).encode()


def _csv_body(values: np.ndarray) -> bytes:
    return ",".join(map(repr, values.tolist())).encode()


def most_tone_fits(limits: WorkLimits, rng: np.random.Generator, prpd: bool = False) -> tuple[str, dict]:
    """The slowest request the limits admit (docs/reliability.md): as many signals as they allow of
    the shortest length whose tones are looked for, each under eight strong tones, whose ends
    are fitted one by one; with ``prpd``, answered with the phase-resolved plot as a PNG (the plot
    is charged one panel of work, whatever the signals). (description, post kwargs)."""
    tone_length = tones.MIN_SAMPLES
    room = limits.max_work - (limits.picture_panel_work if prpd else 0)
    tone_count = min(limits.max_signals, room // limits.signal_work(tone_length))
    document = {"signals": np.round([_strong_tones(rng, tone_length) for _ in range(tone_count)], 4).tolist()}
    headers = {"Content-Type": "application/json"}
    if prpd:
        document["view"] = "prpd"
        headers["Accept"] = "image/png"
    return (f"JSON, {tone_count} signals of {tone_length:,} samples of four decimals, each under eight strong "
            "tones (the most fits of tones at signal ends)" + (", answered with the PRPD plot as a PNG" if prpd else ""), {
                "data": json.dumps(document).encode(), "headers": headers})


def worst_requests(limits: WorkLimits, body_limit: int = MAX_REQUEST_SIZE) -> list[tuple[str, dict]]:
    """The largest requests the limits admit, per format and shape: (description, post kwargs).
    Where the handler's work limit allows more than a body of ``body_limit`` bytes (TorchServe's
    ``max_request_size``) holds, the request is the longest that fits, or a compact format: raw
    or .npy float32 carry the work limit's largest signal in 6 MB."""
    rng = np.random.default_rng(15)
    largest = limits.max_work - limits.signal_overhead
    long_signal = rng.standard_normal(largest)  # full-precision floats: the longest JSON and CSV text
    json_samples, json_body = _longest_within(_json_body, long_signal, body_limit)
    csv_samples, csv_body = _longest_within(_csv_body, long_signal, body_limit)
    npy_samples, npy_body = _longest_within(_npy, long_signal, body_limit)
    per_signal = limits.max_work // limits.max_signals - limits.signal_overhead
    panels = PICTURE_PANELS
    png_length = (limits.max_work - panels * limits.picture_panel_work) // panels - limits.signal_overhead
    many = np.stack([_signal_with_pulses(rng, per_signal) for _ in range(limits.max_signals)])
    viewed = (limits.max_work - limits.signal_overhead) // 2  # its view fits in what the limit leaves
    npy_headers = {"Content-Type": "application/x-npy"}
    # Text with short numbers carries the work limit's largest signal within the body limit: the
    # most numbers a request can make the worker parse.
    short_numbers = np.round(long_signal, 2)
    return [
        (f"JSON, one signal of {json_samples:,} samples (the longest full-precision JSON within the body limit)", {
            "data": json_body, "headers": {"Content-Type": "application/json"}}),
        (f"CSV, one signal of {csv_samples:,} samples (the longest full-precision CSV within the body limit)", {
            "data": csv_body, "headers": {"Content-Type": "text/csv"}}),
        (f"JSON, one signal of {largest:,} samples of two decimals (the most numbers to parse)", {
            "data": _json_body(short_numbers), "headers": {"Content-Type": "application/json"}}),
        (f"CSV, one signal of {largest:,} samples of two decimals (the most numbers to parse)", {
            "data": _csv_body(short_numbers), "headers": {"Content-Type": "text/csv"}}),
        (f".npy float64, one signal of {npy_samples:,} samples (the longest within the body limit)", {
            "data": npy_body, "headers": npy_headers}),
        (f"raw float32, {largest:,} samples", {
            "data": long_signal.astype("<f4").tobytes(), "headers": {"Content-Type": "application/octet-stream"}}),
        (f".npy float32, one signal of {largest:,} samples of correlated noise (its whitened view left out at the limit)", {
            "data": _npy(_correlated_noise(rng, largest).astype("<f4")), "headers": npy_headers}),
        (f".npy float64, one signal of {viewed:,} samples of correlated noise (the longest analysed twice, whitened too)", {
            "data": _npy(_correlated_noise(rng, viewed)), "headers": npy_headers}),
        (f".npy float32, {largest:,} samples with a pulse every 300 (most regions)", {
            "data": _npy(_signal_with_pulses(rng, largest).astype("<f4")), "headers": npy_headers}),
        (f".npy float64, {limits.max_signals} signals of {per_signal:,} samples with pulses (most signals)", {
            "data": _npy(many), "headers": npy_headers}),
        most_tone_fits(limits, rng),
        most_tone_fits(limits, rng, prpd=True),
        most_conditioning(limits, rng),
        most_conditioning(limits, rng, half=True),
        (f".npy float32, one signal of {largest:,} samples under eight strong tones in phase "
         "(the most refinements of the tones' estimate)", {
            "data": _npy(_strong_tones(rng, largest, in_phase=True).astype("<f4")), "headers": npy_headers}),
        (f".npy float32, one signal of {largest:,} samples holding an equal transient every 60.7 samples "
         "(the most transients lined up and taken out as a regular train)", {
            "data": _npy(_regular_train(rng, largest).astype("<f4")), "headers": npy_headers}),
        (f"PNG answer, {panels} signals of {png_length:,} samples with pulses", {
            "data": _npy(np.stack([_signal_with_pulses(rng, png_length) for _ in range(panels)])),
            "headers": {"Content-Type": "application/x-npy", "Accept": "image/png"}}),
    ]


def check_worst(target: Target, limits: WorkLimits, burst: int = 8) -> tuple[dict, list[str]]:
    failures, rows = [], []
    frontend = target.frontend_pid()
    worst = worst_requests(limits)
    for description, kwargs in worst:
        pids = target.worker_pids()
        target.post(json={"signal": [1.0, 2.0, 3.0]}, timeout=60)  # the workers are awake
        before = max(target.status(pid)["VmRSS"] for pid in pids) / 1024
        with PeakSampler(target, pids) as peak:
            started = time.monotonic()
            response = target.post(timeout=300, **kwargs)
            seconds = time.monotonic() - started
        row = {"request": description, "body_mb": round(len(kwargs["data"]) / 1e6, 1),
               "status": response.status_code, "seconds": round(seconds, 2),
               "worker_rss_before_mib": round(before, 1), "worker_peak_mib": peak.peak_mib,
               "answer_mb": round(len(response.content) / 1e6, 2), "peak_method": peak.method}
        rows.append(row)
        log(f"  {description}: {response.status_code}, {seconds:.2f} s, worker peak {peak.peak_mib} MiB")
        if response.status_code != 200:
            failures.append(f"worst request {description}: {response.status_code} {response.text[:200]}")
        if seconds > TIME_BUDGET_S:
            failures.append(f"worst request {description}: {seconds:.2f} s, over {TIME_BUDGET_S} s")
        if peak.peak_mib > MEMORY_BUDGET_MIB:
            failures.append(f"worst request {description}: worker peak {peak.peak_mib} MiB, over {MEMORY_BUDGET_MIB}")
    # A full batch of the largest requests for every worker, queued behind one long request per
    # worker so that each batch reaches its worker whole (raw float32: the work limit's largest
    # signal in 6 MB, within the body limit).
    rng = np.random.default_rng(8)
    largest = limits.max_work - limits.signal_overhead
    raw_body = rng.standard_normal(largest).astype("<f4").tobytes()
    blocker = {"data": _npy(rng.standard_normal(largest).astype("<f4")),
               "headers": {"Content-Type": "application/x-npy"} | FRESH}
    pids = target.worker_pids()
    batch = len(pids) * target.batch_size()
    wait_policies = sorted({_wait_policy(target, pid) for pid in pids})  # before a worker can die in the batch
    counter = getattr(target, "batches_received", None)
    batches_before = _settled(counter) if counter else None
    with PeakSampler(target, pids) as peak, ThreadPoolExecutor(max_workers=batch + len(pids)) as pool:
        started = time.monotonic()
        first = [pool.submit(target.post, timeout=600, **blocker) for _ in pids]
        time.sleep(0.5)
        rest = [pool.submit(target.post, timeout=600, data=raw_body,
                            headers={"Content-Type": "application/octet-stream"} | FRESH)
                for _ in range(batch)]
        statuses = [future.result().status_code for future in [*first, *rest]]
        seconds = time.monotonic() - started
    batches = (_settled(target.batches_received) - batches_before - len(pids)) if batches_before is not None else None
    # Each request within the one-core budget, the cores the workers' network threads can use
    # shared among them. The budget is loose: with the workers' OpenMP threads spinning at barriers
    # (no OMP_WAIT_POLICY=PASSIVE), two workers on two cores took 22-47 s here in the container
    # against about 3 s (docs/benchmarks.md), and on the host's one-core server OpenMP spins
    # little; so the workers' policy is checked as well.
    threads = int(shipped_model_config()["handler"]["torch_threads"])
    cores = max(1, min(target.cores(), len(pids) * threads))
    budget = TIME_BUDGET_S * len(statuses) / cores
    batch_row = {"request": f"{batch} x raw float32, one signal of {largest:,} samples ({len(raw_body) / 1e6:.0f} MB), "
                            f"queued behind a largest .npy in each of the {len(pids)} workers"
                            + (f", reaching them in {batches} batch(es)" if batches is not None else ""),
                 "statuses": statuses, "seconds_all": round(seconds, 2), "budget_s": round(budget, 1),
                 "cores": cores, "omp_wait_policy": wait_policies, "worker_peak_mib": peak.peak_mib,
                 "peak_method": peak.method}
    log(f"  batch: {statuses}, {seconds:.1f} s (budget {budget:.0f} s on {cores} cores; workers' "
        f"OMP_WAIT_POLICY {wait_policies}), worker peak {peak.peak_mib} MiB")
    if set(statuses) != {200}:
        failures.append(f"worst batch: statuses {statuses}")
    if seconds > budget:
        failures.append(f"worst batch: {seconds:.1f} s, over {budget:.0f} s ({TIME_BUDGET_S} s a request "
                        f"on one core, {len(statuses)} requests, {cores} cores)")
    if wait_policies != ["PASSIVE"]:
        failures.append(f"worst batch: the workers' OMP_WAIT_POLICY is {wait_policies}, not PASSIVE: their "
                        "network threads spin against each other under concurrent long requests")
    if peak.peak_mib > MEMORY_BUDGET_MIB:
        failures.append(f"worst batch: worker peak {peak.peak_mib} MiB, over {MEMORY_BUDGET_MIB}")
    # Bursts of the largest bodies the frontend accepts, then that body alone: with bodies of up to
    # 40 MiB, two bursts of eight 31 MB bodies left Netty's pool holding 185 of the frontend's
    # 192 MiB of direct buffers, and every later body over ~16 MB was refused 507 until a restart
    # (docs/reliability.md). A small request answered after them did not show it.
    description, kwargs = worst[0]
    kwargs = kwargs | {"headers": kwargs.get("headers", {}) | FRESH}  # its answer is in the result cache
    burst_statuses, alone = [], []
    for _ in range(BURSTS):
        with ThreadPoolExecutor(max_workers=burst) as pool:
            futures = [pool.submit(target.post, timeout=600, **kwargs) for _ in range(burst)]
            for future in futures:
                try:
                    burst_statuses.append(future.result().status_code)
                except requests.RequestException as error:
                    burst_statuses.append(type(error).__name__)
        alone.append(target.post(timeout=120, **kwargs).status_code)
    burst_row = {"request": f"{BURSTS} bursts of {burst} x {description} ({len(kwargs['data']) / 1e6:.1f} MB) "
                            "at once, each followed by the same body alone",
                 "statuses": {s: list(map(str, burst_statuses)).count(s) for s in sorted(set(map(str, burst_statuses)))},
                 "alone_after_each": alone}
    log(f"  bursts: {burst_row['statuses']}, the same body alone after each: {alone}")
    if not set(map(str, burst_statuses)) <= {"200", "507"} or set(alone) != {200}:
        failures.append(f"bursts of large bodies: {burst_statuses}, the same body alone after each: {alone}")
    # One more sample or signal than allowed is refused before it costs much.
    over = target.post(data=np.zeros(limits.max_work - limits.signal_overhead + 1, dtype="<f4").tobytes(),
                       headers={"Content-Type": "application/octet-stream"})
    if over.status_code != 413:
        failures.append(f"one sample over the limit: {over.status_code}")
    figures = {"requests": rows, "batch": batch_row, "burst": burst_row, "one_sample_over": over.status_code,
               "frontend_rss_mib": round(target.status(frontend)["VmRSS"] / 1024, 1) if frontend else None,
               "frontend_peak_mib": round(target.status(frontend)["VmHWM"] / 1024, 1) if frontend else None}
    if (figures["frontend_peak_mib"] or 0) > FRONTEND_BUDGET_MIB:
        failures.append(f"frontend peak {figures['frontend_peak_mib']} MiB, over {FRONTEND_BUDGET_MIB}")
    return figures, failures


# --- report ----------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"{platform.system()} {platform.release()}")


def other_load() -> str:
    """Busy processes beside us (e.g. a training run), for the record."""
    own = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    processes = [p for p in psutil.process_iter(["name", "cmdline"]) if p.pid not in own]
    for process in processes:
        try:
            process.cpu_percent()
        except psutil.Error:
            pass
    time.sleep(1.0)
    busy = []
    for process in processes:
        try:
            share = process.cpu_percent()
        except psutil.Error:
            continue
        if share > 20:
            command = " ".join((process.info["cmdline"] or [process.info["name"]])[:3])
            busy.append(f"{command} ({share:.0f} % of a core)")
    return ", ".join(busy) or "none"


def _counts(counts: dict) -> str:
    return ", ".join(f"{count} x {key}" for key, count in counts.items())


def render(results: dict) -> str:
    lines = [f"Produced by `{results['command']}` on {results['date']}.", "",
             f"- Machine: {results['machine']}", f"- Other load during the run: {results['other_load']}",
             f"- Server: {results['server']}", f"- Limits: {results['limits']}", ""]
    for name in CHECKS:
        if isinstance(results.get(name), dict) and "error" in results[name]:
            lines += [f"### {name}: could not run", "", f"`{results[name]['error']}`", ""]
            results = {key: value for key, value in results.items() if key != name}
    if "properties" in results:
        p = results["properties"]
        lines += ["### Decoder properties (Hypothesis, no server)", "",
                  f"`{p['command']}`: {p['tests_passed']} property tests passed, "
                  f"{p['generated_examples']:,} generated bodies, {p['seconds']} s.", ""]
    if "corpus" in results:
        c = results["corpus"]
        lines += ["### Fuzz corpus (scripts/bad_inputs.py)", "",
                  f"{c['as_expected']} of {c['cases']} named bad requests got their expected 4xx with a JSON message; "
                  f"statuses {_counts(c['statuses'])}; 5xx: {c['server_errors']}, no answer/reset: {c['no_answer']}; "
                  f"healthy after: {c['healthy_after']}, same workers after: {c['same_worker_after']}.", "",
                  "<details><summary>Every case</summary>", "", "| case | content type | bytes | expected | got | ms |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['content_type']} | {r['bytes']:,} | {r['expected']} | {r['status']} | {r['ms']} |"
                  for r in c["rows"]]
        lines += ["", "</details>", ""]
    if "batch" in results:
        b = results["batch"]
        lines += ["### Batch-mates", "",
                  f"{b['rounds']} rounds of 4 good and 4 bad requests queued behind a long one in each of the "
                  f"{b['workers']} workers (batch size {b['batch_size']}); batches the 8 "
                  f"took per round: {b['batches']}; good answers equal to the same request alone: "
                  f"{b['good_equal_alone']} of {b['good']}; bad ones answered with their 4xx: {b['bad_4xx']} of {b['bad']}.", ""]
    if "slow" in results:
        s = results["slow"]
        lines += ["### Slow and half-open connections", "",
                  f"{s['connections_per_kind']} connections of each kind held open (headers trickling at one byte "
                  "a second; a body announced as 1 MB of which 1 KB came; connected and silent; two pipelined "
                  "requests for six captures whose answers are never read) while locust sent normal traffic:", "",
                  "| run | requests | failures | requests/s | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|"]
        for name, key in (("without slow clients", "baseline"), ("with slow clients", "with_slow_clients")):
            r = s[key]
            lines.append(f"| {name} | {r['requests']} | {r['failures']} | {r['requests_per_s']} | {r['p50_ms']} | "
                         f"{r['p99_ms']} | {r['max_ms']} |")
        closed = "; ".join(f"{kind}: {state}" for kind, state in s["server_closed"].items())
        lines += ["", f"At the end: {closed}; healthy after: {s['healthy_after']}.", ""]
    if "soak" in results:
        s = results["soak"]
        r = s["soak"]
        lines += ["### Soak", "",
                  f"locust, {r['users']} clients, {r['seconds']} s after a {s['warmup']['seconds']} s warm-up: "
                  f"{r['requests']} requests, {r['failures']} failures, {r['requests_per_s']} requests/s, "
                  f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms.", "",
                  "| process | RSS growth per 1,000 requests (Theil-Sen, 95 % interval) | median MiB under load | max |",
                  "|---|---|---|---|"]
        for part in ("frontend", "workers"):
            m = s[part]
            g = m["growth_per_1000_requests"]
            lines.append(f"| {part} | {g['slope']:.1%} ({g['low']:.1%} to {g['high']:.1%}) | {m['median_mib']} | "
                         f"{m['max_mib']} |")
        lines += ["", f"The workers fail when the interval's low end reaches {RSS_GROWTH_LIMIT:.1%} per 1,000 requests.", ""]
    if "kill" in results:
        k = results["kill"]
        lines += ["### Worker killed under load", "",
                  f"SIGKILL to a worker {k['killed_after_s']} s into {k['seconds']} s of {k['users']} clients: "
                  f"{k['requests']} requests, {k['in_flight_at_kill']} in flight at the kill, {k['failed']} failed "
                  f"({_counts(k['failed_by_status']) or 'none'}); next success {k['next_success_after_kill_s']} s after the kill "
                  f"(its replacement READY after {k['new_worker_ready_s']} s); longest request {k['longest_request_s']} s; "
                  f"requests without an answer within {k['client_timeout_s']:.0f} s: {k['no_answer_within_timeout']}.", ""]
    if "worst" in results:
        w = results["worst"]
        lines += ["### Worst accepted requests", "", f"{results['worst_server']}", "",
                  "| request | body MB | status | seconds | worker RSS before, MiB | worker peak, MiB | answer MB |",
                  "|---|---|---|---|---|---|---|"]
        for r in w["requests"]:
            lines.append(f"| {r['request']} | {r['body_mb']} | {r['status']} | {r['seconds']} | "
                         f"{r['worker_rss_before_mib']} | **{r['worker_peak_mib']}** | {r['answer_mb']} |")
        b, burst = w["batch"], w["burst"]
        lines += ["", f"- Batch: {b['request']}: statuses {sorted(set(b['statuses']))}, {b['seconds_all']} s for "
                  f"all of them (budget {b['budget_s']} s: {TIME_BUDGET_S:g} s a request on one core, "
                  f"{b['cores']} core(s); the workers' OMP_WAIT_POLICY {', '.join(b['omp_wait_policy'])}), "
                  f"worker peak **{b['worker_peak_mib']} MiB**.",
                  f"- Burst: {burst['request']}: {_counts(burst['statuses'])}; the same body alone after each: {burst['alone_after_each']}.",
                  f"- One sample over the limit: {w['one_sample_over']}.",
                  f"- Frontend RSS afterwards {w['frontend_rss_mib']} MiB, peak {w['frontend_peak_mib']} MiB.",
                  f"- Peak RSS measured as {w['requests'][0]['peak_method']}.", ""]
    lines += [f"**Result: {'all checks passed' if not results['failures'] else 'FAILED'}**", ""]
    lines += [f"- {failure}" for failure in results["failures"]]
    return "\n".join(lines).rstrip() + "\n"


def write_doc(section: str, text: str) -> None:
    start, end = f"<!-- reliability:{section}:start -->", f"<!-- reliability:{section}:end -->"
    existing = DOC.read_text() if DOC.is_file() else f"# Reliability\n\n{start}\n{end}\n"
    if start not in existing:
        existing = existing.rstrip() + f"\n\n{start}\n{end}\n"
    head, rest = existing.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(head + start + "\n" + text + end + tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(CHECKS)}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/reliability.md")
    parser.add_argument("--soak-seconds", type=int, default=90)
    parser.add_argument("--container", help="a running container's name (podman): kill and worst checks")
    parser.add_argument("--inference", help="the container's inference URL")
    parser.add_argument("--management", help="the container's management URL")
    args = parser.parse_args()
    checks = [c for c in (args.only.split(",") if args.only else CHECKS) if c]
    unknown = set(checks) - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks {sorted(unknown)}")
    limits = WorkLimits()
    results: dict = {"command": " ".join(["python scripts/reliability.py", *sys.argv[1:]]),
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                     "other_load": other_load(),
                     "limits": (f"{limits.max_work:,} sample-equivalents and {limits.max_signals} signals per request; "
                                f"a signal costs its samples (at least {limits.min_window:,}) + {limits.signal_overhead:,}, "
                                f"a PNG panel {limits.picture_panel_work:,} (config/model-config.yaml)")}
    failures: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="pd-reliability-"))

    def run(name: str, function, *arguments, **keywords) -> None:
        log(f"{name} ...")
        started = time.monotonic()
        try:
            figures, problems = function(*arguments, **keywords)
        except Exception as error:  # a check that cannot run is a failed check
            figures, problems = {"error": repr(error)}, [f"{name}: could not run: {error!r}"]
        results[name] = figures
        failures.extend(problems)
        log(f"{name}: {'ok' if not problems else 'FAILED'} ({time.monotonic() - started:.0f} s)")
        for problem in problems:
            log(f"  {problem}")

    if args.container:
        # Keys from the environment, so that they stay out of the process list and the report.
        target = ContainerTarget(args.container, inference_url=args.inference, management_url=args.management,
                                 inference_key=os.environ.get("PD_INFERENCE_KEY", ""),
                                 management_key=os.environ.get("PD_MANAGEMENT_KEY", ""))
        results["server"] = f"container {args.container} (scripts/image_test.sh): production profile, token keys"
        results["worst_server"] = ("The container as image_test.sh runs it (no CPU limit, memory limit "
                                   f"{os.environ.get('MEMORY', '3g')}).")
        for name in [c for c in checks if c in CONTAINER_CHECKS]:
            run(name, {"kill": check_kill, "worst": check_worst}[name], target,
                *((workdir,) if name == "kill" else (limits,)))
        section = "container"
    else:
        if "properties" in checks:
            run("properties", check_properties)
        server_checks = [c for c in checks if c in ("corpus", "batch", "slow", "soak", "kill")]
        shipped = shipped_model_config()
        results["server"] = ("started by this script from model_store/pd_segmenter.mar with config/local.properties "
                             f"(scripts/serve.py), shipped model-config.yaml: batch size {shipped['batchSize']}, "
                             f"{shipped['minWorkers']} workers, {shipped['handler']['torch_threads']} threads each")
        if server_checks:
            with LocalServer() as server:
                target = LocalTarget(server, "local")
                table = {"corpus": (check_corpus, (target,)), "batch": (check_batch_mates, (target,)),
                         "slow": (check_slow_clients, (target, workdir)),
                         "soak": (check_soak, (target, workdir, args.soak_seconds)),
                         "kill": (check_kill, (target, workdir))}
                for name in server_checks:
                    function, arguments = table[name]
                    run(name, function, *arguments)
        if "worst" in checks:
            core = max(os.sched_getaffinity(0))
            others = os.sched_getaffinity(0) - {core}
            results["worst_server"] = (f"A second server, the frontend and its workers confined to CPU {core} "
                                       "(sched_setaffinity), the client on the other CPUs; shipped settings.")
            with LocalServer(cpus={core}) as server:
                if others:
                    os.sched_setaffinity(0, others)
                run("worst", check_worst, LocalTarget(server, "one core"), limits)
        section = "local"
    results["failures"] = failures
    text = render(results)
    print(text)
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if not args.no_write:
        write_doc(section, text + "\n<details><summary>Raw figures</summary>\n\n```json\n"
                  + json.dumps({k: v for k, v in results.items() if k != "corpus"}, indent=2, default=str)
                  + "\n```\n</details>\n")
        log(f"wrote {DOC.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
