"""Imports spandrel (chaiNNer's and ComfyUI's model loader) and its extra architectures for the export tests.

spandrel imports `torchvision.transforms.functional` at import time for two architectures unrelated to ours
(LaMa, RestoreFormer). PyPI's torchvision is built for CUDA torch: beside the CPU torch here it fails on
import and also breaks transformers' imports, so `scripts/setup.sh` installs spandrel without it. When
torchvision is missing, those three names are given placeholders that fail if called, for the import only;
nothing of MIRNet2's loading or network goes through them.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _unavailable(*args, **kwargs):
    raise RuntimeError("torchvision is not installed here; spandrel's LaMa and RestoreFormer cannot run.")


def import_spandrel():
    """Returns `spandrel` with `spandrel_extra_arches` (which holds `MIRNet2`) installed into its registry."""
    placeholders = {}
    if importlib.util.find_spec("torchvision") is None:
        functional = types.ModuleType("torchvision.transforms.functional")
        functional.InterpolationMode = type("InterpolationMode", (), {})
        functional.rotate = functional.normalize = _unavailable
        placeholders = {
            "torchvision": types.ModuleType("torchvision"),
            "torchvision.transforms": types.ModuleType("torchvision.transforms"),
            "torchvision.transforms.functional": functional,
        }
    sys.modules.update(placeholders)
    try:
        import spandrel
        import spandrel_extra_arches
    finally:
        for name in placeholders:  # nothing else may mistake the placeholders for torchvision
            sys.modules.pop(name, None)
    spandrel_extra_arches.install(ignore_duplicates=True)
    return spandrel
