"""Fine-tuning the shipped weights on coloured noise (and smooth offsets): measured, not shipped
(docs/model-card.md, Training, "Fine-tuning on coloured noise"). Kept for one commit so that
the figures can be rerun; removed in the next.

    python training/coloured_finetune.py --out build/candidates/ft-col
    python training/coloured_finetune.py --out build/candidates/ft-col-off --offset-fraction 0.5
    python scripts/evaluate.py --weights build/candidates/ft-col --no-write

3,000 steps (AdamW, one-cycle to 5e-4, float32, one thread) on 4,000 captures of 8,192 samples
of the recipe's mix, ``--coloured-fraction`` (0.3) of the noisy ones with coloured noise
(``synthetic._coloured_noise``), ``--offset-fraction`` of the long rows on a smooth random
offset of 0-6 noise units, 6-120 samples wide.
"""
from __future__ import annotations
import argparse, json, shutil, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "handler"), str(ROOT / "scripts")]
import numpy as np, torch
from scipy import ndimage
from pdseg import model as model_mod, preprocess
WEIGHTS = ROOT / "model_store" / "weights"

def finetune(args):
    from tqdm import tqdm
    from training import synthetic, trainer
    torch.set_num_threads(args.threads)
    length = 8192
    rng = np.random.default_rng(args.seed)
    inputs = np.zeros((args.captures, preprocess.INPUT_CHANNELS, length), np.float32)
    labels = np.zeros((args.captures, length), bool)
    started = time.time()
    for row in tqdm(range(args.captures), desc="synthesising", mininterval=30):
        short = rng.random() < 0.15
        size = int(trainer._log_uniform_int(rng, 64, 2048)) if short else length
        capture = synthetic.make_capture(rng, size, interference_fraction=0.6, coloured_fraction=args.coloured_fraction)
        if short:
            conditioned = trainer.condition_short_capture(capture.signal)
            at = int(rng.integers(0, length - size + 1))
            inputs[row, :, at: at + size] = conditioned.network_input
            labels[row, at: at + size] = capture.mask
            continue
        conditioned = preprocess.condition(capture.signal, False, remove_commutation=False)
        if rng.random() < args.offset_fraction:
            width = float(np.exp(rng.uniform(np.log(6), np.log(120))))
            wander = ndimage.gaussian_filter1d(rng.normal(size=length), width)
            wander /= np.sqrt(np.mean(wander ** 2))
            shifted = conditioned.filtered + rng.uniform(0, args.max_offset) * conditioned.scale * wander
            inputs[row] = preprocess.network_planes(shifted, conditioned.scale)
        else:
            inputs[row] = conditioned.network_input
        labels[row] = capture.mask
    network, _ = model_mod.load_trained(WEIGHTS)
    config = trainer.TrainConfig(steps=args.steps, learning_rate=args.lr, seed=args.seed, bf16=False)
    losses = trainer.train(network, inputs, labels, config)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), out / "pd_segmenter.state.pt")
    shutil.copy(WEIGHTS / "pd_segmenter.json", out / "pd_segmenter.json")
    print(json.dumps({"seconds": round(time.time() - started), "loss_first_50": float(np.mean(losses[:50])),
                      "loss_last_50": float(np.mean(losses[-50:]))}))

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--out", required=True); p.add_argument("--captures", type=int, default=4000)
p.add_argument("--steps", type=int, default=3000); p.add_argument("--lr", type=float, default=5e-4)
p.add_argument("--offset-fraction", type=float, default=0.0); p.add_argument("--max-offset", type=float, default=6.0)
p.add_argument("--coloured-fraction", type=float, default=0.3)
p.add_argument("--threads", type=int, default=1); p.add_argument("--seed", type=int, default=4242)
finetune(p.parse_args())
