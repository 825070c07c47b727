"""MIRNet image restoration (denoising, super-resolution, low-light enhancement) for transformers.

Importing the package registers the model with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForImageToImage`, `AutoImageProcessor`) and the `"image-restoration"` pipeline.

Example:

```python
>>> import mirnet_hf
>>> from transformers import AutoConfig
>>> type(AutoConfig.for_model("mirnet")).__name__
'MIRNetConfig'

```
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageToImage,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_mirnet import MIRNetConfig
from .convert_mirnet_checkpoint import convert_checkpoint
from .image_processing_mirnet import MIRNetImageProcessor
from .inference import MIRNetRestorer, restore
from .modeling_mirnet import MIRNetForImageRestoration, MIRNetModel, MIRNetPreTrainedModel
from .pipeline_mirnet import MIRNetRestorationPipeline

__version__ = "0.1.0"

AutoConfig.register(MIRNetConfig.model_type, MIRNetConfig, exist_ok=True)
AutoModel.register(MIRNetConfig, MIRNetModel, exist_ok=True)
AutoModelForImageToImage.register(MIRNetConfig, MIRNetForImageRestoration, exist_ok=True)
AutoImageProcessor.register(MIRNetConfig, image_processor_classes={"pil": MIRNetImageProcessor}, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    "image-restoration",
    pipeline_class=MIRNetRestorationPipeline,
    pt_model=AutoModelForImageToImage,
    type="image",
)

# Saved folders carry the code and an `auto_map`, so they load with trust_remote_code and no install.
MIRNetConfig.register_for_auto_class()
MIRNetModel.register_for_auto_class("AutoModel")
MIRNetForImageRestoration.register_for_auto_class("AutoModelForImageToImage")
MIRNetImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "MIRNetConfig",
    "MIRNetModel",
    "MIRNetForImageRestoration",
    "MIRNetPreTrainedModel",
    "MIRNetImageProcessor",
    "MIRNetRestorationPipeline",
    "MIRNetRestorer",
    "restore",
    "convert_checkpoint",
]
