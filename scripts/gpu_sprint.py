"""The GPU sprint: trains the super-resolution defaults (and any other default a flag names) on one GPU within a
wall-time budget, and writes each as a candidate model folder with its card, ready to evaluate and ship.

    python scripts/gpu_sprint.py --output_dir $OUT                       # x2, x3, x4 in 9 minutes
    python scripts/gpu_sprint.py --output_dir $OUT --runs super-resolution-x4 denoising-s2 --minutes 6
    python scripts/gpu_sprint.py --output_dir $OUT --runs denoising-s2 super-resolution-x2 --shares 2 1

Each run takes its config in `training/configs/` and is trained in a child process as `training/train.py` is.
Where the config continues from committed weights (`model_name_or_path`, a run's latest weights under
`checkpoints/runs/`), the sprint starts from them, on a new cosine cycle at a lower peak rate, so a GPU's minutes
add to the CPU sessions' steps instead of repeating them; `--from_scratch` starts every run from random weights.
The budget is shared out between the runs (equally, or by `--shares`): a short probe times a step of each run,
then the run gets as many steps as fit in its share, with its cosine schedule annealed over exactly those steps.
Its weight average is then written to `OUTPUT_DIR/<run>` by `scripts/ship_checkpoint.py --candidate` (weights,
config, processor, ONNX graph unless `--no_onnx`, validation curve, card). Evaluate a candidate against the
shipped model with `benchmarks/evaluate_defaults.py --task TASK --model OUTPUT_DIR/<run>`.
`scripts/lent_gpu_sprint.sh` runs it on this workplace's lent GPU machine (docs/training.md).

`--steps N` fixes the steps of every run instead (the test suite runs two on the CPU); `--set KEY=VALUE` changes
any setting of every run's config (a smaller preset, fewer validation images).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
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
# What the sprint changes in every config: a GPU's batch, data workers, and a record of what ran. These small
# networks leave an H200 waiting on kernel launches at a batch of 32 (about 300 patches a second for every run);
# a batch of 96 trained the denoiser at 900. The workers make the noise and low-resolution patches on the CPU: all
# but two of its cores (12 kept up with 900 a second there).
GPU_SETTINGS = {"train_batch_size": 96, "learning_rate": 4.0e-4, "report_to": "none",
                "dataloader_num_workers": max(1, min(12, (os.cpu_count() or 4) - 2)),
                "resume_from_checkpoint": None, "checkpoints_total_limit": 1}  # fmt: skip
# A warm start's peak rate: high enough to move on from annealed weights, low enough not to undo them first.
WARM_LEARNING_RATE = 2.0e-4
SHIP_SECONDS = 60  # writing a candidate folder (ONNX export included) after its run
# The children import this checkout's package, installed or not (a lent GPU machine has only a copy of the tree).
CHILD_ENV = {**os.environ, "PYTHONUNBUFFERED": "1",
             "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}  # fmt: skip


def run_config(
    name: str, output_dir: Path, overrides: dict, steps: int, from_scratch: bool = False, validations: int = 4
) -> Path:
    """Writes the run's config (its default config with the sprint's changes) into the output folder.

    The run starts from the weights its config continues from when they are here (a new schedule over the
    sprint's steps: `initial_step` is dropped), else from scratch."""
    config = yaml.safe_load((ROOT / RUNS[name]).read_text())
    config.update(GPU_SETTINGS)
    config.pop("initial_step", None)
    config.pop("lr_cycle_start", None)  # the sprint's schedule is its own
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
        "validation_steps": max(1, steps // validations),
        "checkpointing_steps": steps,
    })  # fmt: skip
    path = output_dir / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)  # the probes' folder is new
    path.write_text(yaml.safe_dump({key: value for key, value in config.items() if value is not None}))
    return path


