import json
import re
import textwrap

import numpy as np
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageToImage,
    pipeline,
)

from conftest import run_in_fresh_interpreter
from mirnet_hf import (
    MIRNetConfig,
    MIRNetForImageRestoration,
    MIRNetImageProcessor,
    MIRNetModel,
    MIRNetRestorationPipeline,
)


def test_auto_classes_resolve_to_mirnet(converted_v1):
    assert isinstance(AutoConfig.from_pretrained(converted_v1), MIRNetConfig)
    assert type(AutoModel.from_pretrained(converted_v1)) is MIRNetModel
    assert type(AutoModelForImageToImage.from_pretrained(converted_v1)) is MIRNetForImageRestoration
    assert type(AutoImageProcessor.from_pretrained(converted_v1)) is MIRNetImageProcessor


def test_saved_folder_carries_code_and_auto_map(converted_v1):
    names = {p.name for p in converted_v1.iterdir()}
    assert {
        "configuration_mirnet.py",
        "modeling_mirnet.py",
        "image_processing_mirnet.py",
        "pipeline_mirnet.py",
    } <= names
    config = json.loads((converted_v1 / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageToImage"] == "modeling_mirnet.MIRNetForImageRestoration"
    assert config["auto_map"]["AutoModel"] == "modeling_mirnet.MIRNetModel"
    assert "image-restoration" in config["custom_pipelines"]
    processor = json.loads((converted_v1 / "preprocessor_config.json").read_text())
    assert processor["auto_map"]["AutoImageProcessor"] == "image_processing_mirnet.MIRNetImageProcessor"
    # Relative imports only, so the files load on their own from the Hub.
    for name in ("modeling_mirnet.py", "configuration_mirnet.py", "image_processing_mirnet.py", "pipeline_mirnet.py"):
        imports = re.findall(r"^(?:from|import) (\S+)", (converted_v1 / name).read_text(), flags=re.MULTILINE)
        assert not [module for module in imports if module.startswith("mirnet_hf")], (name, imports)


def test_installed_pipeline_returns_images_at_the_right_size(converted_v1, converted_sr):
    restorer = pipeline("image-restoration", model=str(converted_v1))
    assert isinstance(restorer, MIRNetRestorationPipeline)
    image = Image.new("RGB", (33, 21), (120, 80, 40))
    restored = restorer(image)
    assert isinstance(restored, Image.Image) and restored.size == (33, 21)
    batch = restorer([image, Image.new("L", (9, 14), 100)])
    assert [(r.size, r.mode) for r in batch] == [((33, 21), "RGB"), ((9, 14), "L")]
    upscaler = pipeline("image-restoration", model=str(converted_sr))
    assert upscaler(image).size == (66, 42)
    # The pipeline computes what the model and processor compute.
    processor = MIRNetImageProcessor.from_pretrained(converted_v1)
    model = MIRNetForImageRestoration.from_pretrained(converted_v1).eval()
    with torch.no_grad():
        expected = processor.post_process(model(**processor(images=image)).reconstruction, original_images=image)[0]
    assert np.array_equal(np.asarray(restored), np.asarray(expected))


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch
    from PIL import Image
    from transformers import AutoModel, AutoModelForImageToImage, AutoImageProcessor, pipeline
    folder, expected_path = sys.argv[1], sys.argv[2]
    model = AutoModelForImageToImage.from_pretrained(folder, trust_remote_code=True).eval()
    features = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
    restorer = pipeline("image-restoration", model=folder, trust_remote_code=True)
    image = Image.open(expected_path.replace(".npy", ".png"))
    with torch.no_grad():
        inputs = processor(images=image, return_tensors="pt")
        reconstruction = model(**inputs).reconstruction
        hidden = features(**inputs).last_hidden_state
    restored = restorer(image)
    assert type(model).__name__ == "MIRNetForImageRestoration", type(model)
    assert type(features).__name__ == "MIRNetModel", type(features)
    assert restored.size == image.size, restored.size
    np.testing.assert_array_equal(reconstruction.numpy(), np.load(expected_path))
    expected_pipe = Image.open(expected_path.replace(".npy", "_pipe.png"))
    np.testing.assert_array_equal(np.asarray(restored), np.asarray(expected_pipe))
    assert hidden.shape[1] == model.config.num_features
    loaded = [name for name in sys.modules if name.startswith("mirnet_hf")]
    assert not loaded, loaded
    print("REMOTE OK", type(model).__module__)
    """
)


def test_remote_code_loads_in_a_fresh_interpreter(converted_v1, tmp_path):
    image = Image.new("RGB", (26, 19))
    image.putdata([((x * 7) % 256, (x * 3) % 256, (x * 11) % 256) for x in range(26 * 19)])
    image.save(tmp_path / "input.png")
    processor = MIRNetImageProcessor.from_pretrained(converted_v1)
    model = MIRNetForImageRestoration.from_pretrained(converted_v1).eval()
    with torch.no_grad():
        reconstruction = model(**processor(images=image)).reconstruction
    np.save(tmp_path / "input.npy", reconstruction.numpy())
    pipeline("image-restoration", model=str(converted_v1))(image).save(tmp_path / "input_pipe.png")

    result = run_in_fresh_interpreter(REMOTE_SCRIPT, str(converted_v1), str(tmp_path / "input.npy"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE OK transformers_modules" in result.stdout
