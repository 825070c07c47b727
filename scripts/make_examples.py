"""Makes the app's example images (examples/*.png): small crops of evaluation photos, degraded with the
package's own fixed-seed degradations, and crops of real noisy photos as they came from the camera: PolyU (Canon
5D Mark II, ISO 3200: fine, low noise) and RNI15's dog (heavy real grain, the kind people bring to a denoiser).
Run: .venv/bin/python scripts/make_examples.py"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mirnet_hf.degradations import evaluation_degradation
from mirnet_hf.image_ops import downscale_bicubic, quantize

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SOURCES = [("kodim05", DATASETS / "Kodak24" / "kodim05.png"), ("kodim23", DATASETS / "Kodak24" / "kodim23.png")]
REAL_NOISE = DATASETS / "PolyU" / "Canon5D2_5_200_3200_fruit_11_real.JPG"
REAL_GRAIN = DATASETS / "RNI15" / "Dog.png"


def tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255).permute(2, 0, 1)


def save(array: torch.Tensor, path: Path) -> None:
    pixels = (array.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path, optimize=True)
    print(path.relative_to(ROOT), pixels.shape[1], "x", pixels.shape[0])


def main() -> None:
    out = ROOT / "examples"
    out.mkdir(exist_ok=True)
    for seed, (name, path) in enumerate(SOURCES):
        crop = tensor(Image.open(path).crop((90, 130, 410, 370)))  # 320x240
        generator = torch.Generator().manual_seed(seed)
        save(evaluation_degradation("denoising", 25).apply(crop, generator), out / f"denoising-{name}-sigma25.png")
        save(quantize(downscale_bicubic(crop, 2)), out / f"super-resolution-{name}-160x120.png")
        dark = evaluation_degradation("low-light-enhancement", 0.15).apply(crop, generator)
        save(dark, out / f"low-light-enhancement-{name}-exposure0.15.png")
    # Real camera noise: the photo's own pixels, no synthetic degradation.
    save(
        tensor(Image.open(REAL_NOISE).crop((96, 200, 416, 440))), out / "denoising-real-noise-polyu-canon-iso3200.png"
    )
    save(tensor(Image.open(REAL_GRAIN).crop((40, 80, 360, 320))), out / "denoising-real-grain-rni15-dog.png")


if __name__ == "__main__":
    main()
