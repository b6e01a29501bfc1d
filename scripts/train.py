"""Train the shipped PD segmenter from scratch on synthetic captures (CPU, seeded).

Two stages: the base training (``training.trainer``), then the fine-tuning stage
(``training.finetune``: conditioned as served, sources rounded by their sensor, commutation
left to the conditioning); the region rules are chosen between the two. Writes
``model_store/weights/pd_segmenter.state.pt`` and ``pd_segmenter.json`` (architecture,
decision threshold, window plan, both stages' configuration, validation scores).

    python scripts/train.py                 # the shipped model
    python scripts/train.py --preset tiny --steps 200 --out /tmp/w   # a quick look
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time

import _bootstrap  # noqa: F401
import numpy as np
import torch

from pdseg import model as model_mod
from pdseg.window import WindowPlan
from training import finetune, trainer


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (the shipped weights were trained so)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(set(model_mod.PRESETS) - {"predecessor"}))
    parser.add_argument("--steps", type=int, default=trainer.TrainConfig.steps)
    parser.add_argument("--train-captures", type=int, default=trainer.TrainConfig.train_captures)
    parser.add_argument("--short-capture-fraction", type=float,
                        default=trainer.TrainConfig.short_capture_fraction,
                        help="share of training and validation rows that hold a short capture")
    parser.add_argument("--false-alarm-budget", type=float,
                        default=trainer.TrainConfig.max_false_alarms_per_cycle,
                        help="most regions per AC cycle on PD-free validation captures that the "
                             "chosen region rules may report; 0: best validation F1 alone")
    parser.add_argument("--interference-fraction", type=float,
                        default=trainer.TrainConfig.interference_fraction,
                        help="share of training captures (not near noise-free) with interference; "
                             "validation keeps the default mix")
    parser.add_argument("--remove-tones", action=argparse.BooleanOptionalAction,
                        default=trainer.TrainConfig.remove_tones,
                        help="condition training captures with their stationary tones removed, as served")
    parser.add_argument("--gap-weight", type=float, default=trainer.TrainConfig.gap_weight,
                        help="loss weight of unlabelled samples between close events")
    parser.add_argument("--batch-size", type=int, default=trainer.TrainConfig.batch_size)
    parser.add_argument("--crop", type=int, default=trainer.TrainConfig.crop,
                        help="samples per training crop (a multiple of 16)")
    parser.add_argument("--learning-rate", type=float, default=trainer.TrainConfig.learning_rate)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                        default=trainer.TrainConfig.bf16,
                        help="forward pass in bfloat16 autocast (weights and optimiser stay float32)")
    parser.add_argument("--seed", type=int, default=trainer.TrainConfig.seed,
                        help="training captures (seed), initialisation (seed), batches (seed + 1), "
                             "validation captures (seed + 7)")
    parser.add_argument("--device", default="cpu",
                        help="where to train (cpu, cuda); the shipped weights are trained on the CPU")
    parser.add_argument("--minutes", type=float, default=None, help="stop training after this long")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; the shipped weights were trained with 1 (the same count "
                             "gives the same weights; one thread is not held up by other work on a "
                             "2-core machine, two are, by up to 8x)")
    parser.add_argument("--out", default=str(_bootstrap.ROOT / "model_store" / "weights"))
    parser.add_argument("--name", default="pd_segmenter")
    parser.add_argument("--retune-only", action="store_true",
                        help="keep the weights in --out; choose threshold and region rules again")
    parser.add_argument("--finetune", action=argparse.BooleanOptionalAction, default=True,
                        help="run the fine-tuning stage after the base training (training/finetune.py)")
    args = parser.parse_args()
    if args.retune_only:
        return retune(model_mod.Path(args.out), args.name, args.false_alarm_budget)

    torch.set_num_threads(args.threads)
    if args.bf16 and args.device == "cpu" and not native_bf16():
        print("train.py: this CPU has no native bfloat16 (AVX-512 BF16 or AMX); the bfloat16 forward "
              "pass is emulated, about 7x slower (2 s a step instead of 0.29 s in float32 on a 2-core "
              "AVX2 machine, 2026-12-03). --no-bf16 trains in float32, in about 80 minutes, to other "
              "weights than the shipped ones (docs/model-card.md, Training).", file=sys.stderr, flush=True)
    architecture = model_mod.PRESETS[args.preset]
    config = trainer.TrainConfig(steps=args.steps, train_captures=args.train_captures,
                                  short_capture_fraction=args.short_capture_fraction,
                                  max_false_alarms_per_cycle=args.false_alarm_budget,
                                  gap_weight=args.gap_weight,
                                  batch_size=args.batch_size, crop=args.crop,
                                  learning_rate=args.learning_rate,
                                  interference_fraction=args.interference_fraction,
                                  remove_tones=args.remove_tones,
                                  seed=args.seed, bf16=args.bf16)
    started = time.time()
    inputs, labels = trainer.make_dataset(
        config.train_captures, config.capture_length, config.seed, progress=True,
        short_capture_fraction=config.short_capture_fraction,
        interference_fraction=config.interference_fraction,
        remove_tones=config.remove_tones)
    val_inputs, val_labels, _, val_cycles = trainer.make_dataset(
        config.validation_captures, config.capture_length, config.seed + 7, keep_filtered=True,
        short_capture_fraction=config.short_capture_fraction,
        remove_tones=config.remove_tones)
    torch.manual_seed(config.seed)
    network = model_mod.UNet1D(architecture)
    out = model_mod.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / f"{args.name}.checkpoint.pt"
    # The base stage's weights are kept until the end, so that an interrupted fine-tune resumes
    # without training the base again.
    base_weights = out / f"{args.name}.base.pt"
    if base_weights.is_file():
        saved = torch.load(base_weights, map_location="cpu", weights_only=False)
        network.load_state_dict(saved["model"])
        losses = saved["losses"]
    else:
        losses = trainer.train(network, inputs, labels, config,
                               time_limit_s=None if args.minutes is None else args.minutes * 60,
                               device=args.device, checkpoint=checkpoint)
        if args.finetune:
            torch.save({"model": network.state_dict(), "losses": losses}, base_weights)
    del inputs, labels
    # The region rules are chosen on the base stage's network: the validation rows are
    # conditioned the base stage's way (converter notches left in), which the fine-tuned network,
    # trained to leave commutation to the conditioning, is not meant to judge (docs/model-card.md,
    # Training). The shipped record's rules were chosen so.
    probabilities = trainer.predict(network, val_inputs)
    chosen, postprocess_scores = trainer.choose_postprocess(
        probabilities, val_labels, cycles=val_cycles,
        max_false_alarms=config.max_false_alarms_per_cycle or None)
    stage = None
    if args.finetune:
        stage = finetune.finetune(network, finetune.FinetuneConfig(), device=args.device,
                                  checkpoint=out / f"{args.name}.finetune.checkpoint.pt")

    torch.save(network.state_dict(), out / f"{args.name}.state.pt")
    plan = WindowPlan()
    record = {
        "name": args.name,
        "preset": args.preset,
        "architecture": architecture.to_dict(),
        "threshold": chosen["threshold"],
        "postprocess": postprocess_rules(chosen),
        "window": {"window": plan.window, "context": plan.context},
        "training": dataclasses.asdict(config) | {"steps_run": len(losses)},
        "loss": {"first_50": float(np.mean(losses[:50])), "last_50": float(np.mean(losses[-50:]))},
        **({"finetune": stage} if stage else {}),
        "validation_event_f1": chosen["f1"],
        "validation_false_alarms_per_cycle": chosen["false_alarms_per_cycle"],
        "validation_event_f1_by_setting": postprocess_scores,
        "parameters": model_mod.parameter_count(network),
        "seconds": round(time.time() - started, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
    }
    (out / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    for partial in (checkpoint, base_weights, out / f"{args.name}.finetune.checkpoint.pt"):
        partial.unlink(missing_ok=True)
    print(f"{chosen}  "
          f"loss {record['loss']['first_50']:.4f} -> {record['loss']['last_50']:.4f}  "
          f"{record['seconds']} s  -> {out}")


def postprocess_rules(chosen: dict) -> dict:
    return {key: chosen[key] for key in ("extent_threshold", "min_gap", "min_length")}


def retune(out, name: str, false_alarm_budget: float) -> None:
    network, record = model_mod.load_trained(out, name)
    if "finetune" in record:
        print("train.py: these weights went through the fine-tuning stage; the validation rows are "
              "conditioned the base stage's way, on which the recipe chooses the rules before that "
              "stage, so the rules chosen here are not the recipe's (docs/model-card.md, Training).",
              file=sys.stderr, flush=True)
    config = trainer.TrainConfig.from_record(record["training"])
    config = dataclasses.replace(config, max_false_alarms_per_cycle=false_alarm_budget)
    val_inputs, val_labels, _, val_cycles = trainer.make_dataset(
        config.validation_captures, config.capture_length, config.seed + 7, keep_filtered=True,
        short_capture_fraction=config.short_capture_fraction,
        remove_tones=config.remove_tones)
    chosen, scores = trainer.choose_postprocess(
        trainer.predict(network, val_inputs), val_labels, cycles=val_cycles,
        max_false_alarms=config.max_false_alarms_per_cycle or None)
    record.pop("validation_event_f1_by_threshold", None)
    record["training"] = dataclasses.asdict(config) | {"steps_run": record["training"].get("steps_run")}
    record |= {"threshold": chosen["threshold"],
               "postprocess": postprocess_rules(chosen),
               "validation_event_f1": chosen["f1"],
               "validation_false_alarms_per_cycle": chosen["false_alarms_per_cycle"],
               "validation_event_f1_by_setting": scores}
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(chosen)


if __name__ == "__main__":
    main()
