"""Training and evaluation data: image data sets through 🤗 `datasets`, turned into restoration patches.

A data set is a Hub id, a local folder of images (`imagefolder`; paired folders name both files in a
`metadata.csv` with `input_file_name` and `target_file_name` columns) or a folder written by
`Dataset.save_to_disk`. It is either *paired* (an input and a target image column) or *clean-only* (one image
column, degraded on the fly by `mirnet_hf.degradations`).

`RestorationPatches` yields random patches with flips, sharded across processes. Every patch is a pure function
of (seed, epoch, position), and each carries its position, so a resumed run continues exactly where the
interrupted one stopped. `PatchBatches` batches them in DataLoader worker processes: each process's share is
split into data streams (one per worker), which the DataLoader reads in turn, so the order of the batches, and a
resume, stay exact with workers too.
"""

from __future__ import annotations

import copy
import io
import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .degradations import Degradation
from .image_ops import pad_to_size, upsample_bicubic
from .image_processing_mirnet import to_rgb_array

logger = logging.getLogger(__name__)

INPUT_COLUMNS = ("input", "noisy", "degraded", "lr", "low", "source", "input_image")
TARGET_COLUMNS = ("target", "clean", "gt", "ground_truth", "hr", "high", "target_image")
IMAGE_COLUMNS = ("image", "img", "clean", "target", "hr", "picture")


def load_image_dataset(
    dataset_name: str | Path,
    split: str = "train",
    *,
    dataset_config_name: str | None = None,
    streaming: bool = False,
    cache_dir: str | None = None,
):
    """Loads one split of an image data set: a `save_to_disk` folder, a local image folder or a Hub id.

    Example:

    ```python
    >>> import tempfile
    >>> from PIL import Image
    >>> from mirnet_hf.data import load_image_dataset
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("RGB", (32, 32)).save(f"{folder}/a.png")
    >>> load_image_dataset(folder).column_names
    ['image']

    ```
    """
    import datasets

    path = Path(dataset_name)
    if path.is_dir() and any(
        (path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    ):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"split={split!r} is not in {str(path)!r}; it has: {', '.join(loaded)}.")
            loaded = loaded[split]
        return loaded.to_iterable_dataset(num_shards=max(1, min(64, len(loaded)))) if streaming else loaded
    if path.is_dir():
        return datasets.load_dataset(
            "imagefolder", data_dir=str(path), split=split, streaming=streaming, cache_dir=cache_dir
        )
    if path.exists() or str(dataset_name).startswith((".", "/")):
        raise FileNotFoundError(
            f"dataset {str(dataset_name)!r} is not a folder (a Hub id or a local folder is needed)."
        )
    try:
        return datasets.load_dataset(
            str(dataset_name), dataset_config_name, split=split, streaming=streaming, cache_dir=cache_dir
        )
    except Exception as error:  # the Hub's many failure types all mean the same to a user
        raise RuntimeError(
            f"could not load the dataset {str(dataset_name)!r} (split {split!r}) from the Hugging Face Hub: {error}. "
            "Check the id and your connection, or pass a local folder."
        ) from error


@dataclass(frozen=True)
class Columns:
    """Which columns hold the images: `input` is None for clean-only data."""

    target: str
    input: str | None = None

    @property
    def paired(self) -> bool:
        return self.input is not None


