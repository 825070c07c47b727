"""MIRNet model configuration.

One configuration class covers both networks of the authors: MIRNet (ECCV 2020, ``version="v1"``)
and MIRNet-v2 (TPAMI 2022, ``version="v2"``). Fields left at ``None`` take the paper's value for the
chosen version, so ``MIRNetConfig()`` is the paper's v1 model and ``MIRNetConfig(version="v2")`` the
paper's v2 model.
"""

from __future__ import annotations

import math

from transformers import PreTrainedConfig

from .image_ops import size_multiple
from .tasks import TASKS, rescales  # TASKS re-exported: the tasks a config may record

VERSIONS = ("v1", "v2")

GLOBAL_SKIPS = ("image", "features")
# How a super-resolution model enlarges: "bicubic-input", the paper's protocol (the image processor upsamples the
# photo and the network keeps its size); "pixel-shuffle", the network takes the small photo, runs its body on it
# and ends in a pixel-shuffle tail (ESPCN), so it pays for the input's pixels, not the output's.
UPSAMPLERS = ("bicubic-input", "pixel-shuffle")
BODY_STRIDES = (1, 2, 4)
# The fields that shape the computation (the task, scale and metadata do not): two configurations agreeing on
# these, with the same weights, compute the same function.
ARCHITECTURE_FIELDS = (
    "version", "num_channels", "num_channels_out", "num_features", "num_rrg", "num_mrb", "num_streams",
    "num_columns", "channel_factor", "reduction", "rrg_groups", "global_skip", "size_multiple",
)  # fmt: skip
# They shape it too, but only away from the authors' layout: weights fingerprints (export.weights_fingerprint) take
# them only there, so the fingerprints of every model made before these settings existed stay what they were.
RESAMPLING_FIELDS = ("body_stride", "upsampler", "model_upscale")

# The paper's hyperparameters per version, used where a field is left at None.
_VERSION_DEFAULTS = {
    "v1": {"num_features": 64, "num_rrg": 3, "channel_factor": 2.0, "rrg_groups": None},
    "v2": {"num_features": 80, "num_rrg": 4, "channel_factor": 1.5, "rrg_groups": [1, 2, 4, 4]},
}

# Pipeline that remote-code users get from `pipeline("image-restoration", ...)`; the file is saved
# beside the weights by `MIRNetPreTrainedModel.save_pretrained`.
RESTORATION_PIPELINE_SPEC = {
    "image-restoration": {
        "impl": "pipeline_mirnet.MIRNetRestorationPipeline",
        "pt": ["AutoModelForImageToImage"],
        "type": "image",
    }
}

AUTO_MAP = {
    "AutoConfig": "configuration_mirnet.MIRNetConfig",
    "AutoModel": "modeling_mirnet.MIRNetModel",
    "AutoModelForImageToImage": "modeling_mirnet.MIRNetForImageRestoration",
}


def _stream_channels(num_features: int, channel_factor: float, num_streams: int) -> list[int]:
    return [int(num_features * channel_factor**i) for i in range(num_streams)]


