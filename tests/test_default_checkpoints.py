"""The shipped default checkpoints: Hub-shaped folders that load offline and restore real photos."""

import json

import numpy as np
import pytest
import torch

from conftest import DATASETS, REPO
from mirnet_hf import MIRNetForImageRestoration, MIRNetRestorer
from mirnet_hf.evaluation import degrade_for_evaluation, image_metrics
from mirnet_hf.export import onnx_fingerprint, weights_fingerprint
from mirnet_hf.tasks import get_task

# task -> (level, minimum PSNR gain over the degraded input in dB, Y channel)
CASES = {
    "denoising": [(25, 6.0, False)],
    # Floors well below what the shipped models gain (see the README); super-resolution gains least.
    "super-resolution": [(2, 0.5, True), (3, 0.12, True), (4, 0.03, True)],
    "low-light-enhancement": [(0.1, 8.0, False)],
}


def kodak_crop() -> np.ndarray:
    from PIL import Image

    image = Image.open(DATASETS / "Kodak24" / "kodim19.png").convert("RGB").crop((100, 100, 340, 340))
    return np.asarray(image, np.float32) / 255


SHIPPED = [path for task in CASES for path in get_task(task).shipped_checkpoints]


@pytest.mark.parametrize("path", SHIPPED)
def test_folder_is_a_hub_model_repo_under_20_mb(path):
    folder = REPO / path
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "onnx", "preprocessor_config.json", "validation_curve.svg",
        "validation_history.jsonl",
    ]  # fmt: skip
    assert [p.name for p in (folder / "onnx").iterdir()] == ["model.onnx"]
    assert (folder / "model.safetensors").stat().st_size < 20e6
    card = (folder / "README.md").read_text()
    assert "model-index:" in card and "pipeline_tag: image-to-image" in card and "training time" in card
    # The records behind the card's curve, which a run continued from these weights starts from.
    history = [json.loads(line) for line in (folder / "validation_history.jsonl").read_text().splitlines()]
    assert history and all(f"| {r['step']} | {r['validation/psnr']:.2f} |" in card for r in history)


@pytest.mark.parametrize(
    ("task", "level", "gain", "y_channel"), [(t, *c) for t, cases in CASES.items() for c in cases]
)
def test_default_model_restores_a_real_photo(task, level, gain, y_channel):
    folder = REPO / get_task(task).checkpoint_for(level if get_task(task).rescales else None)
    model = MIRNetForImageRestoration.from_pretrained(folder)
    assert model.config.task == task
    pair = degrade_for_evaluation(kodak_crop(), task, level, seed=7)
    restorer = MIRNetRestorer(model, device="cpu")
    restored = restorer(pair.input, upscale=pair.scale if task == "super-resolution" else None)
    border = pair.scale if y_channel else 0
    before, _ = image_metrics(pair.baseline, pair.target, y_channel=y_channel, crop_border=border)
    after, _ = image_metrics(restored, pair.target, y_channel=y_channel, crop_border=border)
    assert after - before > gain, f"{task} at {level}: {before:.2f} -> {after:.2f} dB"
    assert torch.isfinite(torch.from_numpy(restored)).all()


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_onnx_graph_is_current_and_matches_pytorch(path):
    """The app runs the defaults with ONNX Runtime: their graph must be the weights' own (no export at start)."""
    folder = REPO / path
    model = MIRNetForImageRestoration.from_pretrained(folder)
    assert onnx_fingerprint(folder / "onnx" / "model.onnx") == weights_fingerprint(model)
    runtime = MIRNetRestorer(model, device="cpu", backend="onnxruntime")
    assert runtime.runner.path == folder / "onnx" / "model.onnx"
    pixel_values = torch.from_numpy(kodak_crop()[:100, :120]).permute(2, 0, 1)[None].contiguous()
    reference = MIRNetRestorer(model, device="cpu", precision="float32").restore_tensor(pixel_values)  # as the graph
    assert (runtime.restore_tensor(pixel_values) - reference).abs().max() <= 1e-4