def resolve_columns(
    column_names: list[str], input_column: str | None = None, target_column: str | None = None, kind: str = "auto"
) -> Columns:
    """Picks the image columns (the given names, else the usual ones) and checks they exist.

    `kind` is "paired", "clean" or "auto" (paired when both an input and a target column are found).

    Example:

    ```python
    >>> from mirnet_hf.data import resolve_columns
    >>> resolve_columns(["noisy", "clean", "id"])
    Columns(target='clean', input='noisy')
    >>> resolve_columns(["image", "label"])
    Columns(target='image', input=None)

    ```
    """
    if kind not in ("auto", "paired", "clean"):
        raise ValueError(f"kind={kind!r} is not valid; use 'auto', 'paired' or 'clean'.")
    available = ", ".join(column_names)
    for name in (input_column, target_column):
        if name is not None and name not in column_names:
            raise ValueError(f"column {name!r} is not in the dataset; its columns are: {available}.")

    def first(candidates):
        return next((name for name in candidates if name in column_names), None)

    found_input = input_column or first(INPUT_COLUMNS)
    found_target = target_column or first([name for name in TARGET_COLUMNS if name != found_input])
    if kind == "paired" or (kind == "auto" and input_column is not None):
        if found_input is None or found_target is None:
            raise ValueError(
                "paired data needs an input and a target image column "
                f"(input: one of {', '.join(INPUT_COLUMNS)}; target: one of {', '.join(TARGET_COLUMNS)}; or "
                f"--input_column/--target_column); its columns are: {available}."
            )
        return Columns(target=found_target, input=found_input)
    if kind == "auto" and found_input is not None and found_target is not None:
        return Columns(target=found_target, input=found_input)
    image = target_column or first(IMAGE_COLUMNS)
    if image is None:
        raise ValueError(
            f"no image column found (one of {', '.join(IMAGE_COLUMNS)}, or --target_column); "
            f"its columns are: {available}."
        )
    return Columns(target=image)


def undecoded(dataset, columns: Columns):
    """The data set with its image columns left as bytes/paths, so a corrupt file can be skipped."""
    import datasets

    for name in filter(None, (columns.input, columns.target)):
        feature = (dataset.features or {}).get(name)
        if isinstance(feature, datasets.Image):
            dataset = dataset.cast_column(name, datasets.Image(decode=False))
    return dataset


def decode_image(value: Any) -> np.ndarray:
    """An RGB float32 (height, width, 3) array in [0, 1] from a data set cell (bytes/path dict, PIL image or
    path)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            value = io.BytesIO(value["bytes"])
        elif value.get("path"):
            value = value["path"]
        else:
            raise ValueError("the image cell has neither bytes nor a path")
    if isinstance(value, (str, Path, io.BytesIO)):
        with Image.open(value) as opened:
            opened.load()
            rgb, _ = to_rgb_array(opened)
    else:
        rgb, _ = to_rgb_array(value)
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        rgb = np.repeat(rgb.reshape(rgb.shape[0], rgb.shape[1], -1)[..., :1], 3, axis=-1)
    return rgb[..., :3]


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """A (channels, height, width) float tensor from an HWC array."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float()


