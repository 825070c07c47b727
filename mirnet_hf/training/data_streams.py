"""Where a process's training batches come from, and how far it has read: what an exact resume needs."""

from __future__ import annotations

import signal

import torch

from ..data import COUNT_NAMES, PatchBatches, RestorationPatches


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM and SIGINT to the main process, which saves a checkpoint and exits:
    Ctrl-C and job schedulers signal the whole process group, and a worker killed by the signal would make
    the DataLoader raise before the checkpoint is written."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class DataStreams:
    """This process's batches, read in turn from `num_streams` data streams (one per DataLoader worker, or
    one read in this process), and the position of each: batches read, and the last (epoch, index) each
    stream gave. `position()` and `restore()` carry that through a checkpoint, so a resumed run reads exactly
    the batches an uninterrupted one would.

    Example:

    ```python
    >>> import datasets, numpy as np
    >>> from PIL import Image
    >>> from mirnet_hf.data import Columns, RestorationPatches
    >>> from mirnet_hf.degradations import Degradation
    >>> from mirnet_hf.training.data_streams import DataStreams
    >>> images = [Image.fromarray(np.full((40, 40, 3), 9 * i, np.uint8)) for i in range(4)]
    >>> data = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    >>> patches = RestorationPatches(data, Columns("image"), Degradation("denoising"), patch_size=32)
    >>> streams = DataStreams(patches, batch_size=2, num_workers=0)
    >>> batches = iter(streams.loader())
    >>> tuple(streams.read(batches)["pixel_values"].shape), streams.position()
    ((2, 3, 32, 32), [1, 0, 1])

    ```
    """

    def __init__(self, patches: RestorationPatches, batch_size: int, num_workers: int, pin_memory: bool = False):
        self.patches, self.batch_size = patches, batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.num_streams = max(1, num_workers)
        self.batches_read = 0
        self.stream_positions = [(0, -1)] * self.num_streams  # (0, -1): nothing read yet
        self.stream_counts = [[0] * len(COUNT_NAMES) for _ in range(self.num_streams)]

    def loader(self) -> torch.utils.data.DataLoader:
        """Batches from worker processes, continuing after the last example each data stream gave."""
        batches = PatchBatches(
            self.patches,
            self.batch_size,
            num_streams=self.num_streams,
            starts=[(epoch, index + 1) for epoch, index in self.stream_positions],
            first_stream=self.batches_read,
        )
        return torch.utils.data.DataLoader(
            batches,
            batch_size=None,
            num_workers=self.num_workers,
            prefetch_factor=2 if self.num_workers else None,
            worker_init_fn=ignore_stop_signals if self.num_workers else None,
            pin_memory=self.pin_memory,
        )

    def read(self, batches) -> dict[str, torch.Tensor]:
        """The next batch of a `loader()` iterator, recording where its data stream stands."""
        batch = next(batches)
        stream = int(batch["stream"])
        self.stream_positions[stream] = tuple(batch["position"].tolist())
        self.stream_counts[stream] = batch["counts"].tolist()
        self.batches_read += 1
        return batch

    def position(self) -> list[int]:
        """`[batches read, epoch, index, epoch, index, ...]`: one (epoch, index) per stream."""
        return [self.batches_read, *(value for position in self.stream_positions for value in position)]

    def restore(self, position: list[int], source: str) -> None:
        """Continues from a `position()` saved in `source` (a checkpoint), which must have as many streams."""
        if len(position) != 1 + 2 * self.num_streams:
            saved = max(1, (len(position) - 1) // 2)
            workers = str(saved) if saved > 1 else "0 or 1"
            raise RuntimeError(
                f"{source} was saved with {saved} data stream(s) (--dataloader_num_workers {workers}); resume it "
                f"with the same number of workers (now {self.num_workers})."
            )
        self.batches_read = int(position[0])
        self.stream_positions = [tuple(position[1 + 2 * k : 3 + 2 * k]) for k in range(self.num_streams)]

    def counts(self) -> dict[str, int]:
        """Corrupt, skipped and padded images met so far (the non-zero ones)."""
        totals = [sum(counts[k] for counts in self.stream_counts) for k in range(len(COUNT_NAMES))]
        return {name: total for name, total in zip(COUNT_NAMES, totals) if total}


__all__ = ["DataStreams", "ignore_stop_signals"]
