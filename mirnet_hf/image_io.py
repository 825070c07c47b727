"""Reading and writing image files with their format, bit depth, ICC profile and EXIF.

PIL handles 8-bit images and 16-bit grayscale; 16-bit colour PNG and TIFF, which PIL would reduce
to 8 bits, are read and written with pypng and tifffile so 16 bits in give 16 bits out. Writes are
atomic: a temporary file beside the target is renamed over it only when complete, with the permissions
the umask gives a new file (or those of the file it replaces).

Hostile files are refused before any pixel is decoded: `image_size` reads the size from the header for
every decoder (PNG's IHDR, TIFF's first page, PIL's header for the rest), `read_image(max_pixels=...)`
checks it, and an ICC profile is decompressed only up to `MAX_ICC_PROFILE_BYTES`.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

_EXIF_ORIENTATION = 0x0112
# Real ICC profiles are a few kB to a few hundred kB; a compressed one may expand to gigabytes.
MAX_ICC_PROFILE_BYTES = 4_000_000


class ImageLimitError(ValueError):
    """An image file refused before decoding: too many pixels, or an ancillary chunk over its cap."""


# Formats PIL writes, by file suffix.
_SUFFIX_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".gif": "GIF",
}


@dataclass
class LoadedImage:
    """An image read from a file: `image` is a PIL image, or a uint16 NumPy array for 16-bit colour."""

    image: Any
    format: str
    icc_profile: bytes | None = None
    exif: bytes | None = None
    frames: int = 1


def _png_header(path: Path) -> tuple[int, int] | None:
    with path.open("rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]  # bit depth, colour type


@contextmanager
def pil_pixel_limit(max_pixels: int | None):
    """Lets PIL open images up to `max_pixels` (PIL's own bomb check stops at about 179 MP)."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None if max_pixels is None else max(previous or 0, max_pixels)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, without PIL (which may refuse the file's other chunks)."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header only, whichever decoder would read it.

    Example:

    ```python
    >>> from mirnet_hf.image_io import image_size
    >>> image_size("../shared/datasets/Kodak24/kodim01.png")
    (500, 500)

    ```
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist.")
    size = _png_size(path)
    if size is not None:
        return size
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagewidth), int(page.imagelength)
        except Exception:
            pass  # let PIL's header reader try
    try:
        with pil_pixel_limit(None), Image.open(path) as opened:  # the header only: the caller applies its limit
            return opened.size
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not an image file we can read ({error}).") from error


def check_pixels(
    width: int,
    height: int,
    max_pixels: int | None,
    scale: int = 1,
    name: str = "the image",
    limit: str = "the limit",
    advice: str = "",
) -> None:
    """Raises `ImageLimitError` when the output (`scale` times each side) would exceed `max_pixels`: the one
    pixel-limit check of the restorer, the CLI and the app, which differ only in whose `limit` it is and the
    `advice` that follows.

    Example:

    ```python
    >>> from mirnet_hf.image_io import check_pixels
    >>> from mirnet_hf.image_io import ImageLimitError
    >>> try:
    ...     check_pixels(20000, 20000, 16_000_000, limit="this app's limit", advice="use a smaller image")
    ... except ImageLimitError as error:
    ...     print(error)
    the image is 20000x20000 = 400.0 megapixels, above this app's limit of 16 megapixels; use a smaller image.

    ```
    """
    pixels = width * height * scale * scale
    if max_pixels is not None and pixels > max_pixels:
        raise ImageLimitError(
            f"{name} is {width}x{height}"
            + (f" (x{scale}: {width * scale}x{height * scale})" if scale > 1 else "")
            + f" = {pixels / 1e6:.1f} megapixels, above {limit} of {max_pixels / 1e6:g} megapixels"
            + (f"; {advice}." if advice else ".")
        )


def _bounded_decompress(data: bytes, limit: int, what: str) -> bytes:
    inflater = zlib.decompressobj()
    plain = inflater.decompress(data, limit)
    if inflater.unconsumed_tail:
        raise ImageLimitError(f"its {what} expands to more than {limit / 1e6:g} MB, the limit.")
    return plain


def _read_png16(path: Path) -> LoadedImage:
    import png

    reader = png.Reader(filename=str(path))
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    icc = exif = None
    for chunk_type, data in png.Reader(filename=str(path)).chunks():
        if chunk_type == b"iCCP":
            name_end = data.index(b"\x00")
            icc = _bounded_decompress(data[name_end + 2 :], MAX_ICC_PROFILE_BYTES, "ICC profile")
        elif chunk_type == b"eXIf":
            exif = bytes(data)
    if planes == 1:
        array = array[:, :, 0]
    elif planes == 2:  # gray + alpha: as RGBA, which MIRNet's processor carries through
        array = np.concatenate([np.repeat(array[:, :, :1], 3, axis=2), array[:, :, 1:]], axis=2)
    return LoadedImage(array, "PNG", icc, exif)


def _read_tiff16(path: Path) -> LoadedImage | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if page.bitspersample != 16 or page.samplesperpixel not in (3, 4):
            return None
        array = page.asarray()
        icc = page.tags.get("InterColorProfile")
        icc_bytes = bytes(icc.value) if icc is not None else None
    if array.dtype != np.uint16 or array.ndim != 3:
        return None
    return LoadedImage(array, "TIFF", icc_bytes, None)


