"""Image processor for MIRNet: any photo in, the network's tensor out, and back to the photo's format.

Preprocessing: applies EXIF orientation, converts grayscale, palette and CMYK to RGB (an alpha
channel is set aside and carried through untouched), rescales to [0, 1], upsamples (bicubic) by the
checkpoint's scale for super-resolution (the RealSR protocol), and reflect-pads the bottom and right
edges to a multiple of `size_divisor` only when the size is not one already.

`post_process` undoes all of that: it crops the padding, clamps to [0, 1] and returns each image in
its input's kind (PIL image, NumPy array or tensor), size (times the scale), mode and bit depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .image_ops import pad_to_size, upsample_bicubic

_PIL_16BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


@dataclass
class ImageInfo:
    """What `post_process` needs to give an image back as it came in."""

    kind: str  # "pil", "numpy" or "torch"
    height: int
    width: int
    mode: str | None = None  # PIL mode
    dtype: Any = None  # NumPy or torch dtype of array inputs
    layout: str = "HWC"  # array layout: "HW", "HWC", or "CHW"/"HW" for tensors
    grayscale: bool = False
    alpha: np.ndarray | None = None  # float32 HxW in [0, 1]


def _pil_to_array(image: Image.Image) -> tuple[np.ndarray, ImageInfo]:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not stop the restoration
        pass
    try:
        image.load()
    except OSError as error:
        raise ValueError(f"the image could not be decoded ({error}); the file may be truncated or corrupt.") from error
    mode = image.mode
    info = ImageInfo(kind="pil", height=image.height, width=image.width, mode=mode)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        info.alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    if image.mode in _PIL_16BIT_MODES:
        info.grayscale = True
        gray = np.asarray(image).astype(np.float32) / 65535.0
    elif image.mode == "I":
        info.grayscale = True
        gray = np.clip(np.asarray(image, dtype=np.float64), 0, 65535).astype(np.float32) / 65535.0
    elif image.mode == "F":
        info.grayscale = True
        gray = np.asarray(image, dtype=np.float32)
    elif image.mode in ("L", "LA", "1"):
        info.grayscale = True
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return rgb, info
    return np.repeat(gray[:, :, None], 3, axis=2), info


def _array_to_rgb(array: np.ndarray, info: ImageInfo) -> np.ndarray:
    if array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        scaled = array.astype(np.float32) / 65535.0
    elif array.dtype.type in _FLOAT_DTYPES:
        scaled = array.astype(np.float32)
        if not np.isfinite(scaled).all():
            raise ValueError("the image contains NaN or infinite values.")
    else:
        raise TypeError(
            f"unsupported image dtype {array.dtype}; use uint8, uint16 or float (float16/32/64 in [0, 1])."
        )
    if scaled.ndim == 2:
        info.grayscale = True
        return np.repeat(scaled[:, :, None], 3, axis=2)
    channels = scaled.shape[2]
    if channels == 1:
        info.grayscale = True
        return np.repeat(scaled, 3, axis=2)
    if channels == 4:
        info.alpha = np.clip(scaled[:, :, 3], 0.0, 1.0)
        return scaled[:, :, :3]
    return scaled


def _check_shape(shape: tuple[int, ...], what: str, layout: str) -> None:
    if len(shape) not in (2, 3):
        raise ValueError(f"{what} must have 2 or 3 dimensions ({layout}), got shape {shape}.")
    height, width = (shape[0], shape[1]) if layout == "HWC" else shape[-2:]
    if height == 0 or width == 0:
        raise ValueError(f"{what} is empty: shape {shape} has no pixels.")
    if len(shape) == 3:
        channels = shape[2] if layout == "HWC" else shape[0]
        if channels not in (1, 3, 4):
            raise ValueError(
                f"{what} has {channels} channels (shape {shape}, read as {layout}); expected 1 (gray), 3 (RGB) "
                "or 4 (RGBA)."
            )


def to_rgb_array(image: Any) -> tuple[np.ndarray, ImageInfo]:
    """Decodes one image (PIL, HWC NumPy array, CHW tensor, or a file path) to float32 RGB HxWx3 in
    [0, 1] and the information needed to give the result back in the same form.

    Example:

    ```python
    >>> import numpy as np
    >>> from mirnet_hf.image_processing_mirnet import to_rgb_array
    >>> rgb, info = to_rgb_array(np.zeros((5, 7), dtype=np.uint16))
    >>> rgb.shape, info.grayscale, info.dtype
    ((5, 7, 3), True, dtype('uint16'))

    ```
    """
    if isinstance(image, (str, Path)):
        # Files go through the package's one reading path, which keeps 16-bit colour (as a uint16 array).
        from .image_io import read_image

        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image file {str(path)!r} does not exist.")
        try:
            loaded = read_image(path)
        except (OSError, ValueError) as error:
            raise ValueError(f"{str(error).rstrip('.')}; the file may be truncated or corrupt.") from error
        try:
            return to_rgb_array(loaded.image)
        finally:
            if isinstance(loaded.image, Image.Image):
                loaded.image.close()
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"the image is empty: {image.width}x{image.height} pixels.")
        return _pil_to_array(image)
    if isinstance(image, np.ndarray):
        _check_shape(image.shape, "the image array", "HWC")
        info = ImageInfo(
            kind="numpy",
            height=image.shape[0],
            width=image.shape[1],
            dtype=image.dtype,
            layout="HW" if image.ndim == 2 else "HWC",
        )
        return _array_to_rgb(image, info), info
    if isinstance(image, torch.Tensor):
        _check_shape(tuple(image.shape), "the image tensor", "CHW")
        info = ImageInfo(
            kind="torch",
            height=image.shape[-2],
            width=image.shape[-1],
            dtype=image.dtype,
            layout="HW" if image.ndim == 2 else "CHW",
        )
        if image.dtype not in (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise TypeError(
                f"unsupported tensor dtype {image.dtype}; use uint8 or a float dtype with values in [0, 1]."
            )
        array = image.detach().cpu()
        array = (array.float() if array.dtype == torch.bfloat16 else array).numpy()
        if array.ndim == 3:
            array = np.moveaxis(array, 0, -1)
        return _array_to_rgb(array, info), info
    raise TypeError(
        f"unsupported image type {type(image).__name__}; pass a PIL image, a NumPy array (HWC), a torch tensor "
        "(CHW) or a path to an image file."
    )


def _as_list(images: Any) -> list:
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError("no images given: the list is empty.")
        return list(images)
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        return list(images)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    return [images]


def _bicubic_upsample(array: np.ndarray, scale: int) -> np.ndarray:
    """`image_ops.upsample_bicubic` (the one training uses) on an HxWxC float array."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
    return upsample_bicubic(tensor, scale).permute(1, 2, 0).numpy()


