"""Synthetic degradations that turn clean images into training and evaluation inputs, one per task.

Every function takes a clean (channels, height, width) float tensor in [0, 1] and a `torch.Generator`, so a
fixed seed gives the same degraded image on every machine and in every process. `Degradation` holds a task's
settings (drawn per image from ranges during training, fixed for evaluation).

Protocols:

- denoising: additive white Gaussian noise with sigma drawn from `sigma_range` (0-255 scale); with probability
  `poisson_probability`, Poisson-Gaussian noise (shot noise of `photons` per unit level and a Gaussian read
  noise); with probability `camera_probability`, real camera noise made by a camera pipeline (below).
- camera pipeline (after Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019, and Guo et
  al., CBDNet, CVPR 2019): the sRGB photo is taken back to the sensor (inverse tone curve, inverse gamma, the
  inverse of a random colour-correction matrix, inverse random white-balance gains, a Bayer mosaic); shot and
  read noise are added there, with levels drawn from a camera-like relation between them; the raw image is
  demosaicked (which correlates the noise across pixels and colours) and developed again; the camera's own
  chroma denoising blurs the colour (YCbCr chroma) planes (`chroma_blur_range`), leaving mostly luminance
  noise as in real photos; then it is optionally saved as a JPEG (`jpeg_probability`, `jpeg_quality_range`).
- super-resolution: bicubic (antialiased) downscale by `scale`, optional Gaussian blur before it and JPEG after
  it, then bicubic upsampling back to the high-resolution size (the RealSR protocol: the network maps the
  upsampled image to the sharp one).
- low-light: the image is darkened by a gamma above 1 and an exposure scale, then shot and read noise are
  added and the result quantised to 8 bits, as a short exposure would record it. With probability
  `camera_probability` the dark shot comes from the camera pipeline instead (the raw signal scaled by
  `exposure ** 1.5`, which darkens about as much as the gamma path, and high-ISO noise levels from
  `low_light_shot_noise_range`). `color_cast` tints either kind (white balance off by up to that factor, as
  under tungsten or mixed light), and `jpeg_probability` saves it as a JPEG.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .image_ops import bicubic_resize, downscale_bicubic, upsample_bicubic
from .image_ops import quantize as quantize_8bit
from .tasks import SYNTHETIC_TASKS, rescales

TASKS = SYNTHETIC_TASKS  # the tasks with a synthetic degradation (the task registry marks them)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        raise TypeError(
            f"expected a (channels, height, width) float tensor in [0, 1], got "
            f"{type(image).__name__} {tuple(getattr(image, 'shape', ()))}."
        )


def add_gaussian_noise(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Adds white Gaussian noise of standard deviation `sigma` on the 0-255 scale (not clipped, as in the
    denoising benchmarks' protocol)."""
    _check_image(image)
    noise = torch.randn(image.shape, generator=generator, dtype=image.dtype)
    return image + noise * (sigma / 255.0)


def add_poisson_gaussian_noise(
    image: torch.Tensor, photons: float, read_sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """Shot noise (Poisson with `photons` expected at level 1) plus Gaussian read noise (`read_sigma`, 0-255)."""
    _check_image(image)
    if photons <= 0:
        raise ValueError(f"photons={photons!r} is not valid; it must be positive.")
    shot = torch.poisson(image.clamp(0, 1) * photons, generator=generator) / photons
    return add_gaussian_noise(shot.to(image.dtype), read_sigma, generator)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Isotropic Gaussian blur (reflect padding); `sigma` in pixels, 0 leaves the image as it is."""
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[0]
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(padded, horizontal, groups=channels), vertical, groups=channels)[0]


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encodes and decodes the image as a JPEG of the given quality (1-95), as web images are."""
    if not 1 <= quality <= 95:
        raise ValueError(f"quality={quality!r} is not valid; it must be from 1 to 95.")
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer)).astype(np.float32) / 255
    if decoded.ndim == 2:
        decoded = decoded[..., None]
    return torch.from_numpy(decoded).permute(2, 0, 1).to(image.dtype)


