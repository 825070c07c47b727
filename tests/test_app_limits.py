"""The app under careless and hostile use: bounded memory, no stalls, no crash after the work, bounded disk."""

import os
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import DATASETS, REPO, load_script
from mirnet_hf import demo, inference
from mirnet_hf.demo import AppError, AppSettings, ModelCache, RestorationCancelled, restore_upload

pytestmark = pytest.mark.slow
KODAK = sorted((DATASETS / "Kodak24").glob("*.png"))


@pytest.fixture(scope="module")
def cache():
    return ModelCache(AppSettings.from_environment({}))


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.open(KODAK[3]).crop((0, 0, 160, 120)).save(path)
    return path


def test_one_restoration_at_a_time_across_all_tasks(cache, photo, monkeypatch):
    from mirnet_hf.inference import MIRNetRestorer

    running, most = [0], [0]
    lock = threading.Lock()
    original = MIRNetRestorer.restore_tensor

    def counting(self, *args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.2)  # long enough for the others to try to start
            return original(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(MIRNetRestorer, "restore_tensor", counting)
    tasks = ["denoising", "super-resolution", "low-light-enhancement"] * 2
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda task: restore_upload(cache, task, str(photo), scale=2), tasks))
    assert len(results) == 6 and most[0] == 1


def test_a_cancelled_request_stops_at_its_next_tile_and_frees_its_slot(cache, tmp_path):
    path = tmp_path / "large.png"
    Image.open(KODAK[0]).save(path)  # 500x500: 9 tiles of 192
    seen = []

    def cancelled():
        return len(seen) >= 2

    def progress(value, **_):
        seen.append(value)

    with pytest.raises(RestorationCancelled):
        restore_upload(cache, "denoising", str(path), tile_size=192, progress=progress, cancelled=cancelled)
    assert seen == [(1, 9), (2, 9)]  # no tile after the cancellation
    # Its slot was given back: the next request runs.
    assert "Restored" in restore_upload(cache, "denoising", str(path), tile_size=192).message


def test_whole_image_mode_is_tiled_above_its_pixel_cap(tmp_path, photo):
    capped = ModelCache(AppSettings.from_environment({"MIRNET_WHOLE_IMAGE_MAX_PIXELS": "10000"}))
    larger = tmp_path / "larger.png"
    Image.open(KODAK[3]).crop((0, 0, 320, 240)).save(larger)  # above the cap and above one default tile
    result = restore_upload(capped, "denoising", str(larger), tile_size=0)
    assert "whole-image mode is for up to 0.01 MP" in result.message
    assert "(1 tile," not in result.message
    small = tmp_path / "small.png"
    Image.open(photo).crop((0, 0, 80, 60)).save(small)
    assert "(1 tile," in restore_upload(capped, "denoising", str(small), tile_size=0).message


def test_a_slow_model_load_does_not_stall_other_tasks_and_failures_are_remembered(photo, monkeypatch):
    slow = ModelCache(AppSettings.from_environment({}))
    original = ModelCache._load
    attempts = []

    def load(self, name):
        if name == "owner/slow-model":
            attempts.append(name)
            time.sleep(8)  # as the Hub takes when it does not answer
            raise AppError("the model 'owner/slow-model' could not be loaded (timed out).")
        return original(self, name)

    monkeypatch.setattr(ModelCache, "_load", load)
    restore_upload(slow, "denoising", str(photo))  # the denoiser is loaded, as in a running app
    trying = threading.Thread(
        target=lambda: pytest.raises(AppError, slow.restorer, "super-resolution", "owner/slow-model", 256, "auto")
    )
    trying.start()
    time.sleep(0.5)
    started = time.perf_counter()
    result = restore_upload(slow, "denoising", str(photo))
    waited = time.perf_counter() - started
    print(f"a denoising request during an 8-second model load took {waited:.2f} s")
    assert waited < 5 and "Restored" in result.message
    trying.join()
    started = time.perf_counter()
    with pytest.raises(AppError, match="timed out"):
        slow.restorer("super-resolution", "owner/slow-model", 256, "auto")
    assert time.perf_counter() - started < 0.5 and attempts == ["owner/slow-model"]  # remembered, not retried


def test_offline_hub_ids_fail_fast_and_long_names_are_shortened(cache):
    started = time.perf_counter()
    with pytest.raises(AppError, match="offline"):  # the tests run with HF_HUB_OFFLINE=1
        cache.restorer("denoising", "owner/not-here", 256, "auto")
    assert time.perf_counter() - started < 2
    long_name = "owner/" + "x" * 90
    with pytest.raises(AppError) as raised:
        cache.restorer("denoising", long_name, 256, "auto")
    assert long_name not in str(raised.value) and "xxx..." in str(raised.value)


