import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATASETS, REPO, load_script, make_image_folder, photo_crops
from mirnet_hf.cli import main
from mirnet_hf.degradations import downscale_bicubic, upsample_bicubic
from mirnet_hf.evaluation import EvaluationPair, evaluate, image_metrics


def y_channel_psnr_by_hand(a, b, border):
    """The SR literature's formula, written out: BT.601 luma of 8-bit values, border cropped, peak 255."""

    def luma(image):
        image = np.round(np.clip(image, 0, 1) * 255) / 255
        return 16 + 65.481 * image[..., 0] + 128.553 * image[..., 1] + 24.966 * image[..., 2]

    diff = (luma(a) - luma(b))[border:-border, border:-border]
    return 10 * np.log10(255**2 / np.mean(diff**2))


def test_y_channel_psnr_is_the_sr_convention():
    rng = np.random.default_rng(0)
    target = rng.random((40, 50, 3))
    restored = np.clip(target + rng.normal(0, 0.03, target.shape), 0, 1)
    psnr, ssim = image_metrics(restored, target, y_channel=True, crop_border=4)
    assert psnr == pytest.approx(y_channel_psnr_by_hand(restored, target, 4), abs=1e-6)
    assert 0 < ssim < 1
    rgb_psnr, _ = image_metrics(restored, target)
    assert abs(rgb_psnr - psnr) > 0.5  # the conventions differ, so mixing them up would show
    with pytest.raises(ValueError, match="differ in shape"):
        image_metrics(restored[:10], target)


def test_set5_bicubic_baseline_is_close_to_the_published_figure():
    """Set5 x4 from its shipped inputs: published bicubic 28.42 dB (MATLAB's kernel; PyTorch's is a little
    sharper, so ours sits slightly above)."""
    pairs = []
    for low_path in sorted((DATASETS / "Set5" / "image_SRF_4").glob("*_LR.png")):
        low = np.asarray(Image.open(low_path).convert("RGB"), np.float32) / 255
        high = np.asarray(Image.open(str(low_path).replace("_LR", "_HR")).convert("RGB"), np.float32) / 255
        upsampled = upsample_bicubic(torch.from_numpy(low).permute(2, 0, 1), 4).permute(1, 2, 0).numpy()
        pairs.append(EvaluationPair(low_path.name, low, high, upsampled, scale=4))
    result = evaluate(lambda image, scale: pairs[0].baseline, pairs[:1], y_channel=True)
    assert result.psnr == pytest.approx(result.baseline_psnr)  # returning the baseline scores the baseline
    result = evaluate(
        lambda image, scale: (
            upsample_bicubic(torch.from_numpy(image).permute(2, 0, 1), scale).permute(1, 2, 0).numpy()
        ),
        pairs,
        y_channel=True,
    )
    assert result.images == 5
    assert result.psnr == pytest.approx(28.42, abs=0.3)


@pytest.fixture(scope="module")
def denoiser_folder(tmp_path_factory, trained_denoiser):
    from mirnet_hf import MIRNetImageProcessor

    folder = tmp_path_factory.mktemp("denoiser")
    trained_denoiser.save_pretrained(folder)
    MIRNetImageProcessor.for_config(trained_denoiser.config).save_pretrained(folder)
    return folder


def table_rows(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in output.splitlines() if "(sigma" in line]


def test_evaluate_command_prints_input_and_model_figures(tmp_path, denoiser_folder, capsys):
    folder = make_image_folder(tmp_path / "kodak", photo_crops(2, size=(96, 96), offset=40))
    code = main(["evaluate", "--model", str(denoiser_folder), "--dataset_name", str(folder), "--level", "25", "50",
                 "--quiet"])  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0
    rows = table_rows(output)
    assert [row[0] for row in rows] == ["kodak (sigma 25)", "kodak (sigma 50)"]
    gain_at_25 = float(rows[0][4])
    assert gain_at_25 > 3, output  # the model was trained at sigma 25
    assert float(rows[0][1]) == 2


