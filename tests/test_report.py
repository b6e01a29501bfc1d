"""report.html from a real run (the suite's TorchServe), opened in headless Chromium."""
import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pdclient import cli
from pdseg import prpd
from serve import ROOT

pytestmark = pytest.mark.server

SAMPLES = ROOT / "data" / "sample_captures.npy"

# Put first in <head>: records every error (scripts, and resources, which do not bubble: hence
# the capture phase) and console.error, then after load writes what it found into the page.
PROBE = """<script>
window.__problems = [];
window.addEventListener('error', e => window.__problems.push('error: ' + (e.message || (e.target && e.target.tagName))), true);
const consoleError = console.error;
console.error = (...parts) => { window.__problems.push('console.error: ' + parts.join(' ')); consoleError(...parts); };
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const found = {images: images.length, widths: images.map(i => i.naturalWidth),
                 broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
                 problems: window.__problems};
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is missing: `make setup` installs it as root (apt-get install chromium)")
    return found


def open_in_chromium(page: Path, tmp_path: Path) -> dict:
    """Load a copy of ``page`` with the probe in headless Chromium; what the probe saw."""
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000", "--dump-dom",
         probed.as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the page did not finish loading:\n{result.stderr[-3000:]}"
    return json.loads(html.unescape(match.group(1)))


@pytest.fixture(scope="module")
def run_folder(server, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    assert cli.main([str(SAMPLES), "--url", server.inference_url, "--out", str(out), "--samples-per-cycle", "3333",
                     "--no-progress"]) == 0
    return out


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_report_has_settings_summary_and_a_row_per_signal(server, run_folder):
    page = (run_folder / "report.html").read_text()
    answers = records(run_folder)
    summary = prpd.summarise(record["answer"] for record in answers)
    assert f"<td>service</td><td>{server.inference_url}</td>" in page and "<td>state</td><td>complete</td>" in page
    assert "<td>analysis options</td><td>samples_per_cycle=3333</td>" in page
    model = answers[0]["model"]
    assert f"<td>model</td><td>{model['name']} {model['version']}</td>" in page
    assert f"<td>pulse count</td><td>{summary['pulse_count']}</td>" in page and summary["pulse_count"] > 0
    assert f"<td>pulse repetition rate n, per cycle</td><td>{summary['repetition_rate_per_cycle']:.4g}</td>" in page
    for record in answers:
        regions = record["answer"]["regions"]
        assert f"<tr><td>{record['signal']}</td><td>10000</td><td>{len(regions)}</td>" in page
        tones = ", ".join(f"{t['cycles_per_sample']:g}" for t in record["answer"]["stats"]["tones_removed"]) or "none"
        train = record["answer"]["stats"]["commutation_removed"]
        commutation = (f"{train['samples_per_sixth']:g}" + (" (toward zero)" if train.get("toward_zero") else "")
                       if train else "none")
        repeating = record["answer"]["stats"]["phase_locked_removed"]
        phase_locked = "none" if repeating is None else f"{repeating['peak']:g}"
        regular = record["answer"]["stats"]["regular_train_removed"]
        spaced = "none" if regular is None else f"{regular['samples_apart']:g}"
        whitening = record["answer"]["stats"]["noise_whitening"]
        whitened = "no" if whitening is None else f"{whitening:g}"
        clipped = record["answer"]["stats"]["clipped_carrier_restored"]
        restored = "no" if clipped is None else f"{clipped['plateaus']}"
        bursts = ", ".join(f"{b['cycles_per_sample']:g} at {b['start']}-{b['end']}"
                           for b in record["answer"]["stats"]["tone_bursts_removed"]) or "none"
        wandering = ", ".join(f"{w['cycles_per_sample']:g} ± {w['deviation_cycles_per_sample']:g}"
                              for w in record["answer"]["stats"]["wandering_tones_removed"]) or "none"
        assert (f"<td>{html.escape(tones)}</td><td>{html.escape(bursts)}</td><td>{html.escape(wandering)}</td>"
                f"<td>{commutation}</td><td>{phase_locked}</td>"
                f"<td>{spaced}</td><td>{whitened}</td><td>{restored}</td></tr>") in page
    # the bundled captures with radio-like interference carry tones and converter notches,
    # which the service took out
    assert sum(bool(record["answer"]["stats"]["tones_removed"]) for record in answers) >= 2
    assert sum(bool(record["answer"]["stats"]["commutation_removed"]) for record in answers) >= 1
    with_pd = sum(1 for record in answers if record["answer"]["regions"])
    assert page.count("<img ") == 1 + min(with_pd, 6)  # the PRPD plot and the signals with most PD
    assert "src=\"http" not in page and "<link" not in page  # self-contained


def test_report_loads_without_errors_and_every_image_renders(run_folder, tmp_path):
    seen = open_in_chromium(run_folder / "report.html", tmp_path)
    assert seen["problems"] == [] and seen["broken"] == []
    assert seen["images"] == (run_folder / "report.html").read_text().count("<img ") >= 2
    assert seen["widths"][0] == 800 and all(width > 0 for width in seen["widths"])


def test_the_browser_check_sees_a_broken_image(run_folder, tmp_path):
    page = (run_folder / "report.html").read_text()
    broken = tmp_path / "broken.html"
    # The second picture's data replaced by bytes that are no PNG: the page loads, that image cannot.
    second = [m.end() for m in re.finditer(r"base64,", page)][1]
    end = page.index('"', second)
    broken.write_text(page[:second] + base64.b64encode(b"not a PNG at all").decode() + page[end:])
    seen = open_in_chromium(broken, tmp_path)
    assert len(seen["broken"]) == 1 and seen["problems"]


def test_prpd_picture_is_written_beside_the_report(run_folder):
    png = (run_folder / "prpd.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.frombuffer(png, dtype=np.uint8).size > 10_000


def test_the_signal_table_says_when_the_notches_pulled_toward_zero():
    from pdclient import report

    def record(train):
        return {"signal": "s", "answer": {"length": 10, "regions": [], "stats": {"commutation_removed": train}}}

    assert report._signal_row(record({"samples_per_sixth": 555.5, "peak": 26.8, "toward_zero": True}))[11] \
        == "555.5 (toward zero)"
    assert report._signal_row(record({"samples_per_sixth": 555.5, "peak": 26.8}))[11] == "555.5"
    assert report._signal_row(record(None))[11] == "none"
