import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import psnr
from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetRestorer, demo, inference, restore
from mirnet_hf.inference import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, plan_tiles, resolve_precision, select_device


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(600, 256, 16), (256, 256, 16), (257, 256, 16), (1000, 64, 0), (4000, 384, 16), (3000, 384, 16), (513, 384, 16)],
)
def test_tiles_cover_the_image_evenly_with_one_shape(length, tile, overlap):
    starts, size = plan_tiles(length, tile, overlap)
    assert size <= tile and (size % 4 == 0 or size == length)
    covered = np.zeros(length, bool)
    for start in starts:
        assert 0 <= start <= length - size
        covered[start : start + size] = True
    assert covered.all()
    assert starts[0] == 0 and starts[-1] == length - size
    assert all(size - (b - a) >= overlap for a, b in zip(starts, starts[1:]))
    # Little excess: the processed length stays within 7% of the side once it spans several tiles.
    if length >= 4 * tile:
        assert len(starts) * size <= 1.07 * length


@pytest.mark.slow
def test_tiled_and_whole_image_results_agree_on_a_trained_model(trained_denoiser, noisy_pair):
    clean, noisy = noisy_pair
    assert noisy.shape[:2] == (512, 512)
    whole = MIRNetRestorer(trained_denoiser, device="cpu", tile_size=None)(noisy)
    tiled_restorer = MIRNetRestorer(trained_denoiser, device="cpu")  # default tile settings
    tiled = tiled_restorer(noisy)
    assert tiled_restorer.stats.tiles > 1 and max(tiled_restorer.stats.tile_shape) <= DEFAULT_TILE_SIZE
    gain = psnr(whole, clean) - psnr(noisy, clean)
    agreement = psnr(tiled, whole)
    print(f"denoising gain {gain:.2f} dB; tiled vs whole {agreement:.1f} dB")
    assert gain > 3  # the model really restores, so agreement is not trivial
    assert agreement >= 45


def test_the_eight_symmetries_are_distinct_and_undo_exactly():
    image = torch.arange(12.0).reshape(1, 1, 3, 4)
    versions = set()
    for index in range(inference.NUM_SYMMETRIES):
        moved = inference.apply_symmetry(image, index)
        assert torch.equal(inference.undo_symmetry(moved, index), image)
        versions.add((tuple(moved.shape), tuple(moved.flatten().tolist())))
    assert len(versions) == 8
    for bad in (-1, 8):
        with pytest.raises(ValueError, match=f"index={bad}"):
            inference.apply_symmetry(image, bad)


def test_self_ensemble_averages_the_eight_restorations_and_is_symmetric(trained_denoiser, noisy_pair):
    _, noisy = noisy_pair
    crop = noisy[:128, :192]  # a multiple of the model's size, so padding does not break the symmetry
    pixels = torch.from_numpy(crop).permute(2, 0, 1)[None]
    plain = MIRNetRestorer(trained_denoiser, device="cpu", tile_size=None)
    ensemble = MIRNetRestorer(trained_denoiser, device="cpu", tile_size=None, self_ensemble=True)
    by_hand = (
        sum(
            inference.undo_symmetry(plain.restore_tensor(inference.apply_symmetry(pixels, index)), index)
            for index in range(8)
        )
        / 8
    )
    averaged = ensemble.restore_tensor(pixels)
    torch.testing.assert_close(averaged, by_hand, atol=1e-5, rtol=0)
    assert ensemble.stats.tiles == 1

    # Restoring a turned image gives the turned restoration, which the plain model does not.
    turned = inference.apply_symmetry(pixels, 1)
    ensemble_error = (ensemble.restore_tensor(turned) - inference.apply_symmetry(averaged, 1)).abs().max()
    plain_turned = inference.apply_symmetry(plain.restore_tensor(pixels), 1)
    plain_error = (plain.restore_tensor(turned) - plain_turned).abs().max()
    print(f"asymmetry: plain {plain_error:.2e}, self-ensemble {ensemble_error:.2e}")
    assert ensemble_error < 1e-5 < plain_error / 100


