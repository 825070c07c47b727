"""Evaluation: PSNR and SSIM (scikit-image) of restored images against their targets, beside the input's own.

Conventions: RGB PSNR/SSIM on 8-bit quantised images for denoising and low light; for super-resolution the
SR literature's Y channel (ITU-R BT.601, `skimage.color.rgb2ycbcr`) with `scale` pixels cropped from each
border. SSIM uses Wang et al.'s settings (Gaussian window, sigma 1.5, population covariance).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import Columns, align_pair, decode_image, to_tensor, undecoded
from .degradations import evaluation_degradation, real_grain_noise
from .image_ops import downscale_bicubic, quantize, upsample_bicubic
from .tasks import SYNTHETIC_TASKS, get_task, rescales


def image_metrics(
    restored: np.ndarray, target: np.ndarray, *, y_channel: bool = False, crop_border: int = 0
) -> tuple[float, float]:
    """PSNR (dB) and SSIM of an RGB float image in [0, 1] against its target (both quantised to 8 bits).

    Example:

    ```python
    >>> import numpy as np
    >>> from mirnet_hf.evaluation import image_metrics
    >>> target = np.random.default_rng(0).random((32, 32, 3))
    >>> psnr, ssim = image_metrics(np.clip(target + 0.01, 0, 1), target)
    >>> 38 < psnr < 41 and ssim > 0.99
    True

    ```
    """
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if restored.shape != target.shape:
        raise ValueError(f"restored {restored.shape} and target {target.shape} differ in shape.")
    restored = np.round(np.clip(restored, 0, 1) * 255) / 255
    target = np.round(np.clip(target, 0, 1) * 255) / 255
    if y_channel:
        restored, target = rgb2ycbcr(restored)[..., 0], rgb2ycbcr(target)[..., 0]
        data_range = 255.0
    else:
        restored, target = restored * 255.0, target * 255.0
        data_range = 255.0
    if crop_border:
        restored = restored[crop_border:-crop_border, crop_border:-crop_border]
        target = target[crop_border:-crop_border, crop_border:-crop_border]
    psnr = peak_signal_noise_ratio(target, restored, data_range=data_range)
    ssim = structural_similarity(
        target,
        restored,
        data_range=data_range,
        channel_axis=None if y_channel else -1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    return float(psnr), float(ssim)


def noise_estimate(image: np.ndarray) -> float:
    """A no-reference estimate of an image's noise level, sigma on the 0-255 scale: scikit-image's wavelet
    estimate (`estimate_sigma`) averaged over the colour channels. Real noisy photos have no clean reference, so
    this is how we measure what grain a denoiser leaves (RNI15; `benchmarks/real_noise.py`). Takes uint8 or
    float images in [0, 1]; fine texture reads as a little noise, so clean photos score about 0.3-1.

    Example:

    ```python
    >>> import numpy as np
    >>> from mirnet_hf.evaluation import noise_estimate
    >>> flat = np.full((64, 64, 3), 0.5)
    >>> noisy = flat + np.random.default_rng(0).normal(0, 10 / 255, flat.shape)
    >>> round(noise_estimate(flat), 1), 9 < noise_estimate(noisy) < 11
    (0.0, True)

    ```
    """
    from skimage.restoration import estimate_sigma

    image = np.asarray(image)
    scaled = image.astype(np.float64) / 255 if image.dtype == np.uint8 else image.astype(np.float64)
    return float(np.mean(estimate_sigma(scaled, channel_axis=-1)) * 255)


@dataclass
class EvaluationPair:
    """One evaluation image: the model `input` (low resolution for super-resolution), the `target`, and the
    `baseline` (the input at the target's size: the PSNR of doing nothing, or of bicubic upsampling)."""

    name: str
    input: np.ndarray
    target: np.ndarray
    baseline: np.ndarray
    scale: int = 1


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


REAL_GRAIN = "real grain"  # the label of denoising's real-like noise setting (`real_grain=True`)


def degrade_for_evaluation(
    clean: np.ndarray,
    task: str,
    level: float | None,
    seed: int,
    name: str = "",
    *,
    real_grain: bool = False,
    clipped: bool = True,
) -> EvaluationPair:
    """The fixed-seed evaluation pair of a clean image (see `evaluation_degradation` for the levels).

    With `real_grain` (denoising only; `level` is then ignored) the noise is the training data's real-like grain
    (`degradations.real_grain_noise`: correlated, channel-correlated, Poisson and speckle noise, sharpening,
    in-camera noise reduction, JPEG), drawn with the image's seed: the validation of real photos' kind of noise
    on images the model never trained on, where real noisy photos have no clean reference.

    Inputs are 8-bit images, clipped and quantised as a saved photo is. `clipped=False` (Gaussian denoising
    only) gives the same noise unclipped and unquantised, the protocol papers publish their figures with.

    Example:

    ```python
    >>> import numpy as np
    >>> from mirnet_hf.evaluation import degrade_for_evaluation
    >>> white = np.ones((8, 8, 3), np.float32)
    >>> saved = degrade_for_evaluation(white, "denoising", 25, seed=0).input
    >>> published = degrade_for_evaluation(white, "denoising", 25, seed=0, clipped=False).input
    >>> float(saved.max()), bool(published.max() > 1)
    (1.0, True)
    >>> bool(np.allclose(np.clip(published, 0, 1), saved, atol=0.5 / 255))  # the same draw
    True

    ```
    """
    if not clipped and (task != "denoising" or real_grain):
        raise ValueError(
            f"clipped=False is the published protocol of Gaussian denoising; task={task!r}"
            f"{' with real_grain' if real_grain else ''} takes 8-bit inputs only."
        )
    clean_tensor = to_tensor(clean)
    if real_grain:
        if task != "denoising":
            raise ValueError(f"real_grain=True is a denoising setting; task={task!r} takes levels only.")
        noisy = _array(quantize(real_grain_noise(clean_tensor, torch.Generator().manual_seed(seed))))
        return EvaluationPair(name, noisy, clean, noisy)
    if task == "super-resolution":
        scale = int(level)
        height, width = (clean.shape[0] // scale) * scale, (clean.shape[1] // scale) * scale
        low = quantize(downscale_bicubic(clean_tensor, scale))  # saved as an 8-bit file, as benchmark sets are
        return EvaluationPair(
            name, _array(low), clean[:height, :width], _array(upsample_bicubic(low, scale)), scale=scale
        )
    generator = torch.Generator().manual_seed(seed)
    degraded = _array(evaluation_degradation(task, level).apply(clean_tensor, generator, clipped=clipped))
    return EvaluationPair(name, degraded, clean, degraded)


def evaluation_pairs(
    dataset,
    columns: Columns,
    task: str | None = None,
    level: float | None = None,
    *,
    seed: int = 0,
    max_images: int | None = None,
    real_grain: bool = False,
) -> Iterator[EvaluationPair]:
    """Evaluation pairs from a data set: paired columns as they are, clean-only images degraded at `level` (or
    with real-like grain, `real_grain`) with a seed per image (`seed` + index), so every run and every method
    sees the same inputs."""
    dataset = undecoded(dataset, columns)
    for index, example in enumerate(dataset):
        if max_images is not None and index >= max_images:
            return
        cell = example[columns.target]
        name = cell.get("path") if isinstance(cell, dict) else None
        name = str(name).rsplit("/", 1)[-1] if name else f"#{index}"
        target = decode_image(cell)
        if not columns.paired:
            if task is None or (level is None and not real_grain):
                raise ValueError("clean-only data needs a task and a level to degrade it for evaluation.")
            yield degrade_for_evaluation(target, task, level, seed + index, name, real_grain=real_grain)
            continue
        source = decode_image(example[columns.input])
        scale = target.shape[0] // source.shape[0] if source.shape[0] else 1
        baseline = _array(align_pair(to_tensor(source), to_tensor(target)))
        yield EvaluationPair(name, source, target, baseline, scale=max(1, scale))


@dataclass
class EvaluationResult:
    """Mean PSNR/SSIM of the input (baseline) and the model, and the model's seconds per output megapixel."""

    images: int = 0
    baseline_psnr: float = 0.0
    baseline_ssim: float = 0.0
    psnr: float = 0.0
    ssim: float = 0.0
    seconds: float = 0.0
    megapixels: float = 0.0
    rows: list[dict] = field(default_factory=list, repr=False)

    @property
    def seconds_per_megapixel(self) -> float:
        return self.seconds / self.megapixels if self.megapixels else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {
            "images": self.images,
            "input_psnr": self.baseline_psnr,
            "input_ssim": self.baseline_ssim,
            "psnr": self.psnr,
            "ssim": self.ssim,
            "seconds_per_megapixel": self.seconds_per_megapixel,
        }


def evaluate(
    restore_fn: Callable[[np.ndarray, int], np.ndarray],
    pairs: Iterable[EvaluationPair],
    *,
    y_channel: bool = False,
    crop_border: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Runs `restore_fn(input, scale)` on every pair and averages PSNR/SSIM (and the baseline's).

    `crop_border` defaults to the pair's scale when `y_channel` is set (the SR convention), else 0.

    Example:

    ```python
    >>> import numpy as np
    >>> from mirnet_hf.evaluation import EvaluationPair, evaluate
    >>> clean = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    >>> noisy = np.clip(clean + 0.05, 0, 1)
    >>> result = evaluate(lambda image, scale: clean, [EvaluationPair("a", noisy, clean, noisy)])
    >>> result.psnr == float("inf"), round(result.baseline_psnr)
    (True, 26)

    ```
    """
    result = EvaluationResult()
    for pair in pairs:
        started = time.perf_counter()
        restored = np.asarray(restore_fn(pair.input, pair.scale), dtype=np.float32)
        result.seconds += time.perf_counter() - started
        border = (pair.scale if y_channel else 0) if crop_border is None else crop_border
        restored = restored[: pair.target.shape[0], : pair.target.shape[1]]
        psnr, ssim = image_metrics(restored, pair.target, y_channel=y_channel, crop_border=border)
        base_psnr, base_ssim = image_metrics(pair.baseline, pair.target, y_channel=y_channel, crop_border=border)
        result.rows.append(
            {"name": pair.name, "psnr": psnr, "ssim": ssim, "input_psnr": base_psnr, "input_ssim": base_ssim}
        )
        result.megapixels += pair.target.shape[0] * pair.target.shape[1] / 1e6
        result.images += 1
        if progress is not None:
            progress(result.images)
    if result.images:
        rows = result.rows
        result.psnr = float(np.mean([row["psnr"] for row in rows]))
        result.ssim = float(np.mean([row["ssim"] for row in rows]))
        result.baseline_psnr = float(np.mean([row["input_psnr"] for row in rows]))
        result.baseline_ssim = float(np.mean([row["input_ssim"] for row in rows]))
    return result


def default_levels(task: str, upscale: int = 2) -> list[float]:
    """The levels reported by default (the task registry's; super-resolution: the model's scale)."""
    entry = get_task(task)
    if entry.level_name is None:
        raise ValueError(f"task={task!r} has no synthetic evaluation; valid: {', '.join(SYNTHETIC_TASKS)}.")
    return [float(upscale)] if entry.level_name == "scale" else list(entry.evaluation_levels)


def level_label(task: str, level: float | None) -> str:
    return get_task(task).level_label(level)


def evaluate_dataset(
    restorer,
    dataset,
    columns: Columns,
    *,
    task: str,
    levels: list[float] | None = None,
    seed: int = 0,
    max_images: int | None = None,
    name: str = "data",
    progress: Callable[[int], None] | None = None,
    real_grain: bool = False,
) -> list[tuple[str, EvaluationResult]]:
    """Evaluates a `MIRNetRestorer` on a data set: one result per level for clean-only data (fixed-seed
    degradations), and with `real_grain` one more on real-like grain (denoising); one for paired data.
    Super-resolution uses the Y channel with the border cropped."""

    def restore(image: np.ndarray, scale: int) -> np.ndarray:
        return restorer(image, upscale=scale if rescales(task) else None)

    y_channel = get_task(task).y_channel
    if columns.paired:
        pairs = evaluation_pairs(dataset, columns, max_images=max_images)
        return [(f"{name} (paired)", evaluate(restore, pairs, y_channel=y_channel, progress=progress))]
    results = []
    for level in levels or default_levels(task, restorer.config.upscale):
        pairs = evaluation_pairs(dataset, columns, task, level, seed=seed, max_images=max_images)
        result = evaluate(restore, pairs, y_channel=y_channel, progress=progress)
        results.append((f"{name} ({level_label(task, level)})", result))
    if real_grain:
        pairs = evaluation_pairs(dataset, columns, task, seed=seed, max_images=max_images, real_grain=True)
        results.append((f"{name} ({REAL_GRAIN})", evaluate(restore, pairs, y_channel=y_channel, progress=progress)))
    return results


def format_table(rows: list[tuple[str, EvaluationResult]], label: str = "set") -> str:
    """A Markdown table: one line per (label, result), input and model PSNR/SSIM and seconds per megapixel."""
    lines = [
        f"| {label} | images | input PSNR / SSIM | MIRNet PSNR / SSIM | gain (dB) | s/MP |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in rows:
        lines.append(
            f"| {name} | {result.images} | {result.baseline_psnr:.2f} / {result.baseline_ssim:.4f} | "
            f"{result.psnr:.2f} / {result.ssim:.4f} | {result.psnr - result.baseline_psnr:+.2f} | "
            f"{result.seconds_per_megapixel:.2f} |"
        )
    return "\n".join(lines)


__all__ = [
    "REAL_GRAIN",
    "image_metrics",
    "noise_estimate",
    "EvaluationPair",
    "EvaluationResult",
    "degrade_for_evaluation",
    "evaluation_pairs",
    "evaluate",
    "format_table",
    "evaluate_dataset",
    "default_levels",
    "level_label",
]
