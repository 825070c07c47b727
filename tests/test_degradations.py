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
    low = downscale_bicubic(photo, 3)
    assert low.shape[-2:] == (24, 32)
    processor = MIRNetImageProcessor(upscale=3, size_divisor=1)
    upsampled = processor(images=low.permute(1, 2, 0).numpy(), return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(upsampled, degraded, atol=1e-6)
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