def train(config: Path, log: Path) -> float:
    """Trains one run to its end in a child process; returns its wall time in seconds."""
    started = time.perf_counter()
    with log.open("a") as output:
        done = subprocess.run(
            [sys.executable, str(ROOT / "training" / "train.py"), "--config", str(config)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env=CHILD_ENV,
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"training {config} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - started


def seconds_per_step(run_dir: Path) -> float:
    """A step's time from the images per second the trainer logged, and the batch it logged with."""
    records = [json.loads(line) for line in (run_dir / "logs" / "history.jsonl").read_text().splitlines()]
    speeds = [record["train/images_per_second"] for record in records if "train/images_per_second" in record]
    config = yaml.safe_load((run_dir.parent / f"{run_dir.name.removeprefix('train-')}.yaml").read_text())
    # The median of the speeds after the first (start-up, compilation of kernels): a record that spans a
    # validation or a checkpoint would otherwise make a step look several times slower (seen on an H200: 5x).
    return config["train_batch_size"] / statistics.median(speeds[1:] or speeds)


def parse_setting(item: str) -> tuple[str, object]:
    """`KEY=VALUE` as YAML reads VALUE (numbers, lists, null), except YAML 1.1's words for booleans: `no`, `on`,
    `off` and `yes` stay words (`mixed_precision=no` means "no", not False)."""
    key, separator, text = item.partition("=")
    if not separator:
        raise SystemExit(f"--set {item!r} is not valid; give KEY=VALUE, e.g. train_batch_size=64.")
    value = yaml.safe_load(text)
    return key, text if isinstance(value, bool) and text.lower() not in ("true", "false") else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, help="where candidates, configs and logs go (required)")
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=list(RUNS))
    parser.add_argument("--minutes", type=float, default=9.0, help="wall-time budget for everything (default 9)")
    parser.add_argument("--steps", type=int, help="train every run this many steps (no probe, no budget)")
    parser.add_argument("--probe_steps", type=int, default=40, help="steps timed before each run (default 40)")
    parser.add_argument("--from_scratch", action="store_true", help="ignore committed weights: random start")
    parser.add_argument("--shares", nargs="+", type=float, help="each run's share of the budget (default equal)")
    parser.add_argument("--no_onnx", action="store_true", help="candidates without their ONNX graph (export later)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="change a setting of every run")
    parser.add_argument("--list_weights", action="store_true", help="print the folders the runs start from; exit")
    args = parser.parse_args(argv)
    if args.list_weights:  # what a copy of the checkout must hold for these runs (scripts/lent_gpu.sh)
        for name in args.runs:
            weights = yaml.safe_load((ROOT / RUNS[name]).read_text()).get("model_name_or_path")
            if weights and not args.from_scratch:
                print(weights)
        return 0
    if args.output_dir is None:
        parser.error("--output_dir is required: the folder for the candidates, their configs and the logs.")
    shares = args.shares or [1.0] * len(args.runs)
    if len(shares) != len(args.runs) or min(shares) <= 0:
        parser.error(f"--shares {shares} must give one positive number per run ({len(args.runs)}: {args.runs}).")
    overrides = dict(parse_setting(item) for item in args.set)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    log = args.output_dir / "sprint.log"
    deadline = time.perf_counter() + args.minutes * 60
    summary = []
    for index, name in enumerate(args.runs):
        steps = args.steps
        if steps is None:
            ship_seconds = SHIP_SECONDS if not args.no_onnx else 15
            share = (deadline - time.perf_counter()) * shares[index] / sum(shares[index:]) - ship_seconds
            # One validation, at its end: the speeds logged before it are training's alone.
            probe = run_config(name, args.output_dir / "probe", overrides, args.probe_steps, args.from_scratch, 1)
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
             f"{seconds / 60:.1f} min.", *(["--no-onnx"] if args.no_onnx else [])],
            cwd=ROOT, capture_output=True, text=True, env=CHILD_ENV,
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
    # Stopped by a time limit (`timeout` sends SIGTERM), end as after Ctrl-C: `subprocess.run` then kills the
    # training under way instead of leaving it running alone.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    sys.exit(main())
