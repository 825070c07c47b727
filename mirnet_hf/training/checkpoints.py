"""Checkpoints: save, rotate, find and resume a run's complete state (Accelerate's `save_state` plus ours)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data_streams import DataStreams

logger = logging.getLogger("mirnet_hf.training")


@dataclass
class TrainState:
    """What a checkpoint needs beyond accelerate's own: the step, each process's data position and counters.

    `positions[rank]` is that process's `DataStreams.position()`.
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


def _checkpoints(output_dir: Path) -> list[Path]:
    return sorted(Path(output_dir).glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[-1]))


def find_checkpoint(output_dir: Path, which: str) -> Path | None:
    """`which` is a folder, a folder name inside `output_dir` ('checkpoint-500') or 'latest' (None when no
    checkpoint exists yet, so a first run can use it too).

    Only complete checkpoints count: a run killed while saving leaves one without its `COMPLETE` mark."""
    if which != "latest":
        for path in (Path(which), Path(output_dir) / which):
            if path.is_dir():
                return path
        names = ", ".join(path.name for path in _checkpoints(output_dir)) or "none yet"
        raise FileNotFoundError(
            f"checkpoint {which!r} is neither a folder nor one in {output_dir} (there: {names}); or use 'latest'."
        )
    complete = [path for path in _checkpoints(output_dir) if (path / "COMPLETE").is_file()]
    return complete[-1] if complete else None


def rotate_checkpoints(output_dir: Path, limit: int | None) -> None:
    """Keeps the newest `limit` checkpoints (all for None or 0)."""
    if not limit:
        return
    for old in _checkpoints(output_dir)[:-limit]:
        shutil.rmtree(old, ignore_errors=True)


class CheckpointManager:
    """Saves `OUTPUT_DIR/checkpoint-STEP` on every process together, and resumes from one.

    Accelerate saves the model, optimiser, RNG states and the objects registered with it (the schedule, the
    `TrainState`, the weight average); this adds every process's data position, the `COMPLETE` mark and the
    rotation to `total_limit` checkpoints.
    """

    def __init__(self, accelerator, output_dir: Path, state: TrainState, streams: DataStreams, total_limit: int):
        self.accelerator, self.output_dir = accelerator, Path(output_dir)
        self.state, self.streams, self.total_limit = state, streams, total_limit

    def save(self) -> Path:
        accelerator = self.accelerator
        mine = torch.tensor(self.streams.position(), device=accelerator.device)
        self.state.positions = accelerator.gather(mine[None]).cpu().tolist()
        path = self.output_dir / f"checkpoint-{self.state.step}"
        if accelerator.is_main_process and path.exists():
            shutil.rmtree(path)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(path))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (path / "COMPLETE").write_text(json.dumps({"step": self.state.step}))  # only complete ones resume
            rotate_checkpoints(self.output_dir, self.total_limit)
        accelerator.wait_for_everyone()
        return path

    def resume(self, which: str | None, initial_step: int = 0) -> Path | None:
        """Loads the checkpoint `which` names (a folder or 'latest'); None when there is none yet.

        A run that goes on from shipped weights at `initial_step` saves its first checkpoint after that step, so
        one at or before it is an earlier run's (say the last warm restart's, left in the same folder): resuming
        it would train that run's weights and optimiser on instead of the weights named, so it is refused."""
        if not which:
            return None
        path = find_checkpoint(self.output_dir, which)
        if path is None:
            start = f"from --model_name_or_path at step {initial_step}" if initial_step else "from scratch"
            logger.info("no checkpoint in %s yet: starting %s", self.output_dir, start)
            return None
        self.accelerator.load_state(str(path))
        if initial_step and self.state.step <= initial_step:
            raise RuntimeError(
                f"{path} was saved at step {self.state.step}, not after --initial_step {initial_step}: it is an "
                f"earlier run's. Move {self.output_dir} aside (or give another --output_dir) to start this run from "
                "--model_name_or_path at that step."
            )
        positions = self.state.positions
        if len(positions) != self.accelerator.num_processes:
            raise RuntimeError(
                f"{path} was saved by {len(positions)} processes; resume it with the same number "
                f"(now {self.accelerator.num_processes})."
            )
        self.streams.restore(positions[self.accelerator.process_index], str(path))
        logger.info("resumed from %s at step %d", path, self.state.step)
        return path


__all__ = ["CheckpointManager", "TrainState", "find_checkpoint", "rotate_checkpoints"]
