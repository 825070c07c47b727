"""MIRNet (ECCV 2020) and MIRNet-v2 (TPAMI 2022) for image restoration.

The file follows the papers from the smallest block up: selective kernel feature fusion (SKFF), the
dual attention unit (DAU), the resampling blocks, then the multi-scale residual block (MRB), the
recursive residual group (RRG) and the model; the v2 blocks (residual context block, plain
resampling) come after their v1 counterparts. Module names are ours; `convert_mirnet_checkpoint`
maps the authors' key names onto them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, ImageSuperResolutionOutput

from .configuration_mirnet import MIRNetConfig
from .image_ops import pad_to_multiple


def _conv(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> nn.Conv2d:
    # The released networks use no bias anywhere.
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False, groups=groups)


def charbonnier_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The paper's loss, `mean(sqrt((prediction - target)^2 + eps^2))`.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.modeling_mirnet import charbonnier_loss
    >>> round(charbonnier_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)).item(), 6)
    0.001

    ```
    """
    diff = prediction - target
    return torch.sqrt(diff * diff + eps * eps).mean()


# ----------------------------------------------------------------------------------------------
# Small blocks
# ----------------------------------------------------------------------------------------------


class MIRNetSelectiveKernelFusion(nn.Module):
    """SKFF: fuses same-sized inputs with per-channel softmax weights computed from their sum."""

    def __init__(self, channels: int, num_inputs: int, reduction: int, activation: nn.Module):
        super().__init__()
        hidden = max(int(channels / reduction), 4)
        self.squeeze = _conv(channels, hidden, 1)
        self.act = activation
        self.select = nn.ModuleList(_conv(hidden, channels, 1) for _ in range(num_inputs))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        # The inputs are weighted one by one rather than stacked into a 5-D tensor: stacking copies
        # every full-resolution input and loses the channels-last layout, which made this block the
        # most expensive part of a training step on CPUs (2.2x slower steps, measured).
        summary = sum(inputs[1:], inputs[0]).mean(dim=(2, 3), keepdim=True)
        squeezed = self.act(self.squeeze(summary))
        weights = torch.stack([select(squeezed) for select in self.select]).softmax(dim=0)
        fused = inputs[0] * weights[0]
        for hidden_states, weight in zip(inputs[1:], weights[1:]):
            fused = fused + hidden_states * weight
        return fused


class MIRNetSpatialAttention(nn.Module):
    """Gates each pixel by a 5x5 convolution of the channel-wise max and mean (max first)."""

    def __init__(self):
        super().__init__()
        self.conv = _conv(2, 1, 5)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([hidden_states.amax(dim=1, keepdim=True), hidden_states.mean(dim=1, keepdim=True)], dim=1)
        return hidden_states * torch.sigmoid(self.conv(pooled))


class MIRNetChannelAttention(nn.Module):
    """Squeeze-and-excitation gate over channels."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.squeeze = _conv(channels, channels // reduction, 1)
        self.excite = _conv(channels // reduction, channels, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        summary = hidden_states.mean(dim=(2, 3), keepdim=True)
        return hidden_states * torch.sigmoid(self.excite(F.relu(self.squeeze(summary))))


class MIRNetDualAttentionUnit(nn.Module):
    """DAU: two 3x3 convolutions, then spatial and channel attention side by side, fused, plus input."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.conv_1 = _conv(channels, channels, 3)
        self.conv_2 = _conv(channels, channels, 3)
        self.spatial_attention = MIRNetSpatialAttention()
        self.channel_attention = MIRNetChannelAttention(channels, reduction)
        self.fuse = _conv(2 * channels, channels, 1)

    def forward(self, hidden_states: torch.Tensor, activation: nn.Module) -> torch.Tensor:
        # `activation` is the one PReLU that every DAU of the released network shares; the model holds it.
        residual = self.conv_2(activation(self.conv_1(hidden_states)))
        attended = torch.cat([self.spatial_attention(residual), self.channel_attention(residual)], dim=1)
        return hidden_states + self.fuse(attended)


