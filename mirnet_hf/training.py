"""Training with 🤗 Accelerate: one process or many, CPU or GPUs, from a Hub data set or a local folder.

`training/train.py` is a thin wrapper around `main`. The defaults are the paper's recipe: Charbonnier loss
(eps 1e-3, in the model), Adam (0.9, 0.999), learning rate 2e-4 annealed (cosine) to 1e-6, batch 16 of
128x128 patches with flips. Everything is a flag, and `--config FILE.yaml` sets flags from a file (the command
line wins).

Speed: patches are cut and degraded in DataLoader worker processes (`--dataloader_num_workers`), steps can run
in bfloat16 autocast (`--mixed_precision bf16`, on CPUs too) and channels-last (`--channels_last`), and
`--torch_compile` compiles the model. `benchmarks/benchmark_training.py` measures each on a machine.

Checkpoints (`save_state`) go to `OUTPUT_DIR/checkpoint-STEP`; `--resume_from_checkpoint latest` continues
exactly (weights, optimiser, schedule, EMA, RNG and the position of every data stream), with or without
workers. SIGTERM and SIGINT save a checkpoint and exit. The final model is a `from_pretrained` folder with a
generated model card.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import shlex
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .configuration_mirnet import MIRNetConfig
from .data import COUNT_NAMES, PatchBatches, RestorationPatches, load_image_dataset, resolve_columns
from .degradations import SHOT_NOISE_RANGE, Degradation
from .evaluation import EvaluationResult, evaluate, evaluation_pairs, format_table, level_label
from .modeling_mirnet import MIRNetForImageRestoration
from .tasks import SYNTHETIC_TASKS as TASKS
from .tasks import get_task, rescales

logger = logging.getLogger("mirnet_hf.training")

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's networks.
    "mirnet-v1": {"version": "v1"},
    "mirnet-v2": {"version": "v2"},
    # Our CPU-sized default: MIRNet-v2 blocks, 24 features, 2 RRGs x 2 MRBs (0.35 M parameters).
    "mirnet-v2-compact": {"version": "v2", "num_features": 24, "num_rrg": 2, "num_mrb": 2, "rrg_groups": [1, 2]},
    # The authors' v2 layout (4 RRGs with groups 1/2/4/4, 3 streams, 2 columns), which spandrel and the tools
    # built on it load, made small enough for CPUs: 32 features doubling per stream, one MRB per RRG (1.1 M
    # parameters, about 2.7 s per megapixel on 2 cores).
    "mirnet-v2-small": {"version": "v2", "num_features": 32, "channel_factor": 2.0, "num_rrg": 4, "num_mrb": 1},
    # For tests and smoke runs.
    "mirnet-tiny": {"version": "v1", "num_features": 8, "num_rrg": 1, "num_mrb": 1},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train or fine-tune MIRNet with Accelerate (run it with `accelerate launch` for many processes).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--config", default=None, help="YAML file of flag values (flag names without dashes); the command line wins.")
    group = parser.add_argument_group("task and data")
    group.add_argument("--task", choices=TASKS, default=None, help="Restoration task (required for clean-only data).")
    group.add_argument("--dataset_name", default=None, help="Hub id, local image folder or save_to_disk folder.")
    group.add_argument("--dataset_config_name", default=None)
    group.add_argument("--train_split", default="train")
    group.add_argument("--streaming", action="store_true", help="Stream the data (for data sets larger than disk).")
    group.add_argument("--data_kind", choices=("auto", "paired", "clean"), default="auto")
    group.add_argument("--input_column", default=None, help="Degraded image column of paired data (auto-detected).")
    group.add_argument("--target_column", default=None, help="Target (or clean image) column (auto-detected).")
    group.add_argument("--patch_size", type=int, default=128)
    group.add_argument("--no_flips", action="store_true", help="Turn off random horizontal and vertical flips.")
    group.add_argument("--small_images", choices=("pad", "skip"), default="pad")
    group.add_argument(
        "--dataloader_num_workers",
        type=int,
        default=None,
        help="Processes that cut and degrade patches (default: 1 on CPU, up to 8 per GPU process). A resumed run "
        "must use the same number.",
    )
    group.add_argument("--validation_dataset_name", default=None, help="Data for validation (default: none).")
    group.add_argument("--validation_split", default="validation")
    group.add_argument("--validation_level", type=float, default=None, help="Sigma / scale / exposure for clean data.")
    group.add_argument("--max_validation_images", type=int, default=8)
    group.add_argument("--num_validation_samples", type=int, default=2, help="Sample images logged per validation.")
    group = parser.add_argument_group("synthetic degradations (clean-only data)")
    group.add_argument("--sigma_range", type=float, nargs=2, default=[0.0, 55.0], help="Gaussian sigma (0-255).")
    group.add_argument("--poisson_probability", type=float, default=0.0, help="Share of Poisson-Gaussian noise.")
    group.add_argument(
        "--camera_probability", type=float, default=0.0, help="Share of camera-pipeline (real-like) noise."
    )
    group.add_argument(
        "--shot_noise_range",
        type=float,
        nargs=2,
        default=list(SHOT_NOISE_RANGE),
        help="Raw shot-noise gain of the camera pipeline (log-uniform; read noise follows it).",
    )
    group.add_argument("--scales", type=int, nargs="+", default=[2], help="Super-resolution scales (2, 3, 4).")
    group.add_argument("--blur_probability", type=float, default=0.0)
    group.add_argument(
        "--chroma_blur_range",
        type=float,
        nargs=2,
        default=[0.0, 0.0],
        help="Camera noise: the camera's chroma denoising, a blur of the colour planes (pixels; 0 0: off).",
    )
    group.add_argument(
        "--jpeg_probability", type=float, default=0.0, help="Share of JPEG inputs (super-resolution, camera noise)."
    )
    group.add_argument("--jpeg_quality_range", type=int, nargs=2, default=[60, 95])
    group.add_argument("--exposure_range", type=float, nargs=2, default=[0.05, 0.3])
    group.add_argument("--gamma_range", type=float, nargs=2, default=[1.2, 2.2])
    group.add_argument(
        "--low_light_shot_noise_range",
        type=float,
        nargs=2,
        default=[1e-4, 3e-3],
        help="Raw shot-noise gain of low-light camera shots (with --camera_probability).",
    )
    group.add_argument(
        "--color_cast", type=float, default=0.0, help="Low light: white balance off by up to this factor (0.3: 30%%)."
    )
    group = parser.add_argument_group("model")
    group.add_argument("--model_name_or_path", default=None, help="Checkpoint to fine-tune (folder or Hub id).")
    group.add_argument(
        "--config_name", default="mirnet-v2-compact", help=f"Preset ({', '.join(PRESETS)}) or a config.json path."
    )
    group.add_argument("--gradient_checkpointing", action="store_true")
    group.add_argument("--channels_last", action="store_true", help="Channels-last memory format (oneDNN, cuDNN).")
    group.add_argument(
        "--torch_compile", action="store_true", help="Compile the model with torch.compile (inductor), via Accelerate."
    )
    group = parser.add_argument_group("optimisation (defaults: the paper's recipe)")
    group.add_argument("--output_dir", required=False, default=None)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--max_train_steps", type=int, default=1000)
    group.add_argument("--train_batch_size", type=int, default=16, help="Per process.")
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--learning_rate", type=float, default=2e-4)
    group.add_argument("--min_learning_rate", type=float, default=1e-6)
    group.add_argument("--lr_scheduler", choices=("cosine", "constant"), default="cosine")
    group.add_argument("--lr_warmup_steps", type=int, default=0)
    group.add_argument("--adam_beta1", type=float, default=0.9)
    group.add_argument("--adam_beta2", type=float, default=0.999)
    group.add_argument("--adam_epsilon", type=float, default=1e-8)
    group.add_argument("--adam_weight_decay", type=float, default=0.0)
    group.add_argument("--max_grad_norm", type=float, default=None, help="Clip gradients to this norm (off).")
    group.add_argument("--use_ema", action="store_true", help="Keep an exponential moving average of the weights.")
    group.add_argument("--ema_decay", type=float, default=0.999)
    group.add_argument(
        "--mixed_precision", choices=("no", "fp16", "bf16"), default=None, help="Default: accelerate's."
    )
    group = parser.add_argument_group("checkpoints, logging and the Hub")
    group.add_argument("--checkpointing_steps", type=int, default=500)
    group.add_argument("--checkpoints_total_limit", type=int, default=3)
    group.add_argument("--resume_from_checkpoint", default=None, help="A checkpoint folder, or 'latest'.")
    group.add_argument("--validation_steps", type=int, default=500)
    group.add_argument("--logging_steps", type=int, default=10)
    group.add_argument("--report_to", default="tensorboard", help="tensorboard, wandb, all, or none.")
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", default=None)
    group.add_argument("--hub_token", default=None, help="Default: the saved token or HF_TOKEN.")
    group.add_argument("--hub_private_repo", action="store_true")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses flags, with `--config FILE.yaml` supplying defaults. Unknown keys in the file are an error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        import yaml

        path = Path(args.config)
        if not path.is_file():
            parser.error(f"--config {args.config!r} is not a file.")
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            parser.error(f"--config {args.config!r} must hold a mapping of flag names to values.")
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            parser.error(f"unknown key(s) in {args.config}: {', '.join(unknown)}; valid keys are the flag names.")
        parser.set_defaults(**values)
        args = parser.parse_args(argv)
    if args.output_dir is None:
        parser.error("--output_dir is required (on the command line or in --config).")
    if args.dataset_name is None:
        parser.error("--dataset_name is required (a Hub id or a local folder).")
    for name in ("max_train_steps", "train_batch_size", "gradient_accumulation_steps", "checkpointing_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} is not valid; it must be at least 1.")
    if args.dataloader_num_workers is not None and args.dataloader_num_workers < 0:
        parser.error(f"--dataloader_num_workers {args.dataloader_num_workers} is not valid; it must be 0 or more.")
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id (for example user/mirnet-my-denoiser).")
    return args


def build_model(args: argparse.Namespace) -> MIRNetForImageRestoration:
    """The model to train: a checkpoint to fine-tune, a preset, or a config.json."""
    if args.model_name_or_path:
        model = MIRNetForImageRestoration.from_pretrained(args.model_name_or_path)
        if args.task and model.config.task != args.task:
            logger.warning("fine-tuning a %s model for %s", model.config.task, args.task)
            model.config.task = args.task
        return model
    if args.config_name in PRESETS:
        config = MIRNetConfig(**PRESETS[args.config_name])
    elif Path(args.config_name).is_file():
        config = MIRNetConfig.from_json_file(args.config_name)
    else:
        raise ValueError(f"--config_name {args.config_name!r} is neither a preset ({', '.join(PRESETS)}) nor a file.")
    if args.task:
        config.task = args.task
    if rescales(config.task):
        config.upscale = min(args.scales)
    return MIRNetForImageRestoration(config)


def build_degradation(args: argparse.Namespace, task: str) -> Degradation:
    return Degradation(
        task,
        sigma_range=tuple(args.sigma_range),
        poisson_probability=args.poisson_probability,
        camera_probability=args.camera_probability,
        shot_noise_range=tuple(args.shot_noise_range),
        chroma_blur_range=tuple(args.chroma_blur_range),
        jpeg_quality_range=tuple(args.jpeg_quality_range),
        scales=tuple(args.scales),
        blur_probability=args.blur_probability,
        jpeg_probability=args.jpeg_probability,
        exposure_range=tuple(args.exposure_range),
        gamma_range=tuple(args.gamma_range),
        low_light_shot_noise_range=tuple(args.low_light_shot_noise_range),
        color_cast=args.color_cast,
    )


def build_scheduler(args: argparse.Namespace, optimizer: torch.optim.Optimizer):
    """transformers' schedules: linear warm-up, then cosine annealing to `--min_learning_rate` (or constant)."""
    from transformers import get_scheduler

    if args.lr_scheduler == "cosine":
        name, extra = "cosine_with_min_lr", {"min_lr": args.min_learning_rate}
    else:
        name, extra = "constant_with_warmup", {}
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=args.lr_warmup_steps,
        num_training_steps=args.max_train_steps,
        scheduler_specific_kwargs=extra,
    )


