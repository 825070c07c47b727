import json

import pytest
import torch

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration


def count_parameters(config: MIRNetConfig) -> int:
    with torch.device("meta"):
        model = MIRNetForImageRestoration(config)
    return sum(p.numel() for p in model.parameters())


def test_default_config_is_the_papers_v1_model():
    config = MIRNetConfig()
    assert (config.version, config.num_features, config.num_rrg, config.num_mrb) == ("v1", 64, 3, 2)
    assert (config.num_streams, config.num_columns, config.channel_factor, config.reduction) == (3, 2, 2.0, 8)
    assert config.stream_channels == [64, 128, 256]
    assert count_parameters(config) == 31_787_419


def test_v2_defaults_are_the_papers_v2_model():
    config = MIRNetConfig(version="v2")
    assert (config.num_features, config.num_rrg, config.channel_factor, config.rrg_groups) == (
        80,
        4,
        1.5,
        [1, 2, 4, 4],
    )
    assert config.stream_channels == [80, 120, 180]
    assert count_parameters(config) == 5_858_560


def test_every_hyperparameter_and_the_task_are_saved(tmp_path):
    config = MIRNetConfig(task="super-resolution", upscale=3, num_features=32)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for key in (
        "version",
        "num_features",
        "num_rrg",
        "num_mrb",
        "num_streams",
        "num_columns",
        "channel_factor",
        "reduction",
        "num_channels",
        "num_channels_out",
        "task",
        "upscale",
        "global_skip",
    ):
        assert key in saved, key
    assert saved["model_type"] == "mirnet"
    assert saved["upscale"] == 3 and saved["num_features"] == 32
    reloaded = MIRNetConfig.from_pretrained(tmp_path)
    assert reloaded.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "v3"}, "version='v3'"),
        ({"task": "deblurring"}, "task='deblurring'"),
        ({"task": "super-resolution"}, "upscale >= 2"),
        ({"task": "denoising", "upscale": 2}, "upscale=2"),
        ({"num_features": 0}, "num_features=0"),
        ({"num_rrg": -1}, "num_rrg=-1"),
        ({"num_mrb": 1.5}, "num_mrb=1.5"),
        ({"channel_factor": 1.0}, "channel_factor=1.0"),
        ({"num_features": 10, "channel_factor": 1.5}, "num_features=10"),
        ({"global_skip": "none"}, "global_skip='none'"),
        ({"num_channels": 6}, "num_channels (6)"),
        ({"reduction": 16, "num_features": 8}, "reduction=16"),
        ({"rrg_groups": [1, 2, 4]}, "rrg_groups"),
        ({"version": "v2", "rrg_groups": [1, 2]}, "rrg_groups=[1, 2]"),
        ({"version": "v2", "rrg_groups": [1, 2, 3, 4]}, "entry 3"),
    ],
)
def test_invalid_values_fail_at_creation_naming_the_value(kwargs, message):
    with pytest.raises(ValueError) as error:
        MIRNetConfig(**kwargs)
    assert message in str(error.value)


def test_defocus_configuration_takes_six_channels():
    config = MIRNetConfig(version="v2", num_channels=6, global_skip="features", task="defocus-deblurring")
    model = MIRNetForImageRestoration(config).eval()
    with torch.no_grad():
        out = model(pixel_values=torch.rand(1, 6, 16, 16)).reconstruction
    assert out.shape == (1, 3, 16, 16)
