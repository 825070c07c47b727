"""Image operations shared by inference, training data and evaluation, so they cannot drift apart.

Training must see its inputs made exactly as the image processor makes them at inference (bicubic
upsampling for super-resolution); padding and the size multiple must agree between the processor and the
model. Every function takes float tensors in [0, 1] shaped (C, H, W) or (N, C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def size_multiple(num_streams: int) -> int:
    """The side multiple a network with `num_streams` streams needs: each stream halves the resolution.

    Example:

    ```python
    >>> from mirnet_hf.image_ops import size_multiple
    >>> size_multiple(3)
    4

    ```
    """
    return 2 ** (num_streams - 1)


def _batched(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if image.ndim not in (3, 4):
        raise ValueError(f"expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(image.shape)}.")
    return (image[None], True) if image.ndim == 3 else (image, False)


def pad_to_multiple(pixel_values: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pads the bottom and right edges (reflect) so height and width are multiples of `multiple`.

    Reflection needs the pad to be smaller than the side; tinier images are padded by repeating the edge.
    Nothing is done when the size is already aligned.
    """
    height, width = pixel_values.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if torch.compiler.is_exporting():
        # An exported graph (ONNX) serves every size, so it cannot branch on this one's: it always pads,
        # by zero pixels where the size is aligned.
        return F.pad(pixel_values, (0, pad_w, 0, pad_h), mode="reflect")
    if pad_h == 0 and pad_w == 0:
        return pixel_values
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(pixel_values, (0, pad_w, 0, pad_h), mode=mode)


def pad_to_size(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pads the bottom and right edges up to `height` x `width` by reflection, repeated for pads larger than
    the image (a batch's small members); a side of one pixel is repeated instead.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.image_ops import pad_to_size
    >>> pad_to_size(torch.tensor([[[1.0, 2.0, 3.0]]]), 1, 7)
    tensor([[[1., 2., 3., 2., 1., 2., 3.]]])

    ```
    """
    batch, unbatched = _batched(image)
    pad_h, pad_w = height - batch.shape[-2], width - batch.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"cannot pad a {batch.shape[-1]}x{batch.shape[-2]} image to the smaller {width}x{height}.")
    while pad_h > 0 or pad_w > 0:
        step_h, step_w = min(pad_h, batch.shape[-2] - 1), min(pad_w, batch.shape[-1] - 1)
        if step_h == 0 and step_w == 0:
            batch = F.pad(batch, (0, pad_w, 0, pad_h), mode="replicate")
            break
        batch = F.pad(batch, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return batch[0] if unbatched else batch


def bicubic_resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic resize (antialiased when shrinking, like MATLAB's imresize), clamped to [0, 1]."""
    batch, unbatched = _batched(image)
    shrinking = height < batch.shape[-2] or width < batch.shape[-1]
    resized = F.interpolate(batch, size=(height, width), mode="bicubic", align_corners=False, antialias=shrinking)
    resized = resized.clamp(0, 1)
    return resized[0] if unbatched else resized


def upsample_bicubic(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by an integer scale: the super-resolution input, in training and at inference."""
    return bicubic_resize(image, image.shape[-2] * scale, image.shape[-1] * scale)


def downscale_bicubic(image: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-resolution image of the bicubic protocol: the size is floored to a multiple of `scale` first
    (as Set5/Set14 crop their HR images), then shrunk by `scale`."""
    height, width = (image.shape[-2] // scale) * scale, (image.shape[-1] // scale) * scale
    return bicubic_resize(image[..., :height, :width], height // scale, width // scale)


def quantize(image: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Rounds to `levels` steps (255: what saving as an 8-bit file does), clamped to [0, 1], still float.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.image_ops import quantize
    >>> quantize(torch.tensor([0.5, 1.2])) * 255
    tensor([128., 255.])

    ```
    """
    return (image.clamp(0, 1) * levels).round() / levels


def split_subimages(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The `factor` x `factor` sub-images of a (1, C, H, W) image, as a batch (factor**2, C, H/factor, W/factor):
    sub-image (i, j) holds the pixels at rows i, i + factor, ... and columns j, j + factor, ... The sides are
    padded to a multiple of `factor` first (`pad_to_multiple`); `join_subimages` puts them back.

    Neighbouring pixels of a sub-image lie `factor` pixels apart in the image, so noise that is correlated over
    a pixel or two (demosaicking, sharpening, in-camera noise reduction) is close to uncorrelated in it.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.image_ops import join_subimages, split_subimages
    >>> image = torch.arange(16.0).view(1, 1, 4, 4)
    >>> split_subimages(image)[1, 0]  # odd columns of the even rows
    tensor([[ 1.,  3.],
            [ 9., 11.]])
    >>> torch.equal(join_subimages(split_subimages(image), 4, 4), image)
    True

    ```
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) tensor, got shape {tuple(image.shape)}.")
    padded = pad_to_multiple(image, factor)
    channels = padded.shape[1]
    stacked = F.pixel_unshuffle(padded, factor)  # (1, C * factor**2, H/f, W/f), channel c holds c*f*f + i*f + j
    return stacked.view(channels, factor * factor, *stacked.shape[-2:]).transpose(0, 1).contiguous()


def join_subimages(subimages: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The (1, C, height, width) image whose sub-images `split_subimages` made (the inverse, padding cropped)."""
    factor = round(subimages.shape[0] ** 0.5)
    if factor * factor != subimages.shape[0]:
        raise ValueError(f"expected a square number of sub-images, got {subimages.shape[0]}.")
    stacked = subimages.transpose(0, 1).reshape(1, -1, *subimages.shape[-2:])
    return F.pixel_shuffle(stacked, factor)[..., :height, :width]


__all__ = [
    "bicubic_resize",
    "downscale_bicubic",
    "join_subimages",
    "pad_to_multiple",
    "pad_to_size",
    "quantize",
    "size_multiple",
    "split_subimages",
    "upsample_bicubic",
]
