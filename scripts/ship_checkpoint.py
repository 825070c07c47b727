"""Ships a training run's weights as a default model under checkpoints/, with its card and validation curve.

    .venv/bin/python benchmarks/evaluate_defaults.py --task low-light-enhancement \\
        --model outputs/candidate-low-light --json outputs/evaluation-low-light.json
    .venv/bin/python scripts/ship_checkpoint.py training/configs/default_low_light.yaml \\
        --evaluation outputs/evaluation-low-light.json

Reads the run named by the training config (its `output_dir`): the weight average (EMA) of a checkpoint
(default: the latest, so a run still under way can ship its progress), the step and training time it
records, and the validation history in `logs/history.jsonl`. Writes checkpoints/<name>/ through the one
model-folder writer: config.json, model.safetensors, preprocessor_config.json, onnx/model.onnx,
validation_curve.svg, validation_history.jsonl (its records) and README.md (the recipe, the command, the time,
the curve, the evaluation).
With `--candidate FOLDER` it writes the same folder there instead, for evaluating before shipping; `--no-onnx`
leaves out the ONNX graph there, the slowest part to write (the restorer exports one when it needs it).

A baseline measured after the weights shipped (CBM3D, from its cache) reaches their card without the run, which
may be gone: `--refresh-comparison --evaluation JSON` rewrites only the card's "Against classical methods" table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

import torch

from mirnet_hf.evaluation import EvaluationResult, level_label
from mirnet_hf.model_card import read_validation_history, validation_curve_svg, write_trained_model_card
from mirnet_hf.model_folder import save_model_folder
from mirnet_hf.tasks import rescales
from mirnet_hf.training import PRESETS, TrainState, build_model, find_checkpoint, parse_args
from mirnet_hf.training.validation import default_validation_level

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("noisy input", "bicubic", "dark input")
# The validation records behind the card's curve, shipped with the weights: a run continued from them
# (`--initial_step`) keeps its curve even when its own log is lost.
HISTORY_FILE = "validation_history.jsonl"
SUMMARIES = {
    "denoising": "Blind denoiser for real camera noise (camera pipeline: raw shot and read noise, demosaicking, "
    "tone curve, chroma denoising, JPEG) and for Gaussian and Poisson-Gaussian noise.",
    "super-resolution": "One model for x2, x3 and x4 super-resolution (bicubic degradation); choose the scale at "
    "call time (`MIRNetRestorer(...)(image, upscale=3)`); `pipeline()` uses x2, the config's scale.",
    "low-light-enhancement": "Brightens and denoises dark shots: exposures down to 0.05, gamma and tone curves, "
    "camera noise, colour casts, JPEG.",
}


def summary(task: str, scales: list[int]) -> str:
    if task == "super-resolution" and len(scales) == 1:
        return (
            f"x{scales[0]} super-resolution (bicubic degradation), trained at x{scales[0]} alone: each scale has its "
            "own model, and the app and the evaluation pick the one shipped for the scale asked for."
        )
    return SUMMARIES[task]


def validation_title(train_args) -> str:
    """What the run's validation curve measures, e.g. "CBSD68, 4 images (x2, Y channel)"."""
    level = train_args.validation_level
    if level is None:
        level = default_validation_level(train_args.task, train_args.scales)
    setting = level_label(train_args.task, level) + (", Y channel" if rescales(train_args.task) else "")
    name = Path(str(train_args.validation_dataset_name)).name
    return f"{name}, {train_args.max_validation_images} images ({setting})"


def setting_label(data: str) -> str:
    """ "CBSD68 sigma 25" -> "CBSD68 (sigma 25)", the trainer's label style (dataset, then the setting)."""
    name, _, setting = data.partition(" ")
    return f"{name} ({setting})"


def result_with_baseline(row: dict, rows: list[dict]) -> EvaluationResult:
    baseline = next(other for other in rows if other["data"] == row["data"] and other["method"] in BASELINES)
    return EvaluationResult(
        images=row["images"],
        psnr=row["psnr"],
        ssim=row["ssim"],
        baseline_psnr=baseline["psnr"],
        baseline_ssim=baseline["ssim"],
        seconds=row["seconds_per_mp"],
        megapixels=1.0,
    )