def test_real_grain_evaluation_is_its_own_row_with_the_same_inputs_each_run(tmp_path, denoiser_folder, capsys):
    from mirnet_hf.evaluation import degrade_for_evaluation, image_metrics

    folder = make_image_folder(tmp_path / "kodak", photo_crops(2, size=(96, 96), offset=40))
    command = ["evaluate", "--model", str(denoiser_folder), "--dataset_name", str(folder), "--quiet"]
    assert main([*command, "--level", "25", "--real-grain"]) == 0
    output = capsys.readouterr().out
    lines = [line for line in output.splitlines() if line.startswith("| kodak")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert [row[0] for row in rows] == ["kodak (sigma 25)", "kodak (real grain)"]
    assert rows[0][2] != rows[1][2]  # another noise than sigma 25's
    clean = np.asarray(photo_crops(1, size=(96, 96))[0], dtype=np.float32) / 255
    first, again = (degrade_for_evaluation(clean, "denoising", None, seed=3, real_grain=True) for _ in range(2))
    np.testing.assert_array_equal(first.input, again.input)  # fixed seeds: every run and method sees these inputs
    assert image_metrics(first.input, clean)[0] < 45  # and it is noisy
    with pytest.raises(ValueError, match="real_grain=True is a denoising setting; task='super-resolution'"):
        degrade_for_evaluation(clean, "super-resolution", 2, seed=3, real_grain=True)


def test_the_papers_unclipped_protocol_is_the_same_noise_left_unclipped(tmp_path, denoiser_folder):
    """Papers publish Gaussian denoising on noise added in floating point; our inputs are 8-bit images, as saved
    photos are. `evaluate_defaults.py --unclipped` reports both, for the same draws, so figures compare with papers."""
    import json

    from mirnet_hf.evaluation import degrade_for_evaluation

    clean = np.asarray(photo_crops(1, size=(96, 96))[0], dtype=np.float32) / 255
    saved = degrade_for_evaluation(clean, "denoising", 50, seed=1)
    published = degrade_for_evaluation(clean, "denoising", 50, seed=1, clipped=False)
    assert published.input.min() < 0 and published.input.max() > 1
    assert not np.allclose(published.input * 255, np.round(published.input * 255))  # not rounded to 8 bits either
    np.testing.assert_allclose(np.clip(published.input, 0, 1), saved.input, atol=0.5 / 255 + 1e-6)  # the same draw
    for task, grain in (("super-resolution", False), ("denoising", True)):
        with pytest.raises(
            ValueError, match=f"clipped=False is the published protocol of Gaussian denoising; task='{task}'"
        ):
            degrade_for_evaluation(clean, task, 2, seed=1, clipped=False, real_grain=grain)

    evaluate_defaults = load_script(REPO / "benchmarks" / "evaluate_defaults.py")
    rows_file = tmp_path / "rows.json"
    command = ["--task", "denoising", "--model", str(denoiser_folder), "--max-images", "1", "--no-cbm3d"]
    assert evaluate_defaults.main([*command, "--unclipped", "--json", str(rows_file)]) == 0
    ours = {row["data"]: row["psnr"] for row in json.loads(rows_file.read_text())["denoising"]
            if row["method"] == "MIRNet (ours)"}  # fmt: skip
    gaussian = [f"{folder} sigma {sigma}" for folder in ("CBSD68", "Kodak24") for sigma in (15, 25, 50)]
    assert sorted(ours) == sorted([*gaussian, *(f"{label} unclipped" for label in gaussian), "PolyU real noise"])
    assert abs(ours["CBSD68 sigma 50 unclipped"] - ours["CBSD68 sigma 50"]) > 0.01  # the model saw other inputs


def test_evaluate_command_errors(tmp_path, denoiser_folder, capsys):
    folder = make_image_folder(tmp_path / "data", photo_crops(1))
    assert main(["evaluate", "--model", str(tmp_path / "missing"), "--dataset_name", str(folder)]) == 2
    assert "mirnet-hf evaluate: error" in capsys.readouterr().err
    code = main(
        ["evaluate", "--model", str(denoiser_folder), "--dataset_name", str(folder), "--input_column", "noisy"]
    )
    assert code == 2
    assert "column 'noisy' is not in the dataset; its columns are: image" in capsys.readouterr().err


def test_super_resolution_evaluation_on_clean_images_uses_bicubic_as_the_baseline(tmp_path, converted_sr, capsys):
    photo = photo_crops(1, size=(64, 48))[0]
    folder = make_image_folder(tmp_path / "clean", [photo])
    code = main(["evaluate", "--model", str(converted_sr), "--dataset_name", str(folder), "--level", "2", "--quiet"])
    output = capsys.readouterr().out
    assert code == 0
    row = next(line for line in output.splitlines() if "(x2)" in line)
    input_psnr = float(row.split("|")[3].split("/")[0])
    clean = torch.from_numpy(np.asarray(photo, np.float32) / 255).permute(2, 0, 1)
    low = (downscale_bicubic(clean, 2) * 255).round() / 255
    bicubic = upsample_bicubic(low, 2).permute(1, 2, 0).numpy()
    expected, _ = image_metrics(bicubic, clean.permute(1, 2, 0).numpy(), y_channel=True, crop_border=2)
    assert input_psnr == pytest.approx(expected, abs=0.006)
    command = ["evaluate", "--model", str(converted_sr), "--dataset_name", str(folder), "--real-grain", "--quiet"]
    assert main(command) == 2
    assert "--real-grain is a denoising setting, not super-resolution" in capsys.readouterr().err