@pytest.mark.slow
def test_self_ensemble_restores_better_tile_by_tile(trained_denoiser, noisy_pair):
    clean, noisy = (image[:256, :256] for image in noisy_pair)
    plain = MIRNetRestorer(trained_denoiser, device="cpu", tile_size=96)
    ensemble = MIRNetRestorer(trained_denoiser, device="cpu", tile_size=96, self_ensemble=True)
    calls = []
    restored = ensemble(noisy, progress=lambda done, total: calls.append((done, total)))
    assert restored.shape == noisy.shape and ensemble.stats.tiles > 1
    assert calls[-1] == (ensemble.stats.tiles, ensemble.stats.tiles)  # progress counts tiles, not passes
    gain = psnr(restored, clean) - psnr(plain(noisy), clean)
    print(f"self-ensemble gain {gain:.2f} dB")
    assert gain > 0.05


def test_memory_is_bounded_by_the_tile(tiny_config):
    model = MIRNetForImageRestoration(tiny_config)
    seen = []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["pixel_values"].shape), with_kwargs=True
    )
    restored = MIRNetRestorer(model, device="cpu", tile_size=64, tile_overlap=8)(np.zeros((150, 300, 3), np.uint8))
    assert restored.shape == (150, 300, 3)
    assert seen and all(max(shape[-2:]) <= 64 for shape in seen)


def test_bfloat16_autocast_stays_close_to_float32(trained_denoiser, noisy_pair):
    _, noisy = noisy_pair
    crop = noisy[:128, :128]
    reference = MIRNetRestorer(trained_denoiser, device="cpu", precision="float32")(crop)
    fast = MIRNetRestorer(trained_denoiser, device="cpu", precision="bfloat16")(crop)
    assert fast.dtype == np.float32
    assert psnr(fast, reference) > 40
    assert not np.array_equal(fast, reference)  # bfloat16 really ran


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_on_a_cpu_that_emulates_it_warns(monkeypatch, caplog, native):
    monkeypatch.setattr(inference, "cpu_has_native_bfloat16", lambda: native)
    # "auto" is bfloat16 only where the CPU computes it natively (faster there, at the same PSNR)
    assert resolve_precision("auto", torch.device("cpu")) == ("bfloat16" if native else "float32")
    caplog.clear()
    assert resolve_precision("bfloat16", torch.device("cpu")) == "bfloat16"  # the user's choice stands
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == (0 if native else 1)
    assert all(torch.backends.cpu.get_cpu_capability() in warning for warning in warnings)
    monkeypatch.setattr(demo, "cpu_has_native_bfloat16", lambda: native)
    assert ("faster" in demo.precision_label()) == native


def test_channels_last_and_tile_batches_change_nothing(trained_denoiser, noisy_pair):
    _, noisy = noisy_pair
    crop = noisy[:200, :180]
    settings = {"device": "cpu", "precision": "float32", "tile_size": 64, "tile_overlap": 8}  # exact: on any CPU
    reference = MIRNetRestorer(trained_denoiser, channels_last=False, **settings)(crop)
    np.testing.assert_allclose(MIRNetRestorer(trained_denoiser, **settings)(crop), reference, atol=1e-5)
    batched = MIRNetRestorer(trained_denoiser, tile_batch_size=4, **settings)
    np.testing.assert_allclose(batched(crop), reference, atol=1e-5)


def test_progress_is_reported_per_tile(tiny_config):
    calls = []
    restorer = MIRNetRestorer(MIRNetForImageRestoration(tiny_config), device="cpu", tile_size=32, tile_overlap=4)
    restorer(np.zeros((70, 40, 3), np.float32), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]


@pytest.mark.slow
def test_compiled_blocks_give_the_eager_result(trained_denoiser, noisy_pair):
    _, noisy = noisy_pair
    crop = noisy[:96, :96]
    settings = {"device": "cpu", "precision": "float32", "tile_size": 48, "tile_overlap": 8}
    eager = MIRNetRestorer(trained_denoiser, **settings)(crop)
    restorer = MIRNetRestorer(trained_denoiser, **settings, compile=True)
    compiled = restorer(crop)
    assert restorer.stats.compile_seconds > 0
    np.testing.assert_allclose(compiled, eager, atol=1e-4)
    restorer(crop)
    assert restorer.stats.compile_seconds == 0  # paid once per process and tile shape
    for module in trained_denoiser.modules():  # leave the shared fixture uncompiled
        module._compiled_call_impl = None


