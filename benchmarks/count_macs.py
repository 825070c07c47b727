"""Multiply-accumulates per megapixel of output for the training presets, counted by PyTorch's FLOP counter on
one forward pass. No timing: it runs anywhere, in seconds, even while training runs.

    .venv/bin/python benchmarks/count_macs.py
    .venv/bin/python benchmarks/count_macs.py --presets mirnet-v2-small mirnet-v2 --size 256

A network on the bicubic-upsampled image (the paper's protocol) costs the same per output megapixel at every
scale. A pixel-shuffle preset (`upsampler="pixel-shuffle"`) runs on the low-resolution image and is counted at
each scale, tail included. For the others, the "low-resolution body" columns say what the same network would
cost per output megapixel on 1/scale^2 of the pixels (the tail not counted).
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
from mirnet_hf.training.components import PRESETS

SCALES = (2, 3, 4)


def count(config: MIRNetConfig, size: int) -> tuple[float, int]:
    """Multiply-accumulates (in billions) of one forward pass per megapixel of output, for a size x size output,
    and the network's parameters."""
    model = MIRNetForImageRestoration(config).eval()
    side = size // config.model_upscale
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, config.num_channels, side, side))
    output_pixels = (side * config.model_upscale) ** 2
    gmacs = counter.get_total_flops() / 2 / 1e9 / (output_pixels / 1e6)
    return gmacs, sum(p.numel() for p in model.parameters())


def preset_costs(name: str, size: int) -> tuple[list[float], int, bool]:
    """GMAC per output megapixel as today and at each scale, the parameters, and whether they were counted at
    each scale (a pixel-shuffle preset) rather than divided by scale^2."""
    settings = PRESETS[name]
    if settings.get("upsampler") == "pixel-shuffle":
        counted = [count(MIRNetConfig(**settings, task="super-resolution", upscale=s), size) for s in SCALES]
        return [float("nan"), *(gmacs for gmacs, _ in counted)], counted[0][1], True
    gmacs, parameters = count(MIRNetConfig(**settings), size)
    return [gmacs / s**2 for s in (1, *SCALES)], parameters, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--size", type=int, default=256, help="side of the square input counted (default 256)")
    parser.add_argument("--reference", default="mirnet-v2-small", choices=list(PRESETS), help="the shipped preset")
    args = parser.parse_args()

    presets = list(dict.fromkeys([args.reference, *args.presets]))
    costs = {name: preset_costs(name, args.size) for name in presets}
    reference = costs[args.reference][0][0]
    scale_columns = " | ".join(f"x{s}, low-resolution body" for s in SCALES)
    print(f"GMAC per megapixel of output (and against {args.reference}), {args.size}x{args.size} output counted:")
    print(f"| preset | parameters | as today (same-size output) | {scale_columns} |")
    print("| --- " * (3 + len(SCALES)) + "|")
    for name in presets:
        values, parameters, counted = costs[name]
        cells = ["-" if value != value else f"{value:.0f} ({value / reference:.2f}x)" for value in values]
        note = " (counted at each scale)" if counted else ""
        print(f"| {name}{note} | {parameters:,} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
