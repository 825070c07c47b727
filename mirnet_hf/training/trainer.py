"""The trainer: wires the parts (`components`, `data_streams`, `checkpoints`, `validation`) and runs the steps."""

from __future__ import annotations

import copy
import logging
import os
import shlex
import signal
import sys
import time
import warnings
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch

from ..evaluation import EvaluationResult
from .arguments import TrainingArguments
from .checkpoints import CheckpointManager, TrainState
from .components import (
    ExponentialMovingAverage,
    build_model,
    build_optimizer,
    build_scheduler,
    build_training_data,
    default_num_workers,
    hardware_description,
    resolve_mixed_precision,
)
from .data_streams import DataStreams
from .validation import MetricLog, TrainingProgress, Validator

logger = logging.getLogger("mirnet_hf.training")


class TrainerCallback:
    """Hooks into a run without touching the trainer: subclass it, override what you need, and pass it as
    `Trainer(args, callbacks=[...])`. Each method gets the trainer; none may change the step's data."""

    def on_batch(self, trainer: Trainer, batch: dict[str, torch.Tensor]) -> None:
        """A batch was read (`examples` holds the (epoch, data set row) of each of its patches)."""

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        """An optimiser step finished (`trainer.state.step` is its number)."""

    def on_validation(self, trainer: Trainer, results: list[tuple[str, EvaluationResult]]) -> None:
        """A validation finished (main process)."""


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


