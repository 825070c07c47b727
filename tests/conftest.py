from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "reference" / "vectors"
DATASETS = SHARED / "datasets"
V1_VECTORS = ["mirnet_v1_nfeat16_rrg2_mrb1", "mirnet_v1_nfeat8_rrg1_mrb2_width3"]
V2_VECTORS = ["mirnet_v2_nfeat16_rrg4_mrb1"]


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
