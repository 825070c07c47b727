"""MIRNet-v2 (TPAMI 2022) through the same tools as v1."""

import numpy as np
import torch
from PIL import Image
from transformers import pipeline

from conftest import V2_VECTORS, VECTORS, run_in_fresh_interpreter
from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetRestorer, convert_checkpoint
from mirnet_hf.convert_mirnet_checkpoint import load_official_state_dict


def test_v2_training_step_lowers_the_loss():
    config = MIRNetConfig(version="v2", num_features=16, num_rrg=2, num_mrb=1, rrg_groups=[1, 2])
    model = MIRNetForImageRestoration(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    clean = torch.rand(4, 3, 32, 32)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    losses = []
    for _ in range(15):
        loss = model(pixel_values=noisy, labels=clean).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < losses[0]


def test_v2_folder_loads_with_remote_code_pipeline_and_tiles(tmp_path):
    folder = tmp_path / "v2"
    model = convert_checkpoint(VECTORS / f"{V2_VECTORS[0]}.pth", folder, task="denoising")
    image = Image.new("RGB", (45, 30), (90, 140, 200))
    restored = pipeline("image-restoration", model=str(folder))(image)
    assert restored.size == (45, 30)
    tiled = MIRNetRestorer(model, device="cpu", tile_size=16, tile_overlap=4)(np.asarray(image))
    assert tiled.shape == (30, 45, 3)
    script = (
        "import sys, torch\n"
        "from transformers import AutoModelForImageToImage\n"
        "m = AutoModelForImageToImage.from_pretrained(sys.argv[1], trust_remote_code=True).eval()\n"
        "x = torch.load(sys.argv[2])\n"
        "with torch.no_grad(): torch.save(m(pixel_values=x).reconstruction, sys.argv[3])\n"
        "assert m.config.version == 'v2' and not any(n.startswith('mirnet_hf') for n in sys.modules)\n"
    )
    x = torch.rand(1, 3, 24, 28)
    torch.save(x, tmp_path / "x.pt")
    result = run_in_fresh_interpreter(
        script, str(folder), str(tmp_path / "x.pt"), str(tmp_path / "y.pt"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with torch.no_grad():
        expected = MIRNetForImageRestoration.from_pretrained(folder).eval()(pixel_values=x).reconstruction
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=0, atol=0)


def test_v2_defocus_checkpoint_takes_six_channels_and_skips_on_features():
    state = load_official_state_dict(VECTORS / f"{V2_VECTORS[0]}.pth")
    state["conv_in.weight"] = torch.randn(16, 6, 3, 3) * 0.1  # the dual-pixel model reads two views
    model = convert_checkpoint({"params": state}, task="defocus-deblurring")
    assert (model.config.num_channels, model.config.global_skip) == (6, "features")
    views = torch.rand(1, 6, 32, 32)
    with torch.no_grad():
        output = model(pixel_values=views).reconstruction
        shallow = model.mirnet.conv_in(views)
        deep = shallow
        for group in model.mirnet.residual_groups:
            deep = group(deep)
        expected = model.conv_out(deep + shallow)  # y = conv_out(body(f) + f), no image skip
    assert output.shape == (1, 3, 32, 32)
    torch.testing.assert_close(output, expected)
