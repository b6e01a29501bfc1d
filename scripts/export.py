"""Export the trained weights to ONNX and pack ``model_store/pd_segmenter.mar``.

    python scripts/export.py                       # the shipped model
    python scripts/export.py --preset predecessor --random --name predecessor  # speed reference
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import _bootstrap  # noqa: F401
import torch

from pdseg import model as model_mod
from pdseg.window import WindowPlan

ROOT = _bootstrap.ROOT
BUILD = ROOT / "build"
SERVING_RECORD_KEYS = ("name", "preset", "architecture", "threshold", "postprocess", "window",
                       "note")
PACKAGE_FILES = ("__init__.py", "decode.py", "model.py", "phase.py", "pipeline.py",
                 "preprocess.py", "prpd.py", "regions.py", "render.py", "window.py")


def export(weights_dir: Path, name: str, out_dir: Path, version: str,
           preset: str | None = None, random: bool = False,
           model_config: Path = ROOT / "config" / "model-config.yaml") -> Path:
    if random:
        torch.manual_seed(0)
        network = model_mod.UNet1D(model_mod.PRESETS[preset or "small"]).eval()
        plan = WindowPlan()
        record = {"name": name, "preset": preset, "architecture": network.config.to_dict(),
                  "threshold": 0.5, "window": {"window": plan.window, "context": plan.context},
                  "note": "random weights: for speed measurements only"}
    else:
        network, record = model_mod.load_trained(weights_dir, "pd_segmenter")
    stage = BUILD / f"{name}-stage"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "extra" / "pdseg").mkdir(parents=True)
    for file in PACKAGE_FILES:
        shutil.copy2(ROOT / "handler" / "pdseg" / file, stage / "extra" / "pdseg" / file)
    # The archive carries what serving reads; the full training record (validation grid,
    # configuration) stays beside the weights.
    serving = {key: record[key] for key in SERVING_RECORD_KEYS if key in record}
    (stage / "extra" / "pd_segmenter.json").write_text(json.dumps(serving, indent=2) + "\n")
    # ONNX Runtime serves the network (TorchServe's BaseHandler opens a .onnx serialized file
    # with it); frozen TorchScript was 1.4x slower here (docs/benchmarks.md).
    serialized = stage / f"{name}.onnx"
    model_mod.export_onnx(network, serialized, window=record["window"]["window"])
    out_dir.mkdir(parents=True, exist_ok=True)
    archiver = Path(sys.executable).parent / "torch-model-archiver"
    subprocess.run([
        str(archiver), "--model-name", name, "--version", version,
        "--serialized-file", str(serialized),
        "--handler", str(ROOT / "handler" / "pd_handler.py"),
        "--extra-files", str(stage / "extra"),
        "--config-file", str(model_config),
        "--export-path", str(out_dir), "--force",
    ], check=True)
    return out_dir / f"{name}.mar"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "model_store" / "weights"))
    parser.add_argument("--name", default="pd_segmenter")
    parser.add_argument("--version", default="1.0")
    parser.add_argument("--out", default=str(ROOT / "model_store"))
    parser.add_argument("--preset", default=None, choices=sorted(model_mod.PRESETS))
    parser.add_argument("--random", action="store_true", help="untrained weights of --preset")
    parser.add_argument("--model-config", default=str(ROOT / "config" / "model-config.yaml"),
                        help="batching and worker settings packed into the archive (for experiments)")
    args = parser.parse_args()
    path = export(Path(args.weights), args.name, Path(args.out), args.version, args.preset, args.random,
                  Path(args.model_config))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