def default_num_workers(device: torch.device, processes_per_machine: int) -> int:
    """One worker on a CPU (it takes the data work off the training threads; more would compete with them for
    cores); on GPUs up to 8 per process, as the machine's cores allow."""
    if device.type == "cpu":
        return 1
    return max(1, min(8, (os.cpu_count() or 2) // max(1, processes_per_machine) - 1))


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


@dataclass
class TrainState:
    """What a checkpoint needs beyond accelerate's own: the step, each process's data position and counters.

    `positions[rank]` is `[batches read, epoch, index, epoch, index, ...]`: how many batches that process has
    read, then the last example read from each of its data streams.
    """

    step: int = 0
    positions: list = field(default_factory=list)
    images_seen: int = 0
    train_seconds: float = 0.0

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "positions": self.positions,
            "images_seen": self.images_seen,
            "train_seconds": self.train_seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.positions = [list(map(int, position)) for position in state["positions"]]
        self.images_seen = int(state["images_seen"])
        self.train_seconds = float(state["train_seconds"])


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag checked between steps (the run then saves and exits)."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        for number in (signal.SIGTERM, signal.SIGINT):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame):
        self.signal = number

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM and SIGINT to the main process, which saves a checkpoint and exits:
    Ctrl-C and job schedulers signal the whole process group, and a worker killed by the signal would make
    the DataLoader raise before the checkpoint is written."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def find_checkpoint(output_dir: Path, which: str) -> Path | None:
    """`which` is a folder or 'latest' (None when no checkpoint exists yet, so a first run can use it too)."""
    if which != "latest":
        path = Path(which)
        if not path.is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {which!r} is not a folder (or use 'latest').")
        return path
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[-1]))
    complete = [path for path in checkpoints if (path / "COMPLETE").is_file()]
    return complete[-1] if complete else None