def super_resolution_input(
    image: torch.Tensor,
    scale: int,
    blur_sigma: float = 0.0,
    jpeg_quality: int | None = None,
    upsample: bool = True,
) -> torch.Tensor:
    """The network input for super-resolution of a clean image whose sides are multiples of `scale`:
    (blur), bicubic down by `scale` to an 8-bit image, (JPEG), then bicubic up to the original size; with
    `upsample=False`, the small 8-bit image itself (for a model with a pixel-shuffle tail)."""
    _check_image(image)
    if scale not in (2, 3, 4):
        raise ValueError(f"scale={scale!r} is not valid; use 2, 3 or 4.")
    height, width = image.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"the image is {width}x{height}; crop it to a multiple of scale={scale} first.")
    low = quantize_8bit(downscale_bicubic(gaussian_blur(image, blur_sigma), scale))  # an 8-bit photo
    if jpeg_quality is not None:
        low = jpeg_roundtrip(low, jpeg_quality)
    return upsample_bicubic(low, scale) if upsample else low


def darken(
    image: torch.Tensor,
    exposure: float,
    gamma: float,
    photons: float | None,
    read_sigma: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """A low-light shot of a well-exposed image: `exposure * image ** gamma`, shot noise (`photons` at level
    1; None for none), Gaussian read noise (`read_sigma`, 0-255 scale), clipped and quantised to 8 bits."""
    _check_image(image)
    if not 0 < exposure <= 1:
        raise ValueError(f"exposure={exposure!r} is not valid; it must be in (0, 1].")
    if gamma <= 0:
        raise ValueError(f"gamma={gamma!r} is not valid; it must be positive.")
    dark = exposure * image.clamp(0, 1) ** gamma
    if photons is not None:
        dark = torch.poisson(dark * photons, generator=generator) / photons
    dark = add_gaussian_noise(dark, read_sigma, generator)
    return quantize_8bit(dark)


# ----------------------------------------------------------------------------------------------
# Camera pipeline: sRGB -> raw sensor data -> noise -> sRGB
# ----------------------------------------------------------------------------------------------

# Shot-noise gain (variance per unit of raw signal, log-uniform) of Brooks et al.'s fit to real cameras, from
# bright scenes at base ISO to dim ones at high ISO; the read noise follows it (`camera_noise_levels`).
SHOT_NOISE_RANGE = (1e-4, 1.2e-2)


@dataclass(frozen=True)
class Camera:
    """One random camera: how its raw colours map to sRGB, and its white-balance gains (red, green, blue).

    `camera_to_rgb` is a colour-correction matrix whose rows sum to 1 (it keeps grey grey); real cameras
    saturate colours, so its diagonal is above 1 and the rest negative.
    """

    camera_to_rgb: torch.Tensor
    gains: torch.Tensor

    @classmethod
    def random(cls, generator: torch.Generator) -> Camera:
        rows = []
        for channel in range(3):
            saturation = _uniform(generator, 0.3, 1.0)
            share = _uniform(generator, 0.2, 0.8)
            row = torch.full((3,), 0.0)
            row[channel] = 1 + saturation
            others = [other for other in range(3) if other != channel]
            row[others[0]], row[others[1]] = -saturation * share, -saturation * (1 - share)
            rows.append(row)
        # Red and blue gains of daylight to tungsten scenes (the sensor's green is the reference).
        gains = torch.tensor([_uniform(generator, 1.9, 2.4), 1.0, _uniform(generator, 1.5, 1.9)])
        return cls(camera_to_rgb=torch.stack(rows), gains=gains)


def _apply_matrix(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,jhw->ihw", matrix.to(image.dtype), image)


def tone_curve(image: torch.Tensor) -> torch.Tensor:
    """The global tone curve of the camera pipeline (a smoothstep, 3x^2 - 2x^3)."""
    image = image.clamp(0, 1)
    return 3 * image**2 - 2 * image**3


def inverse_tone_curve(image: torch.Tensor) -> torch.Tensor:
    """The inverse of `tone_curve`."""
    image = image.clamp(0, 1)
    return 0.5 - torch.sin(torch.asin(1 - 2 * image) / 3)


def unprocess(image: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Linear raw colours (three full planes, before the mosaic) of an sRGB image: inverse tone curve, gamma
    2.2 undone, the colour-correction matrix inverted, white balance undone."""
    _check_image(image)
    linear = inverse_tone_curve(image).clamp_min(1e-8) ** 2.2
    raw = _apply_matrix(linear, torch.linalg.inv(camera.camera_to_rgb))
    return raw / camera.gains.to(image.dtype)[:, None, None]


def develop(raw: torch.Tensor, camera: Camera) -> torch.Tensor:
    """The camera's processing of raw colours to sRGB: white balance, colour correction, gamma, tone curve."""
    linear = _apply_matrix(raw * camera.gains.to(raw.dtype)[:, None, None], camera.camera_to_rgb)
    return tone_curve(linear.clamp(1e-8, 1) ** (1 / 2.2))


def bayer_masks(height: int, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(3, height, width) masks of the RGGB Bayer pattern: which pixel records which colour."""
    rows = torch.arange(height)[:, None] % 2
    columns = torch.arange(width)[None, :] % 2
    red = (rows == 0) & (columns == 0)
    blue = (rows == 1) & (columns == 1)
    return torch.stack([red, ~(red | blue), blue]).to(dtype)


def mosaic(raw: torch.Tensor) -> torch.Tensor:
    """The one value per pixel that an RGGB sensor records, as (1, height, width)."""
    return (raw * bayer_masks(*raw.shape[-2:], dtype=raw.dtype)).sum(dim=0, keepdim=True)


def demosaic_bilinear(mosaicked: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaicking of an RGGB mosaic: each missing colour is the mean of its nearest recorded
    neighbours (a normalised convolution, so borders and odd sizes need no special case)."""
    masks = bayer_masks(*mosaicked.shape[-2:], dtype=mosaicked.dtype)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=mosaicked.dtype)
    kernel = kernel.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    recorded = F.conv2d((masks * mosaicked)[None], kernel, padding=1, groups=3)[0]
    weights = F.conv2d(masks[None], kernel, padding=1, groups=3)[0]
    interpolated = recorded / weights
    return torch.where(masks.bool(), mosaicked.expand_as(masks), interpolated)


# JPEG's (full-range BT.601) RGB -> YCbCr matrix.
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def blur_chroma(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blurs the colour planes (YCbCr Cb and Cr) and keeps the luminance, as a camera's chroma denoising does."""
    ycbcr = _apply_matrix(image, _RGB_TO_YCBCR)
    ycbcr = torch.cat([ycbcr[:1], gaussian_blur(ycbcr[1:], sigma)])
    return _apply_matrix(ycbcr, torch.linalg.inv(_RGB_TO_YCBCR))


def camera_noise_levels(generator: torch.Generator, shot_range: tuple[float, float] = SHOT_NOISE_RANGE):
    """(shot, read) noise levels of one random shot: the shot gain log-uniform in `shot_range`, the read
    noise variance from the log-linear relation Brooks et al. fitted to real sensors, with its scatter."""
    log_shot = _uniform(generator, math.log(shot_range[0]), math.log(shot_range[1]))
    scatter = 0.26 * torch.randn((), generator=generator).item()
    log_read = 2.18 * log_shot + 1.2 + scatter
    return math.exp(log_shot), math.exp(log_read)


def add_shot_read_noise(raw: torch.Tensor, shot: float, read: float, generator: torch.Generator) -> torch.Tensor:
    """Heteroscedastic sensor noise: Gaussian with variance `shot * signal + read` (signal-dependent)."""
    if shot < 0 or read < 0:
        raise ValueError(f"shot={shot!r} and read={read!r} are not valid; noise levels must be 0 or more.")
    variance = shot * raw.clamp_min(0) + read
    return raw + torch.randn(raw.shape, generator=generator, dtype=raw.dtype) * variance.sqrt()


def camera_pipeline_noise(
    image: torch.Tensor,
    generator: torch.Generator,
    *,
    shot_range: tuple[float, float] = SHOT_NOISE_RANGE,
    exposure: float = 1.0,
    noise: bool = True,
    jpeg_quality: int | None = None,
    color_cast: tuple[float, float, float] | None = None,
    chroma_blur: float = 0.0,
) -> torch.Tensor:
    """A clean sRGB image as a camera would record it: unprocessed to raw with a random camera, scaled by
    `exposure` (below 1: an under-exposed shot, kept dark), mosaicked, given shot and read noise (`noise`),
    demosaicked, developed (with white-balance gains off by the factors `color_cast`, if given) and optionally
    saved as a JPEG of `jpeg_quality`. `chroma_blur` (pixels) is the camera's chroma denoising: a Gaussian blur
    of the YCbCr colour planes.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.degradations import camera_pipeline_noise
    >>> clean = torch.full((3, 32, 32), 0.5)
    >>> noisy = camera_pipeline_noise(clean, torch.Generator().manual_seed(0), shot_range=(1e-2, 1e-2))
    >>> 0.01 < float((noisy - clean).std()) < 0.2
    True

    ```
    """
    _check_image(image)
    if not 0 < shot_range[0] <= shot_range[1]:
        raise ValueError(f"shot_range={shot_range!r} is not valid; it must be (low, high) with 0 < low <= high.")
    if not 0 < exposure <= 1:
        raise ValueError(f"exposure={exposure!r} is not valid; it must be in (0, 1].")
    camera = Camera.random(generator)
    shot, read = camera_noise_levels(generator, shot_range)
    raw = mosaic(unprocess(image, camera) * exposure)
    if noise:
        raw = add_shot_read_noise(raw, shot, read, generator)
    if color_cast is not None:
        camera = Camera(camera.camera_to_rgb, camera.gains * torch.tensor(color_cast))
    developed = develop(demosaic_bilinear(raw), camera)
    if chroma_blur > 0:
        developed = blur_chroma(developed, chroma_blur)
    if jpeg_quality is not None:
        developed = jpeg_roundtrip(developed, jpeg_quality)
    return developed


# ----------------------------------------------------------------------------------------------
# Real grain: the noise of photos as they reach people (after the data synthesis of practical blind denoising,
# BSRGAN and SCUNet: several kinds of noise and processing, in random order)
# ----------------------------------------------------------------------------------------------

GRAIN_SIGMA_RANGE = (2.0, 40.0)  # 0-255 scale, per noise component: base ISO to high ISO


def channel_correlated_noise(shape: tuple[int, ...], sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of standard deviation about `sigma` (0-1 scale) whose three channels are correlated by a
    random 3x3 covariance: grey (the same in every channel) for a third, independent for a third, a random
    covariance `A A^T` otherwise (a camera's colour matrix mixes the channels' noise)."""
    white = torch.randn(shape, generator=generator)
    kind = torch.rand((), generator=generator).item()
    if kind < 1 / 3:
        return white[:1].expand(shape).clone() * sigma
    if kind < 2 / 3:
        return white * sigma
    mixing = torch.randn(3, 3, generator=generator) + 2 * torch.eye(3)
    mixing = mixing / mixing.square().sum(dim=1, keepdim=True).sqrt()  # each channel keeps variance sigma^2
    return _apply_matrix(white, mixing) * sigma


def spatially_correlated_noise(shape: tuple[int, ...], sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Noise made at a lower resolution (1/1.5 to 1/4) and resized up (bilinear or bicubic): grain a few pixels
    wide, as demosaicking, resizing and in-camera processing leave it; rescaled to standard deviation `sigma`."""
    factor = _uniform(generator, 1.5, 4.0)
    height, width = shape[-2:]
    small = channel_correlated_noise(
        (3, max(2, round(height / factor)), max(2, round(width / factor))), 1.0, generator
    )
    mode = "bicubic" if torch.rand((), generator=generator).item() < 0.5 else "bilinear"
    grain = F.interpolate(small[None], size=(height, width), mode=mode, align_corners=False)[0]
    return grain / grain.std().clamp_min(1e-8) * sigma


def sharpen(image: torch.Tensor, amount: float, sigma: float) -> torch.Tensor:
    """Unsharp masking, as a camera's or phone's processing sharpens (and with it, the noise)."""
    return image + amount * (image - gaussian_blur(image, sigma))


def real_grain_noise(
    image: torch.Tensor,
    generator: torch.Generator,
    *,
    sigma_range: tuple[float, float] = GRAIN_SIGMA_RANGE,
    jpeg_quality_range: tuple[int, int] = (30, 95),
) -> torch.Tensor:
    """A clean sRGB image with the noise real photos carry, drawn at random: in random order, some of
    channel-correlated Gaussian noise, spatially correlated noise, Poisson (shot) noise and speckle, then
    possibly the camera's sharpening, its noise reduction (a luminance or chroma blur), and one or two JPEG
    passes. The pipeline's last steps (sharpening, noise reduction, JPEG) shape the grain, as they do in a camera.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.degradations import real_grain_noise
    >>> clean = torch.full((3, 48, 48), 0.5)
    >>> noisy = real_grain_noise(clean, torch.Generator().manual_seed(0))
    >>> noisy.shape, bool((noisy - clean).abs().mean() > 0)
    (torch.Size([3, 48, 48]), True)

    ```
    """
    _check_image(image)
    low, high = (math.log(max(value, 1e-3)) for value in sigma_range)

    def sigma() -> float:  # log-uniform, 0-1 scale
        return math.exp(_uniform(generator, low, high)) / 255

    def gaussian(current: torch.Tensor) -> torch.Tensor:
        return current + channel_correlated_noise(current.shape, sigma(), generator)

    def correlated(current: torch.Tensor) -> torch.Tensor:
        return current + spatially_correlated_noise(current.shape, sigma(), generator)

    def poisson(current: torch.Tensor) -> torch.Tensor:
        photons = 10 ** _uniform(generator, 2.0, 4.0)  # at full level: high ISO to base ISO
        clipped = current.clamp(0, 1)
        if torch.rand((), generator=generator).item() < 0.5:  # grey shot noise, on the luminance
            luminance = (clipped * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
            shot = torch.poisson(luminance * photons, generator=generator) / photons - luminance
            return current + shot
        return current + torch.poisson(clipped * photons, generator=generator) / photons - clipped

    def speckle(current: torch.Tensor) -> torch.Tensor:
        return current + current.clamp(0, 1) * channel_correlated_noise(current.shape, sigma(), generator)

    kinds = [gaussian, correlated, poisson, speckle]
    # Real grain is mostly coarser than a pixel (PolyU's noise: neighbour correlation 0.72 at 1 px, 0.45 at 2 px;
    # benchmarks/noise_statistics.py), so the spatially correlated kind is the likeliest.
    shares = [0.5, 0.8, 0.5, 0.3]
    order = torch.randperm(len(kinds), generator=generator).tolist()
    chosen = [kinds[index] for index in order if torch.rand((), generator=generator).item() < shares[index]]
    noisy = image
    for add in chosen or [kinds[order[0]]]:
        noisy = add(noisy)
    if torch.rand((), generator=generator).item() < 0.3:
        noisy = sharpen(noisy, _uniform(generator, 0.3, 1.0), _uniform(generator, 0.8, 2.0))
    if torch.rand((), generator=generator).item() < 0.5:  # in-camera noise reduction
        if torch.rand((), generator=generator).item() < 0.5:
            noisy = blur_chroma(noisy, _uniform(generator, 1.0, 3.0))
        else:
            noisy = gaussian_blur(noisy, _uniform(generator, 0.3, 0.7))
    passes = int(torch.randint(3, (), generator=generator))  # none, one or two JPEG passes
    for _ in range(passes):
        noisy = jpeg_roundtrip(noisy, round(_uniform(generator, *jpeg_quality_range)))
    return noisy


@dataclass
class Degradation:
    """How clean images are degraded for one task. Ranges are drawn uniformly per image; set both ends equal
    for a fixed level (evaluation).

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.degradations import Degradation
    >>> clean = torch.full((3, 64, 64), 0.5)
    >>> noisy = Degradation("denoising", sigma_range=(25, 25)).apply(clean, torch.Generator().manual_seed(0))
    >>> round(float((noisy - clean).std() * 255))
    25

    ```
    """

    task: str
    # denoising
    sigma_range: tuple[float, float] = (0.0, 55.0)
    poisson_probability: float = 0.0
    photons_range: tuple[float, float] = (50.0, 1000.0)
    camera_probability: float = 0.0
    shot_noise_range: tuple[float, float] = SHOT_NOISE_RANGE
    chroma_blur_range: tuple[float, float] = (0.0, 0.0)
    grain_probability: float = 0.0  # share of `real_grain_noise`
    grain_sigma_range: tuple[float, float] = GRAIN_SIGMA_RANGE
    # super-resolution
    scales: tuple[int, ...] = (2,)
    blur_probability: float = 0.0
    blur_sigma_range: tuple[float, float] = (0.2, 1.5)
    jpeg_probability: float = 0.0
    jpeg_quality_range: tuple[int, int] = (60, 95)
    # False: the bicubic upsampling of the small image, the same size as the clean one (the paper's protocol);
    # True: the small image itself, for a model that enlarges by itself (`upsampler="pixel-shuffle"`).
    low_resolution_input: bool = False
    # low light
    exposure_range: tuple[float, float] = (0.05, 0.3)
    gamma_range: tuple[float, float] = (1.2, 2.2)
    low_light_photons_range: tuple[float, float] | None = (300.0, 3000.0)
    read_sigma_range: tuple[float, float] = (0.5, 3.0)
    low_light_shot_noise_range: tuple[float, float] = (1e-4, 3e-3)
    color_cast: float = 0.0
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} has no synthetic degradation; valid: {', '.join(TASKS)}.")
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("_range") and value is not None:
                value = tuple(value)
                if len(value) != 2 or value[0] > value[1] or value[0] < 0:
                    raise ValueError(
                        f"{item.name}={value!r} is not valid; it must be (low, high) with 0 <= low <= high."
                    )
                setattr(self, item.name, value)
        self.scales = tuple(int(scale) for scale in self.scales)
        if not self.scales or any(scale not in (2, 3, 4) for scale in self.scales):
            raise ValueError(f"scales={self.scales!r} is not valid; use one or more of 2, 3, 4.")
        if self.poisson_probability + self.camera_probability + self.grain_probability > 1:
            raise ValueError(
                f"poisson_probability={self.poisson_probability!r}, camera_probability={self.camera_probability!r} "
                f"and grain_probability={self.grain_probability!r} are not valid together; their sum must be at "
                "most 1."
            )
        for name in ("shot_noise_range", "low_light_shot_noise_range"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; its low end must be above 0.")
        if not 0 <= self.color_cast < 1:
            raise ValueError(f"color_cast={self.color_cast!r} is not valid; it must be in [0, 1).")
        for name in (
            "poisson_probability", "camera_probability", "grain_probability", "blur_probability", "jpeg_probability"
        ):  # fmt: skip
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; it must be in [0, 1].")

    @property
    def size_multiple(self) -> int:
        """Patch sides must be a multiple of this (the super-resolution scales' least common multiple)."""
        return math.lcm(*self.scales) if rescales(self.task) else 1

    def apply(self, clean: torch.Tensor, generator: torch.Generator, *, clipped: bool = True) -> torch.Tensor:
        """The degraded input for `clean` (same size, or 1/scale of it with `low_resolution_input`), drawn with
        `generator`, clipped and quantised to 8 bits as a saved photo is (what users will feed the model).

        `clipped=False` leaves the same draw as it is, outside [0, 1] and between the 8-bit steps: the published
        Gaussian denoising protocol (noise added to the clean image in floating point), for comparing with papers.
        """
        degraded = self._degrade(clean, generator)
        # Super-resolution inputs are the bicubic upsampling of an 8-bit low-resolution image, exactly what
        # the image processor makes of a user's photo; every other input is itself an 8-bit image.
        return degraded if rescales(self.task) or not clipped else quantize_8bit(degraded)

    def _degrade(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.task == "denoising":
            sigma = _uniform(generator, *self.sigma_range)
            choice = torch.rand((), generator=generator).item()
            if choice >= 1 - self.camera_probability:  # the top of [0, 1): the draws of other kinds stay as they were
                quality = self._jpeg_quality(generator)
                chroma = _uniform(generator, *self.chroma_blur_range) if self.chroma_blur_range[1] > 0 else 0.0
                return camera_pipeline_noise(
                    clean, generator, shot_range=self.shot_noise_range, jpeg_quality=quality, chroma_blur=chroma
                )
            # Below the camera share at the top of [0, 1): the other kinds' draws stay as they were without it.
            if choice >= 1 - self.camera_probability - self.grain_probability:
                return real_grain_noise(clean, generator, sigma_range=self.grain_sigma_range)
            if choice < self.poisson_probability:
                photons = math.exp(_uniform(generator, *map(math.log, self.photons_range)))
                return add_poisson_gaussian_noise(clean, photons, sigma / 4, generator)
            return add_gaussian_noise(clean, sigma, generator)
        if self.task == "super-resolution":
            scale = self.scales[int(torch.randint(len(self.scales), (), generator=generator))]
            blur = 0.0
            if torch.rand((), generator=generator).item() < self.blur_probability:
                blur = _uniform(generator, *self.blur_sigma_range)
            quality = None
            if torch.rand((), generator=generator).item() < self.jpeg_probability:
                quality = round(_uniform(generator, *self.jpeg_quality_range))
            height, width = (clean.shape[-2] // scale) * scale, (clean.shape[-1] // scale) * scale
            degraded = super_resolution_input(
                clean[:, :height, :width], scale, blur, quality, upsample=not self.low_resolution_input
            )
            if self.low_resolution_input:
                return degraded  # the small image of the largest whole multiple of the scale
            return F.pad(degraded, (0, clean.shape[-1] - width, 0, clean.shape[-2] - height), mode="replicate")
        return self._low_light(clean, generator)

    def describe(self) -> str:
        """What this degradation makes, in words (for model cards).

        Example:

        ```python
        >>> from mirnet_hf.degradations import Degradation
        >>> Degradation("super-resolution", scales=(2, 4)).describe()
        'bicubic x2/x4 (the low resolution rounded to 8 bits)'

        ```
        """
        if self.task == "denoising":
            text = f"Gaussian noise sigma {self.sigma_range[0]:g}-{self.sigma_range[1]:g}"
            if self.poisson_probability:
                text += f", Poisson-Gaussian for {self.poisson_probability:.0%}"
            if self.camera_probability:
                text += (
                    f", camera-pipeline noise (shot gain {self.shot_noise_range[0]:g}-{self.shot_noise_range[1]:g}"
                    f", chroma denoising {self.chroma_blur_range[0]:g}-{self.chroma_blur_range[1]:g} px"
                    f", JPEG for {self.jpeg_probability:.0%}) for {self.camera_probability:.0%}"
                )
            if self.grain_probability:
                low, high = self.grain_sigma_range
                text += (
                    f", real grain (correlated, channel-correlated, Poisson and speckle noise of sigma "
                    f"{low:g}-{high:g} in random order, sharpening, noise reduction, JPEG) for "
                    f"{self.grain_probability:.0%}"
                )
            return text
        if rescales(self.task):
            return (
                "bicubic " + "/".join(f"x{scale}" for scale in self.scales) + " (the low resolution rounded to 8 bits)"
            )
        text = f"synthetic low light (exposure {self.exposure_range}, gamma {self.gamma_range}, shot and read noise"
        if self.camera_probability:
            text += f"; camera-pipeline shots for {self.camera_probability:.0%}"
        if self.color_cast:
            text += f"; colour casts up to {self.color_cast:.0%}"
        if self.jpeg_probability:
            text += f"; JPEG for {self.jpeg_probability:.0%}"
        return text + ")"

    def _jpeg_quality(self, generator: torch.Generator) -> int | None:
        if self.jpeg_probability and torch.rand((), generator=generator).item() < self.jpeg_probability:
            return round(_uniform(generator, *self.jpeg_quality_range))
        return None

    def _color_cast(self, generator: torch.Generator) -> tuple[float, float, float] | None:
        """Red and blue gains off by up to a factor of 1 + color_cast either way (None without casts)."""
        if not self.color_cast:
            return None
        limit = math.log1p(self.color_cast)
        return (math.exp(_uniform(generator, -limit, limit)), 1.0, math.exp(_uniform(generator, -limit, limit)))

    def _low_light(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # Extra draws only when a feature is on, so the evaluation protocols keep their noise.
        if self.camera_probability and torch.rand((), generator=generator).item() < self.camera_probability:
            exposure = _uniform(generator, *self.exposure_range)
            return camera_pipeline_noise(
                clean,
                generator,
                shot_range=self.low_light_shot_noise_range,
                exposure=exposure**1.5,
                jpeg_quality=self._jpeg_quality(generator),
                color_cast=self._color_cast(generator),
            )
        photons = None
        if self.low_light_photons_range is not None:
            photons = math.exp(_uniform(generator, *map(math.log, self.low_light_photons_range)))
        cast = self._color_cast(generator)
        if cast is not None:
            clean = (clean * torch.tensor(cast, dtype=clean.dtype)[:, None, None]).clamp(0, 1)
        dark = darken(
            clean,
            exposure=_uniform(generator, *self.exposure_range),
            gamma=_uniform(generator, *self.gamma_range),
            photons=photons,
            read_sigma=_uniform(generator, *self.read_sigma_range),
            generator=generator,
        )
        quality = self._jpeg_quality(generator)
        return dark if quality is None else jpeg_roundtrip(dark, quality)


# Fixed evaluation protocols (documented in the README): one per reported level.
def evaluation_degradation(task: str, level: float) -> Degradation:
    """The fixed degradation of an evaluation level: sigma for denoising, the scale for super-resolution,
    and for low light the exposure (gamma 2.0, 1000 photons, read noise 1.0)."""
    if task == "denoising":
        return Degradation(task, sigma_range=(level, level))
    if task == "super-resolution":
        return Degradation(task, scales=(int(level),))
    if task == "low-light-enhancement":
        return Degradation(
            task,
            exposure_range=(level, level),
            gamma_range=(2.0, 2.0),
            low_light_photons_range=(1000.0, 1000.0),
            read_sigma_range=(1.0, 1.0),
        )
    raise ValueError(f"task={task!r} is not valid; valid: {', '.join(TASKS)}.")


__all__ = [
    "real_grain_noise",
    "channel_correlated_noise",
    "spatially_correlated_noise",
    "TASKS",
    "Degradation",
    "evaluation_degradation",
    "add_gaussian_noise",
    "add_poisson_gaussian_noise",
    "gaussian_blur",
    "bicubic_resize",
    "downscale_bicubic",
    "upsample_bicubic",
    "super_resolution_input",
    "jpeg_roundtrip",
    "darken",
    "quantize_8bit",
    "Camera",
    "camera_pipeline_noise",
    "blur_chroma",
    "camera_noise_levels",
    "add_shot_read_noise",
    "unprocess",
    "develop",
    "mosaic",
    "demosaic_bilinear",
    "tone_curve",
    "inverse_tone_curve",
]