def comparison_table(rows: list[dict]) -> str:
    lines = ["### Against classical methods", "", "| data | method | images | PSNR (dB) | SSIM | s/MP |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['data']} | {row['method']} | {row['images']} | {row['psnr']:.2f} | {row['ssim']:.4f} | "
            f"{row['seconds_per_mp']:.2f} |"
        )
    lines.append("\n(`benchmarks/evaluate_defaults.py`, 2 CPU cores, default inference settings.)")
    return "\n".join(lines)


def refresh_comparison(folder: Path, rows: list[dict]) -> None:
    """Puts `rows` as the "Against classical methods" table of `folder`'s card, before its validation curve
    (replacing the table there, if any), and keeps the rest."""
    path = folder / "README.md"
    card = path.read_text(encoding="utf-8") if path.is_file() else ""
    curve = card.find("### Validation curve")
    if curve < 0:
        raise SystemExit(f"{path} is not a card ship_checkpoint.py wrote (no validation curve section).")
    start = card.find("### Against classical methods")
    start = curve if start < 0 else start
    path.write_text(card[:start] + comparison_table(rows) + "\n\n" + card[curve:], encoding="utf-8")


def load_checkpoint_state(checkpoint: Path) -> tuple[dict, TrainState]:
    """The EMA weights and the training state Accelerate saved with a checkpoint (registered objects, in order)."""
    weights, state = None, TrainState()
    for path in sorted(checkpoint.glob("custom_checkpoint_*.pkl")):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(saved, dict) and "weights" in saved:
            weights = saved["weights"]
        elif isinstance(saved, dict) and "train_seconds" in saved:
            state.load_state_dict(saved)
    if weights is None:
        raise SystemExit(f"{checkpoint} holds no weight average (train with use_ema).")
    return weights, state


# Where the run's own card says nothing (it is written when a run ends): the default runs' machine.
CPU_HARDWARE = "2 CPU cores (torch 2.13.0), shared with the other default runs, one thread each (see the notes)"


def run_hardware(run: Path) -> str:
    """The hardware the run's own card records (the trainer writes `| hardware | 1 x NVIDIA H200 (torch ...) |`
    when a run ends), else the default runs' CPU."""
    card = run / "README.md"
    for line in card.read_text(encoding="utf-8").splitlines() if card.is_file() else []:
        if line.startswith("| hardware | "):
            return line.removeprefix("| hardware | ").rstrip(" |")
    return CPU_HARDWARE