class MIRNetConfig(PreTrainedConfig):
    r"""Configuration of a MIRNet image-restoration network.

    Args:
        version (`str`, defaults to `"v1"`):
            `"v1"`: MIRNet (ECCV 2020): dual attention units, PReLU, anti-aliased residual resampling.
            `"v2"`: MIRNet-v2 (TPAMI 2022): residual context blocks with grouped convolutions,
            LeakyReLU(0.2), two-input selective kernel fusion; about a third of v1's compute.
        num_channels (`int`, defaults to 3): channels of the input image (6 for dual-pixel defocus).
        num_channels_out (`int`, defaults to 3): channels of the restored image.
        num_features (`int`, *optional*): channels of the full-resolution stream (v1: 64, v2: 80).
        num_rrg (`int`, *optional*): recursive residual groups (v1: 3, v2: 4).
        num_mrb (`int`, defaults to 2): multi-scale residual blocks per group.
        num_streams (`int`, defaults to 3): parallel resolution streams per block (the paper's height).
        num_columns (`int`, defaults to 2): attention units per stream and block (the paper's width).
        channel_factor (`float`, *optional*): channel growth from one stream to the next (v1: 2, v2: 1.5).
        reduction (`int`, defaults to 8): channel reduction in channel attention and fusion.
        rrg_groups (`list[int]`, *optional*): v2 only, convolution groups of each group's context
            blocks (default `[1, 2, 4, 4]`).
        global_skip (`str`, defaults to `"image"`): `"image"` adds the input image to the output;
            `"features"` adds the shallow features before the last convolution (v2 defocus model).
        task (`str`, defaults to `"denoising"`): metadata naming what the weights restore, one of
            `denoising`, `super-resolution`, `low-light-enhancement`, `enhancement`, `defocus-deblurring`.
        upscale (`int`, defaults to 1): super-resolution scale.
        upsampler (`str`, defaults to `"bicubic-input"`): how super-resolution enlarges. `"bicubic-input"` (the
            paper's): the image processor upsamples the input (bicubic) by `upscale` and the network keeps its
            size. `"pixel-shuffle"`: the network takes the low-resolution image, runs its body there and ends in a
            pixel-shuffle tail, adding the bicubic upsampling of its input; it costs 1/upscale^2 of the other per
            output pixel.
        body_stride (`int`, defaults to 1): the body runs on the input pixel-unshuffled by this factor (2: a
            quarter of the pixels with four times the channels, as FFDNet), and a pixel-shuffle tail brings the
            result back. It buys features at the same cost per pixel for same-size tasks (denoising).

    `upsampler="pixel-shuffle"` and `body_stride` share one mechanism: the input is pixel-unshuffled by
    `body_stride`, and the output convolution makes `(body_stride * model_upscale)^2` sub-pixels per body pixel.
    The authors' layouts have neither (their converter and the export to their format keep the defaults).

    Example:

    ```python
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> config = MIRNetConfig(num_features=16, num_rrg=1, num_mrb=1)
    >>> model = MIRNetForImageRestoration(config)
    >>> MIRNetConfig().stream_channels  # the paper's model
    [64, 128, 256]

    ```
    """

    model_type = "mirnet"

    version: str = "v1"
    num_channels: int = 3
    num_channels_out: int = 3
    num_features: int | None = None
    num_rrg: int | None = None
    num_mrb: int = 2
    num_streams: int = 3
    num_columns: int = 2
    channel_factor: float | None = None
    reduction: int = 8
    rrg_groups: list[int] | None = None
    global_skip: str = "image"
    task: str = "denoising"
    upscale: int = 1
    upsampler: str = "bicubic-input"
    body_stride: int = 1

    def __post_init__(self, **kwargs):
        custom_pipelines = kwargs.pop("custom_pipelines", None)
        kwargs.setdefault("auto_map", dict(AUTO_MAP))
        if self.version not in VERSIONS:
            raise ValueError(f"version={self.version!r} is not valid; choose one of {VERSIONS}.")
        for name, value in _VERSION_DEFAULTS[self.version].items():
            if getattr(self, name) is None:
                setattr(self, name, list(value) if isinstance(value, list) else value)
        if isinstance(self.rrg_groups, tuple):
            self.rrg_groups = list(self.rrg_groups)
        self.channel_factor = float(self.channel_factor)
        self._validate()
        super().__post_init__(**kwargs)
        self._restoration_pipelines = dict(custom_pipelines or RESTORATION_PIPELINE_SPEC)

    def _validate(self) -> None:
        for name in (
            "num_channels",
            "num_channels_out",
            "num_features",
            "num_rrg",
            "num_mrb",
            "num_streams",
            "num_columns",
            "reduction",
            "upscale",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not valid; it must be a positive integer.")
        if not math.isfinite(self.channel_factor) or self.channel_factor <= 1:
            raise ValueError(f"channel_factor={self.channel_factor!r} is not valid; it must be a number above 1.")
        if self.global_skip not in GLOBAL_SKIPS:
            raise ValueError(f"global_skip={self.global_skip!r} is not valid; choose one of {GLOBAL_SKIPS}.")
        if self.global_skip == "image" and self.num_channels != self.num_channels_out:
            raise ValueError(
                f"global_skip='image' adds the input to the output, so num_channels ({self.num_channels}) must equal "
                f"num_channels_out ({self.num_channels_out}); use global_skip='features' otherwise."
            )
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler={self.upsampler!r} is not valid; choose one of {UPSAMPLERS}.")
        if isinstance(self.body_stride, bool) or self.body_stride not in BODY_STRIDES:
            raise ValueError(f"body_stride={self.body_stride!r} is not valid; choose one of {BODY_STRIDES}.")
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not valid; choose one of {TASKS}.")
        if rescales(self.task) and self.upscale < 2:
            raise ValueError(
                f"task='super-resolution' needs upscale >= 2 (2, 3 or 4 in the paper), got {self.upscale}."
            )
        if not rescales(self.task) and self.upscale != 1:
            raise ValueError(f"upscale={self.upscale} is only valid with task='super-resolution', not {self.task!r}.")
        if self.upsampler == "pixel-shuffle" and not rescales(self.task):
            raise ValueError(
                f"upsampler='pixel-shuffle' enlarges the image, so it needs task='super-resolution', not "
                f"{self.task!r}; a same-size task runs its body at a lower resolution with body_stride instead."
            )
        channels = self.stream_channels
        for upper, lower in zip(channels, channels[1:]):
            # Each stream is reached by resampling the previous one by the channel factor: both ways
            # must land on whole channel counts for the weights to line up.
            if upper < 1 or int(upper * self.channel_factor) != lower or int(lower // self.channel_factor) != upper:
                raise ValueError(
                    f"num_features={self.num_features} with channel_factor={self.channel_factor} gives stream "
                    f"channels "
                    f"{channels}, which do not convert into each other by that factor; pick num_features so that "
                    "every stream has a whole number of channels (e.g. a multiple of 4 for v1, of 16 for v2)."
                )
        if self.version == "v1":
            if self.rrg_groups is not None and any(g != 1 for g in self.rrg_groups):
                raise ValueError(f"rrg_groups={self.rrg_groups!r} is only valid for version='v2'.")
            if any(c // self.reduction < 1 for c in channels):
                raise ValueError(
                    f"reduction={self.reduction} leaves no channels in the channel attention of a stream with "
                    f"{min(channels)} channels; it must be at most {min(channels)}."
                )
        else:
            if self.num_streams < 2:
                raise ValueError(f"num_streams={self.num_streams} is not valid for version='v2'; it needs at least 2.")
            if not isinstance(self.rrg_groups, list) or len(self.rrg_groups) != self.num_rrg:
                raise ValueError(
                    f"rrg_groups={self.rrg_groups!r} is not valid; it must list one group count per RRG "
                    f"({self.num_rrg} entries)."
                )
            for groups in self.rrg_groups:
                if (
                    isinstance(groups, bool)
                    or not isinstance(groups, int)
                    or groups < 1
                    or any(c % groups for c in channels)
                ):
                    raise ValueError(
                        f"rrg_groups entry {groups!r} is not valid; it must be a positive integer dividing every "
                        f"stream's channels {channels}."
                    )

    @property
    def stream_channels(self) -> list[int]:
        """Channels of each stream, full resolution first."""
        return _stream_channels(self.num_features, self.channel_factor, self.num_streams)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this for the streams to line up (the model pads
        otherwise): the streams' own multiple, times the body stride."""
        return size_multiple(self.num_streams) * self.body_stride

    @property
    def model_upscale(self) -> int:
        """How much the network itself enlarges: `upscale` with the pixel-shuffle upsampler, else 1 (the image
        processor upsamples the input)."""
        return self.upscale if self.upsampler == "pixel-shuffle" else 1

    @property
    def tail_shuffle(self) -> int:
        """The pixel-shuffle factor of the output convolution: body stride times the network's own upscale."""
        return self.body_stride * self.model_upscale

    @property
    def follows_authors_layout(self) -> bool:
        """Whether the network has the authors' shape at its ends: full-resolution body, same-size output."""
        return self.body_stride == 1 and self.upsampler == "bicubic-input"

    # `pipeline()` reads `config.custom_pipelines` and, when the task is listed there, loads the
    # pipeline from the model folder with trust_remote_code. Installed users have the pipeline
    # registered by `import mirnet_hf`, so for them the saved entry is hidden and the registered
    # pipeline used: the same folder then works with and without the package installed.
    @property
    def custom_pipelines(self) -> dict:
        from transformers.pipelines import PIPELINE_REGISTRY

        return {
            task: spec
            for task, spec in self._restoration_pipelines.items()
            if task not in PIPELINE_REGISTRY.supported_tasks
        }

    @custom_pipelines.setter
    def custom_pipelines(self, value: dict) -> None:
        self.__dict__["_restoration_pipelines"] = dict(value)

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_restoration_pipelines", None)
        output["custom_pipelines"] = dict(self._restoration_pipelines)
        return output


__all__ = ["MIRNetConfig"]
