"""The task registry: everything the package knows about each restoration task, in one entry per task.

The configuration, degradations, evaluation, training, command line, demo and app read it; adding a task
means adding an entry here (and, for synthetic training data, its degradation in `degradations.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestorationTask:
    """One task.

    Attributes:
        name: the `config.task` value.
        label: how people read it (app tabs, tables).
        description: one sentence for the app's tab.
        level_name: what a synthetic degradation's level is (`"sigma"`, `"scale"`, `"exposure"`); None for
            tasks this package has no synthetic degradation for (their data must be paired).
        evaluation_levels: the levels reported by default (super-resolution: the model's own scale).
        validation_level: the level the trainer validates at (None: the model's scale).
        y_channel: whether quality is measured on the luma (Y) channel with `scale` border pixels cropped,
            the super-resolution literature's convention; otherwise RGB.
        api_name: the app's API endpoint; None for tasks the app does not serve.
        environment_variable: the app setting naming its models.
        default_checkpoint: the shipped model folder, relative to the repository root.
        tile_size: the default tile side at inference: larger for models whose global-context blocks restore
            better when they see more of the image (low light: brightness and colour are judged per tile).
        scale_checkpoints: shipped specialists, (scale, folder) each: at that scale they restore better than
            the default model, which serves the other scales (super-resolution x3 and x4; see `checkpoint_for`).
    """

    name: str
    label: str
    description: str = ""
    level_name: str | None = None
    evaluation_levels: tuple[float, ...] = ()
    validation_level: float | None = None
    y_channel: bool = False
    api_name: str | None = None
    environment_variable: str | None = None
    default_checkpoint: str | None = None
    scale_checkpoints: tuple[tuple[int, str], ...] = ()
    tile_size: int = 256

    def checkpoint_for(self, scale: int | None = None) -> str | None:
        """The shipped model for `scale`: its specialist if one is shipped, else the default.

        Example:

        ```python
        >>> from mirnet_hf.tasks import RestorationTask
        >>> task = RestorationTask("super-resolution", "Super-resolution", level_name="scale",
        ...     default_checkpoint="checkpoints/sr", scale_checkpoints=((4, "checkpoints/sr-x4"),))
        >>> task.checkpoint_for(4), task.checkpoint_for(2), task.shipped_checkpoints
        ('checkpoints/sr-x4', 'checkpoints/sr', ['checkpoints/sr', 'checkpoints/sr-x4'])

        ```
        """
        return dict(self.scale_checkpoints).get(scale, self.default_checkpoint)

    @property
    def shipped_checkpoints(self) -> list[str]:
        """Every shipped model folder of the task, the default first."""
        return [path for path in (self.default_checkpoint, *dict(self.scale_checkpoints).values()) if path]

    @property
    def rescales(self) -> bool:
        """Whether the output is larger than the input (the level is a scale): super-resolution."""
        return self.level_name == "scale"

    def level_label(self, level: float | None) -> str:
        """`"sigma 25"`, `"x4"`, `"exposure 0.1"`; `"paired"` for paired data (no level)."""
        if level is None:
            return "paired"
        if self.level_name == "scale":
            return f"x{level:g}"
        return f"{self.level_name} {level:g}"


REGISTRY: dict[str, RestorationTask] = {
    task.name: task
    for task in (
        RestorationTask(
            name="denoising",
            label="Denoising",
            description="Removes camera noise, real grain and Gaussian noise (blind: any level up to sigma 55).",
            level_name="sigma",
            evaluation_levels=(15.0, 25.0, 50.0),
            validation_level=25.0,
            api_name="denoise",
            environment_variable="MIRNET_DENOISING_MODEL",
            # Its body runs on the image pixel-unshuffled by 2 (FFDNet's half-resolution stack): 2.3x the parameters
            # of the full-resolution mirnet-v2-small denoiser it replaced at 0.57x its multiply-accumulates, trained
            # with real-grain synthesis (training/configs/denoising_s2.yaml).
            default_checkpoint="checkpoints/mirnet-v2-medium-s2-denoising",
        ),
        RestorationTask(
            name="super-resolution",
            label="Super-resolution",
            description="Enlarges an image x2, x3 or x4 with restored detail.",
            level_name="scale",
            y_channel=True,
            api_name="super_resolve",
            environment_variable="MIRNET_SUPER_RESOLUTION_MODEL",
            # One model per scale, each running its body on the small image and enlarging with a pixel-shuffle tail
            # (training/configs/super_resolution_x*_ps.yaml): at every scale it restored better than a model on the
            # bicubic-upsampled image, in half of its time or less. The default folder holds the x2 model.
            default_checkpoint="checkpoints/mirnet-v2-medium-ps-super-resolution-x2",
            scale_checkpoints=(
                (3, "checkpoints/mirnet-v2-medium-ps-super-resolution-x3"),
                (4, "checkpoints/mirnet-v2-medium-ps-super-resolution-x4"),
            ),
        ),
        RestorationTask(
            name="low-light-enhancement",
            label="Low-light enhancement",
            description="Brightens a dark, noisy shot.",
            level_name="exposure",
            evaluation_levels=(0.1,),
            validation_level=0.1,
            api_name="enhance_low_light",
            environment_variable="MIRNET_LOW_LIGHT_MODEL",
            # Measured on 8 CBSD68 images with the v2-small model at step 2500: whole images (which tiles of 512
            # give at this size) restore 0.2-0.8 dB better than 256 tiles.
            tile_size=512,
            default_checkpoint="checkpoints/mirnet-v2-small-low-light-enhancement",
        ),
        # Tasks of the authors' released weights, which `convert` can record; trained from paired data only.
        RestorationTask(name="enhancement", label="Enhancement"),
        RestorationTask(name="defocus-deblurring", label="Defocus deblurring"),
    )
}
TASKS = tuple(REGISTRY)
SYNTHETIC_TASKS = tuple(name for name, task in REGISTRY.items() if task.level_name)  # degradations exist
SERVED_TASKS = tuple(name for name, task in REGISTRY.items() if task.api_name)  # the app's tabs


def rescales(name: str) -> bool:
    """Whether task `name` enlarges images (takes a scale); False for names not in the registry."""
    return name in REGISTRY and REGISTRY[name].rescales


def default_tile_size(name: str) -> int:
    """The inference tile side for models of task `name` (256 for tasks not in the registry)."""
    return REGISTRY[name].tile_size if name in REGISTRY else RestorationTask.tile_size


def get_task(name: str) -> RestorationTask:
    """The registry entry for `name`; a `ValueError` names the valid tasks.

    Example:

    ```python
    >>> from mirnet_hf.tasks import get_task
    >>> get_task("denoising").level_label(25)
    'sigma 25'
    >>> get_task("deblurring")
    Traceback (most recent call last):
    ...
    ValueError: task='deblurring' is not valid; choose one of ('denoising', 'super-resolution', \
'low-light-enhancement', 'enhancement', 'defocus-deblurring').

    ```
    """
    if name not in REGISTRY:
        raise ValueError(f"task={name!r} is not valid; choose one of {TASKS}.")
    return REGISTRY[name]


__all__ = [
    "REGISTRY",
    "SERVED_TASKS",
    "SYNTHETIC_TASKS",
    "TASKS",
    "RestorationTask",
    "default_tile_size",
    "get_task",
    "rescales",
]
