"""The Gradio app's logic (`app.py` at the repository root only builds and launches it).

Settings come from environment variables (see `AppSettings.from_environment`), so a Space or a server can set
the models and limits without code changes. Models load once per process and are shared by all requests.

Memory and time are bounded for any input the page or the API accepts: one limit on concurrent restorations for
the whole app (all tasks and the API share it), whole-image mode only below a pixel cap (tiles above it), a
cancelled request stops at its next tile, model loads never hold a lock other requests wait on (failures are
remembered for a while), a bounded number of models stay loaded, and results older than a set age are deleted.

Security: the page only ever reads files that Gradio received as uploads. A model named in the page must be a
configured one or a Hub id (`owner/name`); local folders are only accepted from the environment.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .hub import DEFAULT_MAX_MODEL_MB, HubModelRefused, check_hub_model, looks_like_hub_id
from .image_io import ImageLimitError, LoadedImage, check_pixels, image_size, read_image, write_image
from .inference import (
    BACKENDS,
    MAX_STRENGTH,
    MIRNetRestorer,
    cpu_has_native_bfloat16,
    pil_pixel_limit,
    resolve_precision,
    select_device,
    time_backends,
)
from .onnx_backend import onnxruntime_available
from .tasks import REGISTRY, SERVED_TASKS, rescales

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The served tasks, from the task registry: their tab labels, shipped models and model settings.
TASK_LABELS = {task: REGISTRY[task].label for task in SERVED_TASKS}
DEFAULT_MODELS = {task: REGISTRY[task].shipped_checkpoints for task in SERVED_TASKS}
# The model choice that picks, per request, the listed model shipped for the request's scale (the default model
# otherwise): offered first for tasks with specialists (super-resolution: x3 and x4).
AUTO_MODEL = "auto"
ENVIRONMENT_MODELS = {task: REGISTRY[task].environment_variable for task in SERVED_TASKS}
# The largest tile the app's automatic backend choice gives to ONNX Runtime (the tasks' tiles are 256 and 512).
LARGEST_ONNX_TILE = 512
PREVIEW_SIDE = 1600  # the comparison slider shows at most this many pixels a side; the download is full size
RESULTS_DIR = Path(tempfile.gettempdir()) / "mirnet-app-results"
NAME_ECHO = 80  # characters of a user-typed model name repeated in messages


class RestorationCancelled(Exception):
    """The request was cancelled or its client left: the restoration stopped at a tile boundary."""


class AppError(ValueError):
    """A problem to show the user in the page (bad upload, too large, model not loadable)."""


@dataclass
class AppSettings:
    """What the app serves and its limits. Every field has an environment variable (`from_environment`)."""

    models: dict[str, list[str]] = field(
        default_factory=lambda: {task: list(paths) for task, paths in DEFAULT_MODELS.items()}
    )
    max_pixels: int = 16_000_000
    max_upload_mb: int = 25
    concurrency: int = 1
    queue_size: int = 32
    allow_hub_models: bool = True
    # Hub ids are checked before any weights are downloaded: a MIRNet config, and at most this much to download
    # (hub.DEFAULT_MAX_MODEL_MB: every MIRNet with its ONNX graph fits).
    max_hub_model_mb: int = DEFAULT_MAX_MODEL_MB
    device: str = "auto"
    whole_image_max_pixels: int = 1_000_000  # whole-image mode costs about 1 GB per megapixel; tiles above this
    max_models: int = 4
    failure_seconds: int = 120  # a model that failed to load is not tried again for this long
    result_max_age_seconds: int = 3600
    # "auto": for float32 on the CPU with ONNX Runtime installed, per model the backend measured faster on one
    # tile (which wins depends on the network: README, "Inference speed"), else PyTorch; or "pytorch" /
    # "onnxruntime" always.
    backend: str = "auto"

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> AppSettings:
        """Reads `MIRNET_DENOISING_MODEL`, `MIRNET_SUPER_RESOLUTION_MODEL`, `MIRNET_LOW_LIGHT_MODEL` (each a
        comma-separated list of folders or Hub ids; the first is the default), `MIRNET_MAX_PIXELS`,
        `MIRNET_MAX_UPLOAD_MB`, `MIRNET_CONCURRENCY` (restorations at once, all tasks together),
        `MIRNET_QUEUE_SIZE`, `MIRNET_ALLOW_HUB_MODELS` (0/1), `MIRNET_DEVICE`, `MIRNET_WHOLE_IMAGE_MAX_PIXELS`,
        `MIRNET_MAX_MODELS`, `MIRNET_MODEL_FAILURE_SECONDS`, `MIRNET_RESULT_MAX_AGE_SECONDS` and
        `MIRNET_MAX_HUB_MODEL_MB`."""
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
        settings.whole_image_max_pixels = integer("MIRNET_WHOLE_IMAGE_MAX_PIXELS", settings.whole_image_max_pixels)
        settings.max_models = integer("MIRNET_MAX_MODELS", settings.max_models)
        settings.failure_seconds = integer("MIRNET_MODEL_FAILURE_SECONDS", settings.failure_seconds, minimum=0)
        settings.result_max_age_seconds = integer("MIRNET_RESULT_MAX_AGE_SECONDS", settings.result_max_age_seconds)
        settings.max_hub_model_mb = integer("MIRNET_MAX_HUB_MODEL_MB", settings.max_hub_model_mb)
        settings.allow_hub_models = environ.get("MIRNET_ALLOW_HUB_MODELS", "1").strip().lower() not in ("0", "false")
        settings.device = environ.get("MIRNET_DEVICE", settings.device)
        settings.backend = environ.get("MIRNET_BACKEND", settings.backend).strip().lower()
        if settings.backend not in ("auto", *BACKENDS):
            raise ValueError(f"MIRNET_BACKEND={settings.backend!r} is not valid; use one of {('auto', *BACKENDS)}.")
        return settings


def precision_label() -> str:
    """The label of the app's precision choice: whether bfloat16 pays on this machine's CPU (it is several
    times slower than float32 where the CPU only emulates it)."""
    if cpu_has_native_bfloat16():
        return "Precision (auto: bfloat16, faster on this CPU; float32: exact)"
    return "Precision (auto: float32; this CPU emulates bfloat16: slower)"


def resolve_model_path(name: str) -> str:
    """A configured model: a folder (relative paths are from the repository root) or a Hub id."""
    path = Path(name)
    if not path.is_absolute() and (REPO_ROOT / path).exists():
        return str(REPO_ROOT / path)
    return name


def _echo(name: str) -> str:
    """A user-typed name as messages repeat it: shortened, so a page cannot be flooded through an error."""
    return repr(name if len(name) <= NAME_ECHO else name[:NAME_ECHO] + "...")


def hub_unreachable_reason() -> str | None:
    """Why the Hub cannot be tried now (offline mode, or no answer to a 3-second connection), else None."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "the app runs offline (HF_HUB_OFFLINE)"
    from urllib.parse import urlparse

    endpoint = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=3):
            return None
    except OSError as error:
        return f"the Hub ({endpoint.hostname}) cannot be reached: {error}"


