"""Model cards (README.md of a model folder) rendered from the template in `model_cards/`."""

from __future__ import annotations

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
