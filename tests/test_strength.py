"""The denoising strength: the model's own estimate at 1, gentler below (some grain kept), stronger above
(towards the grain pass over the image's sub-images), never leaving more noise for a higher strength."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import DATASETS, REPO
from mirnet_hf import MIRNetRestorer
from mirnet_hf.evaluation import noise_estimate

DENOISER = REPO / "checkpoints" / "mirnet-v2-medium-s2-denoising"


@pytest.fixture(scope="module")
def grainy_photo():
    """A 160x160 crop of a real noisy photo (RNI15's dog: grain from a real camera, no clean reference)."""
    with Image.open(DATASETS / "RNI15" / "Dog.png") as image:
        return np.asarray(image.convert("RGB").crop((100, 100, 260, 260)))


def test_a_higher_strength_never_leaves_more_noise(grainy_photo):
    levels = {}
    for strength in (0.0, 0.5, 1.0, 1.5, 2.0):
        restored = MIRNetRestorer(str(DENOISER), device="cpu", strength=strength)(grainy_photo)
        levels[strength] = noise_estimate(restored)
        if strength == 0:
            assert np.abs(restored.astype(int) - grainy_photo.astype(int)).max() <= 1  # the input itself
    print("noise estimate by strength:", {k: round(v, 2) for k, v in levels.items()})
    values = list(levels.values())
    assert all(later <= earlier + 0.05 for earlier, later in zip(values, values[1:]))
    assert values[0] > values[2] > values[4]  # gentler keeps grain; stronger removes more than the default


def test_strength_is_checked_and_is_for_denoising_only():
    with pytest.raises(ValueError, match=r"strength=2.5 is not valid; it must be a number from 0 to 2"):
        MIRNetRestorer(str(DENOISER), device="cpu", strength=2.5)
    sr = REPO / "checkpoints" / "mirnet-v2-medium-ps-super-resolution-x2"
    with pytest.raises(ValueError, match="strength=0.5 is for denoising models; this one is a super-resolution"):
        MIRNetRestorer(str(sr), device="cpu", strength=0.5)


def test_the_cli_takes_a_strength(tmp_path, grainy_photo):
    Image.fromarray(grainy_photo).save(tmp_path / "in.png")
    outputs = {}
    for strength in ("0.5", "1.5"):
        out = tmp_path / f"out-{strength}.png"
        done = subprocess.run(
            [sys.executable, "-m", "mirnet_hf.cli", "restore", "--model", str(DENOISER), str(tmp_path / "in.png"),
             "--output", str(out), "--strength", strength, "--quiet"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[strength] = noise_estimate(np.asarray(Image.open(out)))
    assert outputs["1.5"] < outputs["0.5"]


def test_the_app_takes_a_strength_for_denoising_only(tmp_path, grainy_photo):
    from mirnet_hf.demo import AppError, AppSettings, ModelCache, restore_upload

    Image.fromarray(grainy_photo).save(tmp_path / "grainy.png")
    cache = ModelCache(AppSettings.from_environment({}))
    result = restore_upload(cache, "denoising", str(tmp_path / "grainy.png"), strength=1.5)
    assert "strength 1.5" in result.message
    with pytest.raises(AppError, match="strength 2.5 is not valid here; denoising takes 0 to 2"):
        restore_upload(cache, "denoising", str(tmp_path / "grainy.png"), strength=2.5)
    with pytest.raises(AppError, match="the other tasks 1"):
        restore_upload(cache, "super-resolution", str(tmp_path / "grainy.png"), scale=2, strength=0.5)


@pytest.mark.parametrize("height, width", [(37, 53), (1, 5), (64, 64)])
def test_sub_images_put_back_give_the_image_at_any_size(height, width):
    import torch

    from mirnet_hf.image_ops import join_subimages, split_subimages

    image = torch.rand(1, 3, height, width)
    subimages = split_subimages(image)
    assert subimages.shape == (4, 3, (height + 1) // 2, (width + 1) // 2)
    if height > 1:
        assert torch.equal(subimages[2, :, 0, 0], image[0, :, 1, 0])  # sub-image (1, 0) starts at row 1, column 0
    assert torch.equal(join_subimages(subimages, height, width), image)
    with pytest.raises(ValueError, match=r"expected a \(1, C, H, W\) tensor, got shape \(2, 3, 4, 4\)"):
        split_subimages(torch.rand(2, 3, 4, 4))


def test_the_grain_pass_removes_correlated_grain_that_a_second_pass_keeps(grainy_photo):
    """Strength 2 is the grain pass (the model over the four sub-images, then over the whole); on a real noisy
    photo it leaves less grain than running the model twice, and tiles, odd sizes and progress work as ever."""
    import torch

    photo = grainy_photo[:75, :97]  # odd sides
    restorer = MIRNetRestorer(str(DENOISER), device="cpu", strength=2.0, tile_size=48, tile_overlap=8)
    calls = []
    strongest = restorer(photo, progress=lambda done, total: calls.append((done, total)))
    assert strongest.shape == photo.shape and calls and calls[-1][0] == calls[-1][1]
    once = MIRNetRestorer(str(DENOISER), device="cpu", tile_size=48, tile_overlap=8)
    pixel_values = once.processor(images=photo, return_tensors="pt", size_divisor=1)["pixel_values"]
    twice = once.restore_tensor(once.restore_tensor(pixel_values).clamp(0, 1)).clamp(0, 1)
    twice = (twice[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert noise_estimate(strongest) < noise_estimate(twice) < noise_estimate(once(photo))
