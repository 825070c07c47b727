import csv
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, SHARED, V1_VECTORS, V2_VECTORS, VECTORS
from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, convert_checkpoint
from mirnet_hf.convert_mirnet_checkpoint import CheckpointMismatchError, guess_task, load_official_state_dict


def max_abs_difference(name: str, model: MIRNetForImageRestoration) -> float:
    io = load_file(VECTORS / f"{name}_io.safetensors")
    with torch.no_grad():
        output = model(pixel_values=io["input"]).reconstruction
    return (output - io["output"]).abs().max().item()


@pytest.mark.parametrize("name", V1_VECTORS + V2_VECTORS)
def test_converted_vectors_give_the_authors_outputs(name, tmp_path):
    convert_checkpoint(VECTORS / f"{name}.pth", tmp_path)
    model = MIRNetForImageRestoration.from_pretrained(tmp_path).eval()
    difference = max_abs_difference(name, model)
    print(f"{name}: max abs difference {difference:.3g}")
    assert difference <= 1e-4
    assert model.config.version == name.split("_")[1]


def test_inferred_configuration_matches_the_vector_metadata():
    model = convert_checkpoint(VECTORS / "mirnet_v1_nfeat8_rrg1_mrb2_width3.pth")
    c = model.config
    assert (c.num_features, c.num_rrg, c.num_mrb, c.num_streams, c.num_columns) == (8, 1, 2, 3, 3)
    v2 = convert_checkpoint(VECTORS / "mirnet_v2_nfeat16_rrg4_mrb1.pth").config
    assert (v2.version, v2.num_features, v2.num_rrg, v2.num_mrb, v2.channel_factor) == ("v2", 16, 4, 1, 1.5)
    assert v2.rrg_groups == [1, 2, 4, 4]


def _official_wrappers(state):
    bare = {k.removeprefix("module."): v for k, v in state.items()}
    return {
        "state_dict with module.": {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in bare.items()}},
        "state_dict without module.": {"state_dict": bare},
        "params": {"params": bare},
        "bare": bare,
    }


@pytest.mark.parametrize("name", [V1_VECTORS[0], V2_VECTORS[0]])
def test_every_official_wrapper_is_accepted(name, tmp_path):
    raw = torch.load(VECTORS / f"{name}.pth", weights_only=True)
    reference = convert_checkpoint(VECTORS / f"{name}.pth").state_dict()
    for label, wrapped in _official_wrappers(raw["state_dict"]).items():
        path = tmp_path / "wrapped.pth"
        torch.save(wrapped, path)
        converted = convert_checkpoint(path).state_dict()
        assert converted.keys() == reference.keys(), label
        assert all(torch.equal(converted[k], reference[k]) for k in reference), label


def _state(name=V1_VECTORS[0]):
    return load_official_state_dict(VECTORS / f"{name}.pth")


def test_a_missing_key_is_named():
    state = _state()
    del state["body.1.body.0.selective_kernel.2.fcs.1.weight"]
    with pytest.raises(
        CheckpointMismatchError, match=r"missing 1 .*residual_groups\.1\.blocks\.0\.fusions\.2\.select\.1"
    ):
        convert_checkpoint(state)


def test_an_unexpected_key_is_named():
    state = _state()
    state["body.0.body.0.extra_branch.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected key\(s\): body\.0\.body\.0\.extra_branch\.weight"):
        convert_checkpoint(state)


def test_a_misshaped_key_is_named():
    state = _state()
    state["body.0.body.0.conv_out.weight"] = torch.zeros(16, 16, 5, 5)
    with pytest.raises(CheckpointMismatchError, match=r"body\.0\.body\.0\.conv_out\.weight: \(16, 16, 5, 5\)"):
        convert_checkpoint(state)


def test_shared_tensors_that_differ_are_refused():
    state = _state()
    key = "body.0.body.0.blocks.1.1.body.0.weight"  # column 1 must repeat column 0's DAU
    state[key] = state[key] + 1
    with pytest.raises(CheckpointMismatchError, match="blocks.1.1.body.0.weight should hold the same values"):
        convert_checkpoint(state)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="weights_only=True"):
        convert_checkpoint(text)
    with pytest.raises(FileNotFoundError, match="does_not_exist.pth"):
        convert_checkpoint(tmp_path / "does_not_exist.pth")
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointMismatchError, match="conv_in.weight"):
        convert_checkpoint(other)


class _Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv_in.weight": torch.zeros(1)}, "extra": _Payload()}, path)
    with pytest.raises(CheckpointMismatchError):
        convert_checkpoint(path)
    assert "arbitrary code ran" not in capsys.readouterr().out


def _paper_size_state_dict():
    """An official-format state dict for the paper's model, built from the reference key list."""
    with open(SHARED / "reference" / "mirnet_v1_official_state_dict.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    generator = torch.Generator().manual_seed(0)
    state = {}
    for row in rows:
        shape = tuple(int(x) for x in row["shape"].split("x"))
        if row["same_tensor_as"]:
            state[row["key"]] = state[row["same_tensor_as"]]
        elif row["kind"] == "buffer":
            state[row["key"]] = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]).div(16).expand(shape).clone()
        else:
            state[row["key"]] = torch.rand(shape, generator=generator) * 0.02
    return {f"module.{k}": v for k, v in state.items()}


@pytest.mark.slow
def test_the_paper_size_key_layout_converts_to_the_default_config():
    model = convert_checkpoint({"state_dict": _paper_size_state_dict()})
    assert model.config.to_dict() | {"custom_pipelines": None} == MIRNetConfig().to_dict() | {"custom_pipelines": None}
    assert sum(p.numel() for p in model.parameters()) == 31_787_419


@pytest.mark.parametrize(
    ("filename", "task", "scale"),
    [
        ("model_denoising.pth", "denoising", 1),
        ("sr_x3.pth", "super-resolution", 3),
        ("model_SR_x4.pth", "super-resolution", 4),
        ("model_lol.pth", "low-light-enhancement", 1),
        ("fivek.pth", "enhancement", 1),
        ("dual_pixel_defocus_deblurring.pth", "defocus-deblurring", 1),
        ("mirnet_v1_nfeat16_rrg2_mrb1.pth", None, 1),
    ],
)
def test_task_is_guessed_from_released_file_names(filename, task, scale):
    assert guess_task(filename) == (task, scale)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mirnet_hf.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_cli_convert_writes_a_complete_folder(tmp_path):
    out = tmp_path / "converted"
    result = run_cli(
        "convert", str(VECTORS / f"{V1_VECTORS[0]}.pth"), str(out), "--task", "super-resolution", "--scale", "2"
    )
    assert result.returncode == 0, result.stderr
    assert "665,919 parameters" in result.stdout
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    model = MIRNetForImageRestoration.from_pretrained(out)
    assert (model.config.task, model.config.upscale) == ("super-resolution", 2)
    assert math.isclose(max_abs_difference(V1_VECTORS[0], model.eval()), 0, abs_tol=1e-4)
    card = (out / "README.md").read_text()
    assert "pipeline_tag: image-to-image" in card and "super-resolution (x2)" in card and "sha256" in card


def test_cli_convert_reports_bad_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00\x01garbage")
    result = run_cli("convert", str(bad), str(tmp_path / "out"))
    assert result.returncode == 2
    assert "bad.pth" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(
        "convert", str(VECTORS / f"{V1_VECTORS[0]}.pth"), str(tmp_path / "o"), "--task", "super-resolution"
    )
    assert result.returncode == 2 and "scale" in result.stderr
