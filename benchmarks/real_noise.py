"""What grain a denoiser leaves on real noisy photos that have no clean reference (RNI15): the no-reference
noise estimate (`mirnet_hf.evaluation.noise_estimate`, sigma on the 0-255 scale) of each input and output.

    .venv/bin/python benchmarks/real_noise.py                                  # the shipped denoiser
    .venv/bin/python benchmarks/real_noise.py --model outputs/candidate --strengths 1 1.5
    .venv/bin/python benchmarks/real_noise.py --model A --model B              # side by side

Issue 28's target: every image whose input estimate is above 5 comes out at 1.5 or below at the default
strength. Clean photos estimate about 0.3-1 (fine texture reads as a little noise), so 1.5 is "no visible grain";
the estimate cannot tell grain that is left from detail that was kept, so look at the figure as well
(`scripts/make_figures.py --task denoising-strength`). RNI15 is for checks like this one: never train on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from mirnet_hf.evaluation import noise_estimate
from mirnet_hf.inference import MIRNetRestorer
from mirnet_hf.tasks import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
RNI15 = ROOT.parent / "shared" / "datasets" / "RNI15"
NOISY_INPUT = 5.0  # input estimates above this are noisy photos the target applies to
TARGET = 1.5


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="model folder (repeat for several; default: the shipped)")
    parser.add_argument("--strengths", type=float, nargs="+", default=[1.0], help="denoising strengths (default 1)")
    parser.add_argument("--images", type=int, default=None, help="only the first N images")
    args = parser.parse_args(argv)
    models = args.model or [str(ROOT / REGISTRY["denoising"].default_checkpoint)]
    files = sorted(path for path in RNI15.iterdir() if path.suffix.lower() in (".png", ".jpg"))[: args.images]
    photos = {path.name: np.asarray(Image.open(path).convert("RGB")) for path in files}
    columns = {"input": {name: noise_estimate(photo) for name, photo in photos.items()}}
    for model in models:
        for strength in args.strengths:
            restorer = MIRNetRestorer(model, device="cpu", precision="float32", strength=strength)
            label = f"{Path(model).name}, strength {strength:g}"
            columns[label] = {name: noise_estimate(restorer(photo)) for name, photo in photos.items()}
            print(f"done: {label}", flush=True)
    print(f"\nNo-reference noise estimate (sigma, 0-255) on RNI15, {len(photos)} real noisy photos:")
    print("| image | " + " | ".join(columns) + " |")
    print("| --- " * (1 + len(columns)) + "|")
    for name in photos:
        print(f"| {name} | " + " | ".join(f"{column[name]:.2f}" for column in columns.values()) + " |")
    noisy = [name for name in photos if columns["input"][name] > NOISY_INPUT]
    cells = [f"{np.mean(list(column.values())):.2f}" for column in columns.values()]
    print("| mean | " + " | ".join(cells) + " |")
    met = [f"{len(noisy)} inputs"] + [
        f"{sum(column[name] <= TARGET for name in noisy)} / {len(noisy)}" for column in list(columns.values())[1:]
    ]
    print(f"| input > {NOISY_INPUT:g}: output <= {TARGET:g} | " + " | ".join(met) + " |")


if __name__ == "__main__":
    main()
