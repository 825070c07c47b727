"""The one writer of model folders: what `from_pretrained`, `pipeline()`, the Hub and the restorer read.

The converter, the trainer and the scripts that ship the default models all write through
`save_model_folder`, so every folder has the same files: `config.json` (with `auto_map` and
`custom_pipelines`), `model.safetensors`, `preprocessor_config.json`, the model and pipeline code for
`trust_remote_code`, `README.md`, and optionally the ONNX graph `onnx/model.onnx`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from .export import ONNX_FILE, export_onnx
from .image_processing_mirnet import MIRNetImageProcessor
from .modeling_mirnet import MIRNetForImageRestoration

logger = logging.getLogger(__name__)

PIPELINE_CODE = Path(__file__).with_name("pipeline_mirnet.py")
HUB_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")


def save_model_folder(
    model: MIRNetForImageRestoration,
    output_dir: str | Path,
    *,
    card: Callable[[Path], object] | None = None,
    processor: MIRNetImageProcessor | None = None,
    code: bool = True,
    onnx: bool = False,
) -> Path:
    """Writes `model` as a complete folder and returns it.

    Args:
        card: writes `README.md` into the folder (`model_card.write_model_card` and friends); None: no card.
        processor: the image processor to save; default, the one made from the model's config.
        code: keep the model code beside the weights (for `trust_remote_code` without this package); the
            shipped defaults leave it out, since the package that reads them provides it.
        onnx: also export `onnx/model.onnx` (for `backend="onnxruntime"` and other runtimes). Without it, a
            graph left from earlier weights is removed, so no folder carries a stale one.

    Example:

    ```python
    >>> import tempfile
    >>> from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration
    >>> from mirnet_hf.model_folder import save_model_folder
    >>> model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=1))
    >>> folder = save_model_folder(model, tempfile.mkdtemp())
    >>> names = {path.name for path in folder.iterdir()}
    >>> {"config.json", "model.safetensors", "preprocessor_config.json", "modeling_mirnet.py"} <= names
    True

    ```
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    (processor or MIRNetImageProcessor.for_config(model.config)).save_pretrained(output_dir)
    if not code:
        for path in output_dir.glob("*.py"):
            path.unlink()
    elif model._auto_class is not None:
        # transformers copies the model's code files; the pipeline's goes beside them, so that
        # `pipeline("image-restoration", model=folder, trust_remote_code=True)` works without this package.
        shutil.copy(PIPELINE_CODE, output_dir / PIPELINE_CODE.name)
    if card is not None:
        card(output_dir)
    graph = output_dir / ONNX_FILE
    if onnx:
        export_onnx(model, graph)
    elif graph.exists():
        graph.unlink()
        logger.info("Removed %s, made from earlier weights.", graph)
    return output_dir


__all__ = ["HUB_FILES", "save_model_folder"]
