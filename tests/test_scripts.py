"""Every command in scripts/ answers ``--help`` with its usage and starts nothing: no server, no
measurement, no write to docs/ (``scripts/serve.py --help`` used to start TorchServe)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(path for path in (ROOT / "scripts").glob("*.py")
                  if 'if __name__ == "__main__":' in path.read_text())
LIMIT_S = 120


def docs_written() -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in (ROOT / "docs").rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, tuple[int | None, str]]:
    """Each command's exit status (None: still running at the limit, then killed) and output,
    all started at once (they spend their time importing); under ``"docs/"`` whether docs/ is
    as it was before."""
    before = docs_written()
    folder = tmp_path_factory.mktemp("help")
    # Ports no server can bind, should a command start one: it stops at once instead of running on.
    environment = os.environ | {"TS_INFERENCE_PORT": "99991", "TS_MANAGEMENT_PORT": "99992",
                                "TS_METRICS_PORT": "99993"}
    processes = {}
    for path in COMMANDS:
        # Output to a file, not a pipe: a child that outlived its command would hold a pipe open.
        with open(folder / f"{path.name}.out", "w") as output:
            processes[path.name] = subprocess.Popen([sys.executable, str(path), "--help"], cwd=folder,
                                                    env=environment, stdout=output, stderr=subprocess.STDOUT,
                                                    start_new_session=True)  # its own group, killed with it
    deadline, results = time.monotonic() + LIMIT_S, {}
    for name, process in processes.items():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
            status = process.returncode
        except subprocess.TimeoutExpired:
            status = None
        try:  # whatever it started and left behind goes with it
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        results[name] = (status, (folder / f"{name}.out").read_text())
    return results | {"docs/": (0, str(docs_written() == before))}


def test_the_commands_are_found():
    assert {"serve.py", "demo.py", "evaluate.py", "bench.py"} <= {path.name for path in COMMANDS}


def test_no_command_writes_docs_when_asked_for_help(answers):
    assert answers["docs/"][1] == "True"


@pytest.mark.parametrize("command", [path.name for path in COMMANDS])
def test_a_command_answers_help_and_starts_nothing(answers, command: str):
    status, output = answers[command]
    assert status is not None, f"{command} --help still ran after {LIMIT_S} s:\n{output[-2000:]}"
    assert status == 0, output[-2000:]
    assert output.startswith("usage:"), output[:2000]
