"""MIRNet in the browser: denoising, super-resolution and low-light enhancement (a Hugging Face Space).

Run `python app.py` (after `bash scripts/setup.sh app`) and open http://127.0.0.1:7860. Settings come from
environment variables, listed in `mirnet_hf.demo.AppSettings.from_environment`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from mirnet_hf.demo import (
    AUTO_MODEL,
    TASK_LABELS,
    AppError,
    AppSettings,
    ModelCache,
    RestorationCancelled,
    precision_label,
    restore_upload,
)
from mirnet_hf.tasks import REGISTRY

EXAMPLES = Path(__file__).resolve().parent / "examples"


class UploadImage(gr.Image):
    """An image upload that reports an unreadable file as a message in the page (Gradio's own decoding would
    fail with a bare "Error") and hands over the uploaded file untouched (16-bit, alpha and ICC kept)."""

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception:
            raise gr.Error(
                "This file is not an image we can read (supported: PNG, JPEG, TIFF, WebP, BMP, GIF)."
            ) from None


def request_cancelled() -> bool:
    """True once Gradio has dropped the running request (cancelled, or its client left): Gradio cannot stop a
    function's thread, so the restoration asks this after every tile."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    if blocks is None or event_id is None:
        return False
    try:  # Gradio's queue internals: if they change, restorations run to the end rather than fail
        return not any(event._id == event_id for job in blocks._queue.active_jobs if job for event in job)
    except AttributeError:
        return False


def task_tab(task: str, cache: ModelCache) -> None:
    settings = cache.settings
    with gr.Tab(TASK_LABELS[task], id=task):
        gr.Markdown(REGISTRY[task].description)
        with gr.Row():
            with gr.Column():
                upload = UploadImage(
                    type="filepath", image_mode=None, label="Image to restore", format="png", elem_id=f"{task}-input"
                )
                scale = gr.Radio([2, 3, 4], value=2, label="Scale", visible=REGISTRY[task].rescales)
                with gr.Accordion("Advanced options", open=False):
                    tile = gr.Dropdown(
                        [0, 128, 192, 256, 384, 512],
                        value=REGISTRY[task].tile_size,
                        label="Tile size (0: whole image; smaller tiles use less memory)",
                    )
                    precision = gr.Radio(["auto", "float32", "bfloat16"], value="auto", label=precision_label())
                    self_ensemble = gr.Checkbox(
                        value=False,
                        label="Self-ensemble: average 8 mirrored/rotated restorations (8x the time, a little better)",
                        elem_id=f"{task}-self-ensemble",
                    )
                    strength = gr.Slider(
                        0,
                        2,
                        value=1,
                        step=0.1,
                        label="Strength: 1 automatic; lower keeps some grain; higher removes more (2: slower)",
                        visible=task == "denoising",
                        elem_id=f"{task}-strength",
                    )
                    choices = settings.models[task]
                    if REGISTRY[task].scale_checkpoints:
                        choices = [("auto: the model shipped for the scale", AUTO_MODEL), *choices]
                    model = gr.Dropdown(
                        choices,
                        value=AUTO_MODEL if REGISTRY[task].scale_checkpoints else choices[0],
                        allow_custom_value=settings.allow_hub_models,
                        label="Model (a listed one"
                        + (", or a Hub id like owner/name)" if settings.allow_hub_models else ")"),
                    )
                run = gr.Button("Restore", variant="primary", elem_id=f"{task}-run")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", format="png", type="pil", elem_id=f"{task}-slider")
                download = gr.File(label="Full-resolution result (lossless)", elem_id=f"{task}-download")
                info = gr.Markdown(elem_id=f"{task}-info")
        examples = sorted(EXAMPLES.glob(f"{task}-*.png"))
        if examples:
            gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Examples")

        def restore(
            path,
            scale_value,
            tile_value,
            precision_value,
            model_value,
            ensemble_value=False,
            strength_value=1.0,
            progress=gr.Progress(),  # noqa: B008 (Gradio's API)
        ):
            try:
                result = restore_upload(
                    cache,
                    task,
                    path,
                    scale=scale_value,
                    model_name=model_value,
                    tile_size=tile_value,
                    precision=precision_value,
                    self_ensemble=ensemble_value,
                    strength=strength_value,
                    progress=progress,
                    cancelled=request_cancelled,
                )
            except (AppError, RestorationCancelled) as error:
                raise gr.Error(str(error)) from None
            return (result.before, result.after), result.download, result.message

        run.click(
            restore,
            inputs=[upload, scale, tile, precision, model, self_ensemble, strength],
            outputs=[slider, download, info],
            api_name=REGISTRY[task].api_name,
            # One queue for all tasks and the API: MIRNET_CONCURRENCY restorations at once in the whole app.
            concurrency_id="restoration",
            concurrency_limit=settings.concurrency,
        )


def build_demo(settings: AppSettings | None = None) -> gr.Blocks:
    """The app, with its queue configured (one model load per process, bounded concurrency)."""
    settings = settings or AppSettings.from_environment()
    cache = ModelCache(settings)
    age = settings.result_max_age_seconds
    # Gradio's own copies of uploads and results go after the same age as ours (checked every age/4).
    with gr.Blocks(title="MIRNet image restoration", delete_cache=(max(60, age // 4), age)) as demo:
        gr.Markdown(
            "# MIRNet image restoration\n"
            "Compact MIRNet-v2 models trained with mirnet-hf on 432 photos: upload a photo, press "
            "Restore, compare with the slider and download the full-resolution PNG."
        )
        with gr.Tabs():
            for task in TASK_LABELS:
                task_tab(task, cache)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    demo.mirnet_settings = settings
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Launches with the upload size limit from the settings (Gradio shows the message in the page)."""
    settings: AppSettings = demo.mirnet_settings
    return demo.launch(max_file_size=f"{settings.max_upload_mb}mb", **kwargs)


demo = build_demo()

if __name__ == "__main__":
    launch(demo)
