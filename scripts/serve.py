"""Run TorchServe with the local profile: loopback only, token auth off, our own ports.

    python scripts/serve.py                 # foreground; Ctrl-C or SIGTERM stops it cleanly

Ports come from TS_INFERENCE_PORT / TS_MANAGEMENT_PORT / TS_METRICS_PORT (8080/8081/8082).
Every instance gets its own runtime folder (config copy, logs, and TMPDIR, where TorchServe
keeps its pid file), so tests and benchmarks can run beside a server that is already up.
:class:`LocalServer` is the same thing as a context manager for tests, the demo and the
benchmark.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _bootstrap
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "pd_segmenter"


def shipped_model_config() -> dict:
    """config/model-config.yaml, which the archive packs: workers, batching, handler settings."""
    return yaml.safe_load((ROOT / "config" / "model-config.yaml").read_text())
LOCAL_PROFILE = ROOT / "config" / "local.properties"
METRICS_CONFIG = ROOT / "config" / "metrics.yaml"
DEFAULT_PORTS = {"inference": 8080, "management": 8081, "metrics": 8082}


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free at this moment, all different (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def free_port() -> int:
    return free_ports(1)[0]


# A port free when chosen can be taken before TorchServe binds it (a client's ephemeral port
# comes from the same range): a server on ports we chose starts again on new ones, this often.
PORT_RETRIES = 3
ADDRESS_IN_USE = "Address already in use"
LOG_NAMES = ("console.log", "model_log.log", "ts_log.log")


def render_profile(ports: dict[str, int], model_store: Path, temp_dir: Path,
                   extra: dict[str, str] | None = None) -> str:
    text = LOCAL_PROFILE.read_text()
    for name, port in ports.items():
        text = re.sub(rf"^{name}_address=.*$", f"{name}_address=http://127.0.0.1:{port}", text, flags=re.M)
    # The frontend puts its worker sockets in java.io.tmpdir (/tmp/.ts.sock.<port>); a private
    # folder keeps two instances on one machine from taking each other's sockets.
    text = re.sub(r"^(vmargs=.*)$", rf"\1 -Djava.io.tmpdir={temp_dir}", text, flags=re.M)
    lines = [text.rstrip("\n"), f"model_store={model_store}", f"metrics_config={METRICS_CONFIG}",
             f"allowed_urls=file://{model_store}/.*",
             *(f"grpc_{name}_port={port}" for name, port in zip(("inference", "management"), free_ports(2)))]
    lines += [f"{key}={value}" for key, value in (extra or {}).items()]
    return "\n".join(lines) + "\n"


# What the workers need in their environment, as the image sets it (Dockerfile; a caller's own
# value wins). OpenMP threads that wait at a barrier sleep instead of spinning: two workers
# running the network on two threads each on a 2-core machine otherwise spun against each
# other, and a batch of the largest requests took 39.5 s instead of 3.3 s (docs/benchmarks.md).
WORKER_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def wait_policy(environment) -> str:
    """A process's OMP_WAIT_POLICY as OpenMP reads it (case and spaces aside), "UNSET" where its
    ``environment`` (a mapping of str or of bytes) has none."""
    value = environment.get("OMP_WAIT_POLICY", environment.get(b"OMP_WAIT_POLICY", ""))
    value = value.decode(errors="replace") if isinstance(value, bytes) else value
    return value.strip().upper() or "UNSET"


class LocalServer:
    """A TorchServe instance on loopback ports, started and stopped by us."""

    def __init__(self, ports: dict[str, int] | None = None, model_store: Path = ROOT / "model_store",
                 archive: str = f"{MODEL_NAME}.mar", extra_config: dict[str, str] | None = None,
                 runtime_dir: Path | None = None, stream_logs: bool = False,
                 environment: dict[str, str] | None = None,
                 management_key: str | None = None, cpus: set[int] | None = None) -> None:
        self.chosen_ports = ports is None  # ours to choose again when one is taken (wait_ready)
        self.ports = ports or dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS))))
        self.port_retries = 0
        self.model_store = Path(model_store).resolve()
        self.archive = archive
        self.extra_config = extra_config or {}
        self.runtime_dir = Path(runtime_dir or tempfile.mkdtemp(prefix="pd-torchserve-"))
        self.stream_logs = stream_logs
        self.environment = environment or {}
        # With token authorization on (a profile that does not disable it), the key that
        # wait_ready() shows the management API.
        self.management_key = management_key
        # CPUs the frontend and its workers may run on (all when None): the reliability
        # figures are taken on one core.
        self.cpus = cpus
        self.process: subprocess.Popen | None = None
        # Where each log stood when the latest start began: a retry or a second start in the
        # same folder reads only what that start wrote (an old "Address already in use" or a
        # dead worker of an earlier run is not this one's).
        self.log_offsets: dict[str, tuple[int, int]] = {}  # name: (inode, size)

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['inference']}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['management']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}"

    @property
    def predict_url(self) -> str:
        return f"{self.inference_url}/predictions/{MODEL_NAME}"

    def process_environment(self) -> dict[str, str]:
        """The environment TorchServe and its workers start with: :data:`WORKER_ENVIRONMENT`
        unless the caller's environment sets it, then this server's paths and ``environment``."""
        return WORKER_ENVIRONMENT | os.environ | {
            "TMPDIR": str(self.runtime_dir / "tmp"),  # TorchServe's pid file lives here
            "LOG_LOCATION": str(self.runtime_dir / "logs"),
            "METRICS_LOCATION": str(self.runtime_dir / "logs"),
        } | self.environment

    def start(self) -> "LocalServer":
        if not (self.model_store / self.archive).is_file():
            raise FileNotFoundError(f"{self.model_store / self.archive} is missing: run `make archive`")
        (self.runtime_dir / "tmp").mkdir(parents=True, exist_ok=True)
        (self.runtime_dir / "logs").mkdir(exist_ok=True)
        config = self.runtime_dir / "config.properties"
        profile = {"load_models": f"{MODEL_NAME}={self.archive}"} | self.extra_config
        config.write_text(render_profile(self.ports, self.model_store, self.runtime_dir / "tmp", profile))
        environment = self.process_environment()
        torchserve = shutil.which("torchserve", path=str(Path(sys.executable).parent)) or "torchserve"
        command = [torchserve, "--start", "--foreground", "--ncs", "--ts-config", str(config),
                   "--model-store", str(self.model_store)]
        self.mark_logs()
        output = None if self.stream_logs else open(self.runtime_dir / "logs" / "console.log", "wb")
        # Own process group: a stop reaches the launcher, the JVM frontend and its workers.
        cpus = self.cpus
        self.process = subprocess.Popen(command, cwd=self.runtime_dir, env=environment,
                                        stdout=output, stderr=subprocess.STDOUT if output else None,
                                        start_new_session=True,
                                        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        return self

    def wait_ready(self, timeout: float = 180.0, workers: int | None = None) -> None:
        """Until ``workers`` workers are READY (by default the archive's ``minWorkers``)."""
        if workers is None:
            workers = int(shipped_model_config()["minWorkers"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if self.chosen_ports and self.port_retries < PORT_RETRIES and ADDRESS_IN_USE in self.log_tail():
                    self.port_retries += 1
                    self.ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS))))
                    self.start()
                    continue
                raise RuntimeError(f"TorchServe exited with {self.process.returncode}:\n{self.log_tail()}")
            if "Backend worker process died" in self._read_log("model_log.log"):
                raise RuntimeError(f"a worker died while loading the model:\n{self.log_tail()}")
            try:
                headers = {"Authorization": f"Bearer {self.management_key}"} if self.management_key else {}
                described = requests.get(f"{self.management_url}/models/{MODEL_NAME}", headers=headers,
                                         timeout=2).json()
                ready = [w for w in described[0]["workers"] if w["status"] == "READY"]
                if len(ready) >= workers:
                    return
            except (requests.RequestException, ValueError, KeyError, IndexError, TypeError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"model not READY after {timeout:.0f} s:\n{self.log_tail()}")

    def mark_logs(self) -> None:
        """From now on read each log from where it ends now (console.log, rewritten at each start
        unless the logs stream to the terminal, from its beginning)."""
        self.log_offsets = {}
        for name in LOG_NAMES:
            path = self.runtime_dir / "logs" / name
            if path.is_file() and (name != "console.log" or self.stream_logs):
                status = path.stat()
                self.log_offsets[name] = (status.st_ino, status.st_size)

    def _read_log(self, name: str) -> str:
        path = self.runtime_dir / "logs" / name
        if not path.is_file():
            return ""
        with open(path, "rb") as log:
            status = os.fstat(log.fileno())
            inode, offset = self.log_offsets.get(name, (status.st_ino, 0))
            # A log rolled over since (another file, or shorter than it was): all of it.
            log.seek(offset if status.st_ino == inode and status.st_size >= offset else 0)
            return log.read().decode(errors="replace")

    def log_tail(self, characters: int = 4000) -> str:
        return "\n".join(f"--- {name}\n" + self._read_log(name)[-characters:]
                         for name in LOG_NAMES)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the launcher, the JVM and the workers; wait until every one has exited
        (the JVM's shutdown stops its workers first), SIGKILL whatever outlives ``timeout``."""
        if self.process is None:
            return None
        if self._group_alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.process.poll()  # reap the launcher, or it stays in the group as a zombie
                if not self._group_alive():
                    break
                time.sleep(0.1)
            if self._group_alive():
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def __enter__(self) -> "LocalServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    _bootstrap.command_line(__doc__)
    ports = {name: int(os.environ.get(f"TS_{name.upper()}_PORT", default))
             for name, default in DEFAULT_PORTS.items()}
    runtime = ROOT / ".run" / f"serve-{ports['inference']}"
    shutil.rmtree(runtime, ignore_errors=True)
    server = LocalServer(ports=ports, runtime_dir=runtime, stream_logs=True)
    stop_requested = threading.Event()
    # The handler only sets a flag: stopping from inside it would race Popen.wait() for
    # the launcher's exit status and leave it as a zombie in the process group.
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())
    server.start()
    print(f"TorchServe starting: inference {server.inference_url}, management {server.management_url}, "
          f"metrics {server.metrics_url}/metrics (logs in {runtime / 'logs'})", flush=True)
    while server.process.poll() is None:
        if stop_requested.wait(0.5):
            print("\nstopping TorchServe and its workers ...", flush=True)
            server.stop()
            print("stopped", flush=True)
            return 0
    return server.process.returncode


if __name__ == "__main__":
    sys.exit(main())