def _blur_kernel(channels: int) -> torch.Tensor:
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = taps[:, None] * taps[None, :]
    return (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone()


class MIRNetBlurDownsample(nn.Module):
    """Anti-aliased stride-2 downsampling (Zhang, ICML 2019): reflect pad, fixed [1 2 1]^2/16 blur."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        # Fixed, so not saved; `_init_weights` fills it again after `from_pretrained`.
        self.register_buffer("kernel", _blur_kernel(channels), persistent=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        padded = F.pad(hidden_states, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.kernel.to(padded.dtype), stride=2, groups=self.channels)


class MIRNetResidualDownsample(nn.Module):
    """Halves the resolution and changes the channels, with a learned branch and a blurred shortcut."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.conv_1x1 = _conv(channels, channels, 1)
        self.act_1 = nn.PReLU()
        self.conv_3x3 = _conv(channels, channels, 3)
        self.act_2 = nn.PReLU()
        self.blur = MIRNetBlurDownsample(channels)
        self.proj = _conv(channels, out_channels, 1)
        self.shortcut_proj = _conv(channels, out_channels, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        main = self.act_2(self.conv_3x3(self.act_1(self.conv_1x1(hidden_states))))
        return self.proj(self.blur(main)) + self.shortcut_proj(self.blur(hidden_states))


class MIRNetResidualUpsample(nn.Module):
    """Doubles the resolution and changes the channels: transposed convolution plus bilinear shortcut."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.conv_1x1 = _conv(channels, channels, 1)
        self.act_1 = nn.PReLU()
        self.deconv = nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.act_2 = nn.PReLU()
        self.proj = _conv(channels, out_channels, 1)
        self.shortcut_proj = _conv(channels, out_channels, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        main = self.act_2(self.deconv(self.act_1(self.conv_1x1(hidden_states))))
        shortcut = F.interpolate(hidden_states, scale_factor=2, mode="bilinear", align_corners=False)
        return self.proj(main) + self.shortcut_proj(shortcut)


class MIRNetResampler(nn.Module):
    """A chain of residual resampling steps from one stream to another, multiplying or dividing
    the channels by the channel factor at each step."""

    def __init__(self, channels: int, num_steps: int, channel_factor: float, upsample: bool):
        super().__init__()
        steps = []
        for _ in range(num_steps):
            out_channels = int(channels // channel_factor) if upsample else int(channels * channel_factor)
            step = MIRNetResidualUpsample if upsample else MIRNetResidualDownsample
            steps.append(step(channels, out_channels))
            channels = out_channels
        self.steps = nn.ModuleList(steps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            hidden_states = step(hidden_states)
        return hidden_states


# ----------------------------------------------------------------------------------------------
# MIRNet-v2 small blocks
# ----------------------------------------------------------------------------------------------


class MIRNetV2ContextBlock(nn.Module):
    """Global context (GCNet): a softmax-weighted sum over pixels, transformed and added to every pixel."""

    def __init__(self, channels: int):
        super().__init__()
        self.attention = _conv(channels, 1, 1)
        self.transform_in = _conv(channels, channels, 1)
        self.transform_out = _conv(channels, channels, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = hidden_states.shape
        weights = self.attention(hidden_states).reshape(batch, 1, height * width).softmax(dim=-1)
        context = torch.bmm(hidden_states.reshape(batch, channels, height * width), weights.transpose(1, 2))
        context = context.reshape(batch, channels, 1, 1)
        return hidden_states + self.transform_out(F.leaky_relu(self.transform_in(context), 0.2))


class MIRNetV2ResidualContextBlock(nn.Module):
    """RCB, v2's replacement for the DAU: grouped 3x3 convolutions and a global context block."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.conv_1 = _conv(channels, channels, 3, groups=groups)
        self.conv_2 = _conv(channels, channels, 3, groups=groups)
        self.context = MIRNetV2ContextBlock(channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.conv_2(F.leaky_relu(self.conv_1(hidden_states), 0.2))
        return hidden_states + F.leaky_relu(self.context(residual), 0.2)


class MIRNetV2Downsample(nn.Module):
    """2x2 average pooling, then a 1x1 convolution to the next stream's channels."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.proj = _conv(channels, out_channels, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(hidden_states, 2, ceil_mode=True, count_include_pad=False)
        return self.proj(pooled)


class MIRNetV2Upsample(nn.Module):
    """A 1x1 convolution to the previous stream's channels, then bilinear x2."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.proj = _conv(channels, out_channels, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.proj(hidden_states), scale_factor=2, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------------------------
# Multi-scale residual blocks
# ----------------------------------------------------------------------------------------------


class MIRNetMultiScaleResidualBlock(nn.Module):
    """MRB (v1): parallel streams at full, 1/2, 1/4... resolution exchanging information by SKFF.

    Each stream has one DAU applied in every column (the released weights hold one set per stream).
    """

    def __init__(self, config: MIRNetConfig):
        super().__init__()
        channels = config.stream_channels
        factor = config.channel_factor
        num_streams = len(channels)
        self.num_columns = config.num_columns
        self.attention_units = nn.ModuleList(MIRNetDualAttentionUnit(c, config.reduction) for c in channels)
        self.fusions = nn.ModuleList(
            MIRNetSelectiveKernelFusion(c, num_streams, config.reduction, nn.PReLU()) for c in channels
        )
        self.downsamplers = nn.ModuleDict(
            {
                f"{src}_to_{dst}": MIRNetResampler(channels[src], dst - src, factor, upsample=False)
                for dst in range(num_streams)
                for src in range(dst)
            }
        )
        self.upsamplers = nn.ModuleDict(
            {
                f"{src}_to_{dst}": MIRNetResampler(channels[src], src - dst, factor, upsample=True)
                for dst in range(num_streams)
                for src in range(dst + 1, num_streams)
            }
        )
        # Separate weights from `upsamplers["k_to_0"]`: the released network brings the streams
        # back to full resolution with their own modules after the last column.
        self.output_upsamplers = nn.ModuleDict(
            {str(src): MIRNetResampler(channels[src], src, factor, upsample=True) for src in range(1, num_streams)}
        )
        self.conv_out = _conv(channels[0], channels[0], 3)

    def _resize(self, hidden_states: torch.Tensor, src: int, dst: int) -> torch.Tensor:
        if src == dst:
            return hidden_states
        resamplers = self.downsamplers if src < dst else self.upsamplers
        return resamplers[f"{src}_to_{dst}"](hidden_states)

    def forward(self, hidden_states: torch.Tensor, dau_activation: nn.Module) -> torch.Tensor:
        streams = []
        current = hidden_states
        for index, unit in enumerate(self.attention_units):
            if index > 0:
                current = self.downsamplers[f"{index - 1}_to_{index}"](current)
            current = unit(current, dau_activation)
            streams.append(current)
        for _ in range(1, self.num_columns):
            # Every stream's fused input is computed before any stream is updated.
            fused = [
                fusion([self._resize(stream, src, dst) for src, stream in enumerate(streams)])
                for dst, fusion in enumerate(self.fusions)
            ]
            streams = [unit(inputs, dau_activation) for unit, inputs in zip(self.attention_units, fused)]
        at_full_resolution = [streams[0]] + [
            self.output_upsamplers[str(src)](stream) for src, stream in enumerate(streams) if src > 0
        ]
        return hidden_states + self.conv_out(self.fusions[0](at_full_resolution))


class MIRNetV2MultiScaleResidualBlock(nn.Module):
    """MRB (v2): each stream is pooled down from the block input; after each column of residual
    context blocks the streams are fused bottom-up with two-input SKFFs."""

    def __init__(self, config: MIRNetConfig, groups: int):
        super().__init__()
        channels = config.stream_channels
        num_streams = len(channels)
        self.context_blocks = nn.ModuleList(MIRNetV2ResidualContextBlock(c, groups) for c in channels)
        # Stream j is reached from the block input through its own chain of j poolings.
        self.downsamplers = nn.ModuleList(
            nn.Sequential(*(MIRNetV2Downsample(channels[step], channels[step + 1]) for step in range(stream)))
            for stream in range(1, num_streams)
        )
        # One set of upsamplers per column; `upsamplers[column][j]` brings stream j+1 to stream j.
        self.upsamplers = nn.ModuleList(
            nn.ModuleList(MIRNetV2Upsample(channels[j + 1], channels[j]) for j in range(num_streams - 1))
            for _ in range(config.num_columns)
        )
        activation = nn.LeakyReLU(0.2)
        self.fusions = nn.ModuleList(
            MIRNetSelectiveKernelFusion(c, 2, config.reduction, activation) for c in channels[:-1]
        )
        self.conv_out = _conv(channels[0], channels[0], 1)

    def forward(self, hidden_states: torch.Tensor, dau_activation: nn.Module | None = None) -> torch.Tensor:
        # `dau_activation` is v1's shared PReLU; v2 has none, the argument keeps one RRG for both.
        streams = [hidden_states] + [chain(hidden_states) for chain in self.downsamplers]
        for column_upsamplers in self.upsamplers:
            streams = [block(stream) for block, stream in zip(self.context_blocks, streams)]
            for j in reversed(range(len(streams) - 1)):
                streams[j] = self.fusions[j]([streams[j], column_upsamplers[j](streams[j + 1])])
        return hidden_states + self.conv_out(streams[0])


class MIRNetRecursiveResidualGroup(GradientCheckpointingLayer):
    """RRG: multi-scale residual blocks, a 3x3 convolution, and a skip over the whole group."""

    def __init__(self, config: MIRNetConfig, groups: int = 1):
        super().__init__()
        if config.version == "v1":
            blocks = [MIRNetMultiScaleResidualBlock(config) for _ in range(config.num_mrb)]
        else:
            blocks = [MIRNetV2MultiScaleResidualBlock(config, groups) for _ in range(config.num_mrb)]
        self.blocks = nn.ModuleList(blocks)
        self.conv = _conv(config.num_features, config.num_features, 3)

    def forward(self, hidden_states: torch.Tensor, dau_activation: nn.Module | None = None) -> torch.Tensor:
        residual = hidden_states
        for block in self.blocks:
            residual = block(residual, dau_activation)
        return hidden_states + self.conv(residual)


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


def _check_pixel_values(pixel_values: torch.Tensor, num_channels: int, check_values: bool = True) -> None:
    """Shape and dtype checks (metadata only), then, with `check_values`, a check for NaN and infinite values.

    The value check reads the whole tensor, and on an accelerator turning its result into a Python bool would
    wait for the device: it runs on CPU tensors only, and once per forward pass (`MIRNetModel` does it).
    """
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(
            f"pixel_values must be a torch.Tensor of shape (batch, {num_channels}, height, width), "
            f"got {type(pixel_values).__name__}."
        )
    if pixel_values.ndim != 4 or pixel_values.shape[1] != num_channels:
        raise ValueError(
            f"pixel_values must have shape (batch, {num_channels}, height, width), got {tuple(pixel_values.shape)}."
        )
    if not pixel_values.is_floating_point():
        raise TypeError(
            f"pixel_values must be a floating-point tensor in [0, 1], got dtype {pixel_values.dtype}; "
            "the image processor converts images for you."
        )
    if pixel_values.numel() == 0:
        raise ValueError(f"pixel_values is empty (shape {tuple(pixel_values.shape)}).")
    # A data-dependent check; skipped while torch.compile traces.
    if (
        check_values
        and pixel_values.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and not torch.isfinite(pixel_values).all()
    ):
        raise ValueError("pixel_values contains NaN or infinite values.")


class MIRNetPreTrainedModel(PreTrainedModel):
    config: MIRNetConfig
    config_class = MIRNetConfig
    base_model_prefix = "mirnet"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    # Checkpoint weights a class leaves out by design (the feature extractor loaded from a full model: its head).
    _head_weights: tuple[str, ...] = ()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            # PyTorch's default initialisation, which the authors trained from.
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.PReLU):
            init.constant_(module.weight, 0.25)
        elif isinstance(module, MIRNetBlurDownsample):
            init.copy_(module.kernel, _blur_kernel(module.channels))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, allow_unexpected_keys: bool = False, **kwargs):
        """Loads like any transformers model, but only a MIRNet, and only whole: then gives every tensor its own
        aligned memory.

        transformers loads a folder of another model type, or weights that lack tensors or have other shapes,
        into a newly initialised network with a printed table: a model that restores every photo into noise.
        Here each is an error: a `config.json` whose `model_type` is not `"mirnet"`, missing weights and weights
        of the wrong shape, and unexpected extra weights unless `allow_unexpected_keys=True`. (The authors'
        checkpoints go through `convert_checkpoint`.)

        Loaded tensors can sit at unaligned offsets of one buffer; CPU convolution kernels then round
        differently (about 1e-7), so outputs would not equal the saved model's bit for bit: each gets its own.
        transformers has no public hook after loading (saving, cards and code files are
        `model_folder.save_model_folder`'s).
        """
        if kwargs.get("config") is None or isinstance(kwargs.get("config"), str):
            _check_model_type(kwargs.get("config") or pretrained_model_name_or_path, kwargs)
        return_info = kwargs.pop("output_loading_info", False)
        # transformers refuses other shapes too, but names none of them: they are collected here and named.
        allow_mismatched = kwargs.pop("ignore_mismatched_sizes", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *args, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
        )
        if allow_mismatched:
            info = {**info, "mismatched_keys": set()}
        unexpected = {key for key in info["unexpected_keys"] if not key.startswith(cls._head_weights)}
        _check_loaded_weights(
            pretrained_model_name_or_path, {**info, "unexpected_keys": unexpected}, allow_unexpected_keys
        )
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if tensor.device.type == "cpu" and tensor.data_ptr() % 64:
                    tensor.data = tensor.data.clone()
        return (model, info) if return_info else model


# What `PretrainedConfig.get_config_dict` accepts of `from_pretrained`'s keyword arguments.
_DOWNLOAD_ARGUMENTS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")


def _check_model_type(source, kwargs: dict) -> None:
    """Refuses a configuration of another model type, naming what it found and what it expected."""
    config_dict, _ = MIRNetConfig.get_config_dict(
        source, **{name: kwargs[name] for name in _DOWNLOAD_ARGUMENTS if name in kwargs}
    )
    found = config_dict.get("model_type")
    if found != MIRNetConfig.model_type:
        raise ValueError(
            f"{str(source)!r} is not a MIRNet model: its config.json has model_type={found!r}, and this loads "
            f"model_type={MIRNetConfig.model_type!r} only. Check the name; the authors' own checkpoints "
            "(.pth) are converted with `mirnet-hf convert`."
        )


def _check_loaded_weights(source, info: dict, allow_unexpected_keys: bool) -> None:
    """Refuses weights that leave part of the network at its random initialisation, or that bring tensors it has no
    place for (unless allowed), naming the first few keys."""

    def first(keys) -> str:
        keys = sorted(keys)
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = []
    if info["missing_keys"]:
        problems.append(f"{len(info['missing_keys'])} weight(s) missing ({first(info['missing_keys'])})")
    if info["mismatched_keys"]:
        shapes = [f"{key} {tuple(found)} where the network has {tuple(expected)}"
                  for key, found, expected in sorted(info["mismatched_keys"])]  # fmt: skip
        problems.append(f"{len(shapes)} weight(s) of the wrong shape ({first(shapes)})")
    if info["unexpected_keys"] and not allow_unexpected_keys:
        problems.append(
            f"{len(info['unexpected_keys'])} weight(s) the network has no place for ({first(info['unexpected_keys'])}"
            "; pass allow_unexpected_keys=True to load without them)"
        )
    if problems:
        raise ValueError(
            f"the weights of {str(source)!r} do not fit the network its config.json describes: "
            + "; ".join(problems)
            + ". Loading them would leave it randomly initialised where they do not fit."
        )


class MIRNetModel(MIRNetPreTrainedModel):
    """The MIRNet feature extractor: shallow 3x3 convolution and the recursive residual groups.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf import MIRNetConfig, MIRNetModel
    >>> model = MIRNetModel(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1)).eval()
    >>> model(torch.rand(1, 3, 32, 32)).last_hidden_state.shape
    torch.Size([1, 8, 32, 32])

    ```
    """

    _head_weights = ("conv_out.",)  # the restoration head of MIRNetForImageRestoration checkpoints

    def __init__(self, config: MIRNetConfig):
        super().__init__(config)
        # With a body stride, the input is pixel-unshuffled first: each body pixel sees stride^2 input pixels.
        self.conv_in = _conv(config.num_channels * config.body_stride**2, config.num_features, 3)
        # v1 shares one PReLU among all its DAUs; it is held here once and passed to each DAU.
        self.dau_activation = nn.PReLU() if config.version == "v1" else None
        groups = config.rrg_groups or [1] * config.num_rrg
        self.residual_groups = nn.ModuleList(MIRNetRecursiveResidualGroup(config, g) for g in groups)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        _check_pixel_values(pixel_values, self.config.num_channels)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        stride = self.config.body_stride
        height, width = (-(-side // stride) for side in pixel_values.shape[-2:])  # the body's size, rounded up
        padded = pad_to_multiple(pixel_values, self.config.size_multiple)
        if stride > 1:
            padded = F.pixel_unshuffle(padded, stride)

        shallow = self.conv_in(padded)
        hidden_states = shallow
        all_hidden_states = (shallow,) if output_hidden_states else None
        for group in self.residual_groups:
            hidden_states = group(hidden_states, self.dau_activation)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        if self.config.global_skip == "features":
            hidden_states = hidden_states + shallow
        hidden_states = hidden_states[..., :height, :width]
        if all_hidden_states is not None:
            all_hidden_states = tuple(state[..., :height, :width] for state in all_hidden_states)
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden_states) if v is not None)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


class MIRNetForImageRestoration(MIRNetPreTrainedModel):
    """MIRNet with its output convolution: returns the restored image in `.reconstruction`, and the
    Charbonnier loss (eps 1e-3) when `labels` are given.

    Any height and width work: the input is reflect-padded to a multiple of `config.size_multiple`
    and the output cropped back. With `config.tail_shuffle` above 1 (a body stride, or the pixel-shuffle
    upsampler), the output convolution makes that many sub-pixels squared per body pixel and a pixel shuffle
    lays them out; the output is `config.model_upscale` times the input's size.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1)).eval()
    >>> image = torch.rand(1, 3, 30, 30)
    >>> out = model(pixel_values=image, labels=image)
    >>> out.reconstruction.shape, out.loss.ndim
    (torch.Size([1, 3, 30, 30]), 0)

    ```
    """

    def __init__(self, config: MIRNetConfig):
        super().__init__(config)
        self.mirnet = MIRNetModel(config)
        self.conv_out = _conv(config.num_features, config.num_channels_out * config.tail_shuffle**2, 3)
        self.post_init()

    def _upsampled_input(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The global image skip at the output's size: the input itself, or its bicubic upsampling."""
        scale = self.config.model_upscale
        if scale == 1:
            return pixel_values
        return F.interpolate(pixel_values, scale_factor=scale, mode="bicubic", align_corners=False)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageSuperResolutionOutput | tuple:
        # The shape before padding; `self.mirnet` checks the values (once per forward pass).
        _check_pixel_values(pixel_values, self.config.num_channels, check_values=False)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        height, width = pixel_values.shape[-2:]
        # Pad once here, so the output convolution also sees the padded borders, as in the authors' protocol.
        padded = pad_to_multiple(pixel_values, self.config.size_multiple)
        outputs = self.mirnet(padded, output_hidden_states=output_hidden_states, return_dict=True)
        reconstruction = self.conv_out(outputs.last_hidden_state)
        if self.config.tail_shuffle > 1:
            reconstruction = F.pixel_shuffle(reconstruction, self.config.tail_shuffle)
        if self.config.global_skip == "image":
            reconstruction = reconstruction + self._upsampled_input(padded)
        scale = self.config.model_upscale
        reconstruction = reconstruction[..., : height * scale, : width * scale]

        loss = None
        if labels is not None:
            if labels.shape != reconstruction.shape:
                raise ValueError(
                    f"labels must have the reconstruction's shape {tuple(reconstruction.shape)}, "
                    f"got {tuple(labels.shape)}."
                )
            loss = charbonnier_loss(reconstruction, labels.to(reconstruction.dtype))
        hidden_states = outputs.hidden_states
        if hidden_states is not None:
            stride = self.config.body_stride
            body_height, body_width = -(-height // stride), -(-width // stride)
            hidden_states = tuple(state[..., :body_height, :body_width] for state in hidden_states)
        if not return_dict:
            return tuple(v for v in (loss, reconstruction, hidden_states) if v is not None)
        return ImageSuperResolutionOutput(loss=loss, reconstruction=reconstruction, hidden_states=hidden_states)


__all__ = [
    "MIRNetPreTrainedModel",
    "MIRNetModel",
    "MIRNetForImageRestoration",
    "charbonnier_loss",
]