class ModelCache:
    """Loads models for the app and keeps a few (`max_models`), with their restorers (one per model, tile and
    precision).

    A load holds only that model's own lock: other models, and every loaded one, stay available meanwhile. A
    failed load is remembered for `failure_seconds`, so a bad name costs one attempt, not one per request.
    `gate` is the app-wide limit on restorations running at once."""

    def __init__(self, settings: AppSettings, size: int = 8):
        self.settings = settings
        self.size = size
        self.gate = threading.BoundedSemaphore(settings.concurrency)
        self._restorers: OrderedDict[tuple, MIRNetRestorer] = OrderedDict()
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._failures: dict[str, tuple[float, str]] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the dictionaries only; never held while loading
        self._told_no_onnxruntime = False
        self.backend_timings: dict[str, dict[str, float]] = {}  # per model: seconds per tile, by backend

    def check_choice(self, task: str, name: str, scale: int | None = None) -> str:
        """The model to load for a name chosen in the page; refuses anything but configured models and Hub ids.

        No name (or `AUTO_MODEL`) means the configured model shipped for `scale` (`RestorationTask.checkpoint_for`)
        when it is listed, else the first listed."""
        name = (name or "").strip()
        configured = self.settings.models.get(task, [])
        if not name or name == AUTO_MODEL:
            if not configured:
                raise AppError(f"no model is configured for {TASK_LABELS[task]}.")
            shipped = REGISTRY[task].checkpoint_for(scale)
            return shipped if shipped in configured else configured[0]
        if name in configured:
            return name
        if self.settings.allow_hub_models and looks_like_hub_id(name):
            return name
        allowed = "one of the listed models" + (
            " or a Hub id like owner/name" if self.settings.allow_hub_models else ""
        )
        raise AppError(f"model {_echo(name)} is not available here; choose {allowed}.")

    def model(self, name: str):
        """The loaded model `name`, loading it if needed (one load per name at a time)."""
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            failed = self._failures.get(name)
            if failed and time.monotonic() - failed[0] < self.settings.failure_seconds:
                raise AppError(failed[1])
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:  # loaded (or failed) by another request while this one waited
                if name in self._models:
                    return self._models[name]
                failed = self._failures.get(name)
                if failed and time.monotonic() - failed[0] < self.settings.failure_seconds:
                    raise AppError(failed[1])
            try:
                model = self._load(name)
            except AppError as error:
                with self._lock:
                    self._failures[name] = (time.monotonic(), str(error))
                raise
            with self._lock:
                self._models[name] = model
                self._failures.pop(name, None)
                while len(self._models) > self.settings.max_models:
                    evicted, _ = self._models.popitem(last=False)
                    for key in [key for key in self._restorers if key[0] == evicted]:
                        del self._restorers[key]
            return model

    def backend(self, precision: str, name: str | None = None) -> str:
        """The backend for a request: the configured one; for "auto", PyTorch unless the request can run on ONNX
        Runtime (float32 on the CPU, asked for or what "auto" means on this CPU; installed), and then the one
        measured faster for model `name` (one 256x256 tile each, once per model; without a name, ONNX Runtime)."""
        if self.settings.backend != "auto":
            return self.settings.backend
        device = select_device(self.settings.device)
        # "auto" is bfloat16 autocast on a CPU with native bfloat16, which ONNX Runtime's float32 graph does not run
        # (and PyTorch in bfloat16 beat both float32 backends there).
        if (
            device.type != "cpu"
            or precision not in ("auto", "float32")
            or resolve_precision(precision, device) != "float32"
        ):
            return "pytorch"
        if not onnxruntime_available():
            if not self._told_no_onnxruntime:
                self._told_no_onnxruntime = True
                logger.warning(
                    "ONNX Runtime is not installed: restoring with PyTorch, which is slower on CPUs for most "
                    "models (pip install 'mirnet-hf[onnx]')."
                )
            return "pytorch"
        if name is None:
            return "onnxruntime"
        with self._lock:
            if name in self.backend_timings:
                timings = self.backend_timings[name]
                return min(timings, key=timings.get)
        model = self.model(name)
        try:
            with self.gate:  # a measurement is a restoration: it takes the app's one slot like any other
                timings = time_backends(model, self.settings.device)
        except Exception as error:  # an ONNX export or session that fails must not take the app down
            logger.warning("ONNX Runtime could not run %s (%s); using PyTorch.", name, error)
            timings = {"pytorch": 0.0}
        with self._lock:
            self.backend_timings.setdefault(name, timings)
        chosen = min(timings, key=timings.get)
        logger.info(
            "%s: %s per 256x256 tile; using %s.",
            name,
            ", ".join(f"{backend} {seconds:.3f} s" for backend, seconds in timings.items()),
            chosen,
        )
        return chosen

    def restorer(
        self,
        task: str,
        name: str,
        tile_size: int | None,
        precision: str,
        self_ensemble: bool = False,
        strength: float = 1.0,
    ) -> MIRNetRestorer:
        name = self.check_choice(task, name)
        if self.settings.backend == "auto" and (tile_size is None or tile_size > LARGEST_ONNX_TILE):
            # One pass over a whole image (or a tile as large): ONNX Runtime holds all of a pass's buffers at
            # once, 2.2 GB above the process at 1 MP against PyTorch's 1.2 GB (benchmarks/app_memory.py), which
            # took the app over 3 GB. Whole images are a choice of quality, not of speed: PyTorch runs them.
            backend = "pytorch"
        else:
            backend = self.backend(precision, name)
        key = (name, tile_size, precision, backend, self_ensemble, strength)
        with self._lock:
            if key in self._restorers:
                self._restorers.move_to_end(key)
                return self._restorers[key]
        model = self.model(name)
        settings = dict(
            device=self.settings.device,
            precision=precision,
            tile_size=tile_size,
            max_pixels=self.settings.max_pixels,
            self_ensemble=self_ensemble,
            strength=strength,
        )
        with self._lock:
            model_lock = self._load_locks.setdefault(name, threading.Lock())
        # A restorer prepares the model it shares with the others in place (device, channels-last): two requests
        # doing that to one model at once crash torch, so they take turns, and the second finds the first's.
        with model_lock:
            with self._lock:
                if key in self._restorers:
                    return self._restorers[key]
            try:
                restorer = MIRNetRestorer(model, backend=backend, **settings)
            except Exception as error:  # an ONNX export or session that fails must not take the app down
                if backend == "pytorch":
                    raise
                if self.settings.backend == "onnxruntime":
                    raise AppError(f"the model {_echo(name)} could not run with ONNX Runtime: {error}") from error
                logger.warning("ONNX Runtime could not run %s (%s); using PyTorch.", name, error)
                restorer = MIRNetRestorer(model, backend="pytorch", **settings)
            with self._lock:  # builders of one model take turns, so none has stored this key meanwhile
                self._restorers[key] = restorer
                while len(self._restorers) > self.size:
                    self._restorers.popitem(last=False)
        return restorer

    def _load(self, name: str):
        from .modeling_mirnet import MIRNetForImageRestoration

        path = resolve_model_path(name)
        if not Path(path).exists():
            reason = hub_unreachable_reason()
            if reason is not None:
                raise AppError(f"the model {_echo(name)} could not be loaded: {reason}.")
            try:  # its file list and config first: nothing else is downloaded from a repository refused here
                check_hub_model(path, max_model_mb=self.settings.max_hub_model_mb)
            except HubModelRefused as error:
                raise AppError(f"the model {_echo(name)} is refused: {error}") from error
            except Exception as error:  # no such repository, private, Hub errors
                reason = str(error).splitlines()[0][:300]
                raise AppError(
                    f"the model {_echo(name)} could not be loaded ({type(error).__name__}: {reason})."
                ) from error
        try:
            return MIRNetForImageRestoration.from_pretrained(path)
        except Exception as error:  # missing folder, offline Hub, wrong repo: one clear message
            reason = str(error).splitlines()[0][:300]
            raise AppError(
                f"the model {_echo(name)} could not be loaded ({type(error).__name__}: {reason})."
            ) from error


