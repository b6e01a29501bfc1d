"""The newcomer's tour: serve the model, analyse the bundled sample captures with the client,
show what was found against what was planted.

Starts TorchServe on free loopback ports, runs ``pd-analyse`` on ``data/sample_captures.npy``
(results, PRPD picture and report.html in ``build/demo/client/``), prints per signal the
events the generator planted, how many of them were found and missed, and the regions that
match none; draws each signal with its regions and planted events (``build/demo/signal-N.png``),
and stops the server.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _bootstrap
import numpy as np

from pdseg.render import SignalPanel, overlaps, render_signals_png, without_carrier
from serve import LocalServer

ROOT = _bootstrap.ROOT
SAMPLES = ROOT / "data" / "sample_captures.npy"
TRUTH = ROOT / "data" / "sample_captures.json"
OUT = ROOT / "build" / "demo"
CLIENT_OUT = OUT / "client"


def client_command() -> list[str]:
    """``pd-analyse`` as `make setup` installs it; ``python -m pdclient`` from the tree otherwise."""
    installed = Path(sys.executable).parent / "pd-analyse"
    return [str(installed)] if installed.is_file() else [sys.executable, "-m", "pdclient"]


def run_client(url: str, samples_per_cycle: float) -> list[dict]:
    shutil.rmtree(CLIENT_OUT, ignore_errors=True)  # a fresh run, not a resumed one
    arguments = [str(SAMPLES.relative_to(ROOT)), "--url", url, "--out", str(CLIENT_OUT.relative_to(ROOT)),
                 "--samples-per-cycle", f"{samples_per_cycle:g}", "--no-progress"]
    print("$ pd-analyse " + " ".join(arguments), flush=True)
    # Found through the path as well, should the package not be installed (yet).
    environment = os.environ | {"PYTHONPATH": f"{ROOT / 'client'}:{ROOT / 'handler'}"}
    subprocess.run(client_command() + arguments, cwd=ROOT, check=True, env=environment)
    return [json.loads(line) for line in (CLIENT_OUT / "results.jsonl").read_text().splitlines()]


def compare(regions: list[dict], planted: list[list[int]]) -> tuple[int, int, int]:
    """(planted events found, planted events missed, regions that match no planted event)."""
    spans = [(region["start"], region["end"]) for region in regions]
    found = sum(overlaps(event, spans) for event in planted)
    extra = sum(not overlaps(span, planted) for span in spans)
    return found, len(planted) - found, extra


def main() -> None:
    _bootstrap.command_line(__doc__)
    captures = np.load(SAMPLES)
    truth = json.loads(TRUTH.read_text())
    print("Starting TorchServe with model_store/pd_segmenter.mar ...", flush=True)
    started = time.monotonic()
    with LocalServer() as server:
        print(f"ready in {time.monotonic() - started:.1f} s at {server.inference_url}\n", flush=True)
        sent = time.monotonic()
        records = run_client(server.inference_url, truth[0]["samples_per_cycle"])
        print(f"\n{len(records)} signals x {captures.shape[1]} samples analysed in "
              f"{time.monotonic() - sent:.1f} s (model {records[0]['model']['name']} v{records[0]['model']['version']})\n")
        print("Stopping TorchServe ...")
    print(f"{'signal':>6}  {'PD source (planted)':<22} {'planted':>7} {'found':>5} {'missed':>6} {'extra':>5}  "
          f"first regions: start-end @phase (peak, polarity)")
    OUT.mkdir(parents=True, exist_ok=True)
    for record, planted in zip(records, truth):
        number = int(record["signal"])
        regions = record["answer"]["regions"]
        found, missed, extra = compare(regions, planted["true_events"])
        shown = ", ".join(f"{r['start']}-{r['end']} @{r['phase_deg']:.0f}° ({r['peak']:.3g}, {r['polarity'][:3]})"
                          for r in regions[:3])
        more = f" … +{len(regions) - 3}" if len(regions) > 3 else ""
        print(f"{number:>6}  {', '.join(planted['sources']):<22} {len(planted['true_events']):>7} {found:>5} "
              f"{missed:>6} {extra:>5}  {shown or '(none)'}{more}")
        values, label = without_carrier(captures[number], record["answer"]["stats"]["carrier"])
        title = (f"signal {number} ({', '.join(planted['sources'])}): {len(planted['true_events'])} planted, "
                 f"{found} found, {missed} missed; {len(regions)} regions, {extra} matching no planted event")
        panel = SignalPanel(values, [(r["start"], r["end"]) for r in regions], title,
                            planted=[tuple(event) for event in planted["true_events"]], label=label)
        (OUT / f"signal-{number}.png").write_bytes(render_signals_png([panel]))
    print("\n'found' counts planted events that a region overlaps; 'extra' counts regions that overlap none.")
    print(f"Pictures per signal: {(OUT / 'signal-0.png').relative_to(ROOT)} … signal-{len(records) - 1}.png")
    print(f"PRPD over all signals: {(CLIENT_OUT / 'prpd.png').relative_to(ROOT)}")
    print(f"Report: {(CLIENT_OUT / 'report.html').relative_to(ROOT)} (regions.csv, results.jsonl beside it)")
    print("Done.")


if __name__ == "__main__":
    main()