def rotate_checkpoints(output_dir: Path, limit: int | None) -> None:
    if not limit:
        return
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[-1]))
    for old in checkpoints[:-limit]:
        shutil.rmtree(old, ignore_errors=True)


def hardware_description(accelerator) -> str:
    device = accelerator.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    return f"{accelerator.num_processes} x {name} (torch {torch.__version__})"


class Trainer:
    """Runs one training job described by parsed flags (`parse_args`)."""

    def __init__(self, args: argparse.Namespace):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        self.args = args
        self.output_dir = Path(args.output_dir)
        report_to = None if args.report_to == "none" else args.report_to
        self.accelerator = Accelerator(
            mixed_precision=args.mixed_precision,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            dynamo_backend="inductor" if args.torch_compile else "no",
            log_with=report_to,
            project_config=ProjectConfiguration(
                project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")
            ),
        )
        accelerator = self.accelerator
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
        if not accelerator.is_main_process:
            logging.getLogger("mirnet_hf").setLevel(logging.WARNING)
        set_seed(args.seed)
        self.model = build_model(args)
        self.task = self.model.config.task
        if args.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

        # The main process builds the data set cache first; the others then read it (no concurrent writers).
        with accelerator.main_process_first():
            dataset = load_image_dataset(
                args.dataset_name,
                args.train_split,
                dataset_config_name=args.dataset_config_name,
                streaming=args.streaming,
            )
        self.columns = resolve_columns(
            list(dataset.column_names or []), args.input_column, args.target_column, args.data_kind
        )
        if not self.columns.paired and self.task not in TASKS:
            raise ValueError(
                f"clean-only data needs --task (one of {', '.join(TASKS)}); the model's is {self.task!r}."
            )
        self.degradation = None if self.columns.paired else build_degradation(args, self.task)
        self.patches = RestorationPatches(
            dataset,
            self.columns,
            self.degradation,
            patch_size=args.patch_size,
            flips=not args.no_flips,
            small_images=args.small_images,
            seed=args.seed,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
        )

        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
            weight_decay=args.adam_weight_decay,
        )
        # Not passed to prepare(): accelerate would step it once per process per step.
        self.scheduler = build_scheduler(args, self.optimizer)
        self.model, self.optimizer = accelerator.prepare(self.model, self.optimizer)
        self.ema = (
            ExponentialMovingAverage(accelerator.unwrap_model(self.model), args.ema_decay) if args.use_ema else None
        )
        self.state = TrainState()
        accelerator.register_for_checkpointing(self.scheduler, self.state)
        if self.ema is not None:
            accelerator.register_for_checkpointing(self.ema)
        with accelerator.main_process_first():
            self.validation = self._validation_data()
        self.history_path = self.output_dir / "logs" / "history.jsonl"
        self.num_workers = args.dataloader_num_workers
        if self.num_workers is None:
            local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
            self.num_workers = default_num_workers(accelerator.device, local_processes)
        self.num_streams = max(1, self.num_workers)
        # What this process has read: batches, and the last (epoch, index) of each data stream ((0, -1): none).
        self.batches_read = 0
        self.stream_positions = [(0, -1)] * self.num_streams
        self.stream_counts = [[0] * len(COUNT_NAMES) for _ in range(self.num_streams)]
        self.last_validation: list[tuple[str, EvaluationResult]] = []
        self.last_validation_step = -1

    # --- data -------------------------------------------------------------------------------------------
    def _validation_data(self):
        args = self.args
        if not args.validation_dataset_name:
            return None
        dataset = load_image_dataset(args.validation_dataset_name, args.validation_split)
        columns = resolve_columns(list(dataset.column_names), args.input_column, args.target_column, args.data_kind)
        level = args.validation_level
        if level is None and not columns.paired:
            level = get_task(self.task).validation_level or float(max(args.scales))
        return dataset, columns, level

    # --- checkpoints -----------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        accelerator = self.accelerator
        flat = [self.batches_read, *(value for position in self.stream_positions for value in position)]
        mine = torch.tensor(flat, device=accelerator.device)
        self.state.positions = accelerator.gather(mine[None]).cpu().tolist()
        path = self.output_dir / f"checkpoint-{self.state.step}"
        if accelerator.is_main_process and path.exists():
            shutil.rmtree(path)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(path))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (path / "COMPLETE").write_text(json.dumps({"step": self.state.step}))  # only complete ones resume
            rotate_checkpoints(self.output_dir, self.args.checkpoints_total_limit)
        accelerator.wait_for_everyone()
        return path

    def resume(self) -> None:
        if not self.args.resume_from_checkpoint:
            return
        path = find_checkpoint(self.output_dir, self.args.resume_from_checkpoint)
        if path is None:
            logger.info("no checkpoint in %s yet: starting from scratch", self.output_dir)
            return
        self.accelerator.load_state(str(path))
        positions = self.state.positions
        if len(positions) != self.accelerator.num_processes:
            raise RuntimeError(
                f"{path} was saved by {len(positions)} processes; resume it with the same number "
                f"(now {self.accelerator.num_processes})."
            )
        mine = positions[self.accelerator.process_index]
        if len(mine) != 1 + 2 * self.num_streams:
            saved = max(1, (len(mine) - 1) // 2)
            workers = str(saved) if saved > 1 else "0 or 1"
            raise RuntimeError(
                f"{path} was saved with {saved} data stream(s) (--dataloader_num_workers {workers}); resume it with "
                f"the same number of workers (now {self.num_workers})."
            )
        self.batches_read = mine[0]
        self.stream_positions = [tuple(mine[1 + 2 * k : 3 + 2 * k]) for k in range(self.num_streams)]
        logger.info("resumed from %s at step %d", path, self.state.step)

    # --- validation ------------------------------------------------------------------------------------
    def validate(self) -> list[tuple[str, EvaluationResult]]:
        if self.validation is None or not self.accelerator.is_main_process:
            return []
        from .inference import MIRNetRestorer

        dataset, columns, level = self.validation
        model = self.ema.model if self.ema is not None else self.accelerator.unwrap_model(self.model)
        was_training = model.training
        restorer = MIRNetRestorer(
            model, device=self.accelerator.device, precision="float32", channels_last=False, max_pixels=None
        )
        samples = []

        def restore(image, scale):
            restored = restorer(image, upscale=scale)
            if len(samples) < self.args.num_validation_samples:
                samples.append(restored)
            return restored

        pairs = list(evaluation_pairs(dataset, columns, self.task, level, max_images=self.args.max_validation_images))
        super_resolution = rescales(self.task)
        result = evaluate(restore, pairs, y_channel=super_resolution)
        model.train(was_training)
        name = Path(str(self.args.validation_dataset_name)).name or str(self.args.validation_dataset_name)
        setting = level_label(self.task, pairs[0].scale if pairs and rescales(self.task) else level)
        label = f"{name} ({setting})"
        self._log(
            {
                "validation/psnr": result.psnr,
                "validation/ssim": result.ssim,
                "validation/input_psnr": result.baseline_psnr,
                "validation/input_ssim": result.baseline_ssim,
            }
        )
        self._log_images(pairs, samples)
        logger.info("step %d validation:\n%s", self.state.step, format_table([(label, result)]))
        self.last_validation, self.last_validation_step = [(label, result)], self.state.step
        return self.last_validation

    def _log_images(self, pairs, samples) -> None:
        if not samples or "tensorboard" not in str(self.args.report_to) and self.args.report_to != "all":
            return
        try:
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
        except Exception:
            return
        for index, (pair, restored) in enumerate(zip(pairs, samples)):
            strip = np.concatenate([pair.baseline, np.clip(restored, 0, 1), pair.target], axis=1)
            writer.add_image(f"validation/{index}_input_output_target", strip, self.state.step, dataformats="HWC")

    # --- logging ---------------------------------------------------------------------------------------
    def _log(self, values: dict[str, float]) -> None:
        self.accelerator.log(values, step=self.state.step)
        if self.accelerator.is_main_process:
            with self.history_path.open("a", encoding="utf-8") as history:
                history.write(json.dumps({"step": self.state.step, **values}) + "\n")

    # --- the loop --------------------------------------------------------------------------------------
    def train(self) -> Path:
        from tqdm.auto import tqdm

        args, accelerator = self.args, self.accelerator
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.history_path.parent.mkdir(parents=True, exist_ok=True)
        self.resume()
        if accelerator.is_main_process:
            accelerator.init_trackers("mirnet", config={k: str(v) for k, v in vars(args).items()})
        batches = iter(self._data_loader())
        images_per_step = args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
        progress = tqdm(
            total=args.max_train_steps,
            initial=self.state.step,
            disable=not accelerator.is_local_main_process,
            desc="training",
            unit="step",
        )
        window_start, window_images = time.perf_counter(), 0
        stop = StopRequest()
        with stop:
            while self.state.step < args.max_train_steps:
                step_started = time.perf_counter()
                loss = self.training_step(batches)
                self.state.step += 1
                self.state.images_seen += images_per_step
                self.state.train_seconds += time.perf_counter() - step_started
                window_images += images_per_step
                lr = self.scheduler.get_last_lr()[0]
                if self.state.step % args.logging_steps == 0 or self.state.step == args.max_train_steps:
                    elapsed = time.perf_counter() - window_start
                    throughput = window_images / elapsed if elapsed > 0 else float("nan")
                    self._log({"train/loss": loss, "train/learning_rate": lr, "train/images_per_second": throughput})
                    progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{throughput:.1f}")
                    window_start, window_images = time.perf_counter(), 0
                else:
                    self._log({"train/loss": loss})
                progress.update(1)
                if args.validation_steps and self.state.step % args.validation_steps == 0:
                    self.validate()
                stopping = self._stop_requested(stop)
                last_step = self.state.step == args.max_train_steps  # the final weights are a checkpoint too
                if self.state.step % args.checkpointing_steps == 0 or stopping or last_step:
                    path = self.save_checkpoint()
                    if stopping:
                        progress.close()
                        logger.warning(
                            "stopped by signal %s at step %d; saved %s (resume with --resume_from_checkpoint latest)",
                            stop.signal,
                            self.state.step,
                            path,
                        )
                        accelerator.end_training()
                        return path
        progress.close()
        if self.data_counts():
            logger.warning("data problems on process %d: %s", accelerator.process_index, self.data_counts())
        return self.finish()

    def _data_loader(self) -> torch.utils.data.DataLoader:
        """Batches from worker processes, continuing after the last example each data stream gave."""
        starts = [(epoch, index + 1) for epoch, index in self.stream_positions]
        batches = PatchBatches(
            self.patches,
            self.args.train_batch_size,
            num_streams=self.num_streams,
            starts=starts,
            first_stream=self.batches_read,
        )
        workers = self.num_workers
        return torch.utils.data.DataLoader(
            batches,
            batch_size=None,
            num_workers=workers,
            prefetch_factor=2 if workers else None,
            worker_init_fn=ignore_stop_signals if workers else None,
            pin_memory=self.accelerator.device.type == "cuda",
        )

    def _read(self, batches) -> dict[str, torch.Tensor]:
        """The next batch, recording where its data stream stands (for an exact resume)."""
        batch = next(batches)
        stream = int(batch["stream"])
        self.stream_positions[stream] = tuple(batch["position"].tolist())
        self.stream_counts[stream] = batch["counts"].tolist()
        self.batches_read += 1
        return batch

    def data_counts(self) -> dict[str, int]:
        """Corrupt, skipped and padded images met so far by this process (the non-zero ones)."""
        totals = [sum(counts[k] for counts in self.stream_counts) for k in range(len(COUNT_NAMES))]
        return {name: total for name, total in zip(COUNT_NAMES, totals) if total}

    def training_step(self, batches) -> float:
        """One optimiser step over `gradient_accumulation_steps` micro-batches (Accelerate's `accumulate`);
        returns the mean loss of all processes."""
        args, accelerator, model = self.args, self.accelerator, self.model
        model.train()
        total = torch.zeros((), device=accelerator.device)
        for _ in range(args.gradient_accumulation_steps):
            batch = self._read(batches)
            inputs = batch["pixel_values"].to(accelerator.device, non_blocking=True)
            labels = batch["labels"].to(accelerator.device, non_blocking=True)
            if args.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = model(pixel_values=inputs, labels=labels).loss
                accelerator.backward(loss)  # divides by the accumulation steps
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                self.optimizer.step()  # only on the last micro-batch
                self.optimizer.zero_grad(set_to_none=True)
            total += loss.detach().float()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(accelerator.unwrap_model(model))
        return accelerator.reduce(total / args.gradient_accumulation_steps, reduction="mean").item()

    def _stop_requested(self, stop: StopRequest) -> bool:
        """True on every process when any process got SIGTERM/SIGINT."""
        flag = torch.tensor([1.0 if stop.signal is not None else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    # --- the result ------------------------------------------------------------------------------------
    def finish(self) -> Path:
        """Saves the final `from_pretrained` folder with its model card, then pushes it if asked."""
        from .model_card import write_trained_model_card
        from .model_folder import save_model_folder

        args, accelerator = self.args, self.accelerator
        accelerator.wait_for_everyone()
        evaluations = self.last_validation if self.last_validation_step == self.state.step else self.validate()
        if accelerator.is_main_process:
            model = self.ema.model if self.ema is not None else accelerator.unwrap_model(self.model)
            model = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval()
            training = self.training_summary()
            save_model_folder(
                model,
                self.output_dir,
                card=lambda folder: write_trained_model_card(
                    folder,
                    model,
                    training=training,
                    evaluations=[(label, result) for label, result in evaluations],
                    dataset=str(args.dataset_name),
                    model_name=args.hub_model_id or self.output_dir.name,
                ),
            )
            logger.info("saved the model to %s", self.output_dir)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        if args.push_to_hub and accelerator.is_main_process:
            from .hub import push_folder

            url = push_folder(self.output_dir, args.hub_model_id, token=args.hub_token, private=args.hub_private_repo)
            logger.info("pushed to %s", url)
        return self.output_dir

    def training_summary(self) -> dict[str, str]:
        args = self.args
        hours = self.state.train_seconds / 3600
        schedule = f"cosine annealing to {args.min_learning_rate:g}" if args.lr_scheduler == "cosine" else "constant"
        recipe = [
            f"Charbonnier loss (eps 1e-3); Adam ({args.adam_beta1}, {args.adam_beta2})",
            f"learning rate {args.learning_rate:g}, {schedule}",
            f"batch {args.train_batch_size} x {args.gradient_accumulation_steps} accumulation x "
            f"{self.accelerator.num_processes} processes of {args.patch_size}x{args.patch_size} patches"
            + ("" if args.no_flips else " with flips"),
            f"mixed precision {self.accelerator.mixed_precision}",
        ]
        if args.lr_warmup_steps:
            recipe.append(f"{args.lr_warmup_steps} warm-up steps")
        if args.max_grad_norm:
            recipe.append(f"gradient clipping at {args.max_grad_norm:g}")
        if args.use_ema:
            recipe.append(f"EMA of weights (decay {args.ema_decay:g})")
        data_kind = "paired" if self.columns.paired else "clean images, " + self.degradation.describe()
        summary = {
            "task": self.task,
            "data": f"{args.dataset_name} ({data_kind})",
            "recipe": "; ".join(recipe),
            "steps": f"{self.state.step} ({self.state.images_seen:,} patches)",
            "training time": f"{hours:.2f} h",
            "hardware": hardware_description(self.accelerator),
            "command": "python " + " ".join(shlex.quote(part) for part in sys.argv),
        }
        if self.data_counts():
            summary["skipped or padded images"] = ", ".join(f"{k}: {v}" for k, v in self.data_counts().items())
        return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point of `training/train.py`."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    trainer = Trainer(args)
    try:
        trainer.train()
    except Exception as error:
        from .hub import PushError

        if isinstance(error, PushError):
            logger.error("%s", error)
            return 1
        raise
    return 0


__all__ = ["main", "parse_args", "build_parser", "Trainer", "PRESETS", "ExponentialMovingAverage", "build_scheduler"]