def validation_history(run: Path, train_args, step: int) -> list[dict]:
    """The run's validation records up to `step`. A run continued from shipped weights (`--initial_step`, its
    checkpoints lost) starts with the records shipped beside those weights, so the curve keeps its start."""
    records = [r for r in read_validation_history(run / "logs" / "history.jsonl") if r["step"] <= step]
    if not train_args.initial_step:
        return records
    shipped = ROOT / train_args.model_name_or_path / HISTORY_FILE
    if not shipped.is_file():
        return records
    later = [r for r in records if r["step"] > train_args.initial_step]
    earlier = [r for r in read_validation_history(shipped) if r["step"] <= train_args.initial_step]
    # A run forked to another setting (the x2 specialist, from the joint model's weights) validates on other
    # inputs: the same images degraded alike give the same input PSNR, so a different one marks another curve.
    if later and earlier and abs(earlier[-1]["validation/input_psnr"] - later[0]["validation/input_psnr"]) > 0.01:
        return later
    return earlier + later


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the run's training config (training/configs/default_*.yaml)")
    parser.add_argument("--checkpoint", default="latest", help="checkpoint-N folder name, or latest")
    parser.add_argument("--name", help="folder name under checkpoints/ (default: <preset>-<task>)")
    parser.add_argument("--candidate", type=Path, help="write the folder here instead of checkpoints/")
    parser.add_argument("--evaluation", type=Path, help="JSON from benchmarks/evaluate_defaults.py")
    parser.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="leave out onnx/model.onnx (a candidate to evaluate with PyTorch first; a shipped default needs it)",
    )
    parser.add_argument("--note", default="", help="how the run went, beyond its config (recorded in the card)")
    parser.add_argument(
        "--refresh-comparison",
        action="store_true",
        help="only rewrite the shipped card's classical-methods table from --evaluation (the run is not read)",
    )
    args = parser.parse_args(argv)

    train_args = parse_args(["--config", str(args.config)])
    if args.refresh_comparison:
        if args.evaluation is None:
            parser.error("--refresh-comparison needs --evaluation (the JSON of benchmarks/evaluate_defaults.py).")
        name = args.name or f"{train_args.config_name}-{train_args.task}"
        target = args.candidate or ROOT / "checkpoints" / name
        rows = json.loads(args.evaluation.read_text()).get(train_args.task, [])
        if not rows:
            parser.error(f"{args.evaluation} holds no {train_args.task} rows.")
        refresh_comparison(target, rows)
        print(f"{target / 'README.md'}: comparison table refreshed ({len(rows)} rows)")
        return
    run = ROOT / train_args.output_dir
    checkpoint = find_checkpoint(run, args.checkpoint)
    model = build_model(train_args)
    weights, state = load_checkpoint_state(checkpoint)
    model.load_state_dict(weights)
    model.eval()
    task = model.config.task
    name = args.name or f"{train_args.config_name}-{task}"
    target = args.candidate or ROOT / "checkpoints" / name

    history = validation_history(run, train_args, state.step)
    curve = "\n".join(f"| {r['step']} | {r['validation/psnr']:.2f} |" for r in history)
    training = {
        "data": f"{train_args.dataset_name} (clean photos, degraded on the fly; never an evaluation set)",
        "architecture": f"`{train_args.config_name}` ({PRESETS.get(train_args.config_name, {})}), "
        f"{sum(p.numel() for p in model.parameters()):,} parameters",
        "steps": f"{state.step} of {train_args.max_train_steps} planned ({state.images_seen:,} patches of "
        f"{train_args.patch_size}x{train_args.patch_size})",
        "training time": f"{state.train_seconds / 3600:.2f} h",
        "hardware": run_hardware(run),
        "config": f"`{args.config.as_posix()}`",
        "command": f"`OMP_NUM_THREADS=1 python training/train.py --config {shlex.quote(args.config.as_posix())}` "
        "(resumed with the same command: the config sets `resume_from_checkpoint: latest`)",
        "shipped weights": f"the weight average (EMA, decay {train_args.ema_decay:g}) at step {state.step}",
    }
    if args.note:
        training["notes"] = args.note
    rows = json.loads(args.evaluation.read_text()).get(task, []) if args.evaluation else []
    ours = [
        (setting_label(row["data"]), result_with_baseline(row, rows))
        for row in rows
        if row["method"] == "MIRNet (ours)" and "PolyU" not in row["data"]
    ]
    validation = (
        f"### Validation curve\n\n![validation PSNR against steps](validation_curve.svg)\n\n"
        f"PSNR (dB) of the weight average on {validation_title(train_args)}, every "
        f"{train_args.validation_steps} steps:\n\n| step | PSNR (dB) |\n| --- | --- |\n{curve}"
    )
    comparison = "\n\n".join(part for part in (comparison_table(rows) if rows else "", validation) if part)

    def card(folder: Path) -> None:
        (folder / HISTORY_FILE).write_text("".join(json.dumps(record) + "\n" for record in history), encoding="utf-8")
        (folder / "validation_curve.svg").write_text(
            validation_curve_svg(history, validation_title(train_args)), encoding="utf-8"
        )
        write_trained_model_card(
            folder,
            model,
            training=training,
            evaluations=ours,
            dataset="CBSD432 (BSDS500 training photos)",
            model_name=name,
            title=f"MIRNet-v2 ({train_args.config_name}): {task}",
            summary=summary(task, train_args.scales),
            comparison=comparison,
        )

    # The card's history (what was tried, continued and not shipped) belongs to the folder, not to one run: it is
    # carried over from the card being replaced.
    history_section = card_history(target / "README.md")
    if target.exists():
        shutil.rmtree(target)
    save_model_folder(model, target, card=card, code=False, onnx=args.onnx)
    if history_section:
        written = target / "README.md"
        written.write_text(
            written.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + history_section, encoding="utf-8"
        )
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file()) / 1e6
    print(f"{target}: step {state.step}, {size:.1f} MB, {len(ours)} model-index results")


def card_history(card: Path) -> str:
    """The "### History" section a shipped card ends with ("" when it has none)."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    start = text.find("\n### History\n")
    return text[start + 1 :].rstrip("\n") + "\n" if start >= 0 else ""


if __name__ == "__main__":
    main()
