"""Statistics of noise: real camera noise against our synthetic noise, to see what the synthesis lacks.

    .venv/bin/python benchmarks/noise_statistics.py              # PolyU, RNI15 and each synthetic kind
    .venv/bin/python benchmarks/noise_statistics.py --images 4   # fewer images, faster

For each source, the noise residual (noisy minus clean, 0-255 scale) of `--images` images, measured on 256x256
crops: its standard deviation (averaged over the channels), the correlation of neighbouring pixels at 1 and 2
pixels (horizontal and vertical, averaged), the correlation between colour channels (R-G, G-B, R-B, averaged),
and the slope of its radially averaged power spectrum on log-log axes (0 for white noise; below 0 when the
grain is coarser than a pixel). Sources:

- PolyU: noisy shots minus the mean of many shots of the same scene (real noise with a clean reference);
- RNI15: real noisy photos without a reference, minus a strong denoise (non-local means at 1.2x the noise level
  scikit-image estimates), which also takes some texture: their figures are estimates;
- synthetic: CBSD432 images (the training photos) degraded by each of the denoising synthesis' kinds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mirnet_hf.degradations import (
    Degradation,
    add_gaussian_noise,
    camera_pipeline_noise,
    real_grain_noise,
)

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CROP = 256


def crop(array: np.ndarray) -> np.ndarray:
    height, width = array.shape[:2]
    top, left = max(0, (height - CROP) // 2), max(0, (width - CROP) // 2)
    return array[top : top + CROP, left : left + CROP]


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def statistics(noise: np.ndarray) -> dict[str, float]:
    """The figures of one residual (height, width, 3) on the 0-255 scale."""
    noise = noise - noise.mean(axis=(0, 1))

    def correlation(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))

    def neighbours(lag: int) -> float:
        values = []
        for channel in range(3):
            plane = noise[..., channel]
            values.append(correlation(plane[:, lag:], plane[:, :-lag]))
            values.append(correlation(plane[lag:], plane[:-lag]))
        return float(np.mean(values))

    pairs = [(0, 1), (1, 2), (0, 2)]
    luminance = noise @ np.array([0.299, 0.587, 0.114])
    power = np.abs(np.fft.fftshift(np.fft.fft2(luminance))) ** 2
    height, width = power.shape
    y, x = np.indices(power.shape)
    radius = np.hypot(y - height / 2, x - width / 2).astype(int)
    radial = np.bincount(radius.ravel(), power.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    frequencies = np.arange(len(radial))
    band = (frequencies >= 4) & (frequencies <= min(height, width) // 2 - 2)  # mid to high frequencies
    slope = float(np.polyfit(np.log(frequencies[band]), np.log(radial[band] + 1e-12), 1)[0])
    return {
        "std": float(noise.std(axis=(0, 1)).mean()),
        "corr1": neighbours(1),
        "corr2": neighbours(2),
        "channels": float(np.mean([correlation(noise[..., a], noise[..., b]) for a, b in pairs])),
        "slope": slope,
    }


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def polyu(count: int) -> list[np.ndarray]:
    pairs = sorted(DATASETS.glob("PolyU/*_real.JPG"))[:count]
    return [crop(load(p)) - crop(load(Path(str(p).replace("_real", "_mean")))) for p in pairs]


def rni15(count: int) -> list[np.ndarray]:
    from skimage.restoration import denoise_nl_means, estimate_sigma

    residuals = []
    for path in sorted((DATASETS / "RNI15").iterdir())[:count]:
        noisy = crop(load(path)) / 255
        sigma = float(np.mean(estimate_sigma(noisy, channel_axis=-1)))
        clean = denoise_nl_means(noisy, h=1.2 * sigma, sigma=sigma, patch_size=5, patch_distance=6, channel_axis=-1)
        residuals.append((noisy - clean) * 255)
    return residuals


def synthetic(kind: str, count: int) -> list[np.ndarray]:
    residuals = []
    for index, path in enumerate(sorted((DATASETS / "CBSD432").glob("*.jpg"))[-count:]):
        clean = torch.from_numpy(crop(load(path)) / 255).permute(2, 0, 1).float()
        generator = torch.Generator().manual_seed(index)
        if kind == "Gaussian sigma 15":
            noisy = add_gaussian_noise(clean, 15, generator)
        elif kind == "camera pipeline (chroma NR 0-2 px, JPEG 40%)":
            degradation = Degradation(
                "denoising", camera_probability=1.0, chroma_blur_range=(0, 2), jpeg_probability=0.4
            )
            noisy = degradation.apply(clean, generator)
        elif kind == "camera pipeline, high ISO, no NR":
            noisy = camera_pipeline_noise(clean, generator, shot_range=(3e-3, 1.2e-2))
        else:  # real grain
            noisy = real_grain_noise(clean, generator)
        residuals.append((noisy.clamp(0, 1) - clean).permute(1, 2, 0).numpy() * 255)
    return residuals


SYNTHETIC = (
    "Gaussian sigma 15",
    "camera pipeline (chroma NR 0-2 px, JPEG 40%)",
    "camera pipeline, high ISO, no NR",
    "real grain (new)",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8, help="images per source (default 8)")
    args = parser.parse_args()
    sources = {"PolyU real noise": polyu(args.images), "RNI15 (estimated)": rni15(args.images)}
    sources.update({f"synthetic: {kind}": synthetic(kind, args.images) for kind in SYNTHETIC})
    print(f"Noise residuals, {args.images} images per source, {CROP}x{CROP} crops (0-255 scale):")
    print("| source | std | neighbour corr. 1 px | 2 px | channel corr. | spectrum slope |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, residuals in sources.items():
        row = average([statistics(residual) for residual in residuals])
        print(f"| {name} | {row['std']:.1f} | {row['corr1']:.2f} | {row['corr2']:.2f} | {row['channels']:.2f} | "
              f"{row['slope']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
