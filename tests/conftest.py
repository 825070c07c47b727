import os
import sys
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One of two workers on a 2-core machine: one thread each (and for the programs it starts, unless a test sets
    # its own), as two OpenMP teams of two on two cores slow small operations several times over.
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "reference" / "vectors"
DATASETS = SHARED / "datasets"
V1_VECTORS = ["mirnet_v1_nfeat16_rrg2_mrb1", "mirnet_v1_nfeat8_rrg1_mrb2_width3"]
V2_VECTORS = ["mirnet_v2_nfeat16_rrg4_mrb1"]


def load_script(path: Path):
    """A script of the repository (scripts/, benchmarks/) imported as a module, to call its functions in-process:
    each subprocess would pay for importing torch and transformers again."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there (a fresh copy each call replaces it)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def converted_v1(tmp_path_factory) -> Path:
    """A from_pretrained folder converted from an official-format v1 checkpoint."""
    from mirnet_hf import convert_checkpoint

    folder = tmp_path_factory.mktemp("converted_v1")
    convert_checkpoint(VECTORS / f"{V1_VECTORS[0]}.pth", folder, task="denoising")
    return folder


@pytest.fixture(scope="session")
def converted_sr(tmp_path_factory) -> Path:
    """The same weights recorded as a x2 super-resolution checkpoint."""
    from mirnet_hf import convert_checkpoint

    folder = tmp_path_factory.mktemp("converted_sr")
    convert_checkpoint(VECTORS / f"{V1_VECTORS[0]}.pth", folder, task="super-resolution", upscale=2)
    return folder


@pytest.fixture
def tiny_config():
    from mirnet_hf import MIRNetConfig

    return MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.fixture(scope="session")
def trained_denoiser():
    """A small MIRNet trained here for a few seconds on CBSD432 Gaussian denoising (sigma 25).

    Random weights leave the output close to the input (the global skip), which would make
    agreement checks meaningless; this model changes its input as a real denoiser does.
    """
    import numpy as np
    from PIL import Image

    from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration

    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    files = sorted((DATASETS / "CBSD432").glob("*.jpg"))[:24]
    images = [torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255) for f in files]
    model = MIRNetForImageRestoration(MIRNetConfig(num_features=16, num_rrg=1, num_mrb=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(120):
        crops = []
        for _ in range(8):
            image = images[rng.integers(len(images))]
            top, left = rng.integers(image.shape[0] - 48), rng.integers(image.shape[1] - 48)
            crops.append(image[top : top + 48, left : left + 48].permute(2, 0, 1))
        clean = torch.stack(crops)
        noisy = clean + torch.randn(clean.shape, generator=generator) * (25 / 255)
        loss = model(pixel_values=noisy, labels=clean).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def noisy_pair():
    """A 512x512 clean photo (PolyU mean shot) and its sigma-25 Gaussian-noisy version, float32 HWC."""
    import numpy as np
    from PIL import Image

    clean_path = sorted((DATASETS / "PolyU").glob("*_mean.JPG"))[0]
    clean = np.asarray(Image.open(clean_path).convert("RGB"), dtype=np.float32) / 255
    noise = np.random.default_rng(1).normal(0, 25 / 255, clean.shape)
    return clean, np.clip(clean + noise, 0, 1).astype(np.float32)


def run_in_fresh_interpreter(script: str, *args: str, cwd: Path):
    """Runs `script` in a new Python that has never imported mirnet_hf (remote-code users' view),
    with its own empty Hugging Face cache; returns the finished process."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cwd / "hf_home"), "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def photo_crops(count: int, size: tuple[int, int] = (64, 48), offset: int = 0) -> list:
    """`count` real photo crops (PIL, width x height `size`) from CBSD432, for data sets made in tests."""
    from PIL import Image

    files = sorted((DATASETS / "CBSD432").glob("*.jpg"))[offset : offset + count]
    crops = []
    for path in files:
        with Image.open(path) as image:
            crops.append(image.convert("RGB").crop((100, 80, 100 + size[0], 80 + size[1])))
    return crops


def make_image_folder(folder: Path, images: list, prefix: str = "img") -> Path:
    """Writes images as PNGs into `folder` (an `imagefolder` data set); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        image.save(folder / f"{prefix}{index:03d}.png")
    return folder
