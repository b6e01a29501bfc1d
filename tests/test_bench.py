"""Smoke test of the benchmark on tiny sizes: its table and figures have every field (timings
are not checked; `make bench` reports them)."""
import json
import subprocess
import sys

import pytest

from serve import ROOT

pytestmark = pytest.mark.server


def test_bench_quick_reports_every_figure(tmp_path):
    figures = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--no-write",
                          "--json", str(figures)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for words in ("samples/s over HTTP", "Predecessor approach", "Speed-up over the predecessor",
                  "| clients | requests | errors | requests/s | p50 ms | p95 ms | p99 ms | CPU ms per request",
                  "RSS MiB before load", "RSS MiB after load", "FLOP per output sample", "GFLOP/s"):
        assert words in run.stdout, words
    results = json.loads(figures.read_text())
    assert results["long_capture"]["samples"] == 40_000 and results["long_capture"]["samples_per_s"] > 0
    assert [row["clients"] for row in results["concurrency"]] == [1, 2]
    for row in results["concurrency"]:
        assert row["errors"] == 0 and row["requests"] == 3 * row["clients"]
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["cpu_ms_per_request"]["workers"] > 0 and row["cpu_ms_per_request"]["frontend"] > 0
    concurrent_long = results["long_concurrency"]
    assert concurrent_long["errors"] == 0 and concurrent_long["requests"] == 2 and concurrent_long["samples"] == 40_000
    assert concurrent_long["omp_wait_policy"] == ["PASSIVE"] and "Concurrent long captures" in run.stdout
    memory = results["memory"]
    assert len(memory["before"]["frontend"]) == 1 and len(memory["before"]["workers"]) >= 1
    assert memory["after"]["total"] > 0 and memory["during_max"] >= memory["during_min"] > 0
    assert results["predecessor"]["samples_per_s"] > 0 and results["speedup"] > 0
    # the speed-up is the median of pairs: each long-capture request beside the predecessor's rate then
    pairs = results["long_capture"]["speedup_all"]
    assert len(pairs) == len(results["long_capture"]["predecessor_samples_per_s_all"]) == results["long_capture"]["repeats"]
    assert results["speedup"] == results["long_capture"]["speedup_median"] == sorted(pairs)[len(pairs) // 2]
    assert results["model"]["flops_per_sample"] > 0 and results["model"]["matmul_gflops"] > 0
    # both archives, side by side: the default (TorchScript) is the one reported in full
    assert list(results["runtimes"]) == ["torchscript", "onnx"] and "| runtime | long capture s |" in run.stdout
    assert results["runtimes"]["torchscript"]["long_capture"] == results["long_capture"]
    for figures in results["runtimes"].values():
        assert figures["speedup"] > 0 and all(row["errors"] == 0 for row in figures["concurrency"])