def read_image(path: str | Path, max_pixels: int | None = None) -> LoadedImage:
    """Reads an image file, keeping 16-bit colour, the ICC profile and EXIF. With `max_pixels`, a larger
    image is refused (`ImageLimitError`) from its header, before anything is decoded.

    Example:

    ```python
    >>> from mirnet_hf.image_io import read_image
    >>> read_image("../shared/datasets/Kodak24/kodim01.png").format
    'PNG'

    ```
    """
    path = Path(path)
    width, height = image_size(path)
    check_pixels(width, height, max_pixels, name=repr(str(path)))
    header = _png_header(path)
    if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
        try:
            return _read_png16(path)
        except ImageLimitError as error:
            raise ImageLimitError(f"{str(path)!r} is refused: {error}") from None
        except Exception as error:
            raise ValueError(f"{str(path)!r} could not be decoded as a 16-bit PNG ({error}).") from error
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            loaded = _read_tiff16(path)
        except Exception:
            loaded = None  # not a 16-bit colour TIFF tifffile can read: let PIL try
        if loaded is not None:
            return loaded
    try:
        with pil_pixel_limit(max_pixels) if max_pixels is not None else nullcontext():
            image = Image.open(path)
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not an image file PIL can read ({error}).") from error
    frames = getattr(image, "n_frames", 1)
    return LoadedImage(image, image.format or "PNG", image.info.get("icc_profile"), image.info.get("exif"), frames)


def _upright_exif(exif: bytes | None) -> bytes | None:
    """EXIF for a restored image, which is stored upright: orientation reset to 1."""
    if not exif:
        return None
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        if _EXIF_ORIENTATION in parsed:
            parsed[_EXIF_ORIENTATION] = 1
        return parsed.tobytes()
    except Exception:
        return None  # unparseable EXIF is dropped rather than written back broken


def _png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", zlib.crc32(chunk_type + data))


def _encode_png16(array: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    import png

    height, width = array.shape[:2]
    planes = 1 if array.ndim == 2 else array.shape[2]
    writer = png.Writer(width, height, bitdepth=16, greyscale=planes in (1, 2), alpha=planes in (2, 4))
    buffer = io.BytesIO()
    writer.write(buffer, array.reshape(height, width * planes))
    encoded = buffer.getvalue()
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif)
    # The extra chunks go right after IHDR (8-byte signature + 25-byte IHDR chunk).
    return encoded[:33] + extra + encoded[33:]


def _encode(image: Any, format: str, icc: bytes | None, exif: bytes | None) -> bytes:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint16:
            raise TypeError(f"only uint16 arrays are written directly, got {image.dtype}.")
        if format == "PNG":
            return _encode_png16(image, icc, exif)
        if format == "TIFF":
            import tifffile

            buffer = io.BytesIO()
            photometric = "rgb" if image.ndim == 3 else "minisblack"
            extras = {"extrasamples": [2]} if image.ndim == 3 and image.shape[2] == 4 else {}
            tifffile.imwrite(buffer, image, photometric=photometric, iccprofile=icc, **extras)
            return buffer.getvalue()
        raise ValueError(f"16-bit colour can be written as PNG or TIFF, not {format}.")
    options: dict[str, Any] = {}
    if icc and format in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = icc
    if exif and format in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["exif"] = exif
    if format == "JPEG":
        options.update(quality=95, subsampling=0)
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
    elif format == "WEBP":
        options.update(lossless=True)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def format_for_suffix(path: str | Path) -> str | None:
    """The format a file name asks for (`photo.tif` -> `TIFF`), or None for an unknown suffix."""
    return _SUFFIX_FORMATS.get(Path(path).suffix.lower())


def write_image(path: str | Path, image: Any, like: LoadedImage | None = None, format: str | None = None) -> None:
    """Writes `image` (PIL image or uint16 array) atomically, in `format` (default: from the suffix,
    else `like`'s), with `like`'s ICC profile and EXIF (orientation reset, as the pixels are upright).

    Example:

    ```python
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from mirnet_hf.image_io import read_image, write_image
    >>> path = Path(tempfile.mkdtemp()) / "deep.png"
    >>> write_image(path, np.full((4, 5, 3), 40000, dtype=np.uint16))
    >>> read_image(path).image.dtype
    dtype('uint16')

    ```
    """
    path = Path(path)
    format = format or format_for_suffix(path) or (like.format if like else None)
    if format is None:
        raise ValueError(f"cannot tell the image format of {str(path)!r}; use a suffix such as .png or .jpg.")
    icc = like.icc_profile if like else None
    exif = _upright_exif(like.exif) if like else None
    data = _encode(image, format, icc, exif)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(data)
            output.flush()
            # mkstemp makes the file private (0600); give it what a new file gets, or keep the replaced one's.
            os.fchmod(output.fileno(), path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
            os.fsync(output.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


__all__ = [
    "LoadedImage",
    "ImageLimitError",
    "MAX_ICC_PROFILE_BYTES",
    "read_image",
    "write_image",
    "image_size",
    "check_pixels",
    "format_for_suffix",
    "pil_pixel_limit",
]
