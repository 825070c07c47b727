"""Model cards (README.md of a model folder) rendered from the template in `model_cards/`."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from torch import nn

TEMPLATE = Path(__file__).with_name("model_cards") / "mirnet.md"
_PAPERS = {
    "v1": "Zamir et al., Learning Enriched Features for Real Image Restoration and Enhancement, ECCV 2020",
    "v2": "Zamir et al., Learning Enriched Features for Fast Image Restoration and Enhancement, TPAMI 2022",
}


def render_model_card(
    model: nn.Module,
    title: str,
    summary: str,
    origin: str,
    extra_metadata: str = "",
) -> str:
    """Fills the model-card template for `model` (a `MIRNetForImageRestoration`).

    `extra_metadata` is YAML appended to the front matter (e.g. `datasets:` or `model-index:`).

    Example:

    ```python
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.model_card import render_model_card
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    >>> card = render_model_card(model, "Tiny", "A test.", "Random weights.")
    >>> card.startswith("---") and "pipeline_tag: image-to-image" in card
    True

    ```
    """
    config = model.config
    if extra_metadata and not extra_metadata.endswith("\n"):
        extra_metadata += "\n"
    values = {
        "title": title,
        "summary": summary,
        "origin": origin,
        "extra_metadata": extra_metadata,
        "version": config.version,
        "paper": _PAPERS[config.version],
        "task": config.task,
        "scale_note": f" (x{config.upscale})" if config.upscale > 1 else "",
        "num_parameters": f"{sum(p.numel() for p in model.parameters()):,}",
        "num_features": config.num_features,
        "num_streams": config.num_streams,
        "num_columns": config.num_columns,
        "channel_factor": f"{config.channel_factor:g}",
        "num_rrg": config.num_rrg,
        "num_mrb": config.num_mrb,
        "num_channels": config.num_channels,
        "num_channels_out": config.num_channels_out,
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


def write_model_card(output_dir: str | Path, model: nn.Module, origin: str, provenance: dict[str, str]) -> Path:
    """Writes README.md for a folder made by the converter (`origin="converted"`)."""
    details = "\n".join(f"- {key}: `{value}`" for key, value in provenance.items())
    if origin == "converted":
        title = f"MIRNet {model.config.version} ({model.config.task}), converted from the authors' checkpoint"
        summary = (
            "Weights released by the MIRNet authors, converted with `mirnet-hf convert`; the converted model "
            "computes the authors' outputs (to float32 rounding). The licence of the weights is the authors': "
            "see their repository."
        )
        text = f"Converted with `mirnet-hf convert` from:\n\n{details}\n"
    else:
        raise ValueError(f"origin={origin!r} is not valid; use 'converted'.")
    path = Path(output_dir) / "README.md"
    path.write_text(render_model_card(model, title, summary, text), encoding="utf-8")
    return path


def model_index(model_name: str, task: str, evaluations: list) -> str:
    """`model-index` YAML (the Hub's evaluation widget) for (label, result) pairs; label is "DATASET (setting)"."""
    if not evaluations:
        return ""
    lines = ["model-index:", f"- name: {_yaml_string(model_name)}", "  results:"]
    for label, result in evaluations:
        dataset, _, setting = label.partition(" (")
        setting = setting.rstrip(")")
        suffix = f" ({setting})" if setting else ""
        lines += [
            "  - task:",
            "      type: image-to-image",
            f"      name: {_yaml_string(task)}",
            "    dataset:",
            f"      name: {_yaml_string(dataset)}",
            f"      type: {_yaml_string(dataset)}",
            "    metrics:",
            "    - type: psnr",
            f"      value: {result.psnr:.2f}",
            f"      name: {_yaml_string('PSNR' + suffix)}",
            "    - type: ssim",
            f"      value: {result.ssim:.4f}",
            f"      name: {_yaml_string('SSIM' + suffix)}",
        ]
    return "\n".join(lines)


def _yaml_string(text: str) -> str:
    return json.dumps(str(text))  # a JSON string is a valid YAML scalar


def evaluation_table(evaluations: list) -> str:
    """The Markdown table of (label, result) pairs, input beside model."""
    from .evaluation import format_table

    return format_table(evaluations, label="data (setting)") if evaluations else "No evaluation was run."


def write_trained_model_card(
    output_dir: str | Path,
    model: nn.Module,
    *,
    training: dict[str, str],
    evaluations: list,
    dataset: str,
    model_name: str,
    title: str | None = None,
    summary: str | None = None,
    comparison: str = "",
) -> Path:
    """Writes README.md for a folder made by training: the recipe, command, time, hardware and the evaluation
    table (also as `model-index`); `comparison` is Markdown appended after it (e.g. classical methods).

    Example:

    ```python
    >>> import tempfile
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.evaluation import EvaluationResult
    >>> from mirnet_hf.model_card import write_trained_model_card
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    >>> result = EvaluationResult(images=2, baseline_psnr=20.2, baseline_ssim=0.5, psnr=28.1, ssim=0.8)
    >>> path = write_trained_model_card(tempfile.mkdtemp(), model, training={"steps": "10"},
    ...     evaluations=[("CBSD68 (sigma 25)", result)], dataset="folder", model_name="tiny")
    >>> "value: 28.10" in path.read_text()
    True

    ```
    """
    config = model.config
    title = title or f"MIRNet {config.version} for {config.task}, trained with mirnet-hf"
    summary = summary or f"A MIRNet {config.version} network trained for {config.task} with `training/train.py`."
    details = "\n".join(f"| {key} | {value} |" for key, value in training.items())
    origin = (
        f"### Training\n\n| | |\n| --- | --- |\n{details}\n\n"
        f"### Evaluation\n\nPSNR (dB) and SSIM of the input and of this model (mirnet-hf's evaluation: "
        f"scikit-image metrics; Y channel with the border cropped for super-resolution).\n\n"
        f"{evaluation_table(evaluations)}" + (f"\n\n{comparison}" if comparison else "")
    )
    metadata = f"datasets:\n- {_yaml_string(dataset)}\n" + model_index(model_name, config.task, evaluations)
    path = Path(output_dir) / "README.md"
    path.write_text(render_model_card(model, title, summary, origin, extra_metadata=metadata), encoding="utf-8")
    return path


def training_details(
    args,
    *,
    task: str,
    data: str,
    steps: int,
    images_seen: int,
    train_seconds: float,
    processes: int,
    mixed_precision: str,
    hardware: str,
    command: str,
    data_problems: dict[str, int] | None = None,
) -> dict[str, str]:
    """The "Training" table of a trained model's card: the recipe read from the run's arguments
    (`training.TrainingArguments`), then what the run did.

    Example:

    ```python
    >>> from mirnet_hf.model_card import training_details
    >>> from mirnet_hf.training import parse_args
    >>> args = parse_args(["--task", "denoising", "--dataset_name", "photos", "--output_dir", "run", "--use_ema"])
    >>> details = training_details(args, task="denoising", data="photos (clean images)", steps=10, images_seen=160,
    ...     train_seconds=90.0, processes=1, mixed_precision="no", hardware="1 x CPU", command="python train.py")
    >>> details["recipe"].split("; ")[-1], details["steps"]
    ('EMA of weights (decay 0.999)', '10 (160 patches)')

    ```
    """
    schedule = f"cosine annealing to {args.min_learning_rate:g}" if args.lr_scheduler == "cosine" else "constant"
    recipe = [
        f"Charbonnier loss (eps 1e-3); Adam ({args.adam_beta1}, {args.adam_beta2})",
        f"learning rate {args.learning_rate:g}, {schedule}",
        f"batch {args.train_batch_size} x {args.gradient_accumulation_steps} accumulation x {processes} processes "
        f"of {args.patch_size}x{args.patch_size} patches" + ("" if args.no_flips else " with flips"),
        f"mixed precision {mixed_precision}",
    ]
    if args.lr_warmup_steps:
        recipe.append(f"{args.lr_warmup_steps} warm-up steps")
    if args.lr_cycle_start:
        recipe.append(f"the schedule restarted at step {args.lr_cycle_start}")
    if args.max_grad_norm:
        recipe.append(f"gradient clipping at {args.max_grad_norm:g}")
    if args.use_ema:
        recipe.append(f"EMA of weights (decay {args.ema_decay:g})")
    details = {
        "task": task,
        "data": data,
        "recipe": "; ".join(recipe),
        "steps": f"{steps} ({images_seen:,} patches)",
        "training time": f"{train_seconds / 3600:.2f} h",
        "hardware": hardware,
        "command": command,
    }
    if args.initial_step:
        details["continued from"] = (
            f"{args.model_name_or_path} at step {args.initial_step} (its checkpoint was lost: the schedule went on "
            "from there, the optimiser's moments started afresh; the training time counts from there)"
        )
    if data_problems:
        details["skipped or padded images"] = ", ".join(f"{k}: {v}" for k, v in data_problems.items())
    return details


def read_validation_history(history_path: str | Path) -> list[dict[str, float]]:
    """The validation records of a run's `logs/history.jsonl` (the last one of a step wins: a resumed run
    repeats the steps after its checkpoint), in step order."""
    records: dict[int, dict[str, float]] = {}
    for line in Path(history_path).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "validation/psnr" in record:
            records[int(record["step"])] = record
    return [records[step] for step in sorted(records)]


def validation_curve_svg(history: list[dict[str, float]], title: str, width: int = 640, height: int = 320) -> str:
    """A line chart (SVG, no plotting library needed) of validation PSNR against training steps, with the
    input's own PSNR as a dashed line.

    Example:

    ```python
    >>> from mirnet_hf.model_card import validation_curve_svg
    >>> history = [{"step": 500, "validation/psnr": 27.1, "validation/input_psnr": 20.2},
    ...            {"step": 1000, "validation/psnr": 28.0, "validation/input_psnr": 20.2}]
    >>> svg = validation_curve_svg(history, "CBSD68 (sigma 25)")
    >>> svg.startswith("<svg") and svg.count("<polyline") == 2
    True

    ```
    """
    if not history:
        raise ValueError("no validation records: the run logs them every --validation_steps.")
    left, right, top, bottom = 56, 16, 36, 40
    steps = [record["step"] for record in history]
    series = {
        "model": [record["validation/psnr"] for record in history],
        "input": [record.get("validation/input_psnr", float("nan")) for record in history],
    }
    values = [value for line in series.values() for value in line if value == value]
    low, high = min(values) - 0.5, max(values) + 0.5
    first, last = min(steps), max(max(steps), min(steps) + 1)

    def x(step: float) -> float:
        return left + (step - first) / (last - first) * (width - left - right)

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">Validation PSNR: {title}</text>',
    ]
    for index in range(5):  # horizontal grid with PSNR labels
        value = low + (high - low) * index / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.1f}</text>')
    for step in (first, (first + last) / 2, last):
        parts.append(f'<text x="{x(step):.1f}" y="{height - bottom + 16}" text-anchor="middle">{step:,.0f}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">training step</text>')
    styles = {"model": 'stroke="#1f77b4" stroke-width="2"', "input": 'stroke="#888" stroke-dasharray="5,4"'}
    for name, line in series.items():
        points = " ".join(f"{x(step):.1f},{y(value):.1f}" for step, value in zip(steps, line) if value == value)
        parts.append(f'<polyline fill="none" {styles[name]} points="{points}"/>')
    for step, value in zip(steps, series["model"]):
        parts.append(f'<circle cx="{x(step):.1f}" cy="{y(value):.1f}" r="3" fill="#1f77b4"/>')
    parts.append(f'<text x="{width - right}" y="{top - 4}" text-anchor="end">blue: model (dB); dashed: input</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