class MIRNetImageProcessor(BaseImageProcessor):
    r"""Prepares images for MIRNet and turns its output back into images.

    Args:
        do_rescale (`bool`, defaults to `True`): scale integer images to [0, 1] (uint8 by 255, uint16 by 65535).
        size_divisor (`int`, defaults to 4): pad height and width up to a multiple of this (reflect), only
            when needed; MIRNet's three streams need 4.
        upscale (`int`, defaults to 1): super-resolution scale; results are this many times the input's size.
        upsample_input (`bool`, defaults to `True`): upsample inputs (bicubic) by `upscale` before the model, the
            paper's protocol; `False` for a model that enlarges by itself (`upsampler="pixel-shuffle"`).

    A batch of differently sized images is padded (reflect, then edge repetition) on the bottom and
    right to the largest height and width of the batch, so they stack into one tensor; `post_process`
    crops each back to its own size. MIRNet pools globally (attention, fusion), so a small image
    batched with a larger one is restored slightly differently from the same image alone; call the
    processor per image (or use `mirnet_hf` tiled inference) when that matters.

    Example:

    ```python
    >>> import torch
    >>> from PIL import Image
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetImageProcessor
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1)).eval()
    >>> processor = MIRNetImageProcessor()
    >>> image = Image.new("RGB", (30, 21), "gray")
    >>> inputs = processor(images=image, return_tensors="pt")
    >>> inputs["pixel_values"].shape
    torch.Size([1, 3, 24, 32])
    >>> with torch.no_grad():
    ...     restored = processor.post_process(model(**inputs).reconstruction, original_images=image)
    >>> restored[0].size, restored[0].mode
    ((30, 21), 'RGB')

    ```
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self, do_rescale: bool = True, size_divisor: int = 4, upscale: int = 1, upsample_input: bool = True, **kwargs
    ):
        super().__init__(**kwargs)
        if not isinstance(upsample_input, bool):
            raise ValueError(f"upsample_input={upsample_input!r} is not valid; it must be True or False.")
        self.upsample_input = upsample_input
        if isinstance(size_divisor, bool) or not isinstance(size_divisor, int) or size_divisor < 1:
            raise ValueError(f"size_divisor={size_divisor!r} is not valid; it must be a positive integer.")
        if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 1:
            raise ValueError(f"upscale={upscale!r} is not valid; it must be a positive integer (1 = no upsampling).")
        self.do_rescale = do_rescale
        self.size_divisor = size_divisor
        self.upscale = upscale

    @classmethod
    def for_config(cls, config) -> MIRNetImageProcessor:
        """The processor matching a model configuration (its scale and stream alignment)."""
        return cls(size_divisor=config.size_multiple, upscale=config.upscale, upsample_input=config.model_upscale == 1)

    def _prepare(self, image: Any, upscale: int) -> tuple[np.ndarray, ImageInfo]:
        rgb, info = to_rgb_array(image)
        if not self.do_rescale and info.dtype in (np.uint8, np.uint16, torch.uint8):
            rgb = rgb * (255.0 if info.dtype in (np.uint8, torch.uint8) else 65535.0)
        if upscale > 1 and self.upsample_input:
            rgb = _bicubic_upsample(rgb, upscale)
        return rgb, info

    def preprocess(
        self,
        images: Any,
        return_tensors: str | None = "pt",
        upscale: int | None = None,
        size_divisor: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Turns one image or a list of images into `pixel_values` (batch, 3, height, width) in [0, 1]."""
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)}; valid: return_tensors, upscale, size_divisor.")
        upscale = self.upscale if upscale is None else upscale
        size_divisor = self.size_divisor if size_divisor is None else size_divisor
        prepared = [self._prepare(image, upscale)[0] for image in _as_list(images)]
        height = max(a.shape[0] for a in prepared)
        width = max(a.shape[1] for a in prepared)
        height += (-height) % size_divisor
        width += (-width) % size_divisor
        batch = np.stack([_pad_array(a, height, width) for a in prepared])
        pixel_values = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        if return_tensors in ("pt", "torch"):
            return BatchFeature(data={"pixel_values": torch.from_numpy(pixel_values)})
        if return_tensors in ("np", "numpy", None):
            return BatchFeature(data={"pixel_values": pixel_values})
        raise ValueError(f"return_tensors={return_tensors!r} is not valid; use 'pt' or 'np'.")

    def post_process(
        self,
        reconstruction: torch.Tensor,
        original_images: Any = None,
        target_sizes: list[tuple[int, int]] | None = None,
        output_type: str = "pil",
        upscale: int | None = None,
    ) -> list:
        """Turns the model's `reconstruction` back into images.

        Args:
            reconstruction: the model output, (batch, 3, height, width).
            original_images: the images given to the processor (or their `ImageInfo` from
                `to_rgb_array`); each result then comes back in that image's kind (PIL/NumPy/tensor),
                size (times the scale), mode, bit depth, with its alpha.
            target_sizes: otherwise, the (height, width) to crop each result to (the padding is removed).
            output_type: without `original_images`, `"pil"` (8-bit RGB), `"np"` (float32 HWC) or `"pt"`.
            upscale: the scale `preprocess` used, when it was not the processor's own.

        Returns a list with one image per batch entry.
        """
        if not isinstance(reconstruction, torch.Tensor) or reconstruction.ndim != 4 or reconstruction.shape[1] != 3:
            shape = tuple(reconstruction.shape) if isinstance(reconstruction, torch.Tensor) else type(reconstruction)
            raise ValueError(f"reconstruction must be a (batch, 3, height, width) tensor, got {shape}.")
        restored = reconstruction.detach().float().clamp(0, 1).cpu().permute(0, 2, 3, 1).numpy()
        if original_images is not None:
            originals = _as_list(original_images)
            if len(originals) != len(restored):
                raise ValueError(f"{len(originals)} original image(s) for a batch of {len(restored)}.")
            results = []
            for array, original in zip(restored, originals):
                info = original if isinstance(original, ImageInfo) else to_rgb_array(original)[1]
                scale = self.upscale if upscale is None else upscale
                cropped = array[: info.height * scale, : info.width * scale]
                alpha = info.alpha
                if alpha is not None and scale > 1:
                    alpha = _bicubic_upsample(alpha[:, :, None], scale)[:, :, 0]
                results.append(_restore_format(cropped, info, alpha))
            return results
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type={output_type!r} is not valid; use 'pil', 'np' or 'pt'.")
        if target_sizes is not None and len(target_sizes) != len(restored):
            raise ValueError(f"{len(target_sizes)} target size(s) for a batch of {len(restored)}.")
        results = []
        for index, array in enumerate(restored):
            if target_sizes is not None:
                height, width = target_sizes[index]
                array = array[:height, :width]
            if output_type == "pil":
                results.append(Image.fromarray(_quantize(array, np.uint8)))
            elif output_type == "np":
                results.append(np.ascontiguousarray(array))
            else:
                results.append(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1))
        return results


