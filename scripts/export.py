"""Export the trained weights and pack ``model_store/pd_segmenter.mar``.

    python scripts/export.py                       # the shipped model, frozen TorchScript
    python scripts/export.py --runtime onnx        # the same network as an ONNX graph
    python scripts/export.py --preset predecessor --random --name predecessor  # speed reference

The archive carries the serialized network, a small serving record, ``model-config.yaml``
and, as code, every file of ``handler/`` and nothing else.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _bootstrap  # noqa: F401
import torch

from pdseg import model as model_mod
from pdseg.window import WindowPlan

ROOT = _bootstrap.ROOT
BUILD = ROOT / "build"
SERVING_RECORD_KEYS = ("name", "preset", "architecture", "threshold", "postprocess", "window",
                       "note")
PACKAGE = ROOT / "handler" / "pdseg"
RUNTIMES = ("torchscript", "onnx")


def package_files() -> list[Path]:
    """The serving modules: all of ``handler/pdseg``, since only what serving uses lives there."""
    return sorted(PACKAGE.glob("*.py"))


def export(weights_dir: Path, name: str, out_dir: Path, version: str,
           preset: str | None = None, random: bool = False,
           model_config: Path = ROOT / "config" / "model-config.yaml", runtime: str = "torchscript") -> Path:
    if random:
        torch.manual_seed(0)
        network = model_mod.UNet1D(model_mod.PRESETS[preset or "small"]).eval()
        plan = WindowPlan()
        record = {"name": name, "preset": preset, "architecture": network.config.to_dict(),
                  "threshold": 0.5, "window": {"window": plan.window, "context": plan.context},
                  "note": "random weights: for speed measurements only"}
    else:
        network, record = model_mod.load_trained(weights_dir, "pd_segmenter")
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-stage-", dir=BUILD) as staging:
        return _pack(network, record, name, Path(staging), out_dir, version, model_config, runtime)


def _pack(network, record: dict, name: str, stage: Path, out_dir: Path, version: str,
          model_config: Path, runtime: str) -> Path:
    (stage / "extra" / "pdseg").mkdir(parents=True)
    for file in package_files():
        shutil.copy2(file, stage / "extra" / "pdseg" / file.name)
    # The archive carries what serving reads; the full training record (validation grid,
    # configuration) stays beside the weights.
    serving = {key: record[key] for key in SERVING_RECORD_KEYS if key in record}
    (stage / "extra" / "pd_segmenter.json").write_text(json.dumps(serving, indent=2) + "\n")
    # BaseHandler loads either: a .pt file with torch.jit.load, a .onnx one into an ONNX Runtime
    # session (docs/benchmarks.md compares them).
    serialized = stage / f"{name}.{'onnx' if runtime == 'onnx' else 'pt'}"
    exporter = model_mod.export_onnx if runtime == "onnx" else model_mod.export_torchscript
    exporter(network, serialized, window=record["window"]["window"])
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
    parser.add_argument("--runtime", choices=RUNTIMES, default="torchscript",
                        help="the serialized network: frozen TorchScript (default) or ONNX for ONNX Runtime")
    parser.add_argument("--model-config", default=str(ROOT / "config" / "model-config.yaml"),
                        help="batching and worker settings packed into the archive (for experiments)")
    args = parser.parse_args()
    path = export(Path(args.weights), args.name, Path(args.out), args.version, args.preset, args.random,
                  Path(args.model_config), args.runtime)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
