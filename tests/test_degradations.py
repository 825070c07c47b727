import numpy as np
import pytest
import torch

from conftest import photo_crops
from mirnet_hf.degradations import (
    Degradation,
    add_poisson_gaussian_noise,
    darken,
    downscale_bicubic,
    evaluation_degradation,
    quantize_8bit,
    super_resolution_input,
    upsample_bicubic,
)
from mirnet_hf.image_processing_mirnet import MIRNetImageProcessor


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    image = photo_crops(1, size=(96, 72))[0]
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_has_the_drawn_sigma_and_is_quantised(photo):
    noisy = evaluation_degradation("denoising", 25).apply(photo, generator())
    assert noisy.shape == photo.shape
    assert torch.allclose(noisy * 255, (noisy * 255).round(), atol=1e-4)  # an 8-bit image
    residual = (noisy - photo)[(photo > 0.15) & (photo < 0.85)]  # away from clipping
    assert abs(float(residual.std()) * 255 - 25) < 1.5


def test_same_seed_same_degradation_other_seed_differs(photo):
    degradation = Degradation("denoising", sigma_range=(0, 55), poisson_probability=0.5)
    assert torch.equal(degradation.apply(photo, generator(3)), degradation.apply(photo, generator(3)))
    assert not torch.equal(degradation.apply(photo, generator(3)), degradation.apply(photo, generator(4)))


def test_poisson_gaussian_noise_grows_with_the_signal():
    dark, bright = torch.full((3, 64, 64), 0.1), torch.full((3, 64, 64), 0.8)
    noise_dark = (add_poisson_gaussian_noise(dark, 100, 0, generator()) - dark).std()
    noise_bright = (add_poisson_gaussian_noise(bright, 100, 0, generator()) - bright).std()
    # Shot noise: variance level / photons.
    assert abs(float(noise_dark) - (0.1 / 100) ** 0.5) < 0.005
    assert abs(float(noise_bright) - (0.8 / 100) ** 0.5) < 0.01


def test_super_resolution_input_is_bicubic_down_then_the_processors_bicubic_up(photo):
    degraded = super_resolution_input(photo, 3)
    assert degraded.shape == photo.shape
    low = quantize_8bit(downscale_bicubic(photo, 3))  # the low resolution is an 8-bit image, as users' are
    assert low.shape[-2:] == (24, 32)
    processor = MIRNetImageProcessor(upscale=3, size_divisor=1)
    upsampled = processor(images=low.permute(1, 2, 0).numpy(), return_tensors="pt")["pixel_values"][0]
    assert torch.equal(upsampled, degraded)
    assert torch.allclose(upsample_bicubic(low, 3), degraded)
    # Blur and JPEG make it worse, not different in size.
    worse = super_resolution_input(photo, 3, blur_sigma=1.5, jpeg_quality=30)
    assert worse.shape == photo.shape
    assert (worse - photo).abs().mean() > (degraded - photo).abs().mean()


def test_super_resolution_rejects_bad_scales_and_sizes(photo):
    with pytest.raises(ValueError, match="scale=5"):
        super_resolution_input(photo, 5)
    with pytest.raises(ValueError, match="multiple of scale=4"):
        super_resolution_input(photo[:, :70], 4)
    with pytest.raises(ValueError, match="scales="):
        Degradation("super-resolution", scales=(2, 8))


def test_training_super_resolution_patch_mixes_scales(photo):
    degradation = Degradation("super-resolution", scales=(2, 3, 4))
    assert degradation.size_multiple == 12
    errors = {round(float((degradation.apply(photo, generator(seed)) - photo).abs().mean()), 4) for seed in range(12)}
    assert len(errors) == 3  # three scales, three error levels


