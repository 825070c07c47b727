import io

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATASETS
from mirnet_hf import MIRNetImageProcessor

KODAK = DATASETS / "Kodak24"


def identity_round_trip(processor, image):
    """Runs the processor and post_process with an identity 'model' (output = input)."""
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    return processor.post_process(pixel_values, original_images=image)[0]


def photo(size=(37, 29)):
    path = sorted(KODAK.glob("*.png"))[0]
    return Image.open(path).convert("RGB").crop((0, 0, *size))


def test_pads_to_a_multiple_of_four_only_when_needed():
    processor = MIRNetImageProcessor()
    assert processor(images=photo((37, 29)), return_tensors="pt")["pixel_values"].shape == (1, 3, 32, 40)
    aligned = processor(images=photo((40, 32)), return_tensors="pt")["pixel_values"]
    assert aligned.shape == (1, 3, 32, 40)


def test_padding_reflects_the_image():
    image = photo((37, 29))
    values = MIRNetImageProcessor()(images=image, return_tensors="pt")["pixel_values"][0]
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    torch.testing.assert_close(values[:, :29, :37], array)
    torch.testing.assert_close(values[:, 29, :37], array[:, 27])  # reflect: row 29 mirrors row 27
    torch.testing.assert_close(values[:, :29, 37], array[:, :, 35])


def test_rescales_to_unit_range_and_round_trips_rgb_exactly():
    image = photo()
    values = MIRNetImageProcessor()(images=image, return_tensors="pt")["pixel_values"]
    assert values.dtype == torch.float32 and values.min() >= 0 and values.max() <= 1
    restored = identity_round_trip(MIRNetImageProcessor(), image)
    assert restored.mode == "RGB" and restored.size == image.size
    assert np.array_equal(np.asarray(restored), np.asarray(image))


def test_exif_orientation_is_applied():
    image = photo((40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    reopened = Image.open(io.BytesIO(buffer.getvalue()))
    assert reopened.size == (40, 20)
    values = MIRNetImageProcessor()(images=reopened, return_tensors="pt")["pixel_values"]
    assert values.shape[-2:] == (40, 20)
    assert identity_round_trip(MIRNetImageProcessor(), reopened).size == (20, 40)


def test_grayscale_comes_back_grayscale():
    gray = photo().convert("L")
    values = MIRNetImageProcessor()(images=gray, return_tensors="pt")["pixel_values"][0]
    assert torch.equal(values[0], values[1]) and torch.equal(values[1], values[2])
    restored = identity_round_trip(MIRNetImageProcessor(), gray)
    assert restored.mode == "L" and np.array_equal(np.asarray(restored), np.asarray(gray))


def test_palette_and_cmyk_inputs():
    palette = photo().convert("P")
    restored = identity_round_trip(MIRNetImageProcessor(), palette)
    assert restored.mode == "RGB" and np.array_equal(np.asarray(restored), np.asarray(palette.convert("RGB")))
    cmyk = photo().convert("CMYK")
    restored = identity_round_trip(MIRNetImageProcessor(), cmyk)
    assert restored.mode == "CMYK" and restored.size == cmyk.size
    difference = np.abs(np.asarray(restored, dtype=int) - np.asarray(cmyk, dtype=int)).max()
    assert difference <= 1


def test_alpha_is_carried_through_untouched():
    rgba = photo().convert("RGBA")
    alpha = np.random.default_rng(0).integers(0, 256, size=(rgba.height, rgba.width), dtype=np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    processor = MIRNetImageProcessor()
    values = processor(images=rgba, return_tensors="pt")["pixel_values"]
    assert values.shape[1] == 3  # the network sees RGB only
    # A "model" that changes the colours must not change the alpha.
    restored = processor.post_process(1 - values, original_images=rgba)[0]
    assert restored.mode == "RGBA"
    assert np.array_equal(np.asarray(restored)[..., 3], alpha)
    assert np.array_equal(np.asarray(restored)[..., :3], 255 - np.asarray(rgba)[..., :3])


def test_numpy_uint16_float_and_gray_arrays_keep_dtype_and_layout():
    rng = np.random.default_rng(0)
    processor = MIRNetImageProcessor()
    deep = rng.integers(0, 65536, size=(21, 30, 3), dtype=np.uint16)
    values = processor(images=deep, return_tensors="pt")["pixel_values"]
    assert values.max() <= 1 and values.max() > 0.99
    restored = identity_round_trip(processor, deep)
    assert restored.dtype == np.uint16 and restored.shape == deep.shape
    assert np.abs(restored.astype(int) - deep.astype(int)).max() <= 1
    floats = rng.random((9, 11, 3), dtype=np.float32)
    restored = identity_round_trip(processor, floats)
    assert restored.dtype == np.float32 and np.allclose(restored, floats, atol=1e-6)
    gray = rng.integers(0, 256, size=(10, 12), dtype=np.uint8)
    restored = identity_round_trip(processor, gray)
    assert restored.shape == (10, 12) and np.array_equal(restored, gray)
    rgba = rng.integers(0, 256, size=(10, 12, 4), dtype=np.uint8)
    restored = identity_round_trip(processor, rgba)
    assert restored.shape == (10, 12, 4) and np.array_equal(restored, rgba)


def test_sixteen_bit_grayscale_png_keeps_its_depth(tmp_path):
    deep = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    opened = Image.open(path)
    restored = identity_round_trip(MIRNetImageProcessor(), opened)
    assert restored.mode.startswith("I") and restored.size == (30, 20)
    assert np.abs(np.asarray(restored).astype(int) - deep.astype(int)).max() <= 1


def test_tensors_in_tensors_out():
    tensor = torch.rand(3, 10, 13)
    restored = identity_round_trip(MIRNetImageProcessor(), tensor)
    assert isinstance(restored, torch.Tensor) and restored.shape == (3, 10, 13)
    torch.testing.assert_close(restored, tensor)
    as_bytes = (tensor * 255).round().to(torch.uint8)
    restored = identity_round_trip(MIRNetImageProcessor(), as_bytes)
    assert restored.dtype == torch.uint8 and torch.equal(restored, as_bytes)


def test_paths_are_read(tmp_path):
    path = tmp_path / "photo.png"
    photo().save(path)
    restored = identity_round_trip(MIRNetImageProcessor(), str(path))
    assert restored.size == (37, 29)


def test_super_resolution_upsamples_by_the_scale():
    image = photo((20, 15))
    processor = MIRNetImageProcessor(upscale=3)
    values = processor(images=image, return_tensors="pt")["pixel_values"]
    assert values.shape == (1, 3, 48, 60)
    restored = processor.post_process(values, original_images=image)[0]
    assert restored.size == (60, 45)
    # Bicubic upsampling then a 3x downsample lands near the original.
    back = np.asarray(restored.resize((20, 15), Image.BICUBIC), dtype=float)
    assert np.abs(back - np.asarray(image, dtype=float)).mean() < 6


def test_batches_of_different_sizes_pad_to_the_largest_and_crop_back():
    images = [photo((37, 29)), photo((16, 12)), photo((8, 40))]
    processor = MIRNetImageProcessor()
    values = processor(images=images, return_tensors="pt")["pixel_values"]
    assert values.shape == (3, 3, 40, 40)
    restored = processor.post_process(values, original_images=images)
    assert [r.size for r in restored] == [(37, 29), (16, 12), (8, 40)]
    for before, after in zip(images, restored):
        assert np.array_equal(np.asarray(before), np.asarray(after))


def test_post_process_without_originals():
    values = torch.rand(2, 3, 12, 16)
    processor = MIRNetImageProcessor()
    pil = processor.post_process(values, target_sizes=[(10, 15), (12, 16)])
    assert [p.size for p in pil] == [(15, 10), (16, 12)]
    arrays = processor.post_process(values, output_type="np")
    assert arrays[0].shape == (12, 16, 3) and arrays[0].dtype == np.float32
    clamped = processor.post_process(values * 3 - 1, output_type="pt")
    assert clamped[0].min() >= 0 and clamped[0].max() <= 1


def test_save_and_load(tmp_path):
    processor = MIRNetImageProcessor(upscale=2, size_divisor=8)
    processor.save_pretrained(tmp_path)
    reloaded = MIRNetImageProcessor.from_pretrained(tmp_path)
    assert (reloaded.upscale, reloaded.size_divisor, reloaded.do_rescale) == (2, 8, True)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((0, 5, 3), dtype=np.uint8), ValueError, "empty"),
        (np.zeros((4, 4, 2), dtype=np.uint8), ValueError, "2 channels"),
        (np.zeros((4, 4, 3), dtype=np.int64), TypeError, "int64"),
        (np.zeros((4, 4, 3), dtype=bool), TypeError, "bool"),
        (np.full((4, 4, 3), np.nan, dtype=np.float32), ValueError, "NaN"),
        (torch.zeros(5, 4, 4), ValueError, "5 channels"),
        (torch.zeros(3, 4, 4, dtype=torch.int32), TypeError, "torch.int32"),
        (np.zeros((2, 2, 2, 2, 2)), ValueError, "dimensions"),
        ({"pixels": 1}, TypeError, "dict"),
        ([], ValueError, "empty"),
        ("/nonexistent/photo.png", FileNotFoundError, "photo.png"),
    ],
)
def test_bad_inputs_give_clear_errors(image, error, message):
    with pytest.raises(error, match=message):
        MIRNetImageProcessor()(images=image, return_tensors="pt")