def test_loaded_models_are_bounded():
    settings = AppSettings.from_environment({"MIRNET_MAX_MODELS": "1"})
    bounded = ModelCache(settings)
    first = bounded.model(settings.models["denoising"][0])
    bounded.model(settings.models["super-resolution"][0])
    assert bounded.model(settings.models["denoising"][0]) is not first  # evicted, then loaded again


def test_self_ensemble_is_a_choice_that_changes_the_result_and_says_so(cache, photo):
    from mirnet_hf.inference import MIRNetRestorer

    plain = restore_upload(cache, "denoising", str(photo))
    ensemble = restore_upload(cache, "denoising", str(photo), self_ensemble=True)
    assert "self-ensemble x8" in ensemble.message and "self-ensemble" not in plain.message
    restored, plain_restored = (np.asarray(Image.open(r.download), dtype=np.float64) for r in (ensemble, plain))
    expected = MIRNetRestorer(cache.model(cache.settings.models["denoising"][0]), device="cpu", self_ensemble=True)
    expected = np.asarray(expected(Image.open(photo)), dtype=np.float64)
    assert restored.shape == plain_restored.shape == expected.shape
    assert np.abs(restored - expected).max() <= 1  # PyTorch or ONNX Runtime, whichever the app picked
    assert np.abs(restored - plain_restored).max() > 1


def test_a_cmyk_jpeg_restores_and_downloads_in_a_format_that_holds_it(cache, tmp_path):
    path = tmp_path / "print.jpg"
    Image.open(KODAK[1]).crop((0, 0, 96, 64)).convert("CMYK").save(path, quality=95)
    result = restore_upload(cache, "denoising", str(path))
    download = Image.open(result.download)
    assert result.download.endswith(".tif") and download.mode == "CMYK" and download.size == (96, 64)
    assert "CMYK kept" in result.message
    assert result.before.mode == "RGB" and result.after.size == (96, 64)


def test_the_preview_is_upright_for_an_exif_rotated_upload(cache, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: view rotated 90 degrees clockwise
    Image.open(KODAK[2]).crop((0, 0, 120, 80)).save(path, quality=95, exif=exif)
    result = restore_upload(cache, "denoising", str(path))
    upright = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    assert result.before.size == result.after.size == upright.size == (80, 120)
    assert np.array_equal(np.asarray(result.before), np.asarray(upright))


def test_old_results_are_deleted(cache, photo, monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "RESULTS_DIR", tmp_path / "results")
    old = tmp_path / "results" / "result-old"
    old.mkdir(parents=True)
    (old / "photo-denoising.png").write_bytes(b"x")
    an_hour_ago = time.time() - 2 * 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    result = restore_upload(cache, "denoising", str(photo))
    assert not old.exists()
    assert os.path.dirname(os.path.dirname(result.download)) == str(tmp_path / "results")
    import app

    assert app.build_demo(AppSettings.from_environment({})).delete_cache == (900, 3600)


def test_whole_image_requests_to_every_task_stay_under_3_gb_and_the_memory_comes_back(tmp_path):
    """The app in its own process with its default settings (MIRNET_BACKEND=auto, the default limits): one
    1000x1000 photo to each endpoint at once with tile size 0, the heaviest requests a user can make by default
    (whole images, and for x2 super-resolution a 4 MP output, tiled above the whole-image cap)."""
    app_memory = load_script(REPO / "benchmarks" / "app_memory.py")
    photo = tmp_path / "photo.png"
    Image.open(KODAK[0]).resize((1000, 1000)).save(photo)
    defaults = {name: "" for name in os.environ if name.startswith("MIRNET_")}
    result = app_memory.measure(photo, rounds=1, settle_seconds=10, env={**defaults, "OMP_NUM_THREADS": "2"})
    gib = 1024**3
    print(f"app memory: idle {result['idle'] / gib:.2f} GiB, peak {result['peak'] / gib:.2f} GiB, "
          f"after {result['after'] / gib:.2f} GiB")  # fmt: skip
    assert sum("Restored 1000x1000" in message for message in result["messages"]) == 3
    assert any("whole-image mode is for up to 1 MP" in message for message in result["messages"])
    assert result["peak"] < 3 * gib
    assert result["after"] - result["idle"] < 0.5 * gib


def test_a_decompression_bomb_upload_is_refused_naming_the_limit(cache, tmp_path):
    from test_cli_restore import png_file

    icc_bomb = b"icc\x00\x00" + zlib.compress(b"\x00" * 16_000_000, 9)
    huge = png_file(tmp_path / "huge.png", 20000, 20000, chunks=[(b"iCCP", icc_bomb)])
    with pytest.raises(AppError, match="20000x20000 = 400.0 megapixels, above this app's limit of 16 megapixels"):
        restore_upload(cache, "denoising", str(huge))
    rows = b"".join(b"\x00" + b"\x12\x34" * 3 * 8 for _ in range(8))
    icc = png_file(tmp_path / "icc.png", 8, 8, chunks=[(b"iCCP", icc_bomb)], pixels=rows)
    with pytest.raises(AppError, match="ICC profile expands to more than 4 MB, the limit"):
        restore_upload(cache, "denoising", str(icc))


def test_cancelling_through_the_api_stops_the_restoration_at_its_next_tile(tmp_path, monkeypatch):
    from gradio_client import Client, handle_file
    from test_app import serve

    from mirnet_hf.inference import MIRNetRestorer

    tiles = []
    forward = MIRNetRestorer._timed_forward

    def counting(self, *args, **kwargs):
        tiles.append(time.monotonic())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MIRNetRestorer, "_timed_forward", counting)
    big = tmp_path / "big.png"
    Image.open(KODAK[0]).resize((1500, 1500)).save(big)  # 144 tiles of 128
    app_demo = serve(AppSettings.from_environment({}))
    try:
        job = Client(app_demo.local_url, verbose=False).submit(
            handle_file(str(big)), 2, 128, "auto", None, api_name="/denoise"
        )
        deadline = time.monotonic() + 120
        while len(tiles) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        cancelled_at = time.monotonic()
        assert job.cancel()
        time.sleep(3)
        assert sum(tile > cancelled_at for tile in tiles) <= 1  # at most the tile under way
        assert len(tiles) < 20
    finally:
        app_demo.close()


