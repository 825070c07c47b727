"""The Gradio app served for real on 127.0.0.1: its API through gradio_client, and its page in a headless
Chromium driven by Playwright (Debian's `chromium` package; `.ci/run` installs it)."""

import os
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from mirnet_hf.demo import AUTO_MODEL, AppError, AppSettings, ModelCache
from mirnet_hf.tasks import REGISTRY, get_task

pytestmark = pytest.mark.slow
EXAMPLES = REPO / "examples"
SCREENSHOTS = REPO / "outputs" / "screenshots"
TASKS = {
    "denoising": ("/denoise", EXAMPLES / "denoising-kodim05-sigma25.png", 1),
    "super-resolution": ("/super_resolve", EXAMPLES / "super-resolution-kodim05-160x120.png", 3),
    "low-light-enhancement": ("/enhance_low_light", EXAMPLES / "low-light-enhancement-kodim05-exposure0.15.png", 1),
}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(settings: AppSettings):
    import app

    demo = app.build_demo(settings)
    app.launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo


@pytest.fixture(scope="module")
def server():
    """The app as a newcomer runs it: default settings, shipped checkpoints."""
    demo = serve(AppSettings.from_environment({}))
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def strict_server():
    """Tight limits: 0.1 megapixels of output and 1 MB uploads."""
    demo = serve(AppSettings.from_environment({"MIRNET_MAX_PIXELS": "100000", "MIRNET_MAX_UPLOAD_MB": "1"}))
    yield demo.local_url
    demo.close()


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def predict(url, task, path, scale=2, model="", *optional):
    """`optional`: self-ensemble (True or False), then the denoising strength; either may be left out, as older API
    clients do."""
    from gradio_client import handle_file

    api_name, _, _ = TASKS[task]
    args = [handle_file(str(path)), scale, 256, "auto"]
    return client(url).predict(*args, model or None, *optional, api_name=api_name)


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_through_gradio_client(server, task):
    _, example, scale = TASKS[task]
    (before, after), download, message = predict(server, task, example, scale=max(scale, 2))
    source = np.asarray(Image.open(example).convert("RGB"), np.float32)
    result = Image.open(download)
    assert download.endswith(".png") and result.format == "PNG"
    assert result.size == (source.shape[1] * scale, source.shape[0] * scale)
    assert Image.open(after).size == result.size == Image.open(before).size
    restored = np.asarray(result.convert("RGB"), np.float32)
    if scale == 1:
        assert np.abs(restored - source).mean() > 1.0  # it did something
    assert "Restored" in message and " s**" in message
    if task == "denoising":
        *_, ensemble_message = predict(server, task, example, 2, "", True)
        assert "self-ensemble x8" in ensemble_message and "self-ensemble" not in message
        # The strength, through the API: gentler keeps more of the input's noise than stronger.
        results = {value: predict(server, task, example, 2, "", False, value) for value in (0.5, 1.5)}
        assert all(f"strength {value:g}" in results[value][2] for value in results) and "strength" not in message
        gentle, strong = (np.asarray(Image.open(results[value][1]).convert("RGB"), np.float32) for value in results)
        assert np.abs(gentle - source).mean() < np.abs(strong - source).mean()


def test_eight_simultaneous_requests_all_succeed(server):
    _, example, _ = TASKS["denoising"]
    barrier = threading.Barrier(8)

    def one(_):
        barrier.wait()
        return predict(server, "denoising", example)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    sizes = {Image.open(download).size for _, download, _ in results}
    assert len(results) == 8 and sizes == {(320, 240)}


def test_oversize_corrupt_and_unknown_model_messages(strict_server, tmp_path):
    from gradio_client.exceptions import AppError as ClientAppError

    big = tmp_path / "big.png"
    Image.new("RGB", (400, 300), "gray").save(big)  # 0.12 MP > 0.1 MP
    with pytest.raises(ClientAppError, match="above this app's limit of 0.1 megapixels"):
        predict(strict_server, "denoising", big)
    with pytest.raises(ClientAppError, match="x4: 800x600"):
        small = tmp_path / "small.png"
        Image.new("RGB", (200, 150)).save(small)
        predict(strict_server, "super-resolution", small, scale=4)
    corrupt = tmp_path / "photo.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
    with pytest.raises(ClientAppError, match="not an image we can read"):
        predict(strict_server, "denoising", corrupt)
    with pytest.raises(ClientAppError, match="model '/etc' is not available here"):
        predict(strict_server, "denoising", TASKS["denoising"][1], model="/etc")
    huge = tmp_path / "huge.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)).save(huge)  # 1.4 MB
    with pytest.raises(Exception, match="(?i)exceeds the maximum file size|too large|1 ?mb"):
        predict(strict_server, "denoising", huge)