def _pad_array(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """`image_ops.pad_to_size` on an HxWxC array."""
    if array.shape[:2] == (height, width):
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return pad_to_size(tensor, height, width).permute(1, 2, 0).numpy()


def _quantize(array: np.ndarray, dtype) -> np.ndarray:
    peak = 65535.0 if dtype == np.uint16 else 255.0
    return np.round(np.clip(array, 0, 1) * peak).astype(dtype)


def _luma(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.601, as PIL's RGB -> L conversion.
    return rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114


def _restore_format(rgb: np.ndarray, info: ImageInfo, alpha: np.ndarray | None) -> Any:
    if info.kind == "pil":
        return _to_pil(rgb, info, alpha)
    channels = _luma(rgb)[:, :, None] if info.grayscale else rgb
    if alpha is not None:
        channels = np.concatenate([channels, alpha[:, :, None]], axis=2)
    if info.layout == "HW":
        channels = channels[:, :, 0]
    if info.kind == "numpy":
        dtype = info.dtype
        return _quantize(channels, dtype) if dtype in (np.uint8, np.uint16) else channels.astype(dtype)
    tensor = torch.from_numpy(np.ascontiguousarray(channels))
    if info.layout == "CHW":
        tensor = tensor.permute(2, 0, 1)
    if info.dtype == torch.uint8:
        return torch.round(tensor.clamp(0, 1) * 255).to(torch.uint8)
    return tensor.to(info.dtype)


def _to_pil(rgb: np.ndarray, info: ImageInfo, alpha: np.ndarray | None) -> Image.Image:
    mode = info.mode
    if mode in _PIL_16BIT_MODES or mode == "I":
        image = Image.fromarray(_quantize(_luma(rgb), np.uint16))
        return image if mode != "I" else image.convert("I")
    if mode == "F":
        return Image.fromarray(_luma(rgb).astype(np.float32))
    if info.grayscale:
        image = Image.fromarray(_quantize(_luma(rgb), np.uint8))
    else:
        image = Image.fromarray(_quantize(rgb, np.uint8))
    if alpha is not None:
        image.putalpha(Image.fromarray(_quantize(alpha, np.uint8)))
        return image  # RGBA or LA; palette inputs come back as RGBA
    if mode == "CMYK":
        return image.convert("CMYK")
    return image  # RGB or L; palette and 1-bit inputs come back as RGB and L


__all__ = ["MIRNetImageProcessor", "to_rgb_array", "ImageInfo"]
