"""Exports: ONNX graphs (parity with PyTorch, any size), the authors' layout (round trip, spandrel), errors."""

import csv
import logging
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from PIL import Image
from spandrel_loader import import_spandrel

from conftest import DATASETS, REPO, SHARED, V1_VECTORS, V2_VECTORS, VECTORS
from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetImageProcessor, convert_checkpoint
from mirnet_hf.cli import main
from mirnet_hf.convert_mirnet_checkpoint import infer_config, load_official_state_dict
from mirnet_hf.export import (
    ONNX_FILE,
    export_model,
    export_official,
    export_onnx,
    official_keys,
    official_state_dict,
    onnx_fingerprint,
    spandrel_incompatibilities,
    weights_fingerprint,
)
from mirnet_hf.inference import MIRNetRestorer
from mirnet_hf.tasks import get_task
from mirnet_hf.training import PRESETS

SPANDREL_V2 = dict(version="v2", num_rrg=4, rrg_groups=[1, 2, 4, 4], num_mrb=1)


def photo_crop(height: int, width: int, name: str = "kodim23.png") -> torch.Tensor:
    """A crop of a real photo as (1, 3, H, W) in [0, 1]."""
    image = np.asarray(Image.open(DATASETS / "Kodak24" / name).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(image[100 : 100 + height, 200 : 200 + width]).permute(2, 0, 1)[None].contiguous()


def pytorch_output(model: MIRNetForImageRestoration, pixel_values: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(pixel_values=pixel_values).reconstruction


# ----------------------------------------------------------------------------------------------
# The authors' layout
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", V1_VECTORS + V2_VECTORS)
def test_official_keys_are_exactly_the_authors_files_keys_in_order(name):
    state = load_official_state_dict(VECTORS / f"{name}.pth")
    assert official_keys(infer_config(state)) == list(state)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_official_keys_match_the_paper_models_key_lists(version):
    with open(SHARED / "reference" / f"mirnet_{version}_official_state_dict.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    shapes = {row["key"]: torch.empty([int(size) for size in row["shape"].split("x")]) for row in rows}
    assert official_keys(infer_config(shapes)) == [row["key"] for row in rows]


@pytest.mark.parametrize("name", V1_VECTORS + V2_VECTORS)
def test_official_export_gives_back_the_authors_tensors_including_shared_and_fixed_ones(name):
    original = load_official_state_dict(VECTORS / f"{name}.pth")
    exported = official_state_dict(convert_checkpoint(VECTORS / f"{name}.pth"))
    assert list(exported) == list(original)
    different = [key for key in original if not torch.equal(exported[key], original[key].float())]
    assert different == []
    # Shared tensors are written out under each name, in their own storage.
    pointers = [tensor.untyped_storage().data_ptr() for tensor in exported.values()]
    assert len(set(pointers)) == len(pointers)


@pytest.mark.parametrize(
    "settings",
    [dict(version="v1", num_features=8, num_rrg=1, num_mrb=2, num_columns=3), dict(**SPANDREL_V2, num_features=16)],
    ids=["v1", "v2"],
)
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_convert_of_export_is_bit_identical(settings, suffix, tmp_path):
    model = MIRNetForImageRestoration(MIRNetConfig(**settings)).eval()
    model.save_pretrained(tmp_path / "folder")
    path = export_official(tmp_path / "folder", tmp_path / f"official{suffix}")
    if suffix == ".pth":
        wrapper = "state_dict" if settings["version"] == "v1" else "params"
        assert list(torch.load(path, weights_only=True)) == [wrapper]
    image = photo_crop(40, 52)
    assert torch.equal(pytorch_output(convert_checkpoint(path), image), pytorch_output(model, image))


def test_spandrel_loads_the_exported_v2_file_and_gives_our_outputs(tmp_path):
    spandrel = import_spandrel()
    model = MIRNetForImageRestoration(MIRNetConfig(**SPANDREL_V2, num_features=16)).eval()
    path = export_official(model, tmp_path / "mirnet_v2.pth")
    descriptor = spandrel.ModelLoader().load_from_file(path)
    assert descriptor.architecture.id == "MIRNet2"
    image = photo_crop(64, 96)
    with torch.no_grad():
        theirs = descriptor.model.eval()(image)
    ours = pytorch_output(model, image)
    difference = (theirs - ours).abs().max().item()
    print(f"spandrel MIRNet2 vs ours: max abs difference {difference:.3g}")
    assert difference <= 1e-4
    assert (ours - image).abs().max() > 1e-2  # the network does change the photo: the comparison means something


def test_spandrel_loads_the_shipped_default_layout(tmp_path):
    """The retrained defaults use the spandrel layout (`mirnet-v2-small`); its export loads as it is."""
    spandrel = import_spandrel()
    config = MIRNetConfig(**PRESETS["mirnet-v2-small"])
    assert spandrel_incompatibilities(config) == []
    model = MIRNetForImageRestoration(config).eval()
    descriptor = spandrel.ModelLoader().load_from_file(export_official(model, tmp_path / "small.safetensors"))
    image = photo_crop(32, 48)
    with torch.no_grad():
        assert (descriptor.model.eval()(image) - pytorch_output(model, image)).abs().max() <= 1e-4


def test_official_export_warns_for_shapes_spandrel_cannot_build(tmp_path, caplog):
    model = MIRNetForImageRestoration(
        MIRNetConfig(version="v2", num_features=8, num_rrg=2, rrg_groups=[1, 2], num_mrb=1)
    )
    with caplog.at_level(logging.WARNING, logger="mirnet_hf.export"):
        export_official(model, tmp_path / "two_groups.pth")
    assert "spandrel" in caplog.text and "2 RRGs" in caplog.text
    v1 = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    assert spandrel_incompatibilities(v1.config) == ["MIRNet v1 (spandrel reads MIRNet-v2 only)"]


def test_official_export_refuses_a_bad_output_name(tmp_path):
    model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    with pytest.raises(ValueError, match=r"must name a file ending in one of \('.pth', '.pt', '.safetensors'\)"):
        export_official(model, tmp_path / "weights.bin")
    with pytest.raises(ValueError, match="format='tflite' is not valid; choose one of"):
        export_model(model, tmp_path / "x.pth", "tflite")


# ----------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder_with_onnx(tmp_path_factory):
    """A small v2 model folder given its ONNX graph by `mirnet-hf export MODEL MODEL --format onnx`."""
    folder = tmp_path_factory.mktemp("model_with_onnx")
    model = MIRNetForImageRestoration(MIRNetConfig(version="v2", num_features=16, num_rrg=1, rrg_groups=[1]))
    model.save_pretrained(folder)
    MIRNetImageProcessor.for_config(model.config).save_pretrained(folder)
    assert main(["export", str(folder), str(folder), "--format", "onnx"]) == 0
    assert (folder / ONNX_FILE).is_file()
    return folder


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory, trained_denoiser):
    """A small v1 denoiser trained here and exported, and the shipped v2 denoiser with the graph it ships (made by
    the same `export_onnx` when it was shipped; exporting its 1.1 M parameters again would take a minute)."""
    folder = tmp_path_factory.mktemp("onnx")
    v1 = trained_denoiser.eval()
    shipped = REPO / get_task("denoising").default_checkpoint
    v2 = MIRNetForImageRestoration.from_pretrained(shipped).eval()
    return {"v1": (v1, export_onnx(v1, folder / "v1.onnx")), "v2": (v2, shipped / ONNX_FILE)}


@pytest.mark.slow
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_onnx_graph_matches_pytorch_on_real_photos_at_any_size(onnx_models, version):
    model, path = onnx_models[version]
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert max(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")) >= 17
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # Aligned, unaligned (the graph pads like the model) and batched inputs, all from one graph.
    for shape, batch in (((64, 96), 1), ((70, 90), 1), ((48, 48), 2)):
        image = torch.cat([photo_crop(*shape, name) for name in ("kodim23.png", "kodim05.png")[:batch]])
        ours = pytorch_output(model, image)
        theirs = session.run(None, {"pixel_values": image.numpy()})[0]
        assert theirs.shape == tuple(ours.shape)
        difference = np.abs(theirs - ours.numpy()).max()
        print(f"{version} {shape} x{batch}: max abs difference {difference:.3g}")
        assert difference <= 1e-4
    assert onnx_fingerprint(path) == weights_fingerprint(model)


def test_onnx_export_into_a_model_folder_and_its_errors(folder_with_onnx, tmp_path):
    model = MIRNetForImageRestoration.from_pretrained(folder_with_onnx)
    assert onnx_fingerprint(folder_with_onnx / ONNX_FILE) == weights_fingerprint(model)
    with pytest.raises(ValueError, match="opset=11 is not valid; use 18 or newer"):
        export_onnx(model, tmp_path / "old.onnx", opset=11)
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(ValueError, match="is neither a .onnx file nor a folder"):
        export_onnx(model, tmp_path / "notes.txt")


def test_weights_fingerprint_changes_with_any_weight():
    model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    before = weights_fingerprint(model)
    with torch.no_grad():
        model.conv_out.weight[0, 0, 0, 0] += 1e-6
    assert weights_fingerprint(model) != before


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------


def test_cli_export_official(tmp_path, capsys):
    model = MIRNetForImageRestoration(MIRNetConfig(version="v2", num_features=8, num_rrg=1, rrg_groups=[1]))
    model.save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "out.pth"), "--format", "official"]) == 0
    assert "Exported" in capsys.readouterr().out
    image = photo_crop(24, 24)
    assert torch.equal(pytorch_output(convert_checkpoint(tmp_path / "out.pth"), image), pytorch_output(model, image))


