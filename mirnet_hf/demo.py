"""The Gradio app's logic (`app.py` at the repository root only builds and launches it).

Settings come from environment variables (see `AppSettings.from_environment`), so a Space or a server can set
the models and limits without code changes. Models load once per process and are shared by all requests; the
queue bounds how many restorations run at once, so parallel users cannot run the machine out of memory.

Security: the page only ever reads files that Gradio received as uploads. A model named in the page must be a
configured one or a Hub id (`owner/name`); local folders are only accepted from the environment.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .image_io import ImageLimitError, LoadedImage, image_size, read_image, write_image
from .inference import DEFAULT_TILE_SIZE, MIRNetRestorer, pil_pixel_limit

REPO_ROOT = Path(__file__).resolve().parents[1]
TASK_LABELS = {
    "denoising": "Denoising",
    "super-resolution": "Super-resolution",
    "low-light-enhancement": "Low-light enhancement",
}
DEFAULT_MODELS = {task: f"checkpoints/mirnet-v2-compact-{task}" for task in TASK_LABELS}
ENVIRONMENT_MODELS = {
    "denoising": "MIRNET_DENOISING_MODEL",
    "super-resolution": "MIRNET_SUPER_RESOLUTION_MODEL",
    "low-light-enhancement": "MIRNET_LOW_LIGHT_MODEL",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
PREVIEW_SIDE = 1600  # the comparison slider shows at most this many pixels a side; the download is full size


class AppError(ValueError):
    """A problem to show the user in the page (bad upload, too large, model not loadable)."""


@dataclass
class AppSettings:
    """What the app serves and its limits. Every field has an environment variable (`from_environment`)."""

    models: dict[str, list[str]] = field(
        default_factory=lambda: {task: [path] for task, path in DEFAULT_MODELS.items()}
    )
    max_pixels: int = 16_000_000
    max_upload_mb: int = 25
    concurrency: int = 1
    queue_size: int = 32
    allow_hub_models: bool = True
    device: str = "auto"

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> AppSettings:
        """Reads `MIRNET_DENOISING_MODEL`, `MIRNET_SUPER_RESOLUTION_MODEL`, `MIRNET_LOW_LIGHT_MODEL` (each a
        comma-separated list of folders or Hub ids; the first is the default), `MIRNET_MAX_PIXELS`,
        `MIRNET_MAX_UPLOAD_MB`, `MIRNET_CONCURRENCY`, `MIRNET_QUEUE_SIZE`, `MIRNET_ALLOW_HUB_MODELS` (0/1) and
        `MIRNET_DEVICE`."""
        environ = os.environ if environ is None else environ
        settings = cls()
        for task, name in ENVIRONMENT_MODELS.items():
            if environ.get(name):
                settings.models[task] = [item.strip() for item in environ[name].split(",") if item.strip()]

        def integer(name: str, default: int, minimum: int = 1) -> int:
            raw = environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(float(raw))
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not valid; it must be a whole number.") from None
            if value < minimum:
                raise ValueError(f"{name}={raw!r} is not valid; it must be at least {minimum}.")
            return value

        settings.max_pixels = integer("MIRNET_MAX_PIXELS", settings.max_pixels)
        settings.max_upload_mb = integer("MIRNET_MAX_UPLOAD_MB", settings.max_upload_mb)
        settings.concurrency = integer("MIRNET_CONCURRENCY", settings.concurrency)
        settings.queue_size = integer("MIRNET_QUEUE_SIZE", settings.queue_size)
        settings.allow_hub_models = environ.get("MIRNET_ALLOW_HUB_MODELS", "1").strip().lower() not in ("0", "false")
        settings.device = environ.get("MIRNET_DEVICE", settings.device)
        return settings


def resolve_model_path(name: str) -> str:
    """A configured model: a folder (relative paths are from the repository root) or a Hub id."""
    path = Path(name)
    if not path.is_absolute() and (REPO_ROOT / path).exists():
        return str(REPO_ROOT / path)
    return name


class ModelCache:
    """Loads each model once per process and keeps a few restorers (one per model, tile and precision)."""

    def __init__(self, settings: AppSettings, size: int = 8):
        self.settings = settings
        self.size = size
        self._restorers: OrderedDict[tuple, MIRNetRestorer] = OrderedDict()
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def check_choice(self, task: str, name: str) -> str:
        """The model to load for a name chosen in the page; refuses anything but configured models and Hub ids."""
        name = (name or "").strip()
        configured = self.settings.models.get(task, [])
        if not name:
            if not configured:
                raise AppError(f"no model is configured for {TASK_LABELS[task]}.")
            return configured[0]
        if name in configured:
            return name
        if self.settings.allow_hub_models and HUB_ID.match(name) and ".." not in name and not Path(name).exists():
            return name
        allowed = "one of the listed models" + (
            " or a Hub id like owner/name" if self.settings.allow_hub_models else ""
        )
        raise AppError(f"model {name!r} is not available here; choose {allowed}.")

    def restorer(self, task: str, name: str, tile_size: int | None, precision: str) -> MIRNetRestorer:
        name = self.check_choice(task, name)
        key = (name, tile_size, precision)
        with self._lock:
            if key in self._restorers:
                self._restorers.move_to_end(key)
                return self._restorers[key]
            model = self._models.get(name)
            if model is None:
                model = self._load(name)
                self._models[name] = model
            restorer = MIRNetRestorer(
                model,
                device=self.settings.device,
                precision=precision,
                tile_size=tile_size,
                max_pixels=self.settings.max_pixels,
            )
            self._restorers[key] = restorer
            while len(self._restorers) > self.size:
                self._restorers.popitem(last=False)
            return restorer

    def _load(self, name: str):
        from .modeling_mirnet import MIRNetForImageRestoration

        try:
            return MIRNetForImageRestoration.from_pretrained(resolve_model_path(name))
        except Exception as error:  # missing folder, offline Hub, wrong repo: one clear message
            reason = str(error).splitlines()[0][:300]
            raise AppError(f"the model {name!r} could not be loaded ({type(error).__name__}: {reason}).") from error


@dataclass
class RestoreResult:
    before: Image.Image  # input at the output's size (bicubic for super-resolution), preview-sized
    after: Image.Image  # output, preview-sized
    download: str  # full-size lossless file
    message: str


def _preview(image: Image.Image) -> Image.Image:
    image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
    if max(image.size) > PREVIEW_SIDE:
        image = image.copy()
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    return image


def _as_pil(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array / 257).round().astype(np.uint8)
    return Image.fromarray(array)


def load_upload(path: str | None, max_pixels: int, scale: int = 1) -> LoadedImage:
    """Reads an uploaded file with clear messages for missing, oversized, corrupt or unsupported images."""
    if not path:
        raise AppError("upload an image first.")
    try:
        width, height = image_size(path)  # the header only, for every decoder: nothing is decoded yet
    except (OSError, ValueError):
        raise AppError("this file is not an image we can read (supported: PNG, JPEG, TIFF, WebP, BMP, GIF).") from None
    if width * height * scale * scale > max_pixels:
        limit = max_pixels / 1e6
        raise AppError(
            f"the image is {width}x{height}"
            + (f" (x{scale}: {width * scale}x{height * scale})" if scale > 1 else "")
            + f", above this app's limit of {limit:g} megapixels of output; use a smaller image."
        )
    try:
        with pil_pixel_limit(max_pixels):
            return read_image(path, max_pixels=max_pixels)
    except ImageLimitError as error:
        raise AppError(str(error)) from None
    except Exception as error:
        raise AppError(f"the image could not be decoded (is the file complete?): {error}") from None


def restore_upload(
    cache: ModelCache,
    task: str,
    path: str | None,
    *,
    scale: int = 1,
    model_name: str = "",
    tile_size: int = DEFAULT_TILE_SIZE,
    precision: str = "auto",
    progress=None,
) -> RestoreResult:
    """Restores one uploaded file for the page or the API; raises `AppError` with a message for the user."""
    if task not in TASK_LABELS:
        raise AppError(f"task {task!r} is not served; valid: {', '.join(TASK_LABELS)}.")
    scale = int(scale) if task == "super-resolution" else 1
    if scale not in (1, 2, 3, 4):
        raise AppError(f"scale x{scale} is not offered; choose x2, x3 or x4.")
    tile = int(tile_size or 0) or None
    if tile is not None and (tile < 64 or tile % 4):
        raise AppError(f"tile size {tile} is not valid; use 0 (whole image) or a multiple of 4 from 64.")
    loaded = load_upload(path, cache.settings.max_pixels, scale)
    restorer = cache.restorer(task, model_name, tile, precision)
    note = f" (the first of {loaded.frames} frames)" if loaded.frames > 1 else ""

    def on_tile(done: int, total: int) -> None:
        if progress is not None:
            progress((done, total), desc=f"tile {done}/{total}", unit="tiles")

    started = time.perf_counter()
    try:
        restored = restorer(loaded.image, progress=on_tile, upscale=scale if task == "super-resolution" else None)
    except ValueError as error:
        raise AppError(str(error)) from None
    seconds = time.perf_counter() - started
    output_dir = Path(tempfile.mkdtemp(prefix="mirnet-app-"))
    stem = Path(path).stem[:60] or "image"
    suffix = ".tif" if Path(path).suffix.lower() in (".tif", ".tiff") else ".png"  # both lossless
    download = output_dir / f"{stem}-{task}{f'-x{scale}' if scale > 1 else ''}{suffix}"
    write_image(download, restored, like=loaded)
    after = _as_pil(restored)
    before = _as_pil(loaded.image)
    width, height = before.size
    if before.size != after.size:
        before = before.resize(after.size, Image.Resampling.BICUBIC)
    stats = restorer.stats
    message = (
        f"Restored {width}x{height}{note} → {after.width}x{after.height} in **{seconds:.2f} s** "
        f"({stats.tiles} tile{'s' if stats.tiles != 1 else ''}, {restorer.precision}, "
        f"{restorer.device.type}; model `{model_name or cache.settings.models[task][0]}`)."
    )
    return RestoreResult(_preview(before), _preview(after), str(download), message)


__all__ = ["AppSettings", "AppError", "ModelCache", "restore_upload", "load_upload", "TASK_LABELS"]
