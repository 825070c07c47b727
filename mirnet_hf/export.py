"""Exports a model for use outside this package: ONNX, and the authors' own checkpoint layout.

- `onnx`: one graph for every image size (height and width are dynamic), checked with `onnx.checker`,
  for ONNX Runtime on servers, phones and in C#, C++ or JavaScript apps. The graph carries a
  fingerprint of the weights it was made from, so a restorer can tell a stale file from a current one.
- `official`: the state dict the authors' code saves (`{'state_dict': ...}` for v1, `{'params': ...}`
  for v2, as BasicSR writes it), every shared tensor written out under each of its names. The
  converter reads it back bit for bit, and tools that load MIRNet-v2 through `spandrel` (chaiNNer,
  ComfyUI) read it when the network has the authors' fixed v2 layout (`spandrel_incompatibilities`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from .configuration_mirnet import ARCHITECTURE_FIELDS, RESAMPLING_FIELDS, MIRNetConfig
from .convert_mirnet_checkpoint import map_official_key
from .modeling_mirnet import MIRNetForImageRestoration, _blur_kernel
from .tasks import rescales

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "official")
ONNX_OPSET = 18  # the oldest opset torch's exporter writes; ONNX Runtime 1.16 and newer run it
ONNX_FILE = Path("onnx") / "model.onnx"  # where a model folder (and a Hub repo) carries its ONNX graph
FINGERPRINT_KEY = "mirnet_hf.weights_sha256"
OFFICIAL_SUFFIXES = (".pth", ".pt", ".safetensors")


def _load(model: MIRNetForImageRestoration | str | Path) -> MIRNetForImageRestoration:
    if isinstance(model, (str, Path)):
        return MIRNetForImageRestoration.from_pretrained(model)
    if not isinstance(model, MIRNetForImageRestoration):
        raise TypeError(f"model must be a MIRNetForImageRestoration or a folder/Hub id, got {type(model).__name__}.")
    return model


def weights_fingerprint(model: MIRNetForImageRestoration) -> str:
    """SHA-256 of the architecture and every saved tensor: equal fingerprints compute the same function.

    Example:

    ```python
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.export import weights_fingerprint
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    >>> len(weights_fingerprint(model))
    64

    ```
    """
    architecture = {name: getattr(model.config, name) for name in ARCHITECTURE_FIELDS}
    if not model.config.follows_authors_layout:
        architecture.update({name: getattr(model.config, name) for name in RESAMPLING_FIELDS})
    digest = hashlib.sha256(json.dumps(architecture, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------


class _ReconstructionOnly(torch.nn.Module):
    """The model as a graph from pixel values to the restored image (no loss, no output dataclass)."""

    def __init__(self, model: MIRNetForImageRestoration):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values, return_dict=True).reconstruction


def export_onnx(model: MIRNetForImageRestoration | str | Path, output: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Writes `model` as an ONNX graph (float32, any batch, height and width) and returns the file.

    `output` is a `.onnx` file, or a folder (a model folder: the graph goes to `onnx/model.onnx` in it).
    Input `pixel_values` (batch, channels, height, width) in [0, 1], already upsampled for
    super-resolution; output `reconstruction`, the same size.

    Example (needs the `onnx` extra):

    ```python
    >>> import tempfile, onnxruntime, numpy as np
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.export import export_onnx
    >>> config = MIRNetConfig(version="v2", num_features=8, num_rrg=1, rrg_groups=[1], num_mrb=1)
    >>> path = export_onnx(MIRNetForImageRestoration(config), tempfile.mkdtemp())
    >>> session = onnxruntime.InferenceSession(path)
    >>> session.run(None, {"pixel_values": np.zeros((1, 3, 30, 50), np.float32)})[0].shape
    (1, 3, 30, 50)

    ```
    """
    try:
        import onnx
    except ImportError as error:
        raise ImportError("ONNX export needs the onnx packages: pip install 'mirnet-hf[onnx]'.") from error
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < ONNX_OPSET:
        raise ValueError(f"opset={opset!r} is not valid; use {ONNX_OPSET} or newer.")
    model = _load(model)
    output = Path(output)
    if output.suffix != ".onnx":
        if output.exists() and not output.is_dir():
            raise ValueError(f"output {str(output)!r} is neither a .onnx file nor a folder.")
        output = output / ONNX_FILE
    output.parent.mkdir(parents=True, exist_ok=True)

    first = next(model.parameters())
    # A channels-last model (as a PyTorch `MIRNetRestorer` leaves it) makes torch.export bound the batch
    # dimension ("Invalid ranges [2:1]"): the graph is traced from a contiguous float32 copy on the CPU.
    channels_last = any(p.ndim == 4 and not p.is_contiguous() for p in model.parameters())
    if first.device.type != "cpu" or first.dtype != torch.float32 or channels_last:
        model = copy.deepcopy(model).to("cpu", torch.float32, memory_format=torch.contiguous_format)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    # Traced on a small aligned image; every size works, since the graph always pads (by zero pixels where
    # the size is already aligned) instead of branching on the traced size.
    multiple = model.config.size_multiple
    example = torch.rand(1, model.config.num_channels, 4 * multiple, 6 * multiple)
    dynamic = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    try:
        program = torch.onnx.export(
            _ReconstructionOnly(model).eval(),
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=["pixel_values"],
            output_names=["reconstruction"],
            dynamic_shapes=(dynamic,),
            verbose=False,
        )
    finally:
        model.train(was_training)
    graph = program.model_proto
    _strip_tracing_notes(graph)
    metadata = {
        FINGERPRINT_KEY: weights_fingerprint(model),
        "mirnet_hf.config": model.config.to_json_string(use_diff=False),
    }
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, output)
    logger.info("Exported ONNX graph to %s in %.1f s.", output, time.perf_counter() - started)
    return output


