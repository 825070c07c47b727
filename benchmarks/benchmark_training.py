"""Training throughput of the real trainer, one mode at a time, in one run: images per second and seconds per
optimiser step for the setup the first default models were trained with (float32, eager, data made in the
training process, and the selective kernel fusion of that time, which stacked its inputs into a 5-D tensor)
against each speed-up and the best combination.

    .venv/bin/python benchmarks/benchmark_training.py --config_name mirnet-v2-compact
    .venv/bin/python benchmarks/benchmark_training.py --config_name mirnet-v1 --train_batch_size 4 --steps 2

Every mode trains the same model from the same seed on the same CBSD432 patches (denoising, 30% Poisson-Gaussian),
through `mirnet_hf.training.Trainer`, so data loading, the loss, backward and Adam are all counted. Each runs
in a fresh process (`--warmup_steps` untimed steps, then `--steps` timed ones) with every core of the machine.
A second table splits the baseline's step into data, forward, backward and optimiser. The last line is
`best speed-up X.XXx (MODE)`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "CBSD432"

# (label, trainer flags): the first row is the baseline every speed-up is measured against. STACKED_SKFF is not a
# trainer flag: it swaps in the fusion code the first defaults were trained with.
STACKED_SKFF = "stacked-skff"
MODES = [
    (
        "(a) as the first defaults: float32, eager, data in-process, stacked SKFF",
        ["--dataloader_num_workers", "0", STACKED_SKFF],
    ),
    ("float32, eager, data in-process (today's model code)", ["--dataloader_num_workers", "0"]),
    ("1 data worker", ["--dataloader_num_workers", "1"]),
    ("bfloat16 autocast", ["--dataloader_num_workers", "0", "--mixed_precision", "bf16"]),
    ("channels-last", ["--dataloader_num_workers", "0", "--channels_last"]),
    ("torch.compile", ["--dataloader_num_workers", "0", "--torch_compile"]),
    (
        "bf16 + channels-last + 1 worker",
        ["--dataloader_num_workers", "1", "--mixed_precision", "bf16", "--channels_last"],
    ),
    (
        "bf16 + channels-last + 1 worker + compile",
        ["--dataloader_num_workers", "1", "--mixed_precision", "bf16", "--channels_last", "--torch_compile"],
    ),
    # What the default configs ask for: bf16 only where the CPU computes it natively, float32 elsewhere.
    (
        "auto precision + channels-last + 1 worker",
        ["--dataloader_num_workers", "1", "--mixed_precision", "auto", "--channels_last"],
    ),
]


PROFILED_COMBINATION = "bf16 + channels-last + 1 worker"


def trainer_flags(args: argparse.Namespace, output_dir: str) -> list[str]:
    return [
        "--task", "denoising", "--poisson_probability", "0.3", "--dataset_name", str(args.dataset),
        "--config_name", args.config_name, "--patch_size", str(args.patch_size),
        "--train_batch_size", str(args.train_batch_size), "--output_dir", output_dir, "--report_to", "none",
        "--max_train_steps", "100000", "--checkpointing_steps", "100000", "--validation_steps", "0",
        "--mixed_precision", "no",
    ]  # fmt: skip


def stacked_skff_forward(self, inputs):
    """The selective kernel fusion as the first defaults ran it (same result): inputs stacked into one 5-D
    tensor, which copies them and loses the channels-last layout."""
    import torch

    stacked = torch.stack(inputs, dim=1)
    summary = stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True)
    squeezed = self.act(self.squeeze(summary))
    weights = torch.stack([select(squeezed) for select in self.select], dim=1).softmax(dim=1)
    return (stacked * weights).sum(dim=1)


def measure(args: argparse.Namespace, flags: list[str]) -> dict:
    """Runs in the child process: builds the trainer, warms up, then times `--steps` optimiser steps."""
    import torch

    from mirnet_hf.modeling_mirnet import MIRNetSelectiveKernelFusion
    from mirnet_hf.training import Trainer, parse_args

    if STACKED_SKFF in flags:
        flags = [flag for flag in flags if flag != STACKED_SKFF]
        MIRNetSelectiveKernelFusion.forward = stacked_skff_forward

    with tempfile.TemporaryDirectory() as output_dir:
        trainer = Trainer(parse_args(trainer_flags(args, output_dir) + flags))
        batches = iter(trainer.streams.loader())
        for _ in range(args.warmup_steps):
            trainer.training_step(batches)
        started = time.perf_counter()
        losses = [trainer.training_step(batches) for _ in range(args.steps)]
        seconds = (time.perf_counter() - started) / args.steps
        result = {"seconds_per_step": seconds, "loss": losses[-1], "threads": torch.get_num_threads()}
        if args.profile:
            result["profile"] = profile_step(trainer, batches)
        return result


def profile_step(trainer, batches, repeats: int = 3) -> dict[str, float]:
    """Mean seconds of a step's parts, run one after the other, on the warmed-up data stream."""
    import torch

    model, accelerator = trainer.model, trainer.accelerator
    parts = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    for _ in range(repeats):
        started = time.perf_counter()
        batch = next(batches)
        inputs, labels = batch["pixel_values"], batch["labels"]
        if trainer.args.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        parts["data"] += time.perf_counter() - started
        started = time.perf_counter()
        with accelerator.autocast():
            loss = model(pixel_values=inputs, labels=labels).loss
        parts["forward"] += time.perf_counter() - started
        started = time.perf_counter()
        accelerator.backward(loss)
        parts["backward"] += time.perf_counter() - started
        started = time.perf_counter()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        parts["optimiser"] += time.perf_counter() - started
    return {name: total / repeats for name, total in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_name", default="mirnet-v2-compact", help="A preset of mirnet_hf.training.PRESETS.")
    parser.add_argument("--patch_size", type=int, default=128)
    parser.add_argument("--train_batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="Timed optimiser steps per mode.")
    parser.add_argument("--warmup_steps", type=int, default=2, help="Untimed steps first (compilation, caches).")
    parser.add_argument("--dataset", default=str(DATA), help="Clean training images (default: CBSD432).")
    parser.add_argument("--modes", nargs="+", type=int, default=None, help="Row numbers to run (default: all).")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(measure(args, json.loads(args.child))), flush=True)
        return

    import torch

    from mirnet_hf.training.components import cpu_has_native_bfloat16

    native = "native bfloat16" if cpu_has_native_bfloat16() else "bfloat16 emulated"
    print(
        f"{args.config_name}: batch {args.train_batch_size} of {args.patch_size}x{args.patch_size} patches, "
        f"{os.cpu_count()} cores ({torch.backends.cpu.get_cpu_capability()}, {native}), torch {torch.__version__}; "
        f"{args.warmup_steps} warm-up + {args.steps} timed steps per mode, each in a fresh process\n"
    )
    print("| mode | images/s | s/step | speed-up | loss after |")
    print("| --- | --- | --- | --- | --- |")
    rows = [MODES[index] for index in args.modes] if args.modes else MODES
    baseline, best, profiles = None, (0.0, ""), {}
    for index, (label, flags) in enumerate(rows):
        command = [sys.executable, __file__, "--child", json.dumps(flags)] + [
            f"--{name}={getattr(args, name)}"
            for name in ("config_name", "patch_size", "train_batch_size", "steps", "warmup_steps", "dataset")
        ]
        if index == 0 or label == PROFILED_COMBINATION:
            command.append("--profile")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp()}
        finished = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
        if finished.returncode or not lines:
            print(f"| {label} | failed: {finished.stderr.strip().splitlines()[-1:]} | | | |", flush=True)
            continue
        result = json.loads(lines[-1][len("RESULT ") :])
        images_per_second = args.train_batch_size / result["seconds_per_step"]
        baseline = baseline or images_per_second
        speedup = images_per_second / baseline
        if index and speedup > best[0]:
            best = (speedup, label)
        if "profile" in result:
            profiles[label] = result["profile"]
        print(
            f"| {label} | {images_per_second:.2f} | {result['seconds_per_step']:.2f} | {speedup:.2f}x | "
            f"{result['loss']:.4f} |",
            flush=True,
        )
    if profiles:
        print("\nWhere a step's time goes (parts run one after the other; data: waiting for the next batch):\n")
        print("| part | " + " | ".join(f"{label.split(':')[0]}: s | share" for label in profiles) + " |")
        print("| --- |" + " --- | --- |" * len(profiles))
        for part in next(iter(profiles.values())):
            cells = [f"{p[part]:.3f} | {p[part] / sum(p.values()):.0%}" for p in profiles.values()]
            print(f"| {part} | " + " | ".join(cells) + " |")
    print(f"\nbest speed-up {best[0]:.2f}x ({best[1]})")


if __name__ == "__main__":
    main()
