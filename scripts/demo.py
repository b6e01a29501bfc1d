"""The newcomer's tour: serve the model, analyse the bundled sample captures, show the result.

Starts TorchServe on free loopback ports, sends ``data/sample_captures.npy`` in one request,
prints the PD regions found per signal next to the true events the generator planted, writes
a PNG of one result to ``build/demo/``, and stops the server.
"""
from __future__ import annotations

import io
import json
import time

import _bootstrap  # noqa: F401
import numpy as np
import requests

from serve import LocalServer

ROOT = _bootstrap.ROOT
SAMPLES = ROOT / "data" / "sample_captures.npy"
TRUTH = ROOT / "data" / "sample_captures.json"
OUT = ROOT / "build" / "demo"


def overlaps(region: dict, events: list[list[int]]) -> bool:
    return any(region["start"] < end and start < region["end"] for start, end in events)


def main() -> None:
    captures = np.load(SAMPLES)
    truth = json.loads(TRUTH.read_text())
    buffer = io.BytesIO()
    np.save(buffer, captures)
    print("Starting TorchServe with model_store/pd_segmenter.mar ...", flush=True)
    started = time.monotonic()
    with LocalServer() as server:
        print(f"ready in {time.monotonic() - started:.1f} s at {server.inference_url}\n")
        sent = time.monotonic()
        response = requests.post(server.predict_url, data=buffer.getvalue(),
                                 headers={"Content-Type": "application/x-npy"}, timeout=120)
        response.raise_for_status()
        elapsed = time.monotonic() - sent
        answer = response.json()
        print(f"POST /predictions/pd_segmenter: {len(captures)} signals x {captures.shape[1]} samples "
              f"-> {response.status_code} in {elapsed * 1000:.0f} ms (model {answer['model']['name']} "
              f"v{answer['model']['version']})\n")
        print(f"{'signal':>6}  {'PD source (planted)':<22} {'true':>4} {'found':>5} {'match':>5}  "
              f"{'carrier period':>14}  first regions: start-end @phase (peak, polarity)")
        for signal, planted in zip(answer["signals"], truth):
            regions = signal["regions"]
            matched = sum(overlaps(r, planted["true_events"]) for r in regions)
            period = signal["stats"]["carrier"]["samples_per_cycle"]
            shown = ", ".join(f"{r['start']}-{r['end']} @{r['phase_deg']:.0f}° ({r['peak']:.3g}, {r['polarity'][:3]})"
                              for r in regions[:3])
            more = f" … +{len(regions) - 3}" if len(regions) > 3 else ""
            print(f"{signal['index']:>6}  {', '.join(planted['sources']):<22} {len(planted['true_events']):>4} "
                  f"{len(regions):>5} {matched:>5}  {period:>14}  {shown or '(none)'}{more}")
        png = requests.post(server.predict_url, json={"signal": captures[1].tolist()},
                            headers={"Accept": "image/png"}, timeout=120)
        png.raise_for_status()
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "signal-1.png").write_bytes(png.content)
        print(f"\n'match' counts regions that overlap a planted event. Picture of signal 1: "
              f"{(OUT / 'signal-1.png').relative_to(ROOT)}")
        print("Stopping TorchServe ...")
    print("Done.")


if __name__ == "__main__":
    main()
