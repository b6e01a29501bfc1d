"""Fine-tune the shipped weights with short captures shown to the network as served: conditioned
by preprocess.condition and placed amid their own noise (preprocess.planes_amid_own_noise).

Measured on 2026-12-03 and not shipped (docs/model-card.md, Training); kept here for one commit
so that the result can be rerun:

    python training/finetune_short_windows.py --out build/candidates/finetune-short
    python scripts/atlas.py --weights build/candidates/finetune-short --no-write
"""
import argparse, json, shutil, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import _bootstrap  # noqa
import numpy as np, torch
from tqdm import tqdm
from pdseg import preprocess, model as model_mod
from training import trainer, synthetic

p = argparse.ArgumentParser()
p.add_argument("--captures", type=int, default=4000)
p.add_argument("--short", type=float, default=0.5)
p.add_argument("--steps", type=int, default=3000)
p.add_argument("--lr", type=float, default=5e-4)
p.add_argument("--short-max", type=int, default=2048)
p.add_argument("--out", required=True)
p.add_argument("--seed", type=int, default=777)
a = p.parse_args()
torch.set_num_threads(1)
root = Path(__file__).resolve().parents[1] / "model_store" / "weights"
length = 8192
rng = np.random.default_rng(a.seed)
inputs = np.zeros((a.captures, preprocess.INPUT_CHANNELS, length), np.float32)
labels = np.zeros((a.captures, length), bool)
t0 = time.time()
for i in tqdm(range(a.captures), desc="synth"):
    short = rng.random() < a.short
    if short:
        size = trainer._log_uniform_int(rng, 64, a.short_max)
        cap = synthetic.make_capture(rng, size, interference_fraction=0.6)
        cond = preprocess.condition(cap.signal)
        at = int(rng.integers(0, length - size + 1))
        inputs[i] = preprocess.planes_amid_own_noise(cond, at, length - at - size)
        labels[i, at:at + size] = cap.mask
    else:
        cap = synthetic.make_capture(rng, length, interference_fraction=0.6)
        cond = preprocess.condition(cap.signal, False, remove_commutation=False)
        inputs[i] = cond.network_input
        labels[i] = cap.mask
print("synth s", time.time() - t0, flush=True)
record = json.loads((root / "pd_segmenter.json").read_text())
net, _ = model_mod.load_trained(root)
config = trainer.TrainConfig(steps=a.steps, learning_rate=a.lr, seed=a.seed, bf16=False)
losses = trainer.train(net, inputs, labels, config)
out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
torch.save(net.state_dict(), out / "pd_segmenter.state.pt")
shutil.copy(root / "pd_segmenter.json", out / "pd_segmenter.json")
print("done s", time.time() - t0, "loss", np.mean(losses[:50]), np.mean(losses[-50:]), flush=True)