def test_cli_export_errors_name_the_problem(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "out.pth"), "--format", "official"]) == 2
    assert f"cannot export {str(tmp_path / 'empty')!r}" in capsys.readouterr().err
    model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1, num_mrb=1))
    model.save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "out.txt"), "--format", "official"]) == 2
    assert "must name a file ending in one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "model"), str(tmp_path / "out.pth"), "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The ONNX Runtime backend
# ----------------------------------------------------------------------------------------------


def test_onnxruntime_restorer_uses_the_folders_graph_and_matches_pytorch_with_tiles(folder_with_onnx):
    photo = photo_crop(150, 200)
    settings = dict(device="cpu", precision="float32", tile_size=64, tile_overlap=8)  # the graph is float32
    runtime = MIRNetRestorer(folder_with_onnx, backend="onnxruntime", **settings)
    assert runtime.runner.path == folder_with_onnx / ONNX_FILE
    steps = []
    theirs = runtime.restore_tensor(photo, progress=lambda done, total: steps.append((done, total)))
    ours = MIRNetRestorer(folder_with_onnx, **settings).restore_tensor(photo)
    assert runtime.stats.tiles == 12 and steps[-1] == (12, 12)
    assert (theirs - ours).abs().max() <= 1e-4
    # Whole images of any size go through the same graph.
    assert runtime(np.zeros((30, 50, 3), np.uint8)).shape == (30, 50, 3)


