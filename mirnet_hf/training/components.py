"""The parts a run is built from: the model (a preset, a config file or a checkpoint), the degradation that
makes its inputs, the optimiser and schedule, and the weight average."""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import platform
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..configuration_mirnet import MIRNetConfig
from ..data import Columns, RestorationPatches, load_image_dataset, resolve_columns
from ..degradations import Degradation
from ..inference import cpu_has_native_bfloat16
from ..modeling_mirnet import MIRNetForImageRestoration
from ..tasks import SYNTHETIC_TASKS, rescales
from .arguments import TrainingArguments

logger = logging.getLogger("mirnet_hf.training")

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's networks.
    "mirnet-v1": {"version": "v1"},
    "mirnet-v2": {"version": "v2"},
    # Our first CPU-sized default: MIRNet-v2 blocks, 24 features, 2 RRGs x 2 MRBs (0.35 M parameters).
    "mirnet-v2-compact": {"version": "v2", "num_features": 24, "num_rrg": 2, "num_mrb": 2, "rrg_groups": [1, 2]},
    # The authors' v2 layout (4 RRGs with groups 1/2/4/4, 3 streams, 2 columns), which spandrel and the tools
    # built on it load, made small enough for CPUs: 32 features doubling per stream, one MRB per RRG (1.1 M
    # parameters, about 2.7 s per megapixel on 2 cores).
    "mirnet-v2-small": {"version": "v2", "num_features": 32, "channel_factor": 2.0, "num_rrg": 4, "num_mrb": 1},
    # Issue 29's super-resolution shape: v2-small's layout with 48 features, its body on the low-resolution image
    # and a pixel-shuffle tail (2.5 M parameters). Per output megapixel at x4 it costs 39 GMAC where v2-small on
    # the upsampled image costs 279 (benchmarks/count_macs.py).
    "mirnet-v2-medium-ps": {
        "version": "v2",
        "num_features": 48,
        "channel_factor": 2.0,
        "num_rrg": 4,
        "num_mrb": 1,
        "upsampler": "pixel-shuffle",
    },  # fmt: skip
    # Issue 28's denoising shape: the same body on the image pixel-unshuffled by 2 (FFDNet's half-resolution
    # stack), 158 GMAC per megapixel against v2-small's 279.
    "mirnet-v2-medium-s2": {
        "version": "v2",
        "num_features": 48,
        "channel_factor": 2.0,
        "num_rrg": 4,
        "num_mrb": 1,
        "body_stride": 2,
    },  # fmt: skip
    # For tests and smoke runs.
    "mirnet-tiny": {"version": "v1", "num_features": 8, "num_rrg": 1, "num_mrb": 1},
}


def build_model(args: TrainingArguments) -> MIRNetForImageRestoration:
    """The model to train: a checkpoint to fine-tune, a preset, or a config.json."""
    if args.model_name_or_path:
        model = MIRNetForImageRestoration.from_pretrained(args.model_name_or_path)
        if args.task and model.config.task != args.task:
            logger.warning("fine-tuning a %s model for %s", model.config.task, args.task)
            model.config.task = args.task
        if rescales(model.config.task) and model.config.upscale != min(args.scales):
            # A model fine-tuned to other scales (the x3 model, from the joint one). A pixel-shuffle tail is made
            # for one scale: its weights do not serve another.
            if model.config.model_upscale > 1:
                raise ValueError(
                    f"{args.model_name_or_path} enlarges x{model.config.upscale} with a pixel-shuffle tail, whose "
                    f"weights fit that scale only; --scales {' '.join(map(str, args.scales))} needs a model of its "
                    "own (a preset with --config_name)."
                )
            model.config.upscale = min(args.scales)
        return model
    if args.config_name in PRESETS:
        settings = dict(PRESETS[args.config_name])
    elif Path(args.config_name).is_file():
        # Read as settings, not as a configuration: it may leave the task and scale to the flags.
        settings = json.loads(Path(args.config_name).read_text())
    else:
        raise ValueError(f"--config_name {args.config_name!r} is neither a preset ({', '.join(PRESETS)}) nor a file.")
    if args.task:
        settings["task"] = args.task
    if rescales(settings.get("task", "denoising")):
        settings["upscale"] = min(args.scales)
    # Built whole from the settings: the configuration checks the task, scale and upsampler together.
    return MIRNetForImageRestoration(MIRNetConfig(**settings))


def build_degradation(args: TrainingArguments, task: str, low_resolution_input: bool = False) -> Degradation:
    """The on-the-fly degradation of clean photos for `task`: every `Degradation` setting that is also a flag
    takes the flag's value (the others keep their defaults); `Degradation` checks them. `low_resolution_input`:
    super-resolution inputs stay small, for a model that enlarges by itself."""
    settings = {item.name: getattr(args, item.name) for item in fields(Degradation) if hasattr(args, item.name)}
    settings.pop("task", None)
    return Degradation(task, **settings, low_resolution_input=low_resolution_input)


@dataclass
class TrainingData:
    """The training images: their columns, the degradation that makes inputs of clean-only data (None for
    paired data), and this process's endless patches."""

    columns: Columns
    degradation: Degradation | None
    patches: RestorationPatches

    def describe(self) -> str:
        """For the model card: "paired", or the clean images' degradation."""
        return "paired" if self.degradation is None else "clean images, " + self.degradation.describe()


