"""Makes the figures of docs/: crops of the degraded input, classical methods, our model and the target, each
labelled with its PSNR on the whole image, for the three shipped models.

    .venv/bin/python scripts/make_figures.py                       # all three, the shipped models
    .venv/bin/python scripts/make_figures.py --task denoising --model outputs/candidate-denoising

- docs/denoising.png: a PolyU pair (real camera noise) and CBSD68 at sigma 25: noisy / ours / CBM3D / clean.
- docs/super-resolution.png: Set14 at x2 and x4: bicubic / ours / ground truth (Y-PSNR, border cropped), each
  scale with its shipped model.
- docs/low-light-enhancement.png: Kodak24 at exposures 0.1 and 0.05: dark / gamma / ours / target.
- docs/denoising-strength.png: real noisy photos (two from RNI15, one PolyU shot): noisy / ours gentler (strength
  0.5) / ours (the default, 1) / ours stronger (1.5) / the grain pass (2), each labelled with its no-reference
  noise estimate (`evaluation.noise_estimate`, the figure of `benchmarks/real_noise.py`) and, where a clean
  reference exists, PSNR.

The inputs are the evaluation's own (`benchmarks/evaluate_defaults.py`: the same seeds and methods), so the
PSNRs agree with its tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from evaluate_defaults import (  # noqa: E402
    DATASETS,
    cbm3d,
    degrade_for_evaluation,
    gamma_correction,
    load_rgb,
    mirnet_method,
    set_pairs,
)

from mirnet_hf.evaluation import EvaluationPair, image_metrics, noise_estimate  # noqa: E402
from mirnet_hf.inference import MIRNetRestorer  # noqa: E402
from mirnet_hf.tasks import REGISTRY  # noqa: E402

CROP = 192  # pixels of the target image per panel
LABEL_HEIGHT = 22


def panel(image: np.ndarray, box: tuple[int, int], label: str, scale: int = 1) -> Image.Image:
    """A CROP x CROP crop at `box` (top, left), shown at twice its size (nearest: pixels stay visible)."""
    top, left = box
    crop = np.clip(image[top : top + CROP, left : left + CROP], 0, 1)
    picture = Image.fromarray((crop * 255).round().astype(np.uint8)).resize((CROP * 2, CROP * 2), Image.NEAREST)
    framed = Image.new("RGB", (CROP * 2, CROP * 2 + LABEL_HEIGHT), "white")
    framed.paste(picture, (0, LABEL_HEIGHT))
    ImageDraw.Draw(framed).text((4, 5), label, fill="black")
    return framed


def row(pair: EvaluationPair, methods: dict[str, np.ndarray], box: tuple[int, int], y_channel: bool) -> list:
    border = pair.scale if y_channel else 0
    panels = []
    for name, output in methods.items():
        psnr, _ = image_metrics(output, pair.target, y_channel=y_channel, crop_border=border)
        panels.append(panel(output, box, f"{name}: {psnr:.2f} dB"))
    panels.append(panel(pair.target, box, "target"))
    return panels


def grid(rows: list[list[Image.Image]], titles: list[str], path: Path) -> None:
    width = sum(p.width for p in rows[0])
    height = sum(max(p.height for p in r) + LABEL_HEIGHT for r in rows)
    sheet = Image.new("RGB", (width, height), "white")
    y = 0
    for title, panels in zip(titles, rows):
        ImageDraw.Draw(sheet).text((4, y + 5), title, fill="black")
        x, y = 0, y + LABEL_HEIGHT
        for picture in panels:
            sheet.paste(picture, (x, y))
            x += picture.width
        y += max(p.height for p in panels)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    print(path, sheet.size)


def denoising(restorer_for) -> tuple[list, list[str]]:
    ours = mirnet_method(restorer_for(None), "denoising")
    noisy_path = DATASETS / "PolyU" / "Canon5D2_5_200_3200_fruit_11_real.JPG"
    noisy = load_rgb(noisy_path)
    real = EvaluationPair(noisy_path.name, noisy, load_rgb(Path(str(noisy_path).replace("_real", "_mean"))), noisy)
    synthetic = degrade_for_evaluation(load_rgb(DATASETS / "CBSD68" / "101085.png"), "denoising", 25, 1, "101085.png")
    rows, titles = [], []
    for pair, sigma, box, title in (
        (real, None, (200, 200), "PolyU, real camera noise (Canon 5D Mark II, ISO 3200)"),
        (synthetic, 25, (200, 60), "CBSD68 101085, Gaussian noise sigma 25"),
    ):
        methods = {"noisy": pair.input, "MIRNet (ours)": ours(pair), "CBM3D": cbm3d(sigma)(pair)}
        rows.append(row(pair, methods, box, y_channel=False))
        titles.append(title)
    return rows, titles


def super_resolution(restorer_for) -> tuple[list, list[str]]:
    rows, titles = [], []
    for scale in (2, 4):
        ours = mirnet_method(restorer_for(scale), "super-resolution")
        pair = next(p for p in set_pairs("Set14", scale) if p.name.startswith("img_005"))
        methods = {"bicubic": pair.baseline, "MIRNet (ours)": ours(pair)}
        rows.append(row(pair, methods, (60, 150), y_channel=True))
        titles.append(f"Set14 {pair.name.split('_SRF')[0]}, x{scale} (Y-PSNR)")
    return rows, titles


def low_light(restorer_for) -> tuple[list, list[str]]:
    ours = mirnet_method(restorer_for(None), "low-light-enhancement")
    clean = load_rgb(DATASETS / "Kodak24" / "kodim23.png")
    rows, titles = [], []
    for exposure in (0.1, 0.05):
        pair = degrade_for_evaluation(clean, "low-light-enhancement", exposure, 22, "kodim23.png")
        methods = {"dark": pair.input, "gamma": gamma_correction(pair), "MIRNet (ours)": ours(pair)}
        rows.append(row(pair, methods, (150, 300), y_channel=False))
        titles.append(f"Kodak24 kodim23, exposure {exposure:g}")
    return rows, titles


STRENGTHS = {"gentler (0.5)": 0.5, "default (1)": 1.0, "stronger (1.5)": 1.5, "grain pass (2)": 2.0}


def denoising_strength(restorer_for) -> tuple[list, list[str]]:
    """Real grain at 100% (shown at 200%), as people judge a denoiser on their own photos."""
    restorers = {label: restorer_for(None, strength=strength) for label, strength in STRENGTHS.items()}
    polyu = DATASETS / "PolyU" / "Canon5D2_5_160_6400_circuit_11_real.JPG"
    rows, titles = [], []
    for path, box, reference, title in (
        (DATASETS / "RNI15" / "Dog.png", (150, 110), None, "RNI15 Dog: real grain, no clean reference"),
        (DATASETS / "RNI15" / "Flowers.png", (90, 150), None, "RNI15 Flowers: real grain, no clean reference"),
        (polyu, (200, 200), Path(str(polyu).replace("_real", "_mean")), "PolyU circuit (Canon 5D Mark II, ISO 6400)"),
    ):
        noisy = load_rgb(path)
        target = load_rgb(reference) if reference else None
        panels = []
        for label, output in [("noisy", noisy)] + [(name, r(noisy)) for name, r in restorers.items()]:
            text = f"{label}: noise {noise_estimate(output):.1f}"
            if target is not None:
                text += f", {image_metrics(output, target)[0]:.2f} dB"
            panels.append(panel(output, box, text))
        rows.append(panels)
        titles.append(title)
    return rows, titles


FIGURES = {
    "denoising": denoising,
    "super-resolution": super_resolution,
    "low-light-enhancement": low_light,
    "denoising-strength": denoising_strength,
}
TASK_OF_FIGURE = {"denoising-strength": "denoising"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=list(FIGURES), help="one figure (default: all of them)")
    parser.add_argument("--model", help="model folder (default: the shipped model of the task)")
    parser.add_argument("--output", type=Path, help="output file (default: docs/TASK.png)")
    args = parser.parse_args(argv)
    for figure in [args.task] if args.task else list(FIGURES):
        task = TASK_OF_FIGURE.get(figure, figure)

        def restorer_for(scale: int | None, task: str = task, strength: float = 1.0) -> MIRNetRestorer:
            """The model of the figure: --model, or the shipped model for the scale."""
            model = args.model or str(ROOT / REGISTRY[task].checkpoint_for(scale))
            return MIRNetRestorer(model, device="cpu", precision="float32", strength=strength)

        rows, titles = FIGURES[figure](restorer_for)
        grid(rows, titles, args.output or ROOT / "docs" / f"{figure}.png")


if __name__ == "__main__":
    main()
