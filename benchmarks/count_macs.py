"""Multiply-accumulates per megapixel of output for the training presets, counted by PyTorch's FLOP counter on
one forward pass, and what the same network would cost per output megapixel if it ran in low-resolution space
(on 1/scale^2 of the pixels, with a pixel-shuffle tail) for super-resolution. No timing: it runs anywhere, in
seconds, even while training runs.

    .venv/bin/python benchmarks/count_macs.py
    .venv/bin/python benchmarks/count_macs.py --presets mirnet-v2-small mirnet-v2 --size 256

The networks today see a bicubic-upsampled input (the paper's protocol), so their cost per output megapixel
is the same at every scale; the "low-resolution body" columns divide it by scale^2 (the few convolutions of a
pixel-shuffle tail are not counted). They show which larger networks would fit the budget the shipped
`mirnet-v2-small` spends today.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
from mirnet_hf.training.components import PRESETS

SCALES = (2, 3, 4)


def count(config: MIRNetConfig, size: int) -> tuple[float, int]:
    """Multiply-accumulates (in billions) of one forward pass per megapixel of a size x size input, and the
    network's parameters."""
    model = MIRNetForImageRestoration(config).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, config.num_channels, size, size))
    gmacs = counter.get_total_flops() / 2 / 1e9 / (size * size / 1e6)
    return gmacs, sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--size", type=int, default=256, help="side of the square input counted (default 256)")
    parser.add_argument("--reference", default="mirnet-v2-small", choices=list(PRESETS), help="the shipped preset")
    args = parser.parse_args()

    presets = list(dict.fromkeys([args.reference, *args.presets]))
    counts = {name: count(MIRNetConfig(**PRESETS[name]), args.size) for name in presets}
    cost = {name: gmacs for name, (gmacs, _) in counts.items()}
    parameters = {name: total for name, (_, total) in counts.items()}
    reference = cost[args.reference]
    scale_columns = " | ".join(f"x{s}, low-resolution body" for s in SCALES)
    print(f"GMAC per megapixel of output (and against {args.reference}), {args.size}x{args.size} input counted:")
    print(f"| preset | parameters | as today (same-size output) | {scale_columns} |")
    print("| --- " * (3 + len(SCALES)) + "|")
    for name in presets:
        cells = [f"{cost[name] / s**2:.0f} ({cost[name] / s**2 / reference:.2f}x)" for s in (1, *SCALES)]
        print(f"| {name} | {parameters[name]:,} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