def test_super_resolution_and_v2_models(converted_sr):
    upscaled = restore(Image.new("RGB", (50, 30)), converted_sr, device="cpu", tile_size=32, tile_overlap=8)
    assert upscaled.size == (100, 60)
    v2 = MIRNetForImageRestoration(MIRNetConfig(version="v2", num_features=16, num_rrg=1, num_mrb=1, rrg_groups=[2]))
    restored = restore(torch.rand(3, 70, 90), v2, device="cpu", tile_size=32, tile_overlap=4)
    assert restored.shape == (3, 70, 90)


def test_tiny_images_work(tiny_config):
    model = MIRNetForImageRestoration(tiny_config)
    assert restore(Image.new("RGB", (1, 1), "red"), model, device="cpu").size == (1, 1)


def huge_png_header(path, width, height):
    """A PNG whose header claims width x height: enough to test refusing it before decoding."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_oversized_images_are_refused_before_decoding(tiny_config, tmp_path):
    path = tmp_path / "huge.png"
    huge_png_header(path, 20000, 20000)
    restorer = MIRNetRestorer(MIRNetForImageRestoration(tiny_config), device="cpu")
    with pytest.raises(ValueError, match=r"20000x20000 = 400.0 megapixels, above the limit of 64 megapixels"):
        restorer(str(path))
    small = MIRNetRestorer(MIRNetForImageRestoration(tiny_config), device="cpu", max_pixels=100)
    with pytest.raises(ValueError, match="max_pixels"):
        small(np.zeros((20, 20, 3), np.uint8))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tile_size": 30}, "tile_size=30"),
        ({"tile_size": 64, "tile_overlap": 64}, "tile_overlap=64"),
        ({"tile_size": 64, "tile_overlap": -1}, "tile_overlap=-1"),
        ({"precision": "float16"}, "float16"),
        ({"precision": "int8"}, "precision='int8'"),
        ({"device": "cuda"} if not torch.cuda.is_available() else {"device": "tpu"}, "device="),
        ({"tile_batch_size": 0}, "tile_batch_size=0"),
        ({"max_pixels": 0}, "max_pixels=0"),
        ({"self_ensemble": "yes"}, "self_ensemble='yes'"),
    ],
)
def test_invalid_settings_are_refused(tiny_config, settings, message):
    settings = {"device": "cpu", **settings}
    with pytest.raises(ValueError, match=message):
        MIRNetRestorer(MIRNetForImageRestoration(tiny_config), **settings)


def test_device_auto_selection():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert select_device("auto").type == expected
    assert DEFAULT_TILE_OVERLAP < DEFAULT_TILE_SIZE


def test_restore_keeps_a_16_bit_file_16_bit_as_the_cli_does(trained_denoiser, tmp_path):
    """Paths go through image_io, like `mirnet-hf restore`: 16-bit colour comes back as a uint16 array."""
    import png

    from mirnet_hf import restore
    from mirnet_hf.image_io import read_image

    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 65535, 48 * 40, dtype=np.float64).reshape(48, 40)
    image = np.stack([smooth, smooth[::-1], np.full_like(smooth, 30000)], axis=-1)
    image = np.clip(image + rng.normal(0, 2000, image.shape), 0, 65535).astype(np.uint16)
    path = tmp_path / "photo-16bit.png"
    png.from_array(image.reshape(48, -1), "RGB;16").save(str(path))
    restored = restore(path, trained_denoiser, device="cpu")
    assert isinstance(restored, np.ndarray) and restored.dtype == np.uint16 and restored.shape == (48, 40, 3)
    assert len(np.unique(restored)) > 256  # finer than 8 bits: not an 8-bit image scaled up
    from_file = read_image(path).image
    assert from_file.dtype == np.uint16 and np.array_equal(from_file, image)


def test_the_default_tile_size_is_the_tasks():
    def restorer(task, **kwargs):
        model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1, task=task))
        return MIRNetRestorer(model, device="cpu", **kwargs)

    assert restorer("denoising").tile_size == DEFAULT_TILE_SIZE == 256
    assert restorer("low-light-enhancement").tile_size == 512  # its global-context blocks want more of the image
    assert restorer("low-light-enhancement", tile_size=128).tile_size == 128
    assert restorer("low-light-enhancement", tile_size=0).tile_size is None
    with pytest.raises(ValueError, match="tile_overlap=600 is not valid with tile_size=512"):
        restorer("low-light-enhancement", tile_overlap=600)