def test_low_light_is_dark_noisy_and_8_bit(photo):
    dark = darken(photo, exposure=0.1, gamma=2.0, photons=1000, read_sigma=1.0, generator=generator())
    assert float(dark.mean()) < 0.1 * float(photo.mean())
    assert torch.allclose(dark * 255, (dark * 255).round(), atol=1e-4)
    drawn = Degradation("low-light-enhancement").apply(photo, generator())
    assert float(drawn.mean()) < 0.35 * float(photo.mean())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "deblurring"}, "task='deblurring'"),
        ({"task": "denoising", "sigma_range": (30, 10)}, "sigma_range=\\(30, 10\\)"),
        ({"task": "denoising", "poisson_probability": 2}, "poisson_probability=2"),
    ],
)
def test_bad_settings_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Degradation(**kwargs)


def test_bad_input_is_a_clear_error():
    with pytest.raises(TypeError, match="float tensor"):
        Degradation("denoising").apply(torch.zeros(8, 8, dtype=torch.uint8), generator())
    with pytest.raises(ValueError, match="exposure=0"):
        darken(torch.zeros(3, 4, 4), exposure=0, gamma=2, photons=None, read_sigma=0, generator=generator())


# --- the camera pipeline ------------------------------------------------------------------------------------


def test_camera_pipeline_without_noise_returns_the_input_within_quantisation(photo):
    from mirnet_hf.degradations import Camera, develop, unprocess

    for seed in range(5):
        camera = Camera.random(generator(seed))
        assert torch.allclose(camera.camera_to_rgb.sum(dim=1), torch.ones(3))  # grey stays grey
        developed = develop(unprocess(photo, camera), camera)
        assert float((developed - photo).abs().max()) < 0.5 / 255
    # With the mosaic and demosaicking too, on a smooth image (bilinear demosaicking is exact on flat colour).
    smooth = torch.nn.functional.avg_pool2d(photo[None], 8)[0].repeat_interleave(8, 1).repeat_interleave(8, 2)
    flat = torch.ones_like(photo) * torch.tensor([0.7, 0.4, 0.2])[:, None, None]
    from mirnet_hf.degradations import camera_pipeline_noise, quantize_8bit

    restored = quantize_8bit(camera_pipeline_noise(flat, generator(1), noise=False))
    assert float((restored - flat).abs().max()) <= 0.5 / 255 + 1e-6
    interior = (quantize_8bit(camera_pipeline_noise(smooth, generator(2), noise=False)) - smooth)[:, 8:-8, 8:-8]
    assert float(interior.abs().mean()) < 2 / 255  # only the block edges of the smooth image differ


def test_raw_noise_variance_rises_with_the_signal():
    from mirnet_hf.degradations import add_shot_read_noise

    shot, read = 4e-3, 1e-5
    variances = []
    for level in (0.05, 0.2, 0.8):
        raw = torch.full((1, 128, 128), level)
        noisy = add_shot_read_noise(raw, shot, read, generator())
        variances.append(float((noisy - raw).var()))
        assert abs(variances[-1] - (shot * level + read)) < 0.1 * (shot * level + read)
    assert variances[0] < variances[1] < variances[2]
    with pytest.raises(ValueError, match="shot=-1"):
        add_shot_read_noise(raw, -1, 0, generator())


def test_read_noise_follows_the_shot_noise_like_a_camera():
    from mirnet_hf.degradations import camera_noise_levels

    levels = [camera_noise_levels(generator(seed)) for seed in range(200)]
    shots, reads = np.log([level[0] for level in levels]), np.log([level[1] for level in levels])
    assert np.corrcoef(shots, reads)[0, 1] > 0.9
    assert np.exp(shots).min() >= 1e-4 and np.exp(shots).max() <= 1.2e-2