def test_on_a_cpu_with_native_bfloat16_the_app_restores_in_it_with_pytorch(photo, monkeypatch):
    monkeypatch.setattr(inference, "cpu_has_native_bfloat16", lambda: True)
    cache = ModelCache(AppSettings.from_environment({}))
    result = restore_upload(cache, "denoising", str(photo), precision="auto")
    assert ", bfloat16, cpu, pytorch;" in result.message and not cache.backend_timings  # nothing to measure
    assert ", float32, cpu, " in restore_upload(cache, "denoising", str(photo), precision="float32").message


def test_the_app_measures_which_backend_is_faster_per_model_and_says_which_ran(photo, monkeypatch):
    monkeypatch.setattr(inference, "cpu_has_native_bfloat16", lambda: False)  # "auto" is float32
    cache = ModelCache(AppSettings.from_environment({}))
    result = restore_upload(cache, "denoising", str(photo), precision="auto")
    name = cache.settings.models["denoising"][0]
    timings = cache.backend_timings[name]
    assert set(timings) == {"pytorch", "onnxruntime"} and all(seconds > 0 for seconds in timings.values())
    assert f", {min(timings, key=timings.get)};" in result.message
    assert cache.backend("bfloat16", name) == "pytorch"  # ONNX Runtime runs float32 only
    assert ", pytorch;" in restore_upload(cache, "denoising", str(photo), precision="bfloat16").message
    forced = ModelCache(AppSettings.from_environment({"MIRNET_BACKEND": "onnxruntime"}))
    assert ", onnxruntime;" in restore_upload(forced, "denoising", str(photo)).message


def test_without_onnx_runtime_or_when_it_fails_the_app_uses_pytorch_and_logs_it(photo, monkeypatch, caplog):
    import logging

    from mirnet_hf import onnx_backend

    monkeypatch.setattr(inference, "cpu_has_native_bfloat16", lambda: False)  # "auto" is float32: ONNX Runtime could
    cache = ModelCache(AppSettings.from_environment({}))
    monkeypatch.setattr(demo, "onnxruntime_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="mirnet_hf.demo"):
        assert cache.backend("auto") == cache.backend("float32") == "pytorch"
    assert caplog.text.count("ONNX Runtime is not installed") == 1  # one line, not one per request
    monkeypatch.setattr(demo, "onnxruntime_available", lambda: True)

    def broken(*args, **kwargs):
        raise RuntimeError("no session for you")

    monkeypatch.setattr(onnx_backend.OnnxRuntimeRunner, "__init__", broken)
    with caplog.at_level(logging.WARNING, logger="mirnet_hf.demo"):
        result = restore_upload(cache, "denoising", str(photo))
    assert ", pytorch;" in result.message and "no session for you" in caplog.text
    forced = ModelCache(AppSettings.from_environment({"MIRNET_BACKEND": "onnxruntime"}))
    with pytest.raises(AppError, match="no session for you"):
        restore_upload(forced, "denoising", str(photo))
    with pytest.raises(ValueError, match="MIRNET_BACKEND='tensorrt' is not valid"):
        AppSettings.from_environment({"MIRNET_BACKEND": "tensorrt"})