def _strip_tracing_notes(graph) -> None:
    """Drops the exporter's per-node notes (source stack, FX node, module path): they are more than half of
    the file and nothing that runs the graph reads them."""
    for node in graph.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    graph_parts = (graph.graph.value_info, graph.graph.input, graph.graph.output, graph.graph.initializer)
    for values in graph_parts:
        for value in values:
            del value.metadata_props[:]


def onnx_fingerprint(path: str | Path) -> str | None:
    """The weights fingerprint stored in an ONNX file written by `export_onnx` (None if it has none)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    return next((entry.value for entry in graph.metadata_props if entry.key == FINGERPRINT_KEY), None)


# ----------------------------------------------------------------------------------------------
# The authors' layout
# ----------------------------------------------------------------------------------------------


def _v1_block_keys(channels: list[int], num_columns: int) -> list[str]:
    """Official key names inside one v1 multi-scale residual block (without the `body.G.body.B.` prefix)."""
    num_streams = len(channels)
    keys = []
    dau = ("body.0", "body.1", "body.2", "SA.spatial.conv", "CA.conv_du.0", "CA.conv_du.2", "conv1x1")
    for stream in range(num_streams):
        for column in range(num_columns):
            keys += [f"blocks.{stream}.{column}.{name}.weight" for name in dau]
    up_step = ("top.0.weight", "top.1.weight", "top.2.weight", "top.3.weight", "top.4.weight", "bot.1.weight")
    down_step = (*up_step[:4], "top.4.filt", "top.5.weight", "bot.0.filt", "bot.1.weight")
    for stream in range(1, num_streams):
        keys += [f"last_up.{stream}.body.{step}.{name}" for step in range(stream) for name in up_step]
    # Each stream has a resampler to every coarser (down) or finer (up) stream, named by width and scale.
    for stream in range(num_streams - 1):
        for steps in range(num_streams - 1 - stream, 0, -1):
            name = f"down.{channels[stream]}_{2**steps}"
            keys += [f"{name}.body.{step}.{part}" for step in range(steps) for part in down_step]
    for stream in range(num_streams - 1, 0, -1):
        for steps in range(stream, 0, -1):
            name = f"up.{channels[stream]}_{2**steps}"
            keys += [f"{name}.body.{step}.{part}" for step in range(steps) for part in up_step]
    keys.append("conv_out.weight")
    for stream in range(num_streams):
        fusion = ("conv_du.0", "conv_du.1", *(f"fcs.{i}" for i in range(num_streams)))
        keys += [f"selective_kernel.{stream}.{name}.weight" for name in fusion]
    return keys


def _v2_block_keys(num_streams: int, num_columns: int) -> list[str]:
    """Official key names inside one v2 multi-resolution block (without the `body.G.body.B.` prefix)."""
    keys = []
    context = ("body.0", "body.2", "gcnet.conv_mask", "gcnet.channel_add_conv.0", "gcnet.channel_add_conv.2")
    for stream in ("dau_top", "dau_mid", "dau_bot")[:num_streams]:
        keys += [f"{stream}.{name}.weight" for name in context]
    if num_streams >= 2:
        keys.append("down2.body.0.bot.1.weight")
    if num_streams >= 3:
        keys += ["down4.0.body.0.bot.1.weight", "down4.1.body.0.bot.1.weight"]
    for pair in ("21", "32")[: num_streams - 1]:
        keys += [f"up{pair}_{column}.body.0.bot.0.weight" for column in range(1, num_columns + 1)]
    keys.append("conv_out.weight")
    for fusion in ("skff_top", "skff_mid")[: num_streams - 1]:
        keys += [f"{fusion}.conv_du.0.weight", f"{fusion}.fcs.0.weight", f"{fusion}.fcs.1.weight"]
    return keys


def official_keys(config: MIRNetConfig) -> list[str]:
    """Every key of the authors' state dict for this configuration, in their order.

    Example:

    ```python
    >>> from mirnet_hf import MIRNetConfig
    >>> from mirnet_hf.export import official_keys
    >>> keys = official_keys(MIRNetConfig(version="v2", num_rrg=4, rrg_groups=[1, 2, 4, 4], num_mrb=2))
    >>> len(keys), keys[0], keys[-1]
    (238, 'conv_in.weight', 'conv_out.weight')

    ```
    """
    if config.version == "v1":
        block = _v1_block_keys(config.stream_channels, config.num_columns)
    else:
        block = _v2_block_keys(config.num_streams, config.num_columns)
    keys = ["conv_in.weight"]
    for group in range(config.num_rrg):
        for index in range(config.num_mrb):
            keys += [f"body.{group}.body.{index}.{name}" for name in block]
        keys.append(f"body.{group}.body.{config.num_mrb}.weight")
    keys.append("conv_out.weight")
    return keys


def official_state_dict(model: MIRNetForImageRestoration) -> dict[str, torch.Tensor]:
    """The model's weights under the authors' key names, each shared tensor copied under all its names.

    The inverse of `convert_mirnet_checkpoint.convert_state_dict`: converting the result gives the same
    tensors back, bit for bit.
    """
    model = _load(model)
    config = model.config
    if not config.follows_authors_layout:
        raise ValueError(
            f"this model (upsampler={config.upsampler!r}, body_stride={config.body_stride}) cannot be exported in "
            "the authors' format: their networks take a same-size (bicubic-upsampled) image, run the body at full "
            "resolution and end in a 3-channel convolution, and their code has no pixel-unshuffle head or "
            "pixel-shuffle tail to load this one's into. Export it to ONNX instead (--format onnx)."
        )
    ours = {name: tensor.detach().to("cpu", torch.float32) for name, tensor in model.state_dict().items()}
    state, used = {}, set()
    for key in official_keys(model.config):
        name, _ = map_official_key(key, model.config)
        if name is None:  # v1's fixed anti-aliasing filter, which the authors' modules store
            state[key] = _blur_kernel(_filter_channels(key, model.config))
            continue
        state[key] = ours[name].clone()  # clones: no two names share storage in the file
        used.add(name)
    unused = sorted(set(ours) - used)
    if unused:
        raise ValueError(
            f"{len(unused)} tensor(s) have no place in the authors' {model.config.version} layout "
            f"({', '.join(unused[:5])}); this configuration cannot be exported in the official format."
        )
    return state


def _filter_channels(filter_key: str, config: MIRNetConfig) -> int:
    """Channels of a v1 anti-aliasing filter key (`...down.64_4.body.1.top.4.filt` -> 128)."""
    width, rest = filter_key.split(".down.", 1)[1].split("_", 1)
    step = int(rest.split(".body.", 1)[1].split(".", 1)[0])
    channels = int(width)
    for _ in range(step):
        channels = int(channels * config.channel_factor)
    return channels


def spandrel_incompatibilities(config: MIRNetConfig) -> list[str]:
    """Why spandrel's `MIRNet2` (chaiNNer, ComfyUI) could not load this network; empty when it can.

    spandrel builds the authors' fixed v2 network: 4 RRGs with groups 1/2/4/4, 3 streams, 2 columns,
    fusion reduction 8, no biases; only the features, MRBs and channel factor are read from the file.

    Example:

    ```python
    >>> from mirnet_hf import MIRNetConfig
    >>> from mirnet_hf.export import spandrel_incompatibilities
    >>> spandrel_incompatibilities(MIRNetConfig(version="v2", num_rrg=4, rrg_groups=[1, 2, 4, 4]))
    []
    >>> spandrel_incompatibilities(MIRNetConfig(version="v2", num_rrg=2, rrg_groups=[1, 2]))
    ['2 RRGs with groups [1, 2] (spandrel builds 4 with groups [1, 2, 4, 4])']

    ```
    """
    if config.version != "v2":
        return ["MIRNet v1 (spandrel reads MIRNet-v2 only)"]
    reasons = []
    groups = config.rrg_groups or [1] * config.num_rrg
    if list(groups) != [1, 2, 4, 4]:
        reasons.append(
            f"{config.num_rrg} RRGs with groups {list(groups)} (spandrel builds 4 with groups [1, 2, 4, 4])"
        )
    if config.num_streams != 3:
        reasons.append(f"{config.num_streams} streams (spandrel builds 3)")
    if config.num_columns != 2:
        reasons.append(f"{config.num_columns} columns (spandrel builds 2)")
    if config.reduction != 8:
        reasons.append(f"fusion reduction {config.reduction} (spandrel uses 8)")
    defocus = config.num_channels == 6 and config.global_skip == "features"
    if not defocus and (config.global_skip != "image" or config.num_channels != config.num_channels_out):
        reasons.append(
            f"{config.num_channels} input channels with global_skip={config.global_skip!r} (spandrel adds the input "
            "image to the output, or the features for 6-channel defocus input)"
        )
    return reasons


def export_official(model: MIRNetForImageRestoration | str | Path, output: str | Path) -> Path:
    """Writes the model as the authors' checkpoint (`.pth`/`.pt` via `torch.save`, or `.safetensors`).

    v1 files hold `{'state_dict': ...}`, v2 files `{'params': ...}`. Warns when spandrel could not load
    the result (`spandrel_incompatibilities`). Super-resolution models keep the paper's protocol: they
    take the bicubic-upsampled image, so other tools must upsample before running them.

    Example:

    ```python
    >>> import tempfile, torch
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.convert_mirnet_checkpoint import convert_checkpoint
    >>> from mirnet_hf.export import export_official
    >>> config = MIRNetConfig(version="v2", num_features=16, num_rrg=4, rrg_groups=[1, 2, 4, 4], num_mrb=1)
    >>> model = MIRNetForImageRestoration(config).eval()
    >>> path = export_official(model, tempfile.mkdtemp() + "/mirnet_v2.pth")
    >>> sorted(torch.load(path, weights_only=True))
    ['params']
    >>> image = torch.rand(1, 3, 16, 16)
    >>> torch.equal(convert_checkpoint(path)(image).reconstruction, model(image).reconstruction)
    True

    ```
    """
    model = _load(model)
    output = Path(output)
    if output.suffix not in OFFICIAL_SUFFIXES:
        raise ValueError(
            f"output {str(output)!r} must name a file ending in one of {OFFICIAL_SUFFIXES} for the official format."
        )
    state = official_state_dict(model)
    reasons = spandrel_incompatibilities(model.config)
    if reasons:
        logger.warning(
            "%s is in the authors' layout, but spandrel (chaiNNer, ComfyUI) will not load it: %s.",
            output,
            "; ".join(reasons),
        )
    if rescales(model.config.task):
        logger.warning(
            "%s restores a bicubic-upsampled image (x%d) at the same size, as in the paper: other tools must "
            "upsample before running it.",
            output,
            model.config.upscale,
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({key: tensor.contiguous() for key, tensor in state.items()}, str(output))
    else:
        torch.save({"state_dict" if model.config.version == "v1" else "params": state}, output)
    return output


def export_model(model: MIRNetForImageRestoration | str | Path, output: str | Path, format: str) -> Path:
    """`export_onnx` or `export_official`, by `format` (one of `EXPORT_FORMATS`)."""
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format={format!r} is not valid; choose one of {EXPORT_FORMATS}.")
    if format == "onnx":
        return export_onnx(model, output)
    return export_official(model, output)


__all__ = [
    "EXPORT_FORMATS",
    "export_model",
    "export_onnx",
    "export_official",
    "official_keys",
    "official_state_dict",
    "onnx_fingerprint",
    "spandrel_incompatibilities",
    "weights_fingerprint",
]
