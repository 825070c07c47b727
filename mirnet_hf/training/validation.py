"""Validation during training, and the run's metric log (the trackers and `logs/history.jsonl`)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..data import load_image_dataset, resolve_columns
from ..evaluation import REAL_GRAIN, EvaluationResult, evaluate, evaluation_pairs, format_table, level_label
from ..tasks import get_task, rescales
from .arguments import TrainingArguments

logger = logging.getLogger("mirnet_hf.training")


class MetricLog:
    """Sends metrics to Accelerate's trackers and appends them to `history.jsonl` (main process), the record
    that model cards plot and tests compare."""

    def __init__(self, accelerator, history_path: Path):
        self.accelerator, self.history_path = accelerator, Path(history_path)

    def log(self, values: dict[str, float], step: int) -> None:
        self.accelerator.log(values, step=step)
        if self.accelerator.is_main_process:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            with self.history_path.open("a", encoding="utf-8") as history:
                history.write(json.dumps({"step": step, **values}) + "\n")

    def log_images(self, strips: list[np.ndarray], step: int) -> None:
        """Input | output | target strips, to TensorBoard when it is a tracker."""
        try:
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
        except Exception:
            return
        if not hasattr(writer, "add_image"):
            return
        for index, strip in enumerate(strips):
            writer.add_image(f"validation/{index}_input_output_target", strip, step, dataformats="HWC")


class TrainingProgress:
    """The progress bar, and the loss, learning rate and throughput to log after each step (the last two every
    `logging_steps` steps, measured over that window)."""

    def __init__(self, total: int, initial: int, logging_steps: int, enabled: bool = True):
        from tqdm.auto import tqdm

        self.total, self.logging_steps = total, logging_steps
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, desc="training", unit="step")
        self.window_start, self.window_images = time.perf_counter(), 0

    def update(self, step: int, loss: float, learning_rate: float, images: int) -> dict[str, float]:
        self.window_images += images
        values = {"train/loss": loss}
        if step % self.logging_steps == 0 or step == self.total:
            throughput = self.window_images / max(time.perf_counter() - self.window_start, 1e-9)
            values.update({"train/learning_rate": learning_rate, "train/images_per_second": throughput})
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{learning_rate:.2e}", img_s=f"{throughput:.1f}")
            self.window_start, self.window_images = time.perf_counter(), 0
        self.bar.update(1)
        return values

    def close(self) -> None:
        self.bar.close()


class Validator:
    """Measures a model on the validation data (PSNR/SSIM of input and output, as `evaluation` does) and logs
    the result; the weight average is measured when the run keeps one.

    Clean data is degraded at `--validation_level` (logged as `validation/psnr`, the curve model cards plot)
    and at each of `--extra_validation_levels` (logged as `validation/<setting>/psnr`, e.g.
    `validation/exposure 0.2/psnr`), so one run shows how every level it serves moves; a denoising run with
    `--validate_real_grain` is also measured on real-like grain (`validation/real grain/psnr`).
    """

    def __init__(self, args: TrainingArguments, task: str, device, log: MetricLog):
        self.args, self.task, self.device, self.log = args, task, device, log
        self.data = None
        if args.validation_dataset_name:
            dataset = load_image_dataset(args.validation_dataset_name, args.validation_split)
            columns = resolve_columns(
                list(dataset.column_names), args.input_column, args.target_column, args.data_kind
            )
            levels = [args.validation_level]
            if not columns.paired:
                levels[0] = levels[0] if levels[0] is not None else default_validation_level(task, args.scales)
                levels += [level for level in args.extra_validation_levels if level != levels[0]]
                if args.validate_real_grain and task == "denoising":
                    levels.append(REAL_GRAIN)
            self.data = (dataset, columns, levels)
        self.last: list[tuple[str, EvaluationResult]] = []
        self.last_step = -1

    def __call__(self, model, step: int) -> list[tuple[str, EvaluationResult]]:
        if self.data is None:
            return []
        from ..inference import MIRNetRestorer

        dataset, columns, levels = self.data
        was_training = model.training
        restorer = MIRNetRestorer(model, device=self.device, precision="float32", channels_last=False, max_pixels=None)
        samples = []

        def restore(image, scale):
            restored = restorer(image, upscale=scale)
            if len(samples) < self.args.num_validation_samples:
                samples.append(restored)
            return restored

        name = Path(str(self.args.validation_dataset_name)).name or str(self.args.validation_dataset_name)
        super_resolution = rescales(self.task)
        results = []
        for index, level in enumerate(levels):
            grain = level == REAL_GRAIN
            pairs = list(
                evaluation_pairs(
                    dataset,
                    columns,
                    self.task,
                    None if grain else level,
                    max_images=self.args.max_validation_images,
                    real_grain=grain,
                )
            )
            result = evaluate(restore, pairs, y_channel=super_resolution)  # samples: the first level's
            if grain:
                setting = REAL_GRAIN
            else:
                setting = level_label(self.task, pairs[0].scale if pairs and super_resolution else level)
            prefix = "validation/" if index == 0 else f"validation/{setting}/"
            values = {"psnr": result.psnr, "ssim": result.ssim}
            values.update({"input_psnr": result.baseline_psnr, "input_ssim": result.baseline_ssim})
            self.log.log({prefix + key: value for key, value in values.items()}, step)
            if index == 0:
                strips = [
                    np.concatenate([pair.baseline, np.clip(restored, 0, 1), pair.target], axis=1)
                    for pair, restored in zip(pairs, samples)
                ]
                self.log.log_images(strips, step)
            results.append((f"{name} ({setting})", result))
        model.train(was_training)
        logger.info("step %d validation:\n%s", step, format_table(results))
        self.last, self.last_step = results, step
        return self.last


def default_validation_level(task: str, scales: list[int]) -> float:
    """The registry's validation level of `task`, or the largest trained scale for super-resolution."""
    return get_task(task).validation_level or float(max(scales))


__all__ = ["MetricLog", "TrainingProgress", "Validator"]
