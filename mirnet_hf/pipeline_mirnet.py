"""The `image-restoration` pipeline: images in, restored PIL images (or arrays) out.

transformers 5 has no image-to-image pipeline task any more; `import mirnet_hf` registers this one
under `"image-restoration"`, and model folders saved by `mirnet_hf` carry this file so that Hub
users get it with `trust_remote_code=True` and no install. It uses no other module of the package.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline


class MIRNetRestorationPipeline(Pipeline):
    """Restores images with a MIRNet checkpoint and returns them in their input's format and size
    (times the scale for super-resolution).

    Example:

    ```python
    >>> import tempfile
    >>> from PIL import Image
    >>> from transformers import pipeline
    >>> import mirnet_hf
    >>> folder = tempfile.mkdtemp()
    >>> _ = mirnet_hf.convert_checkpoint("../shared/reference/vectors/mirnet_v1_nfeat16_rrg2_mrb1.pth", folder)
    >>> restorer = pipeline("image-restoration", model=folder)
    >>> restorer(Image.new("RGB", (33, 20), "white")).size
    (33, 20)

    ```
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_video_processor = False

    def __call__(self, images: Any, **kwargs: Any) -> Any:
        """Restores one image (PIL image, path, URL, HWC array or CHW tensor) or a list of them."""
        return super().__call__(images, **kwargs)

    def _sanitize_parameters(self, timeout: float | None = None, **kwargs):
        return ({} if timeout is None else {"timeout": timeout}), {}, {}

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, Any]:
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            from transformers.image_utils import load_image

            image = load_image(image, timeout=timeout)
        inputs = self.image_processor(images=image, return_tensors="pt")
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return {"pixel_values": inputs["pixel_values"], "original": image}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        original = model_inputs.pop("original")
        with torch.inference_mode():
            reconstruction = self.model(pixel_values=model_inputs["pixel_values"]).reconstruction
        return {"reconstruction": reconstruction, "original": original}

    def postprocess(self, model_outputs: dict[str, Any]) -> Any:
        original = model_outputs["original"]
        return self.image_processor.post_process(model_outputs["reconstruction"], original_images=original)[0]
