"""The training job's settings: one dataclass, read from the command line and a YAML file by transformers'
`HfArgumentParser`.

Every field is a flag of the same name (`--learning_rate 3e-4`); `--config FILE.yaml` sets any of them from a
file, and the command line wins over the file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from ..degradations import SHOT_NOISE_RANGE
from ..tasks import SYNTHETIC_TASKS

Task = Literal[SYNTHETIC_TASKS]  # type: ignore[valid-type]

POSITIVE_FIELDS = ("max_train_steps", "train_batch_size", "gradient_accumulation_steps", "checkpointing_steps")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class TrainingArguments:
    """Everything a training run needs. The optimisation defaults are the paper's recipe: Adam (0.9, 0.999),
    learning rate 2e-4 annealed (cosine) to 1e-6, batch 16 of 128x128 patches with flips.

    Example:

    ```python
    >>> from mirnet_hf.training import parse_args
    >>> args = parse_args(["--task", "denoising", "--dataset_name", "photos/", "--output_dir", "run"])
    >>> args.learning_rate, args.patch_size, args.sigma_range
    (0.0002, 128, [0.0, 55.0])

    ```
    """

    config: str | None = field(
        default=None, metadata=_help("YAML file of flag values (flag names without dashes); the command line wins.")
    )
    # --- task and data
    task: Task | None = field(default=None, metadata=_help("Restoration task (required for clean-only data)."))
    dataset_name: str | None = field(
        default=None, metadata=_help("Hub id, local image folder or save_to_disk folder.")
    )
    dataset_config_name: str | None = None
    train_split: str = "train"
    streaming: bool = field(default=False, metadata=_help("Stream the data (for data sets larger than disk)."))
    data_kind: Literal["auto", "paired", "clean"] = "auto"
    input_column: str | None = field(
        default=None, metadata=_help("Degraded image column of paired data (auto-detected).")
    )
    target_column: str | None = field(default=None, metadata=_help("Target (or clean image) column (auto-detected)."))
    patch_size: int = 128
    no_flips: bool = field(default=False, metadata=_help("Turn off random horizontal and vertical flips."))
    small_images: Literal["pad", "skip"] = "pad"
    dataloader_num_workers: int | None = field(
        default=None,
        metadata=_help(
            "Processes that cut and degrade patches (default: 1 on CPU, up to 8 per GPU process). A resumed run "
            "must use the same number."
        ),
    )
    validation_dataset_name: str | None = field(default=None, metadata=_help("Data for validation (default: none)."))
    validation_split: str = "validation"
    validation_level: float | None = field(default=None, metadata=_help("Sigma / scale / exposure for clean data."))
    extra_validation_levels: list[float] = field(
        default_factory=list, metadata=_help("More levels to validate clean data at, each logged on its own.")
    )
    validate_real_grain: bool = field(
        default=False,
        metadata=_help(
            "Denoising: also validate on real-like grain (degradations.real_grain_noise, a fixed seed per image), "
            "logged as validation/real grain/psnr."
        ),
    )
    max_validation_images: int = 8
    num_validation_samples: int = field(default=2, metadata=_help("Sample images logged per validation."))
    # --- synthetic degradations (clean-only data)
    sigma_range: list[float] = field(default_factory=lambda: [0.0, 55.0], metadata=_help("Gaussian sigma (0-255)."))
    poisson_probability: float = field(default=0.0, metadata=_help("Share of Poisson-Gaussian noise."))
    camera_probability: float = field(default=0.0, metadata=_help("Share of camera-pipeline (real-like) noise."))
    shot_noise_range: list[float] = field(
        default_factory=lambda: list(SHOT_NOISE_RANGE),
        metadata=_help("Raw shot-noise gain of the camera pipeline (log-uniform; read noise follows it)."),
    )
    grain_probability: float = field(
        default=0.0,
        metadata=_help(
            "Share of real-grain noise (correlated, channel-correlated, Poisson, speckle; sharpening, NR, JPEG)."
        ),
    )
    grain_sigma_range: list[float] = field(
        default_factory=lambda: [2.0, 40.0], metadata=_help("Real grain: each component's sigma (0-255, log-uniform).")
    )
    scales: list[int] = field(default_factory=lambda: [2], metadata=_help("Super-resolution scales (2, 3, 4)."))
    blur_probability: float = 0.0
    chroma_blur_range: list[float] = field(
        default_factory=lambda: [0.0, 0.0],
        metadata=_help("Camera noise: the camera's chroma denoising, a blur of the colour planes (pixels; 0 0: off)."),
    )
    jpeg_probability: float = field(
        default=0.0, metadata=_help("Share of JPEG inputs (super-resolution, camera noise).")
    )
    jpeg_quality_range: list[int] = field(default_factory=lambda: [60, 95])
    exposure_range: list[float] = field(default_factory=lambda: [0.05, 0.3])
    gamma_range: list[float] = field(default_factory=lambda: [1.2, 2.2])
    low_light_shot_noise_range: list[float] = field(
        default_factory=lambda: [1e-4, 3e-3],
        metadata=_help("Raw shot-noise gain of low-light camera shots (with --camera_probability)."),
    )
    color_cast: float = field(
        default=0.0, metadata=_help("Low light: white balance off by up to this factor (0.3: 30%%).")
    )
    # --- model
    model_name_or_path: str | None = field(default=None, metadata=_help("Checkpoint to fine-tune (folder or Hub id)."))
    initial_step: int = field(
        default=0,
        metadata=_help(
            "With --model_name_or_path: the step those weights were trained to, to continue their run when its "
            "checkpoint is lost. The step count, the learning-rate schedule and the validation steps go on from "
            "there; the optimiser's moments start afresh."
        ),
    )
    config_name: str = field(
        default="mirnet-v2-compact", metadata=_help("A preset of mirnet_hf.training.PRESETS, or a config.json path.")
    )
    gradient_checkpointing: bool = False
    channels_last: bool = field(default=False, metadata=_help("Channels-last memory format (oneDNN, cuDNN)."))
    torch_compile: bool = field(
        default=False, metadata=_help("Compile the model with torch.compile (inductor), via Accelerate.")
    )
    # --- optimisation
    output_dir: str | None = None
    seed: int = 0
    max_train_steps: int = 1000
    train_batch_size: int = field(default=16, metadata=_help("Per process."))
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-6
    lr_scheduler: Literal["cosine", "constant"] = "cosine"
    lr_warmup_steps: int = 0
    lr_cycle_start: int = field(
        default=0,
        metadata=_help(
            "Restart the schedule at this step (a warm restart, as SGDR does): the warm-up and the cosine run again "
            "from here to --max_train_steps, so a run whose cosine has ended goes on learning under its own step "
            "count. Use it with --initial_step (or a checkpoint) at or after it."
        ),
    )
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    adam_weight_decay: float = 0.0
    max_grad_norm: float | None = field(default=None, metadata=_help("Clip gradients to this norm (off)."))
    use_ema: bool = field(default=False, metadata=_help("Keep an exponential moving average of the weights."))
    ema_decay: float = 0.999
    mixed_precision: Literal["no", "fp16", "bf16", "auto"] | None = field(
        default=None,
        metadata=_help(
            "auto: bf16 where the hardware computes it natively (a GPU with bf16, a CPU with AVX512-BF16 or AMX), "
            "float32 elsewhere. Default: accelerate's."
        ),
    )
    # --- checkpoints, logging and the Hub
    checkpointing_steps: int = 500
    checkpoints_total_limit: int = 3
    resume_from_checkpoint: str | None = field(default=None, metadata=_help("A checkpoint folder, or 'latest'."))
    validation_steps: int = 500
    logging_steps: int = 10
    report_to: str = field(default="tensorboard", metadata=_help("tensorboard, wandb, all, or none."))
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = field(default=None, metadata=_help("Default: the saved token or HF_TOKEN."))
    hub_private_repo: bool = False


def build_parser():
    """The `train.py` argument parser (transformers' `HfArgumentParser` over `TrainingArguments`)."""
    from transformers import HfArgumentParser

    return HfArgumentParser(
        TrainingArguments,
        prog="train.py",
        description="Train or fine-tune MIRNet with Accelerate (run it with `accelerate launch` for many processes).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def _read_config(parser, path: str) -> dict:
    import yaml

    if not Path(path).is_file():
        parser.error(f"--config {path!r} is not a file.")
    values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        parser.error(f"--config {path!r} must hold a mapping of flag names to values.")
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(values) - known)
    if unknown:
        parser.error(f"unknown key(s) in {path}: {', '.join(unknown)}; valid keys are the flag names.")
    # YAML 1.1 reads `mixed_precision: no` as False: a flag whose choices are words gets its word back.
    choices = {action.dest: action.choices for action in parser._actions if action.choices}
    for key, value in values.items():
        word = {False: "no", True: "yes"}.get(value) if isinstance(value, bool) else None
        if word in (choices.get(key) or ()):
            values[key] = word
    return values


def _check(parser, args: TrainingArguments) -> None:
    """The errors a run would otherwise meet minutes later, named with their valid values."""
    if args.output_dir is None:
        parser.error("--output_dir is required (on the command line or in --config).")
    if args.dataset_name is None:
        parser.error("--dataset_name is required (a Hub id or a local folder).")
    for name in POSITIVE_FIELDS:
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} is not valid; it must be at least 1.")
    for name in (item.name for item in fields(args) if item.name.endswith("_range")):  # (low, high) each
        values = getattr(args, name)
        if len(values) != 2 or values[0] > values[1]:
            parser.error(f"--{name} {' '.join(map(str, values))} is not valid; give two values, low then high.")
    if args.dataloader_num_workers is not None and args.dataloader_num_workers < 0:
        parser.error(f"--dataloader_num_workers {args.dataloader_num_workers} is not valid; it must be 0 or more.")
    if args.initial_step and not args.model_name_or_path:
        parser.error(f"--initial_step {args.initial_step} needs --model_name_or_path (the weights trained to it).")
    if not 0 <= args.initial_step < args.max_train_steps:
        parser.error(
            f"--initial_step {args.initial_step} is not valid; it must be 0 or more and below --max_train_steps "
            f"({args.max_train_steps})."
        )
    if not 0 <= args.lr_cycle_start < args.max_train_steps:
        parser.error(
            f"--lr_cycle_start {args.lr_cycle_start} is not valid; it must be 0 or more and below --max_train_steps "
            f"({args.max_train_steps})."
        )
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id (for example user/mirnet-my-denoiser).")


def parse_args(argv: list[str] | None = None) -> TrainingArguments:
    """Parses flags, with `--config FILE.yaml` supplying defaults. Unknown keys in the file are an error."""
    parser = build_parser()
    (args,) = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    if args.config:
        parser.set_defaults(**_read_config(parser, args.config))
        (args,) = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    _check(parser, args)
    return args


__all__ = ["TrainingArguments", "build_parser", "parse_args"]
