"""Restoring photos of any size: tiling, precision, memory format, compilation, device choice.

`MIRNetRestorer` loads a model once and restores images tile by tile, so memory is bounded by the
tile, not the photo; `restore()` is the one-call version.

Tiles are at most `tile_size` pixels a side and overlap by at least `tile_overlap` pixels; they
are spread evenly and sized to cover the image with little excess, all with the same shape (one
compilation, one memory peak). Overlaps are blended with linear ramps, which hide the tile borders.

`self_ensemble=True` restores each tile eight times, mirrored and rotated, and averages the eight
results put back upright: a little better restoration for eight times the compute.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image_io import check_pixels, image_size, pil_pixel_limit
from .image_ops import join_subimages, split_subimages
from .image_processing_mirnet import MIRNetImageProcessor, to_rgb_array
from .modeling_mirnet import (
    MIRNetForImageRestoration,
    MIRNetMultiScaleResidualBlock,
    MIRNetV2MultiScaleResidualBlock,
)
from .tasks import default_tile_size

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("pytorch", "onnxruntime")
DEFAULT_TILE_SIZE = 256
DEFAULT_TILE_OVERLAP = 8
DEFAULT_MAX_PIXELS = 64_000_000
MAX_STRENGTH = 2.0  # denoising strength: 0 (the input) to 2 (the grain pass, `MIRNetRestorer.grain_pass`)

ProgressCallback = Callable[[int, int], None]


def select_device(device: str | torch.device = "auto") -> torch.device:
    """`"auto"` picks CUDA, then Apple's MPS, then the CPU; anything else is checked and returned.

    Example:

    ```python
    >>> from mirnet_hf.inference import select_device
    >>> select_device("cpu").type
    'cpu'

    ```
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not valid; use one of {DEVICES} (or e.g. 'cuda:1').") from error
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here; use 'cpu' or 'auto'.")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r} was asked for, but MPS is not available here; use 'cpu' or 'auto'.")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not valid; use one of {DEVICES}.")
    return chosen


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX). Elsewhere oneDNN emulates it: on an
    AVX2 machine (2 cores, 2026-12-02) a bf16-autocast training step of `mirnet-v2-small` took 55.8 s against
    float32's 6.0 s (benchmarks/benchmark_training.py), where a CPU with native bfloat16 made bf16 the fastest
    mode for training (3x float32) and for inference."""
    # torch's own CPU feature checks (private: looked up, so that a torch without them means "no").
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision `"auto"` stands for, and a check of an explicit one.

    `"auto"`: on CUDA bfloat16 where supported, else float16; on a CPU with native bfloat16 (AVX512-BF16 or
    AMX) bfloat16 autocast, which restored 1.15-1.7x faster than float32 there at the same PSNR within 0.01 dB
    for super-resolution and denoising and 0.06 dB for low light (docs/benchmarks.md, "bfloat16 by default
    where the CPU has it"); float32 on other CPUs (which emulate bfloat16, several times slower) and on MPS.
    bfloat16 asked for on a CPU that only emulates it runs, with a warning that it is slower there.

    Example:
        >>> import torch
        >>> from mirnet_hf.inference import cpu_has_native_bfloat16, resolve_precision
        >>> resolve_precision("auto", torch.device("cpu")) == ("bfloat16" if cpu_has_native_bfloat16() else "float32")
        True
        >>> resolve_precision("float32", torch.device("cpu"))
        'float32'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not valid; use one of {PRECISIONS}.")
    if precision == "auto":
        if device.type == "cuda":
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if device.type == "cpu" and cpu_has_native_bfloat16():
            return "bfloat16"
        return "float32"
    if precision == "float16" and device.type == "cpu":
        raise ValueError("precision='float16' is not supported on the CPU; use 'bfloat16' (autocast) or 'float32'.")
    if precision == "bfloat16" and device.type == "cpu" and not cpu_has_native_bfloat16():
        logger.warning(
            "precision='bfloat16' on a CPU without native bfloat16 (%s): it is emulated, slower than float32 here",
            torch.backends.cpu.get_cpu_capability(),
        )
    return precision


def plan_tiles(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Start offsets and size of the tiles covering `length`, spread evenly.

    Uses the fewest tiles of at most `tile` pixels that overlap by at least `overlap`, then shrinks
    them (to a multiple of 4) so they cover the side with little excess: the work per megapixel
    stays close to a single tile's, whatever the image size. Every tile has the same size.

    Example:

    ```python
    >>> from mirnet_hf.inference import plan_tiles
    >>> plan_tiles(1024, 384, 16)
    ([0, 334, 668], 356)
    >>> plan_tiles(300, 384, 16)
    ([0], 300)

    ```
    """
    if length <= tile:
        return [0], length
    count = math.ceil((length - overlap) / (tile - overlap))
    while True:
        # One spare pixel per seam absorbs the rounding of evenly spread integer offsets.
        size = min(length, 4 * math.ceil(math.ceil((length + (count - 1) * (overlap + 1)) / count) / 4))
        if size <= tile:
            break
        count += 1
    return [(index * (length - size)) // (count - 1) for index in range(count)], size


NUM_SYMMETRIES = 8


def _check_symmetry_index(index: int) -> None:
    if not 0 <= index < NUM_SYMMETRIES:
        raise ValueError(f"symmetry index={index!r} is not valid; it must be 0 to {NUM_SYMMETRIES - 1}.")


def apply_symmetry(images: torch.Tensor, index: int) -> torch.Tensor:
    """One of the eight symmetries of the square on the last two dimensions: `index % 4` quarter turns
    (counter-clockwise), after a left-right mirror when `index >= 4`. `undo_symmetry` inverts it.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.inference import apply_symmetry, undo_symmetry
    >>> image = torch.arange(6.0).reshape(1, 1, 2, 3)
    >>> apply_symmetry(image, 5).shape
    torch.Size([1, 1, 3, 2])
    >>> all(torch.equal(undo_symmetry(apply_symmetry(image, k), k), image) for k in range(8))
    True

    ```
    """
    _check_symmetry_index(index)
    if index >= 4:
        images = images.flip(-1)
    return torch.rot90(images, index % 4, dims=(-2, -1))


def undo_symmetry(images: torch.Tensor, index: int) -> torch.Tensor:
    """The inverse of `apply_symmetry(images, index)`."""
    _check_symmetry_index(index)
    images = torch.rot90(images, -(index % 4), dims=(-2, -1))
    return images.flip(-1) if index >= 4 else images


def _ramp(size: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    weights = torch.ones(size)
    width = min(overlap, size)
    if width > 0:
        ramp = (torch.arange(width, dtype=torch.float32) + 0.5) / width
        if ramp_start:
            weights[:width] = torch.minimum(weights[:width], ramp)
        if ramp_end:
            weights[size - width :] = torch.minimum(weights[size - width :], ramp.flip(0))
    return weights


@dataclass
class RestoreStats:
    """What the last `MIRNetRestorer` call did."""

    tiles: int = 0
    seconds: float = 0.0
    compile_seconds: float = 0.0
    tile_shape: tuple[int, int] | None = None
    compiled_shapes: set = field(default_factory=set)


def check_tile_settings(tile_size: int | None, tile_overlap: int, tile_batch_size: int | None = None) -> None:
    """Raises `ValueError` naming the bad value for tile settings `MIRNetRestorer` cannot use."""
    if tile_size is not None:
        if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 4 or tile_size % 4:
            raise ValueError(f"tile_size={tile_size!r} is not valid; it must be a multiple of 4, at least 4.")
        if not isinstance(tile_overlap, int) or tile_overlap < 0 or tile_overlap >= tile_size:
            raise ValueError(
                f"tile_overlap={tile_overlap!r} is not valid with tile_size={tile_size}; it must be a whole "
                f"number from 0 to {tile_size - 1}."
            )
    if tile_batch_size is not None and (not isinstance(tile_batch_size, int) or tile_batch_size < 1):
        raise ValueError(f"tile_batch_size={tile_batch_size!r} is not valid; it must be a positive integer.")


class MIRNetRestorer:
    """Restores images of any size with a MIRNet model, tile by tile.

    Args:
        model: a `MIRNetForImageRestoration`, or a folder / Hub id to load one from.
        processor: its `MIRNetImageProcessor` (loaded from the same folder, or made from the config).
        device: `"auto"` (CUDA, then MPS, then CPU), `"cpu"`, `"cuda"`, `"cuda:1"`, `"mps"`.
        precision: `"auto"` (bfloat16 on CUDA and on CPUs that compute it natively, float16 on older CUDA
            GPUs, float32 on other CPUs and MPS: `resolve_precision`), `"float32"` (exact, and the same on
            every CPU), `"bfloat16"` (autocast on the CPU, bfloat16 weights on CUDA) or `"float16"` (CUDA only).
        tile_size: the largest tile side (a multiple of 4); images no larger than a tile run in one piece.
            `"auto"` (default): the model's task's (`tasks.default_tile_size`: 256; 512 for low light, whose
            global-context blocks judge brightness better on more of the image). `None` or 0 turns tiling off.
            Smaller tiles are cheaper per pixel on CPUs (they stay in cache): 256 costs less per megapixel than
            one 1024x1024 pass.
        tile_overlap: pixels shared by neighbouring tiles, blended (default 8; less than `tile_size`).
        tile_batch_size: tiles per forward pass; default 1 on the CPU (batching does not pay there),
            4 on GPUs.
        channels_last: run in the channels-last memory format (faster with oneDNN and cuDNN).
        compile: compile each multi-scale residual block with `torch.compile` (the first tile of each
            shape pays the compilation; `stats.compile_seconds` reports it).
        max_pixels: refuse images whose output would have more pixels than this (default 64 MP),
            before decoding them.
        self_ensemble: restore every tile in its eight mirrored and rotated versions and average them put
            back upright (the "self-ensemble" of Timofte et al., CVPR 2016, and EDSR+): eight times the
            compute, for a measured gain of a few hundredths to a few tenths of a dB (README, "Self-ensemble").
            A network is not exactly symmetric, so its errors differ between the versions and partly average
            out.
        strength: how hard to denoise, for denoising models: 1 (default) is the model's own blind estimate;
            below 1 keeps part of the noise (the restoration blended with the input: 0.5 removes half of what the
            model would); above 1, up to 2, blends towards the grain pass (`grain_pass`: the model over the
            image's four half-resolution sub-images, then over their reassembly), which removes the spatially
            correlated grain of real photos that one pass reads as texture, at the cost of fine texture (stronger
            never leaves more noise than weaker). Any other task takes 1 only.
        backend: `"pytorch"` (default) or `"onnxruntime"` (the `onnx` extra; float32 on the CPU or CUDA):
            runs the model's ONNX graph, from `onnx/model.onnx` in its folder when that matches its
            weights, else exported once into a cache. Tiling, blending, progress and limits are the same.

    Example:

    ```python
    >>> import numpy as np
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.inference import MIRNetRestorer
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    >>> restorer = MIRNetRestorer(model, device="cpu", tile_size=64, tile_overlap=8)
    >>> restorer(np.zeros((100, 150, 3), dtype=np.uint8)).shape
    (100, 150, 3)
    >>> restorer.stats.tiles
    6

    ```
    """

    def __init__(
        self,
        model: MIRNetForImageRestoration | str | Path,
        processor: MIRNetImageProcessor | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile_size: int | str | None = "auto",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        tile_batch_size: int | None = None,
        channels_last: bool = True,
        compile: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        backend: str = "pytorch",
        self_ensemble: bool = False,
        strength: float = 1.0,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is not valid; use one of {BACKENDS}.")
        self.backend = backend
        self.device = select_device(device)
        # ONNX Runtime runs the float32 graph; "auto" means float32 there on every device.
        self.precision = resolve_precision(
            "float32" if backend == "onnxruntime" and precision == "auto" else precision, self.device
        )
        tile_size = tile_size or None
        check_tile_settings(None if tile_size == "auto" else tile_size, tile_overlap, tile_batch_size)
        if max_pixels is not None and max_pixels < 1:
            raise ValueError(f"max_pixels={max_pixels!r} is not valid; it must be positive (or None for no limit).")
        self.tile_size, self.tile_overlap, self.max_pixels = tile_size, tile_overlap, max_pixels
        self.tile_batch_size = tile_batch_size or (1 if self.device.type == "cpu" else 4)
        self.channels_last = channels_last
        if not isinstance(self_ensemble, bool):
            raise ValueError(f"self_ensemble={self_ensemble!r} is not valid; it must be True or False.")
        self.self_ensemble = self_ensemble
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= MAX_STRENGTH:
            raise ValueError(f"strength={strength!r} is not valid; it must be a number from 0 to {MAX_STRENGTH:g}.")
        self.strength = float(strength)
        if backend == "onnxruntime":
            if self.precision != "float32":
                raise ValueError(
                    f"precision={precision!r} is not available with backend='onnxruntime', which runs float32; "
                    "use precision='float32' or backend='pytorch'."
                )
            if compile:
                raise ValueError("compile=True applies to backend='pytorch' only; ONNX Runtime optimises the graph.")

        if isinstance(model, (str, Path)):
            source = model
            # The model first: it refuses a folder that is not a MIRNet, before its processor is looked for.
            model = MIRNetForImageRestoration.from_pretrained(source)
            if processor is None:
                processor = MIRNetImageProcessor.from_pretrained(source)
        if not isinstance(model, MIRNetForImageRestoration):
            raise TypeError(
                f"model must be a MIRNetForImageRestoration or a folder/Hub id, got {type(model).__name__}."
            )
        if self.strength != 1 and model.config.task != "denoising":
            raise ValueError(
                f"strength={strength!r} is for denoising models; this one is a {model.config.task} model (use 1)."
            )
        self.processor = processor or MIRNetImageProcessor.for_config(model.config)
        if self.tile_size == "auto":
            self.tile_size = default_tile_size(model.config.task)
            check_tile_settings(self.tile_size, tile_overlap)
        self.compiled = compile
        self.runner = None
        if backend == "onnxruntime":
            from .onnx_backend import OnnxRuntimeRunner

            self.runner = OnnxRuntimeRunner(model.eval(), self.device)
        else:
            model = self._prepare(model)
        self.model = model
        self.stats = RestoreStats()

    def _prepare(self, model: MIRNetForImageRestoration) -> MIRNetForImageRestoration:
        """Moves the model to the device, precision and memory format, and compiles its blocks if asked."""
        model = model.eval().to(self.device)
        if self.device.type != "cpu" and self.precision != "float32":
            model = model.to(getattr(torch, self.precision))
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.compiled:
            # Each block configuration (v2 varies its groups) and tile shape is one compiled entry;
            # dynamo's default of 8 would silently fall back to eager on the larger networks.
            dynamo_config = torch._dynamo.config
            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
            for module in model.modules():
                if isinstance(module, (MIRNetMultiScaleResidualBlock, MIRNetV2MultiScaleResidualBlock)):
                    # Fixed shapes: tiles share one shape, and static kernels are the fastest.
                    module.compile(dynamic=False)
        return model

    @property
    def config(self):
        return self.model.config

    def _autocast(self):
        if self.device.type == "cpu" and self.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def _input_dtype(self) -> torch.dtype:
        return torch.float32 if self.device.type == "cpu" else getattr(torch, self.precision)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.self_ensemble:
            return self._forward_once(batch)
        # Out of place: the outputs are inference-mode tensors, which refuse in-place updates outside it.
        total = self._forward_once(batch)
        for index in range(1, NUM_SYMMETRIES):
            total = total + undo_symmetry(self._forward_once(apply_symmetry(batch, index)), index)
        return total / NUM_SYMMETRIES

    def _forward_once(self, batch: torch.Tensor) -> torch.Tensor:
        if self.runner is not None:
            return self.runner(batch)
        batch = batch.to(self.device, self._input_dtype())
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            return self.model(pixel_values=batch).reconstruction.float().cpu()

    def restore_tensor(self, pixel_values: torch.Tensor, progress: ProgressCallback | None = None) -> torch.Tensor:
        """Restores a (1, C, H, W) float tensor in [0, 1]: for super-resolution, the image the processor made
        (upsampled, or the small image itself for a model with a pixel-shuffle tail)."""
        if pixel_values.ndim != 4 or pixel_values.shape[0] != 1:
            raise ValueError(
                f"pixel_values must have shape (1, channels, height, width), got {tuple(pixel_values.shape)}."
            )
        started = time.perf_counter()
        height, width = pixel_values.shape[-2:]
        scale = self.config.model_upscale  # tiles are planned on the input; each maps to `scale` times its size
        tile = self.tile_size
        if tile is None or (height <= tile and width <= tile):
            tiles = [(0, 0, height, width)]
        else:
            rows, tile_h = plan_tiles(height, tile, self.tile_overlap)
            columns, tile_w = plan_tiles(width, tile, self.tile_overlap)
            tiles = [(top, left, tile_h, tile_w) for top in rows for left in columns]
        self.stats = RestoreStats(tiles=len(tiles), compiled_shapes=self.stats.compiled_shapes)
        if len(tiles) == 1:
            output = self._timed_forward(pixel_values, (height, width))
            if progress is not None:
                progress(1, 1)
            self.stats.seconds = time.perf_counter() - started
            return output

        out_channels = self.config.num_channels_out
        accumulated = torch.zeros(1, out_channels, height * scale, width * scale)
        weights = torch.zeros(1, 1, height * scale, width * scale)
        overlap = self.tile_overlap * scale
        done = 0
        for first in range(0, len(tiles), self.tile_batch_size):
            group = tiles[first : first + self.tile_batch_size]
            batch = torch.cat([pixel_values[:, :, top : top + h, left : left + w] for top, left, h, w in group])
            restored = self._timed_forward(batch, group[0][2:])
            for (top, left, tile_h, tile_w), piece in zip(group, restored):
                weight = (
                    _ramp(tile_h * scale, overlap, top > 0, top + tile_h < height)[:, None]
                    * _ramp(tile_w * scale, overlap, left > 0, left + tile_w < width)[None, :]
                )
                rows = slice(top * scale, (top + tile_h) * scale)
                columns = slice(left * scale, (left + tile_w) * scale)
                accumulated[0, :, rows, columns] += piece * weight
                weights[0, 0, rows, columns] += weight
            done += len(group)
            if progress is not None:
                progress(done, len(tiles))
        self.stats.seconds = time.perf_counter() - started
        return accumulated.div_(weights)

    def restore_with_strength(
        self, pixel_values: torch.Tensor, progress: ProgressCallback | None = None
    ) -> torch.Tensor:
        """`restore_tensor` at the restorer's `strength`: blended with the input below 1, blended towards the
        grain pass (`grain_pass`) above 1 (every pass reports its tiles to `progress`)."""
        if self.strength == MAX_STRENGTH:
            return self.grain_pass(pixel_values, progress=progress)
        restored = self.restore_tensor(pixel_values, progress=progress)
        if self.strength < 1:
            return pixel_values + self.strength * (restored - pixel_values)
        if self.strength > 1:
            stronger = self.grain_pass(pixel_values, progress=progress)
            return restored + (self.strength - 1) / (MAX_STRENGTH - 1) * (stronger - restored)
        return restored

    def grain_pass(self, pixel_values: torch.Tensor, progress: ProgressCallback | None = None) -> torch.Tensor:
        """The strongest denoising (strength 2): the model over each of the image's four half-resolution
        sub-images (`image_ops.split_subimages`), then once over the image they make again.

        Real grain is correlated over a pixel or two (demosaicking, sharpening, in-camera noise reduction), so
        a denoiser trained on mostly per-pixel noise reads part of it as texture and keeps it. In a sub-image
        (every other pixel) that grain is close to per-pixel noise, and the model removes it; the second pass
        evens out the seams between the sub-images' four restorations. Measured on RNI15's real noisy photos it
        leaves less grain than a second plain pass, and on mild or Gaussian noise it smooths more texture
        (docs/benchmarks.md, "Real grain left on real photos"). Costs about two passes.
        """
        height, width = pixel_values.shape[-2:]
        subimages = split_subimages(pixel_values)
        restored = torch.cat([self.restore_tensor(sub[None], progress=progress) for sub in subimages])
        return self.restore_tensor(join_subimages(restored, height, width).clamp(0, 1), progress=progress)

    def _timed_forward(self, batch: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        key = (batch.shape[0], *shape)
        first_time = self.compiled and key not in self.stats.compiled_shapes
        started = time.perf_counter()
        output = self._forward(batch)
        if first_time:
            self.stats.compiled_shapes.add(key)
            self.stats.compile_seconds += time.perf_counter() - started
        self.stats.tile_shape = shape
        return output

    def check_size(self, image: Any, upscale: int | None = None) -> None:
        """Refuses an image whose restored size exceeds `max_pixels`, reading only its header."""
        if self.max_pixels is None:
            return
        height, width = _image_size(image)
        scale = self.processor.upscale if upscale is None else upscale
        check_pixels(
            width, height, self.max_pixels, scale, advice="raise max_pixels (--max-pixels) to restore it anyway"
        )

    def __call__(self, image: Any, progress: ProgressCallback | None = None, upscale: int | None = None) -> Any:
        """Restores one image (PIL image, HWC array, CHW tensor or path) and returns it in its input's
        kind, size (times the scale), mode and bit depth.

        `upscale` overrides the model's super-resolution scale (for a model trained on several scales)."""
        if upscale is not None and (isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 1):
            raise ValueError(f"upscale={upscale!r} is not valid; it must be a positive whole number (2, 3, 4).")
        if upscale is not None and self.config.model_upscale > 1 and upscale != self.config.upscale:
            raise ValueError(
                f"upscale={upscale} is not available with this model: it enlarges x{self.config.upscale} itself "
                f"(a pixel-shuffle tail), so it only restores at x{self.config.upscale}; use a x{upscale} model."
            )
        self.check_size(image, upscale)
        with pil_pixel_limit(self.max_pixels):
            rgb, info = to_rgb_array(image)
        pixel_values = self.processor(images=rgb, return_tensors="pt", size_divisor=1, upscale=upscale)
        del rgb
        reconstruction = self.restore_with_strength(pixel_values["pixel_values"], progress=progress)
        del pixel_values
        return self.processor.post_process(reconstruction, original_images=[info], upscale=upscale)[0]


def time_backends(
    model: MIRNetForImageRestoration, device: str | torch.device = "cpu", tile_size: int = DEFAULT_TILE_SIZE
) -> dict[str, float]:
    """Seconds one `tile_size` tile takes with each backend available here (float32), after a warm-up call.

    What the app measures to pick its backend for a model: which is faster depends on the network and the
    processor (README, "Inference speed").
    """
    from .onnx_backend import onnxruntime_available

    tile = torch.rand(1, model.config.num_channels, tile_size, tile_size, generator=torch.Generator().manual_seed(0))
    timings = {}
    for backend in BACKENDS:
        if backend == "onnxruntime" and not onnxruntime_available():
            continue
        restorer = MIRNetRestorer(model, device=device, precision="float32", tile_size=tile_size, backend=backend)
        restorer.restore_tensor(tile)  # warm-up: first-call allocations, oneDNN and ORT kernel choices
        started = time.perf_counter()
        restorer.restore_tensor(tile)
        timings[backend] = time.perf_counter() - started
    return timings


def _image_size(image: Any) -> tuple[int, int]:
    if isinstance(image, (str, Path)):
        width, height = image_size(image)  # the header only, whichever decoder will read the file
        return height, width
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, np.ndarray):
        return (image.shape[0], image.shape[1]) if image.ndim >= 2 else (0, 0)
    if isinstance(image, torch.Tensor):
        return image.shape[-2], image.shape[-1]
    return 0, 0


def restore(
    image: Any,
    model: MIRNetForImageRestoration | str | Path,
    progress: ProgressCallback | None = None,
    **settings: Any,
) -> Any:
    """Restores one image with a model (object, folder or Hub id); `settings` are `MIRNetRestorer`'s.

    For many images, make one `MIRNetRestorer` and call it repeatedly: it loads (and compiles) once.

    Example:

    ```python
    >>> from PIL import Image
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, restore
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    >>> restore(Image.new("RGB", (70, 50)), model, device="cpu").size
    (70, 50)

    ```
    """
    return MIRNetRestorer(model, **settings)(image, progress=progress)


__all__ = [
    "BACKENDS",
    "MAX_STRENGTH",
    "MIRNetRestorer",
    "check_tile_settings",
    "restore",
    "select_device",
    "time_backends",
    "cpu_has_native_bfloat16",
    "resolve_precision",
    "plan_tiles",
    "RestoreStats",
    "apply_symmetry",
    "undo_symmetry",
]
