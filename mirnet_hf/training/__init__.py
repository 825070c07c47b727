"""Training with 🤗 Accelerate: one process or many, CPU or GPUs, from a Hub data set or a local folder.

`training/train.py` is a thin wrapper around `main`. The defaults are the paper's recipe: Charbonnier loss
(eps 1e-3, in the model), Adam (0.9, 0.999), learning rate 2e-4 annealed (cosine) to 1e-6, batch 16 of
128x128 patches with flips. Every setting is a flag (`TrainingArguments`), and `--config FILE.yaml` sets flags
from a file (the command line wins).

Speed: patches are cut and degraded in DataLoader worker processes (`--dataloader_num_workers`), steps can run
in bfloat16 autocast (`--mixed_precision bf16`, on CPUs too; `auto` uses it only where the hardware computes it
natively) and channels-last (`--channels_last`), and `--torch_compile` compiles the model.
`benchmarks/benchmark_training.py` measures each on a machine.

Checkpoints (`save_state`) go to `OUTPUT_DIR/checkpoint-STEP`; `--resume_from_checkpoint latest` continues
exactly (weights, optimiser, schedule, EMA, RNG and the position of every data stream), with or without
workers. SIGTERM and SIGINT save a checkpoint and exit. The final model is a `from_pretrained` folder with a
generated model card.

The parts, one concern each: `arguments` (the flags), `components` (model presets, data, degradation,
optimiser, schedule, weight average), `data_streams` (batches and their positions), `checkpoints` (save,
rotate, find, resume), `validation` (validation, progress and the metric log) and `trainer` (the wiring and
the step, with `TrainerCallback` hooks).
"""

from __future__ import annotations

import logging
import os

from .arguments import TrainingArguments, build_parser, parse_args
from .checkpoints import CheckpointManager, TrainState, find_checkpoint, rotate_checkpoints
from .components import (
    PRESETS,
    ExponentialMovingAverage,
    TrainingData,
    build_degradation,
    build_model,
    build_optimizer,
    build_scheduler,
    build_training_data,
)
from .data_streams import DataStreams
from .trainer import Trainer, TrainerCallback

logger = logging.getLogger("mirnet_hf.training")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `training/train.py`."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    trainer = Trainer(args)
    if not trainer.accelerator.is_main_process:
        logging.getLogger("mirnet_hf").setLevel(logging.WARNING)
    try:
        trainer.train()
    except Exception as error:
        from ..hub import PushError

        if isinstance(error, PushError):
            logger.error("%s", error)
            return 1
        raise
    return 0


__all__ = [
    "PRESETS",
    "CheckpointManager",
    "DataStreams",
    "ExponentialMovingAverage",
    "TrainState",
    "Trainer",
    "TrainerCallback",
    "TrainingArguments",
    "TrainingData",
    "build_degradation",
    "build_model",
    "build_optimizer",
    "build_parser",
    "build_scheduler",
    "build_training_data",
    "find_checkpoint",
    "main",
    "parse_args",
    "rotate_checkpoints",
]