def test_model_choices_never_name_server_paths(tmp_path):
    cache = ModelCache(AppSettings.from_environment({"MIRNET_DENOISING_MODEL": "checkpoints/a, user/extra"}))
    assert cache.check_choice("denoising", "") == "checkpoints/a"
    assert cache.check_choice("denoising", "user/extra") == "user/extra"
    assert cache.check_choice("denoising", "someone/mirnet-x") == "someone/mirnet-x"  # a Hub id
    for bad in ("/etc/passwd", "../secrets", str(tmp_path), "a/../../b", "checkpoints"):
        with pytest.raises(AppError, match="is not available here"):
            cache.check_choice("denoising", bad)
    no_hub = ModelCache(AppSettings.from_environment({"MIRNET_ALLOW_HUB_MODELS": "0"}))
    with pytest.raises(AppError, match="choose one of the listed models.$"):
        no_hub.check_choice("denoising", "someone/mirnet-x")
    with pytest.raises(AppError, match="could not be loaded"):
        cache.restorer("denoising", "someone/mirnet-x", 256, "auto")  # offline: the Hub cannot be reached


def test_the_auto_model_is_the_one_shipped_for_the_scale(monkeypatch):
    specialist = replace(
        REGISTRY["super-resolution"],
        default_checkpoint="checkpoints/sr",
        scale_checkpoints=((4, "checkpoints/sr-x4"),),
    )
    monkeypatch.setitem(REGISTRY, "super-resolution", specialist)
    cache = ModelCache(AppSettings(models={"super-resolution": specialist.shipped_checkpoints}))
    assert specialist.shipped_checkpoints == ["checkpoints/sr", "checkpoints/sr-x4"]
    assert [cache.check_choice("super-resolution", AUTO_MODEL, scale) for scale in (2, 3, 4)] == [
        "checkpoints/sr", "checkpoints/sr", "checkpoints/sr-x4",
    ]  # fmt: skip
    assert cache.check_choice("super-resolution", "", 4) == "checkpoints/sr-x4"
    assert cache.check_choice("super-resolution", "checkpoints/sr", 4) == "checkpoints/sr"  # a choice is kept
    # Models configured by MIRNET_SUPER_RESOLUTION_MODEL, without the specialist: the first one at every scale.
    configured = ModelCache(AppSettings(models={"super-resolution": ["user/sr-a", "user/sr-b"]}))
    assert configured.check_choice("super-resolution", AUTO_MODEL, 4) == "user/sr-a"


def test_settings_from_the_environment():
    settings = AppSettings.from_environment(
        {"MIRNET_MAX_PIXELS": "2e6", "MIRNET_CONCURRENCY": "2", "MIRNET_LOW_LIGHT_MODEL": "a/b,c/d"}
    )
    assert (settings.max_pixels, settings.concurrency) == (2_000_000, 2)
    assert settings.models["low-light-enhancement"] == ["a/b", "c/d"]
    assert settings.models["denoising"] == [get_task("denoising").default_checkpoint]
    with pytest.raises(ValueError, match="MIRNET_CONCURRENCY='0' is not valid; it must be at least 1"):
        AppSettings.from_environment({"MIRNET_CONCURRENCY": "0"})
    with pytest.raises(ValueError, match="MIRNET_MAX_PIXELS='lots' is not valid"):
        AppSettings.from_environment({"MIRNET_MAX_PIXELS": "lots"})


def test_the_default_models_load_once_per_process():
    cache = ModelCache(AppSettings.from_environment({}))
    first = cache.restorer("denoising", "", 256, "auto")
    again = cache.restorer("denoising", "", 128, "float32")
    assert first.model is again.model


# --- the page in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_tab(page, url, task):
    page.goto(url)
    page.get_by_role("tab", name={"denoising": "Denoising", "super-resolution": "Super-resolution",
                                  "low-light-enhancement": "Low-light enhancement"}[task]).click()  # fmt: skip


@pytest.mark.parametrize("task", list(TASKS))
def test_each_tab_in_a_real_browser(server, browser, task, tmp_path):
    _, example, scale = TASKS[task]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_tab(page, server, task)
    if task == "super-resolution":
        page.locator(f"#{task}-input").locator("..").locator("..").get_by_label("3").check()
    page.locator(f"#{task}-input input[type=file]").set_input_files(str(example))
    if task == "denoising":
        page.get_by_role("button", name="Advanced options").click()
        page.locator(f"#{task}-self-ensemble input[type=checkbox]").check()
    page.locator(f"#{task}-run").click()
    link = page.locator(f"#{task}-download a").first
    link.wait_for(timeout=120_000)
    with page.expect_download() as download_info:
        link.click()
    saved = tmp_path / "result.png"
    download_info.value.save_as(saved)
    result = Image.open(saved)
    source = Image.open(example)
    assert result.size == (source.width * scale, source.height * scale)
    if scale == 1:
        difference = np.abs(np.asarray(result.convert("RGB"), np.float32) - np.asarray(source.convert("RGB")))
        assert difference.mean() > 1.0
    info = page.locator(f"#{task}-info").inner_text()
    assert "Restored" in info and (("self-ensemble x8" in info) == (task == "denoising"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"app-{task}.png"), full_page=True)
    page.close()


def test_messages_in_the_page(strict_server, browser, tmp_path):
    page = browser.new_page()
    open_tab(page, strict_server, "denoising")
    big = tmp_path / "big.png"
    Image.new("RGB", (400, 300), "gray").save(big)
    page.locator("#denoising-input input[type=file]").set_input_files(str(big))
    page.locator("#denoising-run").click()
    page.get_by_text("above this app's limit").first.wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "oversize.png"))
    page.close()