def build_training_data(
    args: TrainingArguments, task: str, rank: int = 0, world_size: int = 1, input_scale: int = 1
) -> TrainingData:
    """Loads `--dataset_name` and cuts this process's (`rank` of `world_size`) share into patches.

    `input_scale` is how much the model itself enlarges (`config.model_upscale`): above 1, its inputs are the
    small images (made small for clean data; cut at the matching place of paired data's small inputs)."""
    dataset = load_image_dataset(
        args.dataset_name, args.train_split, dataset_config_name=args.dataset_config_name, streaming=args.streaming
    )
    columns = resolve_columns(list(dataset.column_names or []), args.input_column, args.target_column, args.data_kind)
    if not columns.paired and task not in SYNTHETIC_TASKS:
        raise ValueError(
            f"clean-only data needs --task (one of {', '.join(SYNTHETIC_TASKS)}); the model's is {task!r}."
        )
    degradation = None if columns.paired else build_degradation(args, task, low_resolution_input=input_scale > 1)
    patches = RestorationPatches(
        dataset,
        columns,
        degradation,
        input_scale=input_scale,
        patch_size=args.patch_size,
        flips=not args.no_flips,
        small_images=args.small_images,
        seed=args.seed,
        rank=rank,
        world_size=world_size,
    )
    return TrainingData(columns, degradation, patches)


def build_optimizer(args: TrainingArguments, model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.adam_weight_decay,
    )


def build_scheduler(args: TrainingArguments, optimizer: torch.optim.Optimizer):
    """transformers' schedules: linear warm-up, then cosine annealing to `--min_learning_rate` (or constant).
    With `--lr_cycle_start` the whole schedule is shifted to begin at that step (a warm restart): steps before it
    would run at its first rate, but a restarted run starts at or after it.

    Example:
        >>> import torch
        >>> from mirnet_hf.training import TrainingArguments
        >>> args = TrainingArguments(max_train_steps=300, lr_cycle_start=100, learning_rate=1e-3)
        >>> optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
        >>> schedule = build_scheduler(args, optimizer)
        >>> for _ in range(100):
        ...     schedule.step()
        >>> schedule.get_last_lr()[0]  # the cosine starts again at full rate
        0.001
    """
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import get_scheduler

    if args.lr_scheduler == "cosine":
        name, extra = "cosine_with_min_lr", {"min_lr": args.min_learning_rate}
    else:
        name, extra = "constant_with_warmup", {}
    schedule = get_scheduler(
        name,
        optimizer,
        num_warmup_steps=args.lr_warmup_steps,
        num_training_steps=args.max_train_steps - args.lr_cycle_start,
        scheduler_specific_kwargs=extra,
    )
    if not args.lr_cycle_start:
        return schedule
    return LambdaLR(optimizer, functools.partial(_shifted, factor=schedule.lr_lambdas[0], start=args.lr_cycle_start))


def _shifted(step: int, factor, start: int) -> float:
    """The schedule's factor `start` steps later: step `start` is the new cycle's first."""
    return factor(max(0, step - start))


def default_num_workers(device: torch.device, processes_per_machine: int) -> int:
    """One worker on a CPU (it takes the data work off the training threads; more would compete with them for
    cores); on GPUs up to 8 per process, as the machine's cores allow."""
    if device.type == "cpu":
        return 1
    return max(1, min(8, (os.cpu_count() or 2) // max(1, processes_per_machine) - 1))


def resolve_mixed_precision(requested: str | None, device: torch.device) -> str | None:
    """The precision handed to Accelerate. `auto` picks bfloat16 where the device computes it natively (a GPU
    with bfloat16, a CPU with AVX512-BF16 or AMX) and float32 elsewhere; an explicit `bf16` on a CPU without it
    is kept, with a warning, since it is slow there. `None` leaves the choice to Accelerate's config.

    Example:
        >>> import torch
        >>> resolve_mixed_precision("no", torch.device("cpu"))
        'no'
        >>> resolve_mixed_precision("auto", torch.device("cpu")) in ("bf16", "no")
        True
    """
    if device.type == "cpu":
        native = cpu_has_native_bfloat16()
    elif device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = False
    if requested == "auto":
        chosen = "bf16" if native else "no"
        logger.info("--mixed_precision auto: %s on this %s", chosen, device.type)
        return chosen
    if requested == "bf16" and device.type == "cpu" and not native:
        logger.warning(
            "--mixed_precision bf16 on a CPU without native bfloat16 (%s): it is emulated, and a training step can "
            "take several times float32's (9x measured on an AVX2 machine); --mixed_precision auto or no "
            "trains in float32 here",
            torch.backends.cpu.get_cpu_capability(),
        )
    return requested


def hardware_description(accelerator) -> str:
    device = accelerator.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        threads = torch.get_num_threads()
        name = f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' if threads > 1 else ''}"
    return f"{accelerator.num_processes} x {name} (torch {torch.__version__})"


class ExponentialMovingAverage:
    """An exponential moving average of a model's weights, saved with the training state.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates: with a fixed 0.999 the average
    would still hold 37% of the random initial weights after 1000 steps.

    Example:

    ```python
    >>> import torch
    >>> from mirnet_hf.training import ExponentialMovingAverage
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> _ = model.weight.data.fill_(0.0)
    >>> ema = ExponentialMovingAverage(model, decay=0.999)
    >>> _ = model.weight.data.fill_(1.0)
    >>> for _ in range(200):
    ...     ema.update(model)
    >>> round(ema.model.weight.item(), 2)
    1.0

    ```
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"ema_decay={decay!r} is not valid; it must be between 0 and 1.")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current.detach().to(average.dtype), 1 - decay)

    def state_dict(self) -> dict:
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if "weights" not in state:  # checkpoints from before the warm-up held the bare weights
            state = {"weights": state, "updates": 0}
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


__all__ = [
    "PRESETS",
    "ExponentialMovingAverage",
    "build_degradation",
    "build_model",
    "build_optimizer",
    "build_training_data",
    "TrainingData",
    "build_scheduler",
    "default_num_workers",
    "hardware_description",
]