def test_onnxruntime_restorer_never_uses_a_stale_graph(folder_with_onnx, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MIRNET_HF_CACHE", str(tmp_path / "cache"))
    model = MIRNetForImageRestoration.from_pretrained(folder_with_onnx)
    with torch.no_grad():
        model.conv_out.weight.mul_(1.5)  # fine-tuned since the graph was exported
    with caplog.at_level(logging.WARNING, logger="mirnet_hf.onnx_backend"):
        runtime = MIRNetRestorer(model, backend="onnxruntime", device="cpu", tile_size=None)
    assert "was made from other weights" in caplog.text
    assert runtime.runner.path == tmp_path / "cache" / f"{weights_fingerprint(model)}.onnx"
    photo = photo_crop(40, 40)
    assert (runtime.restore_tensor(photo) - pytorch_output(model, photo)).abs().max() <= 1e-4
    # The export is kept: a second restorer reuses it.
    assert MIRNetRestorer(model, backend="onnxruntime", device="cpu").runner.path == runtime.runner.path


def test_onnxruntime_backend_refuses_what_it_cannot_do(folder_with_onnx, monkeypatch):
    with pytest.raises(ValueError, match="precision='bfloat16' is not available with backend='onnxruntime'"):
        MIRNetRestorer(folder_with_onnx, backend="onnxruntime", device="cpu", precision="bfloat16")
    with pytest.raises(ValueError, match="compile=True applies to backend='pytorch' only"):
        MIRNetRestorer(folder_with_onnx, backend="onnxruntime", device="cpu", compile=True)
    with pytest.raises(ValueError, match=r"backend='tensorrt' is not valid; use one of \('pytorch', 'onnxruntime'\)"):
        MIRNetRestorer(folder_with_onnx, backend="tensorrt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'mirnet-hf\[onnx\]'"):
        MIRNetRestorer(folder_with_onnx, backend="onnxruntime", device="cpu")


def test_cli_restore_with_the_onnxruntime_backend(folder_with_onnx, tmp_path, capsys):
    source = tmp_path / "photo.png"
    Image.fromarray((photo_crop(90, 120)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(source)
    outputs = {}
    for backend in ("pytorch", "onnxruntime"):
        target = tmp_path / f"{backend}.png"
        arguments = ["restore", "--model", str(folder_with_onnx), str(source), "--output", str(target)]
        settings = ["--tile", "64", "--device", "cpu", "--precision", "float32", "--quiet"]  # float32 on any CPU
        assert main([*arguments, "--backend", backend, *settings]) == 0
        outputs[backend] = np.asarray(Image.open(target), dtype=np.int16)
    assert np.abs(outputs["pytorch"] - outputs["onnxruntime"]).max() <= 1
    assert main(["restore", "--model", str(folder_with_onnx), str(source), "--output", str(tmp_path / "x.png"),
                 "--backend", "onnxruntime", "--precision", "bfloat16"]) == 2  # fmt: skip
    assert "not available with backend='onnxruntime'" in capsys.readouterr().err
