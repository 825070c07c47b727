"""Seconds per output megapixel of network shapes in the app's default mode (precision "auto": bfloat16 autocast
on a CPU with native bfloat16, else float32; the task's tiles), with PyTorch and, in float32, with ONNX Runtime
(the app runs the faster of the two), side by side in one run. `--precision float32` measures the float32 mode
(the app's default before 2026-12-05) on any CPU. Random
weights: speed does not depend on the values. Run it on a quiet machine (pause training: `kill -STOP PID`).

    .venv/bin/python benchmarks/benchmark_shapes.py                 # the sizing table of issues 28 and 29
    .venv/bin/python benchmarks/benchmark_shapes.py --photo 512x384 --scales 4   # one x4 photo, 2048x1536 out
    .venv/bin/python benchmarks/benchmark_shapes.py --arena         # ONNX Runtime with and without its arena

Each row restores one random photo whose output is about `--megapixels` (1 by default), after a warm-up on a
small one (first-call allocations and kernel choices); `--repeats` takes the best of several.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np
import torch

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
from mirnet_hf.inference import MIRNetRestorer, resolve_precision
from mirnet_hf.tasks import default_tile_size
from mirnet_hf.training.components import PRESETS

# (label, preset, task settings) of the shapes compared: today's defaults, and the new low-resolution bodies.
SHAPES = {
    "super-resolution": [
        ("mirnet-v2-small on the upsampled image (today)", "mirnet-v2-small", {}),
        ("mirnet-v2-medium-ps (pixel-shuffle tail)", "mirnet-v2-medium-ps", {}),
    ],
    "denoising": [
        ("mirnet-v2-small (today)", "mirnet-v2-small", {}),
        ("mirnet-v2-medium-s2 (half-resolution stack)", "mirnet-v2-medium-s2", {}),
    ],
}


def build(preset: str, task: str, scale: int) -> MIRNetForImageRestoration:
    settings = {**PRESETS[preset], "task": task}
    if task == "super-resolution":
        settings["upscale"] = scale
    torch.manual_seed(0)
    return MIRNetForImageRestoration(MIRNetConfig(**settings)).eval()


def seconds_per_megapixel(
    model: MIRNetForImageRestoration,
    size: tuple[int, int],
    scale: int,
    backend: str,
    repeats: int,
    precision: str = "auto",
    **runner,
) -> float:
    restorer = MIRNetRestorer(model, device="cpu", precision=precision, tile_size="auto", backend=backend)
    if runner:  # ONNX Runtime session options under test
        from mirnet_hf.onnx_backend import OnnxRuntimeRunner

        restorer.runner = OnnxRuntimeRunner(model, torch.device("cpu"), **runner)
    photo = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    upscale = scale if model.config.task == "super-resolution" else None
    restorer(photo[:64, :64], upscale=upscale)  # warm-up
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        restorer(photo, upscale=upscale)
        best = min(best, time.perf_counter() - started)
    return best / (size[0] * size[1] * scale * scale / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--megapixels", type=float, default=1.0, help="output size of each photo (default 1)")
    parser.add_argument("--photo", help="input size WIDTHxHEIGHT instead of --megapixels")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--arena", action="store_true", help="ONNX Runtime with its memory arena, then without")
    parser.add_argument("--precision", choices=["auto", "float32"], default="auto", help="auto: the app's default")
    args = parser.parse_args()
    precision = resolve_precision(args.precision, torch.device("cpu"))
    os.environ.setdefault("MIRNET_HF_CACHE", tempfile.mkdtemp())  # exported graphs of random weights
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, "
        f"precision {args.precision}: {precision}"
    )
    print("| task | shape | output | PyTorch s/MP | ONNX Runtime s/MP | the app's (faster) s/MP |")
    print("| --- | --- | --- | --- | --- | --- |")
    for task in args.tasks:
        for scale in args.scales if task == "super-resolution" else [1]:
            for label, preset, _ in SHAPES[task]:
                model = build(preset, task, scale)
                if args.photo:
                    size = tuple(int(side) for side in args.photo.split("x"))
                else:
                    side = int(round(math.sqrt(args.megapixels * 1e6) / scale))
                    size = (side, side)
                out = f"{size[0] * scale}x{size[1] * scale}" + (f" (x{scale})" if scale > 1 else "")
                if args.arena:
                    cells = [
                        seconds_per_megapixel(model, size, scale, "onnxruntime", args.repeats, memory_arena=arena)
                        for arena in (True, False)
                    ]
                    print(f"| {task} | {label} | {out} | arena on {cells[0]:.2f} | arena off {cells[1]:.2f} | |")
                    continue
                backends = ("pytorch", "onnxruntime") if precision == "float32" else ("pytorch",)  # ORT: float32 only
                timings = [seconds_per_megapixel(model, size, scale, b, args.repeats, precision) for b in backends]
                onnx = f"{timings[1]:.2f}" if len(timings) > 1 else "(float32 only)"
                print(f"| {task} | {label} | {out} | {timings[0]:.2f} | {onnx} | {min(timings):.2f} |", flush=True)
    print(f"(tiles: the task's default, {default_tile_size('super-resolution')} for these tasks; {precision})")


if __name__ == "__main__":
    main()
