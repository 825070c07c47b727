"""Converts the authors' released MIRNet / MIRNet-v2 checkpoints into `from_pretrained` folders.

The official files are `torch.save` dictionaries: `{'state_dict': ...}` (v1, keys prefixed with
`module.` by `nn.DataParallel`), `{'params': ...}` (v2, BasicSR) or a bare state dict. Each is read
with `weights_only=True`, the configuration is inferred from the tensor shapes, tensors the
released network shares (a DAU reused across columns, the network-wide DAU PReLU) are folded into
one, and every key is accounted for: a file that does not fit is refused with the offending keys.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from .configuration_mirnet import MIRNetConfig
from .modeling_mirnet import MIRNetForImageRestoration
from .tasks import rescales

logger = logging.getLogger(__name__)

# Keywords in released file names (e.g. `model_denoising.pth`, `sr_x3.pth`) that name the task.
_TASK_HINTS = (
    (re.compile(r"defocus|dual.?pixel|dpdd"), "defocus-deblurring"),
    (re.compile(r"denois|sidd|dnd"), "denoising"),
    (re.compile(r"super|realsr|(^|[^a-z])sr([^a-z]|$)"), "super-resolution"),
    (re.compile(r"lol|low.?light"), "low-light-enhancement"),
    (re.compile(r"fivek|enhanc"), "enhancement"),
)


class CheckpointMismatchError(ValueError):
    """The checkpoint is not a MIRNet network this converter knows."""


def load_official_state_dict(checkpoint: str | Path | Mapping) -> dict[str, torch.Tensor]:
    """Reads an official checkpoint (path or loaded dict) and returns its bare state dict, without `module.`.

    Example:

    ```python
    >>> from mirnet_hf.convert_mirnet_checkpoint import load_official_state_dict
    >>> state = load_official_state_dict("../shared/reference/vectors/mirnet_v1_nfeat16_rrg2_mrb1.pth")
    >>> "conv_in.weight" in state
    True

    ```
    """
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file.")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for foreign or malicious pickles
            raise CheckpointMismatchError(
                f"{str(path)!r} cannot be read as a PyTorch checkpoint with weights_only=True: {error}"
            ) from error
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(f"expected a dict of tensors, got {type(checkpoint).__name__}.")
    for wrapper in ("state_dict", "params", "params_ema", "model"):
        if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
            break
    state = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointMismatchError(
                f"entry {key!r} is a {type(value).__name__}, not a tensor; expected a state dict, optionally inside "
                "'state_dict' or 'params'."
            )
        state[key.removeprefix("module.")] = value
    if "conv_in.weight" not in state:
        raise CheckpointMismatchError(
            f"no 'conv_in.weight' among the {len(state)} keys (first: {sorted(state)[:5]}); this is not a MIRNet "
            "checkpoint."
        )
    return state


def _indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state if (m := regex.match(key))})


def _infer_reduction(channels: list[int], reduced: list[int], rule) -> int:
    candidates = [8] + [r for r in range(1, max(channels) + 1) if r != 8]
    for reduction in candidates:
        if all(rule(c, reduction) == d for c, d in zip(channels, reduced)):
            return reduction
    raise CheckpointMismatchError(f"no channel reduction maps stream channels {channels} onto {reduced}.")


def infer_config(state: Mapping[str, torch.Tensor], **metadata) -> MIRNetConfig:
    """Infers the network configuration (v1 or v2, sizes) from an official state dict's shapes."""
    num_features, num_channels = state["conv_in.weight"].shape[:2]
    if "conv_out.weight" not in state:
        raise CheckpointMismatchError("missing key 'conv_out.weight'.")
    num_channels_out = state["conv_out.weight"].shape[0]
    num_rrg = len(_indices(state, r"body\.(\d+)\.body\."))
    if any(key.startswith("body.0.body.0.blocks.") for key in state):
        version = "v1"
        num_mrb = len(_indices(state, r"body\.0\.body\.(\d+)\.blocks\."))
        num_streams = len(_indices(state, r"body\.0\.body\.0\.blocks\.(\d+)\.0\.body\.0\.weight"))
        num_columns = len(_indices(state, r"body\.0\.body\.0\.blocks\.0\.(\d+)\.body\.0\.weight"))
        channels = [state[f"body.0.body.0.blocks.{s}.0.body.0.weight"].shape[0] for s in range(num_streams)]
        reduced = [state[f"body.0.body.0.blocks.{s}.0.CA.conv_du.0.weight"].shape[0] for s in range(num_streams)]
        reduction = _infer_reduction(channels, reduced, lambda c, r: c // r)
        rrg_groups = None
    elif any(key.startswith("body.0.body.0.dau_top.") for key in state):
        version = "v2"
        num_mrb = len(_indices(state, r"body\.0\.body\.(\d+)\.dau_top\."))
        names = ["dau_top", "dau_mid", "dau_bot"]
        num_streams = sum(f"body.0.body.0.{n}.body.0.weight" in state for n in names)
        num_columns = len(_indices(state, r"body\.0\.body\.0\.up21_(\d+)\."))
        channels = [state[f"body.0.body.0.{n}.body.0.weight"].shape[0] for n in names[:num_streams]]
        fused = [state[f"body.0.body.0.{n}.conv_du.0.weight"].shape[0] for n in ("skff_top", "skff_mid")]
        reduction = _infer_reduction(channels[:2], fused, lambda c, r: max(int(c / r), 4))
        rrg_groups = [num_features // state[f"body.{r}.body.0.dau_top.body.0.weight"].shape[1] for r in range(num_rrg)]
    else:
        raise CheckpointMismatchError(
            "found neither v1 DAU keys ('body.0.body.0.blocks.*') nor v2 keys ('body.0.body.0.dau_top.*')."
        )
    channel_factor = channels[1] / channels[0] if num_streams > 1 else (2.0 if version == "v1" else 1.5)
    if num_channels != num_channels_out and "global_skip" not in metadata:
        metadata["global_skip"] = "features"  # the v2 defocus model: 6 channels in, 3 out
    try:
        return MIRNetConfig(
            version=version,
            num_channels=int(num_channels),
            num_channels_out=int(num_channels_out),
            num_features=int(num_features),
            num_rrg=num_rrg,
            num_mrb=num_mrb,
            num_streams=num_streams,
            num_columns=num_columns,
            channel_factor=float(channel_factor),
            reduction=reduction,
            rrg_groups=rrg_groups,
            **metadata,
        )
    except ValueError as error:
        raise CheckpointMismatchError(f"the inferred configuration is invalid: {error}") from error


# Official module names inside one MRB -> ours. `{...}` fields are filled from the match.
_V1_DAU = {
    "body.0": "conv_1",
    "body.2": "conv_2",
    "SA.spatial.conv": "spatial_attention.conv",
    "CA.conv_du.0": "channel_attention.squeeze",
    "CA.conv_du.2": "channel_attention.excite",
    "conv1x1": "fuse",
}
_V1_DOWN = {
    "top.0": "conv_1x1",
    "top.1": "act_1",
    "top.2": "conv_3x3",
    "top.3": "act_2",
    "top.5": "proj",
    "bot.1": "shortcut_proj",
}
_V1_UP = {
    "top.0": "conv_1x1",
    "top.1": "act_1",
    "top.2": "deconv",
    "top.3": "act_2",
    "top.4": "proj",
    "bot.1": "shortcut_proj",
}
_V2_RCB = {
    "body.0": "conv_1",
    "body.2": "conv_2",
    "gcnet.conv_mask": "context.attention",
    "gcnet.channel_add_conv.0": "context.transform_in",
    "gcnet.channel_add_conv.2": "context.transform_out",
}
_V2_STREAMS = {"dau_top": 0, "dau_mid": 1, "dau_bot": 2}
_SHARED_DAU_ACTIVATION = "mirnet.dau_activation.weight"


def _map_v1_block_key(rest: str, channels: list[int]) -> tuple[str | None, bool]:
    """Maps a key inside a v1 MRB; returns (our key or None for the fixed blur filter, is_alias)."""
    stream_of = {c: i for i, c in enumerate(channels)}
    if m := re.fullmatch(r"blocks\.(\d+)\.(\d+)\.(.+)\.weight", rest):
        stream, column, name = int(m.group(1)), int(m.group(2)), m.group(3)
        if name == "body.1":
            return _SHARED_DAU_ACTIVATION, True
        if name in _V1_DAU:
            return f"attention_units.{stream}.{_V1_DAU[name]}.weight", column > 0
    elif m := re.fullmatch(r"(down|up)\.(\d+)_(\d+)\.body\.(\d+)\.(.+)", rest):
        kind, width, scale, step, name = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4), m.group(5)
        if width in stream_of and scale > 1 and scale & (scale - 1) == 0:
            src = stream_of[width]
            dst = src + scale.bit_length() - 1 if kind == "down" else src - (scale.bit_length() - 1)
            table = _V1_DOWN if kind == "down" else _V1_UP
            module = "downsamplers" if kind == "down" else "upsamplers"
            if name.endswith(".filt") and kind == "down":
                return None, False
            if name.endswith(".weight") and name[: -len(".weight")] in table:
                return f"{module}.{src}_to_{dst}.steps.{step}.{table[name[: -len('.weight')]]}.weight", False
    elif m := re.fullmatch(r"last_up\.(\d+)\.body\.(\d+)\.(.+)\.weight", rest):
        if m.group(3) in _V1_UP:
            return f"output_upsamplers.{m.group(1)}.steps.{m.group(2)}.{_V1_UP[m.group(3)]}.weight", False
    elif m := re.fullmatch(r"selective_kernel\.(\d+)\.(conv_du\.0|conv_du\.1|fcs\.(\d+))\.weight", rest):
        name = {"conv_du.0": "squeeze", "conv_du.1": "act"}.get(m.group(2), f"select.{m.group(3)}")
        return f"fusions.{m.group(1)}.{name}.weight", False
    elif rest == "conv_out.weight":
        return "conv_out.weight", False
    raise KeyError(rest)


def _map_v2_block_key(rest: str) -> tuple[str | None, bool]:
    if m := re.fullmatch(r"(dau_top|dau_mid|dau_bot)\.(.+)\.weight", rest):
        if m.group(2) in _V2_RCB:
            return f"context_blocks.{_V2_STREAMS[m.group(1)]}.{_V2_RCB[m.group(2)]}.weight", False
    elif rest == "down2.body.0.bot.1.weight":
        return "downsamplers.0.0.proj.weight", False
    elif m := re.fullmatch(r"down4\.(\d+)\.body\.0\.bot\.1\.weight", rest):
        return f"downsamplers.1.{m.group(1)}.proj.weight", False
    elif m := re.fullmatch(r"up(21|32)_(\d+)\.body\.0\.bot\.0\.weight", rest):
        return f"upsamplers.{int(m.group(2)) - 1}.{0 if m.group(1) == '21' else 1}.proj.weight", False
    elif m := re.fullmatch(r"skff_(top|mid)\.(conv_du\.0|fcs\.(\d+))\.weight", rest):
        name = "squeeze" if m.group(2) == "conv_du.0" else f"select.{m.group(3)}"
        return f"fusions.{0 if m.group(1) == 'top' else 1}.{name}.weight", False
    elif rest == "conv_out.weight":
        return "conv_out.weight", False
    raise KeyError(rest)


def map_official_key(key: str, config: MIRNetConfig) -> tuple[str | None, bool]:
    """Our parameter name for an official key, and whether it is a copy of a tensor stored elsewhere.

    Returns `(None, False)` for the fixed anti-aliasing filter, which our model does not store.
    Raises `KeyError` for a key that is not part of the network.
    """
    if key == "conv_in.weight":
        return "mirnet.conv_in.weight", False
    if key == "conv_out.weight":
        return "conv_out.weight", False
    m = re.fullmatch(r"body\.(\d+)\.body\.(\d+)\.(.+)", key)
    if m is None:
        raise KeyError(key)
    group, index, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    prefix = f"mirnet.residual_groups.{group}"
    if index == config.num_mrb and rest == "weight":
        return f"{prefix}.conv.weight", False
    if index >= config.num_mrb:
        raise KeyError(key)
    if config.version == "v1":
        mapped, alias = _map_v1_block_key(rest, config.stream_channels)
    else:
        mapped, alias = _map_v2_block_key(rest)
    if mapped is None or mapped == _SHARED_DAU_ACTIVATION:
        return mapped, alias
    return f"{prefix}.blocks.{index}.{mapped}", alias


def convert_state_dict(state: Mapping[str, torch.Tensor], config: MIRNetConfig) -> dict[str, torch.Tensor]:
    """Maps an official state dict onto `MIRNetForImageRestoration(config)`, checking every key and shape."""
    with torch.device("meta"):
        expected = MIRNetForImageRestoration(config).state_dict()
    converted: dict[str, torch.Tensor] = {}
    aliases: dict[str, list[tuple[str, torch.Tensor]]] = {}
    unexpected, misshaped = [], []
    for key, tensor in state.items():
        try:
            ours, is_alias = map_official_key(key, config)
        except KeyError:
            unexpected.append(key)
            continue
        if ours is None:
            continue
        if ours not in expected:
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[ours].shape):
            misshaped.append(f"{key}: {tuple(tensor.shape)}, expected {tuple(expected[ours].shape)}")
            continue
        if is_alias or ours in converted:
            aliases.setdefault(ours, []).append((key, tensor))
        if ours not in converted:
            converted[ours] = tensor.detach().to(torch.float32).clone()
    missing = sorted(set(expected) - set(converted))
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s) for: {', '.join(missing[:10])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {', '.join(sorted(unexpected)[:10])}")
    if misshaped:
        problems.append(f"{len(misshaped)} misshaped key(s): {'; '.join(misshaped[:10])}")
    # Shared tensors appear under several official keys; their values must agree to be folded into one.
    for ours, copies in aliases.items():
        for key, tensor in copies:
            if ours in converted and not torch.equal(tensor.to(torch.float32), converted[ours]):
                problems.append(f"{key} should hold the same values as the other copies of {ours} but differs")
                break
    if problems:
        raise CheckpointMismatchError(
            f"the checkpoint does not fit MIRNet {config.version} as inferred "
            f"(features {config.num_features}, RRGs {config.num_rrg}, MRBs {config.num_mrb}): " + "; ".join(problems)
        )
    return converted


def guess_task(filename: str) -> tuple[str | None, int]:
    """Task and scale named by a released file's name, e.g. `sr_x3.pth` -> ('super-resolution', 3)."""
    name = Path(filename).name.lower()
    for pattern, task in _TASK_HINTS:
        if pattern.search(name):
            scale = 1
            if rescales(task):
                found = re.search(r"x(\d)", name)
                scale = int(found.group(1)) if found else 0
            return task, scale
    return None, 1


def convert_checkpoint(
    checkpoint: str | Path | Mapping,
    output_dir: str | Path | None = None,
    task: str | None = None,
    upscale: int | None = None,
) -> MIRNetForImageRestoration:
    """Converts an official checkpoint and, with `output_dir`, saves a `from_pretrained` folder
    (config.json, model.safetensors, preprocessor_config.json, README.md and the model code).

    `task` defaults to what the file name suggests, else `denoising`; `upscale` (super-resolution
    scale) defaults to the `x2`/`x3`/`x4` in the file name.

    Example:

    ```python
    >>> import tempfile
    >>> from mirnet_hf import MIRNetForImageRestoration
    >>> from mirnet_hf.convert_mirnet_checkpoint import convert_checkpoint
    >>> folder = tempfile.mkdtemp()
    >>> _ = convert_checkpoint("../shared/reference/vectors/mirnet_v1_nfeat16_rrg2_mrb1.pth", folder)
    >>> MIRNetForImageRestoration.from_pretrained(folder).config.num_features
    16

    ```
    """
    source_name = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "<state dict>"
    state = load_official_state_dict(checkpoint)
    guessed_task, guessed_scale = guess_task(source_name)
    if task is None:
        task = guessed_task or "denoising"
        if guessed_task is None:
            logger.warning("No task given and none recognised in %r; recording 'denoising'.", source_name)
    if upscale is None:
        upscale = (guessed_scale or 0) if rescales(task) else 1
        if rescales(task) and upscale < 2:
            raise ValueError(f"task 'super-resolution' needs the scale: pass upscale (2, 3 or 4) for {source_name!r}.")
    config = infer_config(state, task=task, upscale=upscale)
    model = MIRNetForImageRestoration(config)
    model.load_state_dict(convert_state_dict(state, config), strict=True)
    model.eval()
    if output_dir is not None:
        save_converted(model, output_dir, source_name)
    return model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_converted(model: MIRNetForImageRestoration, output_dir: str | Path, source: str) -> None:
    from .model_card import write_model_card
    from .model_folder import save_model_folder

    source_path = Path(source)
    provenance = {"source": source_path.name}
    if source_path.is_file():
        provenance["sha256"] = _sha256(source_path)

    def card(folder: Path) -> None:
        write_model_card(folder, model, origin="converted", provenance=provenance)

    save_model_folder(model, output_dir, card=card)
