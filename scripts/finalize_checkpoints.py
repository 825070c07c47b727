"""Copies the trained default models into checkpoints/ with model cards holding their evaluation.

    .venv/bin/python benchmarks/evaluate_defaults.py --json outputs/evaluation.json
    .venv/bin/python scripts/finalize_checkpoints.py --evaluation outputs/evaluation.json

Reads each training run's folder (outputs/train-<task>, from training/configs/default_*.yaml): its weights,
configuration, processor and the training table of its model card. Writes checkpoints/mirnet-v2-compact-<task>/
with exactly config.json, model.safetensors, preprocessor_config.json and README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
from mirnet_hf.evaluation import EvaluationResult
from mirnet_hf.model_card import write_trained_model_card
from mirnet_hf.training import find_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "denoising": ("train-denoising", "default_denoising.yaml"),
    "super-resolution": ("train-super-resolution", "default_super_resolution.yaml"),
    "low-light-enhancement": ("train-low-light", "default_low_light.yaml"),
}
FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")
# How each shipped run actually went, beyond its YAML (recorded in the card).
RUN_NOTES = {
    "denoising": "planned for 2000 steps; stopped with SIGTERM at step 1406 and resumed with 2600 "
    "(`--resume_from_checkpoint latest`), which stretched the cosine schedule from there",
    "low-light-enhancement": "planned for 2000 steps; stopped with SIGTERM at step 1364 and resumed with 2600 "
    "(`--resume_from_checkpoint latest`), which stretched the cosine schedule from there",
}
SUMMARIES = {
    "denoising": "Blind denoiser for Gaussian (sigma 0-55) and Poisson-Gaussian camera-like noise.",
    "super-resolution": "One model for x2, x3 and x4 super-resolution (bicubic degradation); choose the scale at "
    "call time (`MIRNetRestorer(...)(image, upscale=3)`); `pipeline()` uses x2, the config's scale.",
    "low-light-enhancement": "Brightens and denoises dark shots (synthetic exposure, gamma, shot and read noise).",
}


def training_table(card: str) -> dict[str, str]:
    """The `| key | value |` rows of the Training section of a card written by the trainer."""
    rows, inside = {}, False
    for line in card.splitlines():
        if line.lstrip("#").strip() == "Training":
            inside = True
        elif line.startswith("#") and inside:
            break
        elif inside and line.startswith("| ") and not line.startswith("| ---") and line.strip() != "| | |":
            key, value = (cell.strip() for cell in line.strip().strip("|").split("|", 1))
            rows[key] = value
    return rows


BASELINES = ("noisy input", "bicubic", "dark input")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluation", type=Path, help="JSON from benchmarks/evaluate_defaults.py")
    args = parser.parse_args()
    evaluation = json.loads(args.evaluation.read_text()) if args.evaluation else {}
    for task, (run, config) in RUNS.items():
        source = ROOT / "outputs" / run
        target = ROOT / "checkpoints" / f"mirnet-v2-compact-{task}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        # The raw weights of the last checkpoint, not the run's EMA: these runs started with an EMA without
        # warm-up (fixed since), which after 2000 steps still held 0.999**2000 = 14% of the initial weights.
        checkpoint = find_checkpoint(source, "latest")
        model = MIRNetForImageRestoration(MIRNetConfig.from_pretrained(source))
        model.load_state_dict(load_file(checkpoint / "model.safetensors"))
        model.save_pretrained(target)
        for extra in target.iterdir():
            if extra.name not in FILES:
                extra.unlink()  # the installed package provides the code; the folder holds the four Hub files
        shutil.copy2(source / "preprocessor_config.json", target / "preprocessor_config.json")
        training = training_table((source / "README.md").read_text())
        training["hardware"] += " (the three default runs shared one 2-core machine, one thread each)"
        if task in RUN_NOTES:
            training["schedule"] = RUN_NOTES[task]
        saved_at, total = checkpoint.name.split("-")[1], training.get("steps", "?").split(" ")[0]
        training["shipped weights"] = (
            f"the raw weights of the last checkpoint, step {saved_at} of {total} (the learning rate was below 3e-6 "
            "from there on); the run's weight average is not used: it started without warm-up (fixed since) "
            "and held a share of the initial weights"
        )
        training["config"] = f"`training/configs/{config}`"
        rows = evaluation.get(task, [])
        ours = [
            (setting_label(row["data"]), result_with_baseline(row, rows))
            for row in rows
            if row["method"] == "MIRNet (ours)" and "PolyU" not in row["data"]
        ]
        write_trained_model_card(
            target,
            model,
            training=training,
            evaluations=ours,
            dataset="CBSD432 (BSDS500 training photos)",
            model_name=f"mirnet-v2-compact-{task}",
            title=f"MIRNet-v2 compact: {task}",
            summary=SUMMARIES[task],
            comparison=comparison_table(rows) if rows else "",
        )
        size = (target / "model.safetensors").stat().st_size / 1e6
        print(f"{target.relative_to(ROOT)}: {size:.1f} MB, {len(ours)} model-index results")


if __name__ == "__main__":
    main()