class Trainer:
    """Runs one training job described by `TrainingArguments` (`parse_args`), on one process or many."""

    def __init__(self, args: TrainingArguments, callbacks: list[TrainerCallback] | None = None):
        from accelerate import Accelerator, PartialState
        from accelerate.utils import ProjectConfiguration, parse_flag_from_env, set_seed

        self.args, self.callbacks = args, list(callbacks or [])
        self.output_dir = Path(args.output_dir)
        # The process's device decides what `auto` means. Accelerate's shared state, made here as the Accelerator
        # would make it (ACCELERATE_USE_CPU is read by the Accelerator's state, not by PartialState itself; without
        # it two CPU processes would each start alone), is then reused by the Accelerator.
        state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
        mixed_precision = resolve_mixed_precision(args.mixed_precision, state.device)
        self.accelerator = accelerator = Accelerator(
            mixed_precision=mixed_precision,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            dynamo_backend="inductor" if args.torch_compile else "no",
            log_with=None if args.report_to == "none" else args.report_to,
            project_config=ProjectConfiguration(
                project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")
            ),
        )
        set_seed(args.seed)
        model = build_model(args)
        self.task = model.config.task
        if args.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)

        # The main process builds the data set cache first; the others then read it (no concurrent writers).
        with accelerator.main_process_first():
            self.data = build_training_data(
                args,
                self.task,
                accelerator.process_index,
                accelerator.num_processes,
                input_scale=model.config.model_upscale,
            )
        workers = args.dataloader_num_workers
        if workers is None:
            local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
            workers = default_num_workers(accelerator.device, local_processes)
        self.streams = DataStreams(
            self.data.patches, args.train_batch_size, workers, accelerator.device.type == "cuda"
        )

        optimizer = build_optimizer(args, model)
        # Not passed to prepare(): accelerate would step it once per process per step.
        self.scheduler = build_scheduler(args, optimizer)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.ema = (
            ExponentialMovingAverage(accelerator.unwrap_model(self.model), args.ema_decay) if args.use_ema else None
        )
        self.state = TrainState()
        # The order is the checkpoint's layout (custom_checkpoint_0, 1, 2): keep it.
        accelerator.register_for_checkpointing(self.scheduler, self.state)
        if self.ema is not None:
            accelerator.register_for_checkpointing(self.ema)
        self.checkpoints = CheckpointManager(
            accelerator, self.output_dir, self.state, self.streams, args.checkpoints_total_limit
        )
        self.log = MetricLog(accelerator, self.output_dir / "logs" / "history.jsonl")
        with accelerator.main_process_first():
            self.validator = Validator(args, self.task, accelerator.device, self.log)

    @property
    def averaged_model(self) -> torch.nn.Module:
        """The weights to validate and ship: the average when the run keeps one."""
        return self.ema.model if self.ema is not None else self.accelerator.unwrap_model(self.model)

    def validate(self) -> list[tuple[str, EvaluationResult]]:
        if not self.accelerator.is_main_process:
            return []
        results = self.validator(self.averaged_model, self.state.step)
        for callback in self.callbacks:
            callback.on_validation(self, results)
        return results

    def train(self) -> Path:
        """Runs to `max_train_steps` (resuming first when asked), then saves the model; on SIGTERM/SIGINT it
        saves a checkpoint and returns its path instead."""
        args, accelerator, state = self.args, self.accelerator, self.state
        self.output_dir.mkdir(parents=True, exist_ok=True)
        images_per_step = args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
        if self.checkpoints.resume(args.resume_from_checkpoint, args.initial_step) is None and args.initial_step:
            self.continue_at(args.initial_step, images_per_step)
        if accelerator.is_main_process:
            accelerator.init_trackers("mirnet", config={k: str(v) for k, v in asdict(args).items()})
        batches = iter(self.streams.loader())
        enabled = accelerator.is_local_main_process
        progress = TrainingProgress(args.max_train_steps, state.step, args.logging_steps, enabled)
        with StopRequest() as stop:
            while state.step < args.max_train_steps:
                step_started = time.perf_counter()
                loss = self.training_step(batches)
                state.step += 1
                state.images_seen += images_per_step
                state.train_seconds += time.perf_counter() - step_started
                learning_rate = self.scheduler.get_last_lr()[0]
                self.log.log(progress.update(state.step, loss, learning_rate, images_per_step), state.step)
                for callback in self.callbacks:
                    callback.on_step_end(self, loss)
                if args.validation_steps and state.step % args.validation_steps == 0:
                    self.validate()
                stopping = self._stop_requested(stop)
                # The final weights are a checkpoint too.
                if state.step % args.checkpointing_steps == 0 or stopping or state.step == args.max_train_steps:
                    path = self.checkpoints.save()
                    if stopping:
                        progress.close()
                        logger.warning(
                            "stopped by signal %s at step %d; saved %s (resume with --resume_from_checkpoint latest)",
                            stop.signal,
                            state.step,
                            path,
                        )
                        accelerator.end_training()
                        return path
        progress.close()
        if self.streams.counts():
            logger.warning("data problems on process %d: %s", accelerator.process_index, self.streams.counts())
        return self.finish()

    def continue_at(self, step: int, images_per_step: int) -> None:
        """Continues a run from its weights alone (`--initial_step`): the step count and the schedule move on to
        `step`, as if the run had got there; the patches seen are counted at this run's batch size."""
        self.state.step = step
        self.state.images_seen = step * images_per_step
        with warnings.catch_warnings():  # torch warns of a schedule stepped before the optimiser: intended here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(step):
                self.scheduler.step()
        logger.info("continuing from %s at step %d", self.args.model_name_or_path, step)

    def training_step(self, batches) -> float:
        """One optimiser step over `gradient_accumulation_steps` micro-batches (Accelerate's `accumulate`);
        returns the mean loss of all processes."""
        args, accelerator, model = self.args, self.accelerator, self.model
        model.train()
        total = torch.zeros((), device=accelerator.device)
        for _ in range(args.gradient_accumulation_steps):
            batch = self.streams.read(batches)
            for callback in self.callbacks:
                callback.on_batch(self, batch)
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

    def finish(self) -> Path:
        """Saves the final `from_pretrained` folder with its model card, then pushes it if asked."""
        from ..model_card import training_details, write_trained_model_card
        from ..model_folder import save_model_folder

        args, accelerator = self.args, self.accelerator
        accelerator.wait_for_everyone()
        evaluations = self.validator.last if self.validator.last_step == self.state.step else self.validate()
        if accelerator.is_main_process:
            model = copy.deepcopy(self.averaged_model).to("cpu", memory_format=torch.contiguous_format).eval()
            training = training_details(
                args,
                task=self.task,
                data=f"{args.dataset_name} ({self.data.describe()})",
                steps=self.state.step,
                images_seen=self.state.images_seen,
                train_seconds=self.state.train_seconds,
                processes=accelerator.num_processes,
                mixed_precision=accelerator.mixed_precision,
                hardware=hardware_description(accelerator),
                data_problems=self.streams.counts(),
                command="python " + " ".join(shlex.quote(part) for part in sys.argv),
            )
            name = args.hub_model_id or self.output_dir.name
            card = partial(write_trained_model_card, model=model, training=training, evaluations=evaluations,
                           dataset=str(args.dataset_name), model_name=name)  # fmt: skip
            save_model_folder(model, self.output_dir, card=card)
            logger.info("saved the model to %s", self.output_dir)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        if args.push_to_hub and accelerator.is_main_process:
            from ..hub import push_folder

            url = push_folder(self.output_dir, args.hub_model_id, token=args.hub_token, private=args.hub_private_repo)
            logger.info("pushed to %s", url)
        return self.output_dir


__all__ = ["StopRequest", "Trainer", "TrainerCallback"]
