"""Which tone curve a low-light model expects: PSNR on dark shots made with each gamma, exposure by exposure.

    .venv/bin/python benchmarks/low_light_tone.py                      # the shipped low-light model
    .venv/bin/python benchmarks/low_light_tone.py --model outputs/candidate-low-light --max-images 8

A dark shot is `exposure * image ** gamma` with the evaluation's noise (1000 photons, read noise 1.0), as in
`mirnet_hf.degradations.evaluation_degradation`, whose gamma is 2.0. A model cannot tell a dark scene from a
dark exposure, so it learns the tone of its training shots; this table shows where that lies. The camera
column darkens through the camera pipeline instead (the raw signal scaled by `exposure ** 1.5`, as the
training's camera path does; noise at a fixed level; no colour cast), the way a short exposure would. Every
column uses the same images and noise seeds; the last column is the best classical method's (gamma correction, from
`evaluate_defaults.py`) at the evaluation's gamma, for reference. Default inference settings (tiles of 512).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch
from evaluate_defaults import DATASETS, ROOT, gamma_correction, load_rgb, mirnet_method, run_method

from mirnet_hf.degradations import Degradation, evaluation_degradation
from mirnet_hf.evaluation import EvaluationPair
from mirnet_hf.inference import MIRNetRestorer
from mirnet_hf.tasks import REGISTRY


def gamma_darkening(exposure: float, gamma: float) -> Degradation:
    """The evaluation's darkening at `exposure`, with `gamma` in place of its 2.0."""
    return replace(evaluation_degradation("low-light-enhancement", exposure), gamma_range=(gamma, gamma))


def camera_darkening(exposure: float) -> Degradation:
    """A short exposure through the camera pipeline (the raw signal scaled, high-ISO noise, a random camera's
    processing), as the training's camera path makes it, with a fixed noise level and no colour cast."""
    return Degradation(
        "low-light-enhancement",
        exposure_range=(exposure, exposure),
        camera_probability=1.0,
        low_light_shot_noise_range=(1e-3, 1e-3),
    )


def dark_pairs(files, degradation: Degradation) -> list[EvaluationPair]:
    pairs = []
    for seed, path in enumerate(files):
        clean = load_rgb(path)
        generator = torch.Generator().manual_seed(seed)
        dark = degradation.apply(torch.from_numpy(clean).permute(2, 0, 1), generator).permute(1, 2, 0).numpy()
        pairs.append(EvaluationPair(path.name, dark, clean, dark))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / REGISTRY["low-light-enhancement"].checkpoint_for()))
    parser.add_argument("--data", default="CBSD68", help="a clean set under ../shared/datasets")
    parser.add_argument("--max-images", type=int, default=4)
    parser.add_argument("--exposures", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--gammas", type=float, nargs="+", default=[1.4, 1.7, 2.0, 2.3])
    args = parser.parse_args()

    restorer = mirnet_method(MIRNetRestorer(args.model, device="cpu", precision="float32"), "low-light-enhancement")
    files = sorted((DATASETS / args.data).glob("*.png"))[: args.max_images]
    print(f"{args.model} on {len(files)} {args.data} images: RGB PSNR (dB) by the gamma that darkened them\n")
    columns = [f"gamma {g:g}" for g in args.gammas] + ["camera pipeline", "gamma correction (gamma 2)"]
    print("| exposure | " + " | ".join(columns) + " |")
    print("| --- " * (len(columns) + 1) + "|")
    for exposure in args.exposures:
        darkenings = [gamma_darkening(exposure, gamma) for gamma in args.gammas] + [camera_darkening(exposure)]
        psnrs = [run_method(restorer, dark_pairs(files, d), False, "ours").psnr for d in darkenings]
        classical = run_method(gamma_correction, dark_pairs(files, gamma_darkening(exposure, 2.0)), False, "gamma")
        print(f"| {exposure:g} | " + " | ".join(f"{value:.2f}" for value in psnrs) + f" | {classical.psnr:.2f} |")


if __name__ == "__main__":
    main()