def test_camera_noise_is_spatially_correlated_and_coloured_after_demosaicking():
    from mirnet_hf.degradations import camera_pipeline_noise

    grey = torch.full((3, 128, 128), 0.45)
    noise = camera_pipeline_noise(grey, generator(0), shot_range=(5e-3, 5e-3)) - grey
    white = evaluation_degradation("denoising", 15).apply(grey, generator(0)) - grey

    def neighbour_correlation(residual):
        return float(np.corrcoef(residual[:, :, :-1].flatten(), residual[:, :, 1:].flatten())[0, 1])

    def channel_correlation(residual):
        return float(np.corrcoef(residual[0].flatten(), residual[1].flatten())[0, 1])

    assert neighbour_correlation(noise) > 0.3 and abs(neighbour_correlation(white)) < 0.05
    assert abs(channel_correlation(noise)) > 0.1 and abs(channel_correlation(white)) < 0.05


def test_camera_noise_is_seeded_mixed_in_at_its_rate_and_checks_its_parameters(photo):
    from mirnet_hf.degradations import camera_pipeline_noise

    degradation = Degradation("denoising", camera_probability=0.5, poisson_probability=0.2, jpeg_probability=0.5)
    assert torch.equal(degradation.apply(photo, generator(7)), degradation.apply(photo, generator(7)))
    assert not torch.equal(degradation.apply(photo, generator(7)), degradation.apply(photo, generator(8)))
    # Without camera noise, the draws (and so the evaluation sets) are those of before.
    assert torch.equal(
        Degradation("denoising", poisson_probability=0.3).apply(photo, generator(5)),
        Degradation("denoising", poisson_probability=0.3, camera_probability=0.0).apply(photo, generator(5)),
    )
    with pytest.raises(ValueError, match="their sum must be at most 1"):
        Degradation("denoising", camera_probability=0.8, poisson_probability=0.3)
    with pytest.raises(ValueError, match="camera_probability=1.5"):
        Degradation("denoising", camera_probability=1.5)
    with pytest.raises(ValueError, match="shot_noise_range"):
        Degradation("denoising", shot_noise_range=(0.0, 1e-2))
    with pytest.raises(ValueError, match="shot_range"):
        camera_pipeline_noise(photo, generator(), shot_range=(1e-2, 1e-3))
    with pytest.raises(ValueError, match="exposure=0"):
        camera_pipeline_noise(photo, generator(), exposure=0)
    with pytest.raises(TypeError, match="float tensor"):
        camera_pipeline_noise(photo.numpy(), generator())


def test_low_light_camera_shots_are_dark_noisy_and_seeded(photo):
    from mirnet_hf.degradations import darken

    camera = Degradation("low-light-enhancement", exposure_range=(0.1, 0.1), camera_probability=1.0)
    gamma = Degradation("low-light-enhancement", exposure_range=(0.1, 0.1), gamma_range=(2.0, 2.0))
    dark_camera, dark_gamma = camera.apply(photo, generator(3)), gamma.apply(photo, generator(3))
    assert torch.equal(dark_camera, camera.apply(photo, generator(3)))
    # As dark as the gamma path at the same exposure (within a factor of 2), and far darker than the photo.
    assert 0.5 < float(dark_camera.mean() / dark_gamma.mean()) < 2.0
    assert float(dark_camera.mean()) < 0.25 * float(photo.mean())
    # The evaluation protocol keeps its noise: the same draws as before the camera path existed.
    g = generator(9)
    for _ in range(4):  # the protocol's fixed draws: photons, exposure, gamma, read noise
        torch.rand((), generator=g)
    expected = darken(photo, exposure=0.1, gamma=2.0, photons=1000.0, read_sigma=1.0, generator=g)
    assert torch.equal(evaluation_degradation("low-light-enhancement", 0.1).apply(photo, generator(9)), expected)


