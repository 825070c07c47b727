"""The GPU sprint: trains the super-resolution defaults (and any other default a flag names) on one GPU within a
wall-time budget, and writes each as a candidate model folder with its card, ready to evaluate and ship.

    python scripts/gpu_sprint.py --output_dir $OUT                       # x2, x3, x4 in 9 minutes
    python scripts/gpu_sprint.py --output_dir $OUT --runs super-resolution-x4 denoising-s2 --minutes 6

Each run takes its config in `training/configs/` and is trained in a child process as `training/train.py` is.
Where the config continues from committed weights (`model_name_or_path`, a run's latest weights under
`checkpoints/runs/`), the sprint starts from them, on a new cosine cycle at a lower peak rate, so a GPU's minutes
add to the CPU sessions' steps instead of repeating them; `--from_scratch` starts every run from random weights.
The budget is shared out between the runs: a short probe times a step of each run, then the run gets as many
steps as fit in its share, with its cosine schedule annealed over exactly those steps. Its weight average is then
written to `OUTPUT_DIR/<run>` by `scripts/ship_checkpoint.py --candidate` (weights, config, processor, ONNX
graph, validation curve, card). Evaluate a candidate against the shipped model with
`benchmarks/evaluate_defaults.py --task TASK --model OUTPUT_DIR/<run>`.

`--steps N` fixes the steps of every run instead (the test suite runs two on the CPU); `--set KEY=VALUE` changes
any setting of every run's config (a smaller preset, fewer validation images).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "super-resolution-x2": "training/configs/super_resolution_x2_ps.yaml",
    "super-resolution-x3": "training/configs/super_resolution_x3_ps.yaml",
    "super-resolution-x4": "training/configs/super_resolution_x4_ps.yaml",
    "denoising-s2": "training/configs/denoising_s2.yaml",
}
DEFAULT_RUNS = ["super-resolution-x2", "super-resolution-x3", "super-resolution-x4"]
# What the sprint changes in every config: a GPU's batch, data workers, and a record of what ran.
GPU_SETTINGS = {"train_batch_size": 32, "learning_rate": 4.0e-4, "dataloader_num_workers": 4, "report_to": "none",
                "resume_from_checkpoint": None, "checkpoints_total_limit": 1}  # fmt: skip
# A warm start's peak rate: high enough to move on from annealed weights, low enough not to undo them first.
WARM_LEARNING_RATE = 2.0e-4
SHIP_SECONDS = 60  # writing a candidate folder (ONNX export included) after its run


def run_config(name: str, output_dir: Path, overrides: dict, steps: int, from_scratch: bool = False) -> Path:
    """Writes the run's config (its default config with the sprint's changes) into the output folder.

    The run starts from the weights its config continues from when they are here (a new schedule over the
    sprint's steps: `initial_step` is dropped), else from scratch."""
    config = yaml.safe_load((ROOT / RUNS[name]).read_text())
    config.update(GPU_SETTINGS)
    config.pop("initial_step", None)
    weights = config.get("model_name_or_path")
    if from_scratch or not weights or not (ROOT / weights / "model.safetensors").is_file():
        config.pop("model_name_or_path", None)
    else:
        config["learning_rate"] = WARM_LEARNING_RATE
    config.update(overrides)
    config.update({
        "output_dir": str(output_dir / f"train-{name}"),
        "max_train_steps": steps,
        "lr_warmup_steps": max(1, min(int(config.get("lr_warmup_steps", 200)), steps // 10)),
        "validation_steps": max(1, steps // 4),
        "checkpointing_steps": steps,
    })  # fmt: skip
    path = output_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({key: value for key, value in config.items() if value is not None}))
    return path


def train(config: Path, log: Path) -> float:
    """Trains one run to its end in a child process; returns its wall time in seconds."""
    started = time.perf_counter()
    with log.open("a") as output:
        done = subprocess.run(
            [sys.executable, str(ROOT / "training" / "train.py"), "--config", str(config)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"training {config} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - started


def seconds_per_step(run_dir: Path) -> float:
    """A step's time from the images per second the trainer logged, and the batch it logged with."""
    records = [json.loads(line) for line in (run_dir / "logs" / "history.jsonl").read_text().splitlines()]
    speeds = [record["train/images_per_second"] for record in records if "train/images_per_second" in record]
    config = yaml.safe_load((run_dir.parent / f"{run_dir.name.removeprefix('train-')}.yaml").read_text())
    return config["train_batch_size"] / speeds[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, required=True, help="where candidates, configs and logs go")
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=list(RUNS))
    parser.add_argument("--minutes", type=float, default=9.0, help="wall-time budget for everything (default 9)")
    parser.add_argument("--steps", type=int, help="train every run this many steps (no probe, no budget)")
    parser.add_argument("--probe_steps", type=int, default=40, help="steps timed before each run (default 40)")
    parser.add_argument("--from_scratch", action="store_true", help="ignore committed weights: random start")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="change a setting of every run")
    args = parser.parse_args(argv)
    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    log = args.output_dir / "sprint.log"
    deadline = time.perf_counter() + args.minutes * 60
    summary = []
    for index, name in enumerate(args.runs):
        steps = args.steps
        if steps is None:
            share = (deadline - time.perf_counter()) / (len(args.runs) - index) - SHIP_SECONDS
            probe = run_config(name, args.output_dir / "probe", overrides, args.probe_steps, args.from_scratch)
            probe_seconds = train(probe, log)
            step = seconds_per_step(args.output_dir / "probe" / f"train-{name}")
            overhead = max(0.0, probe_seconds - args.probe_steps * step)  # start-up, validation, saving
            steps = int((share - probe_seconds - overhead) / step)
            if steps < 10:
                print(f"{name}: skipped, {share:.0f} s left for it ({step:.3f} s per step)", flush=True)
                continue
            print(f"{name}: {step:.3f} s per step, {steps} steps in its {share:.0f} s", flush=True)
        config = run_config(name, args.output_dir, overrides, steps, args.from_scratch)
        start = yaml.safe_load(config.read_text()).get("model_name_or_path")
        seconds = train(config, log)
        shipped = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "ship_checkpoint.py"), str(config),
             "--candidate", str(args.output_dir / name),
             "--note", f"Trained by scripts/gpu_sprint.py: {steps} steps from {start or 'scratch'} in "
             f"{seconds / 60:.1f} min."],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if shipped.returncode:
            raise SystemExit(f"writing the candidate {name} failed: {shipped.stderr[-2000:]}")
        history = args.output_dir / name / "validation_history.jsonl"
        last = [json.loads(line) for line in history.read_text().splitlines()][-1] if history.exists() else {}
        summary.append((name, steps, seconds, last.get("validation/psnr"), last.get("validation/input_psnr")))
        print(f"{name}: {steps} steps in {seconds:.0f} s -> {args.output_dir / name}", flush=True)
    print("| run | steps | minutes | validation PSNR | input PSNR |\n| --- | --- | --- | --- | --- |")
    for name, steps, seconds, psnr, baseline in summary:
        fmt = lambda value: f"{value:.2f}" if value is not None else "-"  # noqa: E731
        print(f"| {name} | {steps} | {seconds / 60:.1f} | {fmt(psnr)} | {fmt(baseline)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
