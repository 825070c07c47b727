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