def test_colour_casts_tint_red_and_blue_within_their_limit(photo):
    grey = torch.full((3, 32, 32), 0.6)
    tinted = Degradation("low-light-enhancement", exposure_range=(0.3, 0.3), gamma_range=(1.0, 1.0),
                         low_light_photons_range=None, read_sigma_range=(0, 0), color_cast=0.3)  # fmt: skip
    ratios = []
    for seed in range(20):
        dark = tinted.apply(grey, generator(seed))
        means = dark.mean(dim=(1, 2))
        ratios += [float(means[0] / means[1]), float(means[2] / means[1])]
    assert max(ratios) > 1.1 and min(ratios) < 0.9  # casts both ways
    assert max(ratios) < 1.3 + 0.05 and min(ratios) > 1 / 1.3 - 0.05
    with pytest.raises(ValueError, match="color_cast=1.5"):
        Degradation("low-light-enhancement", color_cast=1.5)
    with pytest.raises(ValueError, match="low_light_shot_noise_range"):
        Degradation("low-light-enhancement", low_light_shot_noise_range=(0.0, 1e-3))


def test_chroma_denoising_leaves_mostly_luminance_noise_as_in_real_photos():
    from mirnet_hf.degradations import blur_chroma, camera_pipeline_noise

    grey = torch.full((3, 128, 128), 0.45)
    plain = camera_pipeline_noise(grey, generator(0), shot_range=(5e-3, 5e-3)) - grey
    chroma = camera_pipeline_noise(grey, generator(0), shot_range=(5e-3, 5e-3), chroma_blur=1.5) - grey

    def channel_correlation(residual):
        return float(np.corrcoef(residual[0].flatten(), residual[1].flatten())[0, 1])

    # Real camera noise (PolyU: R-G correlation 0.76) is mostly luminance; without chroma denoising the
    # colour-correction matrix makes it anti-correlated.
    assert channel_correlation(plain) < 0 < 0.3 < channel_correlation(chroma)
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    noisy = grey + plain
    assert torch.allclose((blur_chroma(noisy, 2.0) * luma).sum(0), (noisy * luma).sum(0), atol=1e-5)


def test_real_grain_is_coarser_than_a_pixel_colour_correlated_and_reproducible():
    import numpy as np
    from PIL import Image

    from conftest import DATASETS
    from mirnet_hf.degradations import channel_correlated_noise, real_grain_noise, spatially_correlated_noise

    generator = torch.Generator().manual_seed(0)
    grain = spatially_correlated_noise((3, 128, 128), 0.05, generator)
    assert abs(float(grain.std()) - 0.05) < 1e-4
    neighbours = float(torch.corrcoef(torch.stack([grain[:, :, 1:].flatten(), grain[:, :, :-1].flatten()]))[0, 1])
    assert neighbours > 0.5  # white noise: about 0
    mixed = [channel_correlated_noise((3, 64, 64), 0.1, torch.Generator().manual_seed(seed)) for seed in range(6)]
    assert all(abs(float(noise.std()) - 0.1) < 0.02 for noise in mixed)
    photo = np.asarray(Image.open(sorted((DATASETS / "CBSD432").glob("*.jpg"))[0]).convert("RGB"), np.float32)
    clean = torch.from_numpy(photo[:96, :96] / 255).permute(2, 0, 1)
    first = real_grain_noise(clean, torch.Generator().manual_seed(3))
    assert torch.equal(first, real_grain_noise(clean, torch.Generator().manual_seed(3)))
    residual = (first - clean).abs().mean() * 255
    assert 0.5 < float(residual) < 60


def test_the_grain_share_is_drawn_and_checked_with_the_others():
    from mirnet_hf.degradations import Degradation

    clean = torch.full((3, 32, 32), 0.5)
    grain_only = Degradation("denoising", grain_probability=1.0, sigma_range=(0, 0))
    assert float((grain_only.apply(clean, torch.Generator().manual_seed(1)) - clean).abs().max()) > 0
    assert "real grain" in grain_only.describe()
    with pytest.raises(ValueError, match="grain_probability=0.5 are not valid together; their sum must be at most 1"):
        Degradation("denoising", camera_probability=0.6, grain_probability=0.5)