def release_free_memory() -> None:
    """Gives the memory freed by a restoration back to the system (glibc's `malloc_trim`). The allocator keeps
    freed blocks for reuse in each thread's arena, so after a large request the app's resident memory stayed
    gigabytes above its idle level; trimming takes milliseconds. A no-op where glibc is not the C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


def remove_old_results(max_age_seconds: float, root: Path | None = None) -> int:
    """Deletes result folders (in `root`, default `RESULTS_DIR`) older than `max_age_seconds`; returns how many
    went."""
    root = RESULTS_DIR if root is None else root
    removed = 0
    if not root.is_dir():
        return removed
    cutoff = time.time() - max_age_seconds
    for folder in root.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue  # removed by a concurrent request
    return removed


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
    try:
        check_pixels(width, height, max_pixels, scale, limit="this app's limit", advice="use a smaller image")
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
    tile_size: int | None = None,
    precision: str = "auto",
    self_ensemble: bool = False,
    strength: float = 1.0,
    progress=None,
    cancelled: Callable[[], bool] | None = None,
) -> RestoreResult:
    """Restores one uploaded file for the page or the API; raises `AppError` with a message for the user.

    `self_ensemble` averages each tile's eight mirrored and rotated restorations (`MIRNetRestorer`): eight
    times the time, for a little more quality.

    `cancelled` is asked while waiting for a restoration slot and after every tile: once it says True, the
    work stops (`RestorationCancelled`)."""
    if task not in TASK_LABELS:
        raise AppError(f"task {task!r} is not served; valid: {', '.join(TASK_LABELS)}.")
    try:
        strength = 1.0 if strength is None else float(strength)
    except (TypeError, ValueError):
        raise AppError(f"strength {strength!r} is not a number; use 0 to {MAX_STRENGTH:g} (1: automatic).") from None
    if not 0 <= strength <= MAX_STRENGTH or (task != "denoising" and strength != 1):
        raise AppError(
            f"strength {strength:g} is not valid here; denoising takes 0 to {MAX_STRENGTH:g} (1: automatic), "
            "the other tasks 1."
        )
    scale = int(scale) if rescales(task) else 1
    if scale not in (1, 2, 3, 4):
        raise AppError(f"scale x{scale} is not offered; choose x2, x3 or x4.")
    # None: the task's tile size (tasks.default_tile_size); 0: the whole image.
    tile = REGISTRY[task].tile_size if tile_size is None else int(tile_size) or None
    if tile is not None and (tile < 64 or tile % 4):
        raise AppError(f"tile size {tile} is not valid; use 0 (whole image) or a multiple of 4 from 64.")
    loaded = load_upload(path, cache.settings.max_pixels, scale)
    notes = [f"the first of {loaded.frames} frames"] if loaded.frames > 1 else []
    before = _upright(_as_pil(loaded.image))
    width, height = before.size
    if tile is None and width * height * scale * scale > cache.settings.whole_image_max_pixels:
        # A whole-image pass costs about 1 GB per megapixel: above the cap, tiles keep memory bounded.
        tile = REGISTRY[task].tile_size
        notes.append(f"tiled: whole-image mode is for up to {cache.settings.whole_image_max_pixels / 1e6:g} MP")
    model_name = cache.check_choice(task, model_name, scale if rescales(task) else None)
    restorer = cache.restorer(task, model_name, tile, precision, bool(self_ensemble), strength)

    def stop_if_cancelled() -> None:
        if cancelled is not None and cancelled():
            raise RestorationCancelled("the request was cancelled.")

    def on_tile(done: int, total: int) -> None:
        stop_if_cancelled()
        if progress is not None:
            progress((done, total), desc=f"tile {done}/{total}", unit="tiles")

    while not cache.gate.acquire(timeout=0.5):  # one slot for the whole app: all tasks and the API share it
        stop_if_cancelled()
    try:
        stop_if_cancelled()
        started = time.perf_counter()
        restored = restorer(loaded.image, progress=on_tile, upscale=scale if rescales(task) else None)
        seconds = time.perf_counter() - started
    except ValueError as error:
        raise AppError(str(error)) from None
    finally:
        release_free_memory()  # before the next request starts: it then begins from the idle level
        cache.gate.release()
    download, restored = _save_result(restored, loaded, path, task, scale, cache.settings, notes)
    after = _as_pil(restored)
    if before.size != after.size:
        before = before.resize(after.size, Image.Resampling.BICUBIC)
    stats = restorer.stats
    message = (
        f"Restored {width}x{height} → {after.width}x{after.height} in **{seconds:.2f} s** "
        f"({stats.tiles} tile{'s' if stats.tiles != 1 else ''}"
        f"{', self-ensemble x8' if restorer.self_ensemble else ''}"
        f"{f', strength {restorer.strength:g}' if restorer.strength != 1 else ''}, {restorer.precision}, "
        f"{restorer.device.type}, {restorer.backend}; model `{model_name}`)."
        + "".join(f" Note: {note}." for note in notes)
    )
    return RestoreResult(_preview(before), _preview(after), str(download), message)


def _upright(image: Image.Image) -> Image.Image:
    """The image as the restoration sees it: turned by its EXIF orientation (the output is stored upright)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block: as stored
        return image