def align_pair(input_image: torch.Tensor, target: torch.Tensor, input_scale: int = 1) -> torch.Tensor:
    """Brings a paired input to `1/input_scale` of its target's size: a low-resolution input whose target is an
    integer multiple of it is upsampled (bicubic), as the model's processor does at inference, unless the model
    takes the small image itself (`input_scale`, its own upscale), which must then be exactly that much smaller."""
    if input_scale > 1:
        expected = (target.shape[-2] // input_scale, target.shape[-1] // input_scale)
        if tuple(input_image.shape[-2:]) == expected and all(side % input_scale == 0 for side in target.shape[-2:]):
            return input_image
        raise ValueError(
            f"input {tuple(input_image.shape[-2:])} and target {tuple(target.shape[-2:])}: this model enlarges "
            f"x{input_scale} itself, so the target must be exactly {input_scale} times the input"
        )
    if input_image.shape[-2:] == target.shape[-2:]:
        return input_image
    scale = target.shape[-2] // max(1, input_image.shape[-2])
    if scale > 1 and tuple(target.shape[-2:]) == (input_image.shape[-2] * scale, input_image.shape[-1] * scale):
        return upsample_bicubic(input_image, scale)
    raise ValueError(
        f"input {tuple(input_image.shape[-2:])} and target {tuple(target.shape[-2:])} differ in size and the "
        "target is not an integer multiple of the input"
    )


class RestorationPatches(torch.utils.data.IterableDataset):
    """Random (input, target) patches from an image data set, endless, sharded across processes.

    Args:
        dataset: a `datasets.Dataset` or `datasets.IterableDataset` (streaming).
        columns: the image columns (`resolve_columns`).
        degradation: how to make inputs for clean-only data (None for paired data).
        patch_size: side of the square patches (default 128, the paper's).
        flips: random horizontal and vertical flips.
        small_images: "pad" (reflect) or "skip" images smaller than a patch; both are counted in `counts`.
        seed, rank, world_size: each process reads its own share; the same seed gives the same patches.
        input_scale: how much the model enlarges by itself (1: inputs at the target's size). Above 1, the
            inputs are `1/input_scale` of the patch: made small by the degradation for clean data, cut at the
            matching place of a paired small input (patch corners then fall on multiples of the scale).

    Each item is a dict with `pixel_values` (input), `labels` (target), `position` ((epoch, index) of the
    example in this process's share) and `example` ((epoch, row): its row in the data set, -1 when
    streaming), and `start_after(position)` resumes right after a consumed item.
    `stream_items(stream, num_streams, start)` yields the items of one of `num_streams` interleaved parts of
    the share (examples whose index is `stream` modulo `num_streams`): the unit a DataLoader worker reads.

    Example:

    ```python
    >>> import datasets, numpy as np
    >>> from PIL import Image
    >>> from mirnet_hf.data import Columns, RestorationPatches
    >>> from mirnet_hf.degradations import Degradation
    >>> images = [Image.fromarray(np.full((40, 40, 3), 128, np.uint8))] * 3
    >>> data = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    >>> patches = RestorationPatches(data, Columns("image"), Degradation("denoising"), patch_size=32)
    >>> item = next(iter(patches))
    >>> tuple(item["pixel_values"].shape), tuple(item["labels"].shape)
    ((3, 32, 32), (3, 32, 32))

    ```
    """

    def __init__(
        self,
        dataset,
        columns: Columns,
        degradation: Degradation | None = None,
        *,
        patch_size: int = 128,
        flips: bool = True,
        small_images: str = "pad",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer_size: int = 1000,
        input_scale: int = 1,
    ):
        if not columns.paired and degradation is None:
            raise ValueError("clean-only data needs a degradation (the task) to make its inputs.")
        if small_images not in ("pad", "skip"):
            raise ValueError(f"small_images={small_images!r} is not valid; use 'pad' or 'skip'.")
        multiple = degradation.size_multiple if degradation is not None and not columns.paired else 1
        multiple = math.lcm(multiple, input_scale)
        if patch_size < 8 or patch_size % multiple:
            raise ValueError(
                f"patch_size={patch_size!r} is not valid; it must be at least 8 and a multiple of {multiple}."
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} is not valid for world_size={world_size}.")
        self.dataset = undecoded(dataset, columns)
        self.columns, self.degradation = columns, degradation
        self.patch_size, self.flips, self.small_images = patch_size, flips, small_images
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.shuffle_buffer_size = shuffle_buffer_size
        self.input_scale = input_scale
        self.start = (0, 0)
        self.counts: Counter = Counter()

    def start_after(self, position: tuple[int, int] | None) -> None:
        """Resume after the example at `position` (the last item consumed), or from the start for None."""
        self.start = (0, 0) if position is None else (int(position[0]), int(position[1]) + 1)

    @property
    def streaming(self) -> bool:
        import datasets

        return isinstance(self.dataset, datasets.IterableDataset)

    def _epoch_examples(self, epoch: int, skip: int, stream: int = 0, num_streams: int = 1) -> Iterator[tuple]:
        """(index, row, example) of this process's share of an epoch from index `skip` on, for one data stream;
        `row` is the example's row in the data set (-1 when streaming)."""
        if self.streaming:
            from datasets.distributed import split_dataset_by_node

            shuffled = self.dataset.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer_size)
            shuffled.set_epoch(epoch)
            shuffled = split_dataset_by_node(shuffled, rank=self.rank, world_size=self.world_size)
            # `iter` rather than a plain loop: inside a DataLoader worker, a plain loop would let `datasets`
            # hand each worker its own shards, and the stream would depend on the shard count.
            for index, rows in enumerate(shuffled.iter(batch_size=1)):
                if index >= skip and index % num_streams == stream:
                    yield index, -1, {name: values[0] for name, values in rows.items()}
            return
        count = len(self.dataset)
        if count < self.world_size:
            raise ValueError(f"the dataset has {count} images, fewer than the {self.world_size} processes.")
        order = np.random.default_rng([self.seed, epoch]).permutation(count)
        # Every process gets the same number of examples per epoch, so they stay in step.
        mine = order[: count - count % self.world_size][self.rank :: self.world_size]
        for index in range(skip, len(mine)):
            if index % num_streams == stream:
                yield index, int(mine[index]), self.dataset[int(mine[index])]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.stream_items(0, 1, self.start)

    def stream_items(
        self, stream: int, num_streams: int, start: tuple[int, int] = (0, 0)
    ) -> Iterator[dict[str, torch.Tensor]]:
        """The endless items of data stream `stream` of `num_streams`, from `start` ((epoch, index)) on."""
        if not 0 <= stream < num_streams:
            raise ValueError(f"stream={stream} is not valid for num_streams={num_streams}.")
        epoch, skip = start
        while True:
            produced = False
            for index, row, example in self._epoch_examples(epoch, skip, stream, num_streams):
                item = self.make_item(example, epoch, index)
                if item is not None:
                    produced = True
                    yield {**item, "example": torch.tensor([epoch, row])}
            if not produced and skip == 0:
                raise RuntimeError(
                    f"no usable image in an epoch of the data set (skipped: {dict(self.counts)}); check the data, "
                    "or use small_images='pad'."
                )
            epoch, skip = epoch + 1, 0

    def make_item(self, example: dict, epoch: int, index: int) -> dict[str, torch.Tensor] | None:
        """The patch of one example (None when it is skipped)."""
        generator = torch.Generator().manual_seed(
            int(np.random.default_rng([self.seed, epoch, self.rank, index]).integers(2**62))
        )
        try:
            target = to_tensor(decode_image(example[self.columns.target]))
            source = to_tensor(decode_image(example[self.columns.input])) if self.columns.paired else None
            if source is not None:
                source = align_pair(source, target, self.input_scale)
        except Exception as error:
            self.counts["corrupt"] += 1
            logger.warning("skipping an unreadable example (epoch %d, index %d): %s", epoch, index, error)
            return None
        size, scale = self.patch_size, self.input_scale  # a paired source is 1/scale of its target
        height, width = target.shape[-2:]
        if height < size or width < size:
            if self.small_images == "skip":
                self.counts["skipped_small"] += 1
                return None
            self.counts["padded_small"] += 1
            padded = (max(height, size), max(width, size))
            target = pad_to_size(target, *padded)
            source = None if source is None else pad_to_size(source, padded[0] // scale, padded[1] // scale)
            height, width = target.shape[-2:]
        # Corners on multiples of the scale, so the small input's patch covers exactly the target's.
        top = scale * int(torch.randint((height - size) // scale + 1, (), generator=generator))
        left = scale * int(torch.randint((width - size) // scale + 1, (), generator=generator))
        target = target[:, top : top + size, left : left + size]
        if source is not None:
            source = source[:, top // scale : (top + size) // scale, left // scale : (left + size) // scale]
        if self.flips:
            flip_width = bool(torch.rand((), generator=generator) < 0.5)
            flip_height = bool(torch.rand((), generator=generator) < 0.5)
            dims = [dim for dim, flip in ((-1, flip_width), (-2, flip_height)) if flip]
            if dims:
                target = target.flip(dims)
                source = source.flip(dims) if source is not None else None
        if source is None:
            source = self.degradation.apply(target, generator)
        return {
            "pixel_values": source.contiguous(),
            "labels": target.contiguous(),
            "position": torch.tensor([epoch, index]),
        }


COUNT_NAMES = ("corrupt", "skipped_small", "padded_small")


class PatchBatches(torch.utils.data.IterableDataset):
    """Batches of `RestorationPatches`, made in DataLoader worker processes, in an order that does not depend on
    timing, so that a resumed run sees exactly the batches of an uninterrupted one.

    The process's share of the data is split into `num_streams` data streams. Batch k comes from stream
    `(first_stream + k) % num_streams`: a DataLoader with `num_workers == num_streams` asks its workers in turn
    (worker w reads stream `(first_stream + w) % num_streams`), and without workers the streams are read in turn
    in this process, giving the same batches.

    Each batch holds `pixel_values`, `labels`, its `stream`, the `position` ((epoch, index)) of its last example,
    the `examples` it was cut from ((epoch, row) each) and the stream's cumulative `counts` of corrupt,
    skipped and padded images (see `COUNT_NAMES`).

    Example:

    ```python
    >>> import datasets, numpy as np, torch
    >>> from PIL import Image
    >>> from mirnet_hf.data import Columns, PatchBatches, RestorationPatches
    >>> from mirnet_hf.degradations import Degradation
    >>> images = [Image.fromarray(np.full((40, 40, 3), 9 * i, np.uint8)) for i in range(6)]
    >>> data = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    >>> patches = RestorationPatches(data, Columns("image"), Degradation("denoising"), patch_size=32)
    >>> batches = PatchBatches(patches, batch_size=2, num_streams=2)
    >>> loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=0)
    >>> [int(batch["stream"]) for batch, _ in zip(loader, range(4))]
    [0, 1, 0, 1]

    ```
    """

    def __init__(
        self,
        patches: RestorationPatches,
        batch_size: int,
        *,
        num_streams: int = 1,
        starts: list[tuple[int, int]] | None = None,
        first_stream: int = 0,
    ):
        if batch_size < 1 or num_streams < 1:
            raise ValueError(f"batch_size={batch_size} and num_streams={num_streams} must be at least 1.")
        starts = [(0, 0)] * num_streams if starts is None else [tuple(map(int, start)) for start in starts]
        if len(starts) != num_streams:
            raise ValueError(f"{len(starts)} start positions given for {num_streams} data streams.")
        self.patches, self.batch_size, self.num_streams = patches, batch_size, num_streams
        self.starts, self.first_stream = starts, first_stream % num_streams

    def _batches(self, stream: int) -> Iterator[dict[str, torch.Tensor]]:
        patches = copy.copy(self.patches)  # each stream counts its own skipped and padded images
        patches.counts = Counter()
        items = patches.stream_items(stream, self.num_streams, self.starts[stream])
        while True:
            chunk = [next(items) for _ in range(self.batch_size)]
            counts = [patches.counts[name] for name in COUNT_NAMES]
            yield {
                "pixel_values": torch.stack([item["pixel_values"] for item in chunk]),
                "labels": torch.stack([item["labels"] for item in chunk]),
                "stream": torch.tensor(stream),
                "position": chunk[-1]["position"],
                "examples": torch.stack([item["example"] for item in chunk]),
                "counts": torch.tensor(counts),
            }

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = torch.utils.data.get_worker_info()
        if worker is not None:
            if worker.num_workers != self.num_streams:
                raise RuntimeError(f"{worker.num_workers} DataLoader workers for {self.num_streams} data streams.")
            yield from self._batches((self.first_stream + worker.id) % self.num_streams)
            return
        streams = [self._batches((self.first_stream + k) % self.num_streams) for k in range(self.num_streams)]
        while True:
            for batches in streams:
                yield next(batches)


__all__ = [
    "PatchBatches",
    "COUNT_NAMES",
    "load_image_dataset",
    "resolve_columns",
    "Columns",
    "RestorationPatches",
    "decode_image",
    "align_pair",
    "undecoded",
]
