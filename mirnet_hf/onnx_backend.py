"""Runs a model with ONNX Runtime instead of PyTorch (`MIRNetRestorer(..., backend="onnxruntime")`).

The graph comes from the model folder (`onnx/model.onnx`, written by `mirnet-hf export ... --format onnx`)
when its weights fingerprint matches the loaded model; otherwise from this package's cache, where it is
exported once (tens of seconds) and then reused. A stale graph is never used: the fingerprint covers the
configuration and every weight.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from .export import ONNX_FILE, export_onnx, onnx_fingerprint, weights_fingerprint
from .modeling_mirnet import MIRNetForImageRestoration

logger = logging.getLogger(__name__)


def onnxruntime_available() -> bool:
    """Whether the optional `onnxruntime` package can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    """Where exported graphs are kept: `$MIRNET_HF_CACHE`, else `mirnet-hf/onnx` in the Hugging Face home."""
    if os.environ.get("MIRNET_HF_CACHE"):
        return Path(os.environ["MIRNET_HF_CACHE"])
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "mirnet-hf" / "onnx"


def _shipped_graph(model: MIRNetForImageRestoration) -> Path | None:
    """The `onnx/model.onnx` of the folder or Hub repo the model was loaded from, if there is one."""
    source = getattr(model, "name_or_path", "") or ""
    if not source:
        return None
    local = Path(source) / ONNX_FILE
    if local.is_file():
        return local
    if Path(source).exists():
        return None
    from huggingface_hub import constants, hf_hub_download

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return Path(hf_hub_download(source, ONNX_FILE.as_posix()))
    except Exception:  # no such file in the repo, or the Hub is unreachable: export instead
        return None


def find_or_export_graph(model: MIRNetForImageRestoration) -> Path:
    """An ONNX file computing exactly `model`: the one it ships with, a cached one, or a fresh export."""
    fingerprint = weights_fingerprint(model)
    shipped = _shipped_graph(model)
    if shipped is not None:
        if onnx_fingerprint(shipped) == fingerprint:
            return shipped
        logger.warning("%s was made from other weights than the model's; exporting a current graph.", shipped)
    cached = cache_dir() / f"{fingerprint}.onnx"
    if cached.is_file():
        return cached
    logger.info("Exporting the model to ONNX once (cached in %s)...", cached.parent)
    partial = cached.with_suffix(f".{os.getpid()}.partial.onnx")
    try:
        export_onnx(model, partial)
        partial.replace(cached)  # atomic: concurrent processes never read a half-written graph
    finally:
        partial.unlink(missing_ok=True)
    return cached


class OnnxRuntimeRunner:
    """Runs batches of float32 pixel values (torch tensors in, torch tensors out) in an ONNX Runtime session.

    `memory_arena` turns on ONNX Runtime's CPU memory arena, which keeps the memory of the largest run for the
    session's life (off by default: `benchmarks/app_memory.py` and `benchmarks/benchmark_inference.py` measure
    both)."""

    def __init__(
        self,
        model: MIRNetForImageRestoration,
        device: torch.device,
        threads: int | None = None,
        memory_arena: bool = False,
    ):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(
                "backend='onnxruntime' needs ONNX Runtime: pip install 'mirnet-hf[onnx]' (or use backend='pytorch')."
            ) from error
        providers = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}.get(device.type)
        if providers is None or providers[0] not in onnxruntime.get_available_providers():
            raise ValueError(
                f"backend='onnxruntime' cannot run on {device.type!r} with this onnxruntime (providers: "
                f"{onnxruntime.get_available_providers()}); use device='cpu' or backend='pytorch'."
            )
        started = time.perf_counter()
        self.path = find_or_export_graph(model)
        options = onnxruntime.SessionOptions()
        # The same thread count as PyTorch (OMP_NUM_THREADS, torch.set_num_threads), not every core.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No CPU memory arena: an arena grows to the largest input a session has seen and keeps it for the
        # session's life (the app held 2.9-4.8 GB after three whole-image requests). Without it each run's
        # buffers go back to the system when the run ends.
        options.enable_cpu_mem_arena = memory_arena
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.load_seconds = time.perf_counter() - started

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixel_values.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


__all__ = ["OnnxRuntimeRunner", "cache_dir", "find_or_export_graph", "onnxruntime_available"]