# Modes PNG holds; a restored image in another mode goes to TIFF (CMYK) or, failing that, to RGB.
PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def _save_result(
    restored: Any, loaded: LoadedImage, path: str, task: str, scale: int, settings: AppSettings, notes: list[str]
) -> tuple[Path, Any]:
    """Writes the full-size lossless download into a fresh folder under `RESULTS_DIR` (after deleting old
    ones); returns its path and the image written. Never fails for the image's mode: the restoration is done."""
    remove_old_results(settings.result_max_age_seconds)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    output_dir = Path(tempfile.mkdtemp(prefix="result-", dir=RESULTS_DIR))
    stem = Path(path).stem[:60] or "image"
    suffix = ".tif" if Path(path).suffix.lower() in (".tif", ".tiff") else ".png"  # both lossless
    mode = getattr(restored, "mode", None)
    if suffix == ".png" and mode is not None and mode not in PNG_MODES:
        suffix = ".tif" if mode == "CMYK" else suffix
    name = f"{stem}-{task}{f'-x{scale}' if scale > 1 else ''}"
    try:
        download = output_dir / f"{name}{suffix}"
        write_image(download, restored, like=loaded)
    except (OSError, ValueError, TypeError) as error:
        restored = _as_pil(restored).convert("RGB")
        download = output_dir / f"{name}.png"
        write_image(download, restored, like=loaded)
        notes.append(f"saved as RGB PNG ({type(error).__name__}: {str(error)[:100]})")
    if suffix == ".tif" and mode == "CMYK":
        notes.append("CMYK kept: the download is a TIFF")
    return download, restored


__all__ = [
    "AppSettings",
    "AppError",
    "ModelCache",
    "RestorationCancelled",
    "restore_upload",
    "load_upload",
    "remove_old_results",
    "TASK_LABELS",
]