def test_non_image_and_truncated_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        MIRNetImageProcessor()(images=str(text))
    buffer = io.BytesIO()
    photo((64, 64)).save(buffer, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        MIRNetImageProcessor()(images=str(truncated))


def test_empty_pil_image():
    with pytest.raises(ValueError, match="empty"):
        MIRNetImageProcessor()(images=Image.new("RGB", (0, 5)))


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"size_divisor": 0}, "size_divisor=0"), ({"upscale": 0}, "upscale=0")]
)
def test_invalid_processor_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MIRNetImageProcessor(**kwargs)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_training_inputs_equal_what_the_processor_gives_at_inference(scale):
    """Super-resolution trains on bicubic-upsampled inputs: they must be exactly the processor's."""
    from mirnet_hf.degradations import Degradation, upsample_bicubic
    from mirnet_hf.image_ops import downscale_bicubic, quantize

    clean = torch.from_numpy(np.array(Image.open(KODAK / "kodim05.png").convert("RGB")))
    clean = clean.permute(2, 0, 1)[:, :96, :120].float() / 255
    low = quantize(downscale_bicubic(clean, scale))  # a low-resolution 8-bit photo, as users have
    processed = MIRNetImageProcessor(upscale=scale)(images=low.permute(1, 2, 0).numpy(), size_divisor=1)
    assert torch.equal(processed["pixel_values"][0], upsample_bicubic(low, scale))
    # The trainer's degradation (no blur, no JPEG) is that same upsampling of the bicubic low resolution.
    degradation = Degradation("super-resolution", scales=(scale,), blur_probability=0.0, jpeg_probability=0.0)
    degraded = degradation.apply(clean, torch.Generator().manual_seed(0))
    assert torch.equal(degraded, upsample_bicubic(quantize(downscale_bicubic(clean, scale)), scale))
