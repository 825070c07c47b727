"""Bodies that run below the output's resolution: super-resolution with a pixel-shuffle tail (the network takes the
small image) and same-size tasks with a body stride (a pixel-unshuffled half-resolution stack). One mechanism:
the input is unshuffled by the stride and the output convolution makes (stride * upscale)^2 sub-pixels."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, load_script, make_image_folder, photo_crops
from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetImageProcessor
from mirnet_hf.data import Columns, RestorationPatches
from mirnet_hf.degradations import Degradation, super_resolution_input
from mirnet_hf.export import export_official
from mirnet_hf.inference import MIRNetRestorer

SMALL = {"version": "v2", "num_features": 16, "num_rrg": 1, "rrg_groups": [1], "num_mrb": 1}


def pixel_shuffle_model(scale: int, zero_tail: bool = False) -> MIRNetForImageRestoration:
    model = MIRNetForImageRestoration(
        MIRNetConfig(**SMALL, task="super-resolution", upscale=scale, upsampler="pixel-shuffle")
    ).eval()
    if zero_tail:  # the network adds nothing: its output is the bicubic upsampling of its input
        torch.nn.init.zeros_(model.conv_out.weight)
    return model


def photo(width: int = 70, height: int = 46) -> np.ndarray:
    return np.asarray(photo_crops(1, size=(width, height))[0])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_a_pixel_shuffle_model_enlarges_the_small_image_itself(scale):
    model = pixel_shuffle_model(scale)
    assert model.config.model_upscale == scale and model.config.tail_shuffle == scale
    assert model.conv_out.weight.shape[0] == 3 * scale**2
    output = model(pixel_values=torch.rand(1, 3, 21, 30)).reconstruction
    assert output.shape == (1, 3, 21 * scale, 30 * scale)
    # The processor made for it does not pre-upsample, and crops the result at the scale.
    processor = MIRNetImageProcessor.for_config(model.config)
    assert processor.upsample_input is False
    assert processor(images=photo(), size_divisor=1)["pixel_values"].shape == (1, 3, 46, 70)
    assert MIRNetImageProcessor.for_config(MIRNetConfig(**SMALL, task="super-resolution", upscale=2)).upsample_input


def test_a_zero_tail_gives_the_bicubic_upsampling_tiled_or_whole_and_self_ensembled():
    model = pixel_shuffle_model(3, zero_tail=True)
    image = photo()
    pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    bicubic = torch.nn.functional.interpolate(pixels, scale_factor=3, mode="bicubic", align_corners=False)
    expected = np.round(bicubic[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255)
    whole = MIRNetRestorer(model, device="cpu", tile_size=None)(image)
    assert whole.shape == (46 * 3, 70 * 3, 3)
    # The model reflect-pads 46x70 to 48x72 for its streams: the last rows and columns see that padding.
    assert np.abs(whole.astype(int) - expected)[:-12, :-12].max() <= 1
    # Tiles of 24 input pixels (72 output) overlapping by 8 (24 output): the blend covers the seams. Each tile's
    # bicubic kernel sees its own border there, so the seams differ by a little, never by a visible step.
    restorer = MIRNetRestorer(model, device="cpu", tile_size=24, tile_overlap=8)
    tiled = restorer(image)
    assert restorer.stats.tiles > 6 and tiled.shape == whole.shape
    difference = np.abs(tiled.astype(int) - whole.astype(int))
    assert difference.mean() < 0.2 and difference.max() <= 12
    # Bicubic upsampling commutes with the square's symmetries, so the eight-fold average gives it back (away
    # from the borders, where each turned copy was padded on its own bottom and right).
    ensembled = MIRNetRestorer(model, device="cpu", tile_size=None, self_ensemble=True)(image)
    assert ensembled.shape == whole.shape
    assert np.abs(ensembled.astype(int) - whole.astype(int))[12:-12, 12:-12].max() <= 1


def test_a_pixel_shuffle_model_restores_only_at_its_own_scale():
    restorer = MIRNetRestorer(pixel_shuffle_model(2), device="cpu")
    assert restorer(photo(), upscale=2).shape == (92, 140, 3)
    with pytest.raises(ValueError, match=r"upscale=4 is not available .* x2 itself"):
        restorer(photo(), upscale=4)


def test_a_body_stride_runs_the_body_at_half_resolution_and_keeps_the_size():
    model = MIRNetForImageRestoration(MIRNetConfig(**SMALL, body_stride=2)).eval()
    assert model.config.size_multiple == 8 and model.mirnet.conv_in.weight.shape[1] == 12
    output = model(pixel_values=torch.rand(1, 3, 37, 29), output_hidden_states=True)
    assert output.reconstruction.shape == (1, 3, 37, 29)
    assert all(state.shape[-2:] == (19, 15) for state in output.hidden_states)  # half of 37x29, rounded up
    restored = MIRNetRestorer(model, device="cpu", tile_size=32, tile_overlap=8)(photo())
    assert restored.shape == (46, 70, 3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"upsampler": "pixel-shuffle"}, "needs task='super-resolution'"),
        ({"upsampler": "nearest"}, r"upsampler='nearest' is not valid; choose one of \('bicubic-input'"),
        ({"body_stride": 3}, r"body_stride=3 is not valid; choose one of \(1, 2, 4\)"),
    ],
)
def test_bad_settings_name_the_value_and_what_is_valid(settings, message):
    with pytest.raises(ValueError, match=message):
        MIRNetConfig(**SMALL, **settings)


@pytest.mark.parametrize(
    "settings", [{"body_stride": 2}, {"task": "super-resolution", "upscale": 2, "upsampler": "pixel-shuffle"}]
)
def test_the_authors_format_refuses_these_shapes_and_says_why(tmp_path, settings):
    model = MIRNetForImageRestoration(MIRNetConfig(**SMALL, **settings))
    with pytest.raises(ValueError, match="cannot be exported in the authors' format.*pixel-shuffle tail.*ONNX"):
        export_official(model, tmp_path / "model.pth")
    assert not (tmp_path / "model.pth").exists()


def test_onnx_runtime_restores_what_pytorch_does(tmp_path, monkeypatch):
    monkeypatch.setenv("MIRNET_HF_CACHE", str(tmp_path))
    model = pixel_shuffle_model(3)
    image = photo()
    # PyTorch first: it leaves the model channels-last, which the export must undo to trace any batch size.
    ours = MIRNetRestorer(model, device="cpu", precision="float32", tile_size=32)(image)  # the graph is float32
    theirs = MIRNetRestorer(model, device="cpu", tile_size=32, backend="onnxruntime")(image)
    assert theirs.shape == ours.shape == (138, 210, 3)
    assert np.abs(theirs.astype(int) - ours.astype(int)).max() <= 1


def test_low_resolution_patches_line_up_with_their_targets():
    clean = torch.rand(3, 48, 48)
    degradation = Degradation("super-resolution", scales=(4,), low_resolution_input=True)
    small = degradation.apply(clean, torch.Generator().manual_seed(0))
    assert small.shape == (3, 12, 12)
    assert torch.equal(small, super_resolution_input(clean, 4, upsample=False))
    # Paired data with small inputs: the input patch is cut where its target's is, on multiples of the scale.
    import datasets

    targets = photo_crops(3, size=(64, 48))
    inputs = [target.resize((32, 24), Image.BICUBIC) for target in targets]
    data = datasets.Dataset.from_dict({"input": inputs, "target": targets})
    data = data.cast_column("input", datasets.Image()).cast_column("target", datasets.Image())
    patches = RestorationPatches(data, Columns("target", "input"), patch_size=16, input_scale=2, flips=False)
    for item, _ in zip(patches, range(6)):
        source, target = item["pixel_values"], item["labels"]
        assert source.shape == (3, 8, 8) and target.shape == (3, 16, 16)
        # The patch's own small version, made from the target, is close to the cut input (the same bicubic).
        assert (source - torch.nn.functional.avg_pool2d(target[None], 2)[0]).abs().mean() < 0.05
    with pytest.raises(ValueError, match="multiple of 2"):
        RestorationPatches(data, Columns("target", "input"), patch_size=15, input_scale=2)


@pytest.mark.slow
def test_a_pixel_shuffle_model_trains_validates_and_saves(tmp_path):
    train = make_image_folder(tmp_path / "train", photo_crops(6, size=(48, 48)))
    validation = make_image_folder(tmp_path / "validation", photo_crops(2, size=(64, 48), offset=20))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**SMALL, "upsampler": "pixel-shuffle", "task": "super-resolution", "upscale": 2}))
    output = tmp_path / "run"
    args = ["--config_name", str(config), "--task", "super-resolution", "--scales", "3", "--patch_size", "24",
            "--dataset_name", str(train), "--output_dir", str(output), "--max_train_steps", "3",
            "--train_batch_size", "2", "--validation_dataset_name", str(validation), "--validation_split", "train",
            "--validation_level", "3", "--validation_steps", "3", "--report_to", "none"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(REPO / "training" / "train.py"), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model = MIRNetForImageRestoration.from_pretrained(output)
    assert (model.config.upsampler, model.config.upscale) == ("pixel-shuffle", 3)
    assert MIRNetImageProcessor.from_pretrained(output).upsample_input is False
    records = [json.loads(line) for line in (output / "logs" / "history.jsonl").read_text().splitlines()]
    validation = next(record for record in records if "validation/psnr" in record)
    # Validated at x3 (whose bicubic baseline is measured against the x3 target): a measured PSNR, not an error.
    assert validation["step"] == 3 and 10 < validation["validation/psnr"] < 60 and validation["validation/input_psnr"]
    assert MIRNetRestorer(output, device="cpu")(photo(30, 20)).shape == (60, 90, 3)
    # Its tail serves x3 only: fine-tuning it to x2 is refused with the reason.
    again = [*args, "--model_name_or_path", str(output), "--scales", "2", "--output_dir", str(tmp_path / "x2")]
    refused = subprocess.run(
        [sys.executable, str(REPO / "training" / "train.py"), *again], capture_output=True, text=True, timeout=600
    )
    assert refused.returncode != 0 and "whose weights fit that scale only" in refused.stderr


@pytest.mark.slow
def test_the_gpu_sprint_trains_and_writes_candidates_with_their_cards(tmp_path):
    """The sprint's whole path on the CPU, one run of two steps, with a tiny network and one validation image (each
    run takes the same path: train, validate, write the folder with its ONNX graph and card)."""
    tiny = tmp_path / "tiny-ps.json"
    tiny.write_text(json.dumps({**SMALL, "num_features": 8, "upsampler": "pixel-shuffle"}))
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_sprint.py"), "--output_dir", str(tmp_path / "sprint"),
         "--runs", "super-resolution-x4", "--steps", "2", "--from_scratch",
         "--set", f"config_name={tiny}", "max_validation_images=1", "dataloader_num_workers=0",
         "train_batch_size=2", "patch_size=32"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    assert "| super-resolution-x4 | 2 |" in done.stdout
    folder = tmp_path / "sprint" / "super-resolution-x4"
    model = MIRNetForImageRestoration.from_pretrained(folder)
    assert (model.config.upsampler, model.config.upscale) == ("pixel-shuffle", 4)
    assert (folder / "onnx" / "model.onnx").is_file() and (folder / "validation_curve.svg").is_file()
    card = (folder / "README.md").read_text()
    assert "Trained by scripts/gpu_sprint.py: 2 steps from scratch" in card


def test_the_gpu_sprint_goes_on_from_committed_run_weights_unless_told_not_to(tmp_path):
    """A lent GPU's minutes add to the CPU sessions' steps: a run whose config continues from committed weights starts
    from them on a new schedule (no `initial_step`), at the warm peak rate; a run with none starts from scratch."""
    import yaml

    gpu_sprint = load_script(REPO / "scripts" / "gpu_sprint.py")

    x4 = yaml.safe_load(gpu_sprint.run_config("super-resolution-x4", tmp_path, {}, steps=300).read_text())
    committed = yaml.safe_load((REPO / gpu_sprint.RUNS["super-resolution-x4"]).read_text())["model_name_or_path"]
    assert x4["model_name_or_path"] == committed
    assert (REPO / x4["model_name_or_path"] / "model.safetensors").is_file()
    assert "initial_step" not in x4 and x4["learning_rate"] == gpu_sprint.WARM_LEARNING_RATE
    denoiser = yaml.safe_load(gpu_sprint.run_config("denoising-s2", tmp_path, {}, steps=300).read_text())
    assert "initial_step" not in denoiser and "lr_cycle_start" not in denoiser  # the sprint's own schedule
    assert x4["max_train_steps"] == 300 and x4["output_dir"] == str(tmp_path / "train-super-resolution-x4")
    scratch = yaml.safe_load(
        gpu_sprint.run_config("super-resolution-x4", tmp_path, {}, 300, from_scratch=True).read_text()
    )
    assert "model_name_or_path" not in scratch and "initial_step" not in scratch
    assert scratch["learning_rate"] == gpu_sprint.GPU_SETTINGS["learning_rate"]
    probe = yaml.safe_load(gpu_sprint.run_config("super-resolution-x4", tmp_path / "probe", {}, 40).read_text())
    assert probe["output_dir"] == str(tmp_path / "probe" / "train-super-resolution-x4")  # its folder is made
    # A run whose committed weights are not in this checkout (a new run, or a tree sent without them) starts afresh.
    missing = tmp_path / "missing.yaml"
    x3_config = yaml.safe_load((REPO / gpu_sprint.RUNS["super-resolution-x3"]).read_text())
    missing.write_text(yaml.safe_dump({**x3_config, "model_name_or_path": str(tmp_path / "nowhere")}))
    gpu_sprint.RUNS["new"] = str(missing)  # this test's own copy of the script
    x3 = yaml.safe_load(gpu_sprint.run_config("new", tmp_path, {}, steps=300).read_text())
    assert "model_name_or_path" not in x3 and x3["learning_rate"] == gpu_sprint.GPU_SETTINGS["learning_rate"]


def test_the_gpu_sprint_times_a_step_by_its_median_speed_and_checks_its_shares(tmp_path, capsys):
    """A probe's first record (start-up) and a record that spans a validation must not set a run's step time: on
    an H200 the last record alone made steps look 5x slower and the sprint trained a fifth of what fit."""
    import yaml

    gpu_sprint = load_script(REPO / "scripts" / "gpu_sprint.py")
    run_dir = tmp_path / "train-denoising-s2"
    (run_dir / "logs").mkdir(parents=True)
    (tmp_path / "denoising-s2.yaml").write_text(yaml.safe_dump({"train_batch_size": 96}))
    speeds = [110.0, 900.0, 880.0, 920.0, 60.0]  # start-up, three steady records, one across a validation
    (run_dir / "logs" / "history.jsonl").write_text(
        "\n".join(json.dumps({"step": 10 * i, "train/images_per_second": s}) for i, s in enumerate(speeds, 1))
    )
    assert 96 / 920 <= gpu_sprint.seconds_per_step(run_dir) <= 96 / 880  # a steady step, not 96 / 60
    with pytest.raises(SystemExit):
        gpu_sprint.main(["--output_dir", str(tmp_path), "--runs", "denoising-s2", "--shares", "2", "1"])
    assert "--shares [2.0, 1.0] must give one positive number per run (1" in capsys.readouterr().err


def test_the_gpu_sprint_reads_settings_as_the_configs_do(capsys):
    gpu_sprint = load_script(REPO / "scripts" / "gpu_sprint.py")
    # What a copy of the checkout must hold for the runs (scripts/lent_gpu.sh leaves the rest behind).
    assert gpu_sprint.main(["--list_weights", "--runs", "super-resolution-x4", "denoising-s2"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == [
        "checkpoints/mirnet-v2-medium-ps-super-resolution-x4",
        "checkpoints/mirnet-v2-medium-s2-denoising",
    ]
    assert all((REPO / folder / "model.safetensors").is_file() for folder in listed)
    assert gpu_sprint.main(["--list_weights", "--from_scratch"]) == 0 and capsys.readouterr().out == ""
    assert gpu_sprint.parse_setting("mixed_precision=no") == ("mixed_precision", "no")  # not YAML 1.1's False
    assert gpu_sprint.parse_setting("use_ema=false") == ("use_ema", False)
    assert gpu_sprint.parse_setting("sigma_range=[0, 55]") == ("sigma_range", [0, 55])
    assert gpu_sprint.parse_setting("train_batch_size=64") == ("train_batch_size", 64)
    with pytest.raises(SystemExit, match="--set 'patch_size' is not valid; give KEY=VALUE"):
        gpu_sprint.parse_setting("patch_size")
