"""Training throughput of the paper-size model: a plain float32 eager step against bfloat16 autocast and
channels-last (the issue's setting: 128x128 patches, batch 4, on this machine's CPU).

    .venv/bin/python benchmarks/benchmark_training.py            # MIRNet v1 (paper size)
    .venv/bin/python benchmarks/benchmark_training.py --version v2 --steps 3

Each mode runs one warm-up step, then `--steps` timed optimiser steps (forward, Charbonnier loss, backward,
Adam), and prints images per second side by side. The loss after the timed steps is printed as a sanity check
(every mode starts from the same weights and batch).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration

MODES = [
    ("float32, eager (plain)", False, False),
    ("float32, channels-last", False, True),
    ("bfloat16 autocast", True, False),
    ("bfloat16 autocast, channels-last", True, True),
]


def time_mode(model, inputs, labels, bf16: bool, channels_last: bool, steps: int) -> tuple[float, float]:
    model = copy.deepcopy(model).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999))
    durations, loss = [], float("nan")
    for step in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = model(pixel_values=inputs, labels=labels)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # the first step warms the allocator and oneDNN's kernel cache
            durations.append(time.perf_counter() - started)
        loss = output.loss.item()
    return inputs.shape[0] / (sum(durations) / len(durations)), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", choices=("v1", "v2"), default="v1")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = MIRNetForImageRestoration(MIRNetConfig(version=args.version))
    parameters = sum(p.numel() for p in model.parameters())
    labels = torch.rand(args.batch_size, 3, args.patch_size, args.patch_size)
    inputs = (labels + 0.1 * torch.randn_like(labels)).clamp(0, 1)
    print(
        f"MIRNet {args.version} ({parameters / 1e6:.1f} M parameters), batch {args.batch_size} of "
        f"{args.patch_size}x{args.patch_size}, {torch.get_num_threads()} threads, torch {torch.__version__}\n"
    )
    print("| mode | images/s | s/step | speed-up | loss after |")
    print("| --- | --- | --- | --- | --- |")
    baseline = None
    for name, bf16, channels_last in MODES:
        images_per_second, loss = time_mode(model, inputs, labels, bf16, channels_last, args.steps)
        baseline = baseline or images_per_second
        print(
            f"| {name} | {images_per_second:.2f} | {args.batch_size / images_per_second:.1f} | "
            f"{images_per_second / baseline:.2f}x | {loss:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
