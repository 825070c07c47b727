import csv
import io

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_image_folder, photo_crops
from mirnet_hf.data import Columns, PatchBatches, RestorationPatches, load_image_dataset, resolve_columns
from mirnet_hf.degradations import Degradation


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("clean"), photo_crops(6))


@pytest.fixture(scope="module")
def paired_folder(tmp_path_factory):
    """A local paired data set: noisy/clean PNGs named in metadata.csv (imagefolder's multi-image layout)."""
    folder = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    with open(folder / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input_file_name", "target_file_name", "scene"])
        for index, clean in enumerate(photo_crops(4)):
            noisy = np.clip(np.asarray(clean, np.float32) + rng.normal(0, 20, (48, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(folder / f"noisy{index}.png")
            clean.save(folder / f"clean{index}.png")
            writer.writerow([f"noisy{index}.png", f"clean{index}.png", index])
    return folder


def collect(patches, count):
    iterator = iter(patches)
    return [next(iterator) for _ in range(count)]


def test_clean_image_folder_gives_degraded_patches(clean_folder):
    dataset = load_image_dataset(clean_folder)
    columns = resolve_columns(dataset.column_names)
    assert columns == Columns("image")
    patches = RestorationPatches(dataset, columns, Degradation("denoising", sigma_range=(25, 25)), patch_size=32)
    items = collect(patches, 8)
    for item in items:
        assert item["pixel_values"].shape == item["labels"].shape == (3, 32, 32)
        assert 20 < float((item["pixel_values"] - item["labels"]).std()) * 255 < 30
    # 6 images per epoch: the 7th item starts epoch 1.
    assert [tuple(item["position"].tolist()) for item in items][5:7] == [(0, 5), (1, 0)]


def test_paired_folder_from_metadata(paired_folder):
    dataset = load_image_dataset(paired_folder)
    columns = resolve_columns(dataset.column_names)
    assert columns == Columns(target="target", input="input")
    item = next(iter(RestorationPatches(dataset, columns, patch_size=32, flips=False)))
    difference = (item["pixel_values"] - item["labels"]).std() * 255
    assert 15 < float(difference) < 25  # the stored noise, not a synthetic one


def test_save_to_disk_folder_and_streaming_give_the_same_kind_of_patches(tmp_path, clean_folder):
    images = [Image.open(path).convert("RGB") for path in sorted(clean_folder.glob("*.png"))]
    dataset = datasets.Dataset.from_dict({"photo": images}).cast_column("photo", datasets.Image())
    dataset.train_test_split(test_size=2, seed=0).save_to_disk(tmp_path / "saved")
    loaded = load_image_dataset(tmp_path / "saved", "test")
    assert len(loaded) == 2
    with pytest.raises(ValueError, match="split='validation' is not in .*it has: train, test"):
        load_image_dataset(tmp_path / "saved", "validation")
    streamed = load_image_dataset(tmp_path / "saved", "train", streaming=True)
    assert isinstance(streamed, datasets.IterableDataset)
    columns = resolve_columns(list(streamed.column_names), target_column="photo")
    items = collect(RestorationPatches(streamed, columns, Degradation("low-light-enhancement"), patch_size=16), 6)
    assert all(item["labels"].shape == (3, 16, 16) for item in items)
    assert all(float(item["pixel_values"].mean()) < float(item["labels"].mean()) for item in items)


def test_streaming_is_sharded_across_processes(tmp_path):
    images = [Image.fromarray(np.full((20, 20, 3), value, np.uint8)) for value in range(0, 240, 20)]
    dataset = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    dataset.save_to_disk(tmp_path / "saved")
    streamed = load_image_dataset(tmp_path / "saved", streaming=True)
    seen = []
    for rank in range(2):
        patches = RestorationPatches(
            streamed,
            Columns("image"),
            Degradation("denoising", sigma_range=(0, 0)),
            patch_size=16,
            rank=rank,
            world_size=2,
            flips=False,
        )
        seen.append({round(float(item["labels"].mean()) * 255) for item in collect(patches, 6)})
    assert len(seen[0]) == len(seen[1]) == 6
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(0, 240, 20))


def test_processes_get_disjoint_shares_of_an_epoch(clean_folder):
    dataset = load_image_dataset(clean_folder)
    degradation = Degradation("denoising")
    means = []
    for rank in range(2):
        patches = RestorationPatches(dataset, Columns("image"), degradation, patch_size=48, rank=rank, world_size=2)
        means.append({round(float(item["labels"].sum()), 2) for item in collect(patches, 3)})
    assert len(means[0]) == len(means[1]) == 3 and not means[0] & means[1]


def test_resuming_after_a_position_continues_the_same_stream(clean_folder):
    dataset = load_image_dataset(clean_folder)
    degradation = Degradation("denoising")
    uninterrupted = collect(RestorationPatches(dataset, Columns("image"), degradation, patch_size=32, seed=5), 10)
    resumed = RestorationPatches(dataset, Columns("image"), degradation, patch_size=32, seed=5)
    resumed.start_after(uninterrupted[6]["position"].tolist())
    for expected, item in zip(uninterrupted[7:], collect(resumed, 3)):
        assert torch.equal(expected["pixel_values"], item["pixel_values"])
        assert torch.equal(expected["position"], item["position"])


def batches_from(patches, count, num_workers, num_streams, starts=None, first_stream=0):
    batches = PatchBatches(patches, 3, num_streams=num_streams, starts=starts, first_stream=first_stream)
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, num_workers=num_workers, prefetch_factor=2 if num_workers else None
    )
    return [batch for batch, _ in zip(loader, range(count))]


@pytest.mark.parametrize("streaming", [False, True])
def test_worker_processes_give_the_batches_of_in_process_reading(clean_folder, streaming):
    dataset = load_image_dataset(clean_folder, streaming=streaming)
    patches = RestorationPatches(dataset, Columns("image"), Degradation("denoising"), patch_size=32, seed=3)
    in_process = batches_from(patches, 6, num_workers=0, num_streams=2)
    with_workers = batches_from(patches, 6, num_workers=2, num_streams=2)
    assert [int(batch["stream"]) for batch in with_workers] == [0, 1, 0, 1, 0, 1]
    for expected, batch in zip(in_process, with_workers):
        assert torch.equal(expected["pixel_values"], batch["pixel_values"])
        assert torch.equal(expected["position"], batch["position"])
    # Each stream reads every other example of the epoch (6 images): stream 0 the even ones.
    assert [batch["position"].tolist() for batch in with_workers[:4]] == [[0, 4], [0, 5], [1, 4], [1, 5]]
    # All the examples of an epoch are read once: 6 images, batches of 3 from two streams.
    assert len({tuple(batch["labels"].sum(dim=(1, 2, 3)).round(decimals=3).tolist()) for batch in in_process}) == 6


def test_batches_resume_after_each_streams_last_example(clean_folder):
    dataset = load_image_dataset(clean_folder)
    patches = RestorationPatches(dataset, Columns("image"), Degradation("denoising"), patch_size=32, seed=4)
    uninterrupted = batches_from(patches, 7, num_workers=2, num_streams=2)
    # Stopped after 3 batches: stream 0 gave batches 0 and 2, stream 1 batch 1; stream 1 reads next.
    starts = [(epoch, index + 1) for epoch, index in (uninterrupted[2]["position"], uninterrupted[1]["position"])]
    resumed = batches_from(patches, 4, num_workers=2, num_streams=2, starts=starts, first_stream=3)
    assert [int(batch["stream"]) for batch in resumed] == [1, 0, 1, 0]
    for expected, batch in zip(uninterrupted[3:], resumed):
        assert torch.equal(expected["pixel_values"], batch["pixel_values"])
    with pytest.raises(ValueError, match="3 start positions given for 2 data streams"):
        PatchBatches(patches, 2, num_streams=2, starts=[(0, 0)] * 3)


def test_corrupt_images_are_skipped_and_counted(tmp_path, caplog):
    good = io.BytesIO()
    photo_crops(1)[0].save(good, "PNG")
    cells = [{"bytes": good.getvalue(), "path": "good.png"}, {"bytes": good.getvalue()[:200], "path": "cut.png"}]
    dataset = datasets.Dataset.from_dict({"image": cells}).cast_column("image", datasets.Image())
    patches = RestorationPatches(dataset, Columns("image"), Degradation("denoising"), patch_size=32, seed=1)
    items = collect(patches, 3)
    assert len(items) == 3
    assert patches.counts["corrupt"] >= 1
    assert "unreadable" in caplog.text


def test_small_images_are_padded_or_skipped_and_counted():
    images = [Image.fromarray(np.full((20, 30, 3), 100, np.uint8)), photo_crops(1, size=(64, 64))[0]]
    dataset = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    padded = RestorationPatches(dataset, Columns("image"), Degradation("denoising"), patch_size=48)
    assert all(item["labels"].shape == (3, 48, 48) for item in collect(padded, 4))
    assert padded.counts["padded_small"] >= 1
    skipped = RestorationPatches(
        dataset, Columns("image"), Degradation("denoising"), patch_size=48, small_images="skip"
    )
    items = collect(skipped, 4)
    assert skipped.counts["skipped_small"] >= 1
    assert all(float(item["labels"].std()) > 0.01 for item in items)  # only the photo remains


def test_column_errors_name_the_columns_that_exist():
    with pytest.raises(ValueError, match="column 'noisy' is not in the dataset; its columns are: photo, label"):
        resolve_columns(["photo", "label"], input_column="noisy")
    with pytest.raises(ValueError, match="no image column found.*its columns are: caption, label"):
        resolve_columns(["caption", "label"])
    with pytest.raises(ValueError, match="paired data needs an input and a target.*its columns are: image"):
        resolve_columns(["image"], kind="paired")
    assert resolve_columns(["lr", "hr"]) == Columns(target="hr", input="lr")


def test_settings_are_checked(clean_folder):
    dataset = load_image_dataset(clean_folder)
    with pytest.raises(ValueError, match="clean-only data needs a degradation"):
        RestorationPatches(dataset, Columns("image"))
    with pytest.raises(ValueError, match="patch_size=64 is not valid.*multiple of 12"):
        RestorationPatches(dataset, Columns("image"), Degradation("super-resolution", scales=(2, 3, 4)), patch_size=64)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_image_dataset("./no/such/folder")


def test_each_data_stream_counts_its_own_padded_images(tmp_path):
    images = [Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)) for i in range(4)]
    dataset = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    patches = RestorationPatches(dataset, Columns("image"), Degradation("denoising"), patch_size=32)
    batches = batches_from(patches, 4, num_workers=0, num_streams=2)
    # Batches of 3 from streams of 2 images per epoch: after 4 batches each stream padded 6 images.
    assert [batch["counts"].tolist()[2] for batch in batches] == [3, 3, 6, 6]
