"""The inference stages: size-ordered batches, a loader, a writer thread — same outputs as
computing image by image, and a failing writer that stops the stage without a trace."""

import threading

import numpy as np
import pytest
import torch

from i2crc_core.data import loading
from i2crc_core.data.datasets import ImageDataset
from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.camstore import CamStore
from i2crc_core.infra.errors import CamStoreError, ConfigError, DatasetError
from i2crc_core.infra.fileio import read_label, write_image
from i2crc_core.nets.cams import compute_cams_batch
from i2crc_core.nets.checkpoints import save_model
from i2crc_core.nets.inference import (
    BATCH_PIXELS,
    BackgroundWriter,
    off_heap,
    predict_labels,
    size_ordered_batches,
)
from i2crc_core.nets.models import build_classifier, build_segmenter
from i2crc_core.stages import extract_cams, predict

SIZES = [(40, 56), (56, 40), (48, 48)]
NUM_CLASSES = 4


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """10 images of 3 sizes in interleaved order, a manifest and two saved models."""
    root = tmp_path_factory.mktemp("voc")
    rng = np.random.default_rng(0)
    ids = [f"img {index}" for index in range(10)]
    for index, image_id in enumerate(ids):
        height, width = SIZES[index % 3]
        write_image(
            root / "JPEGImages" / f"{image_id}.jpg",
            rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        )
    labels = {
        i: [1 + n % NUM_CLASSES] + ([4] if n % 4 == 0 and n % NUM_CLASSES != 3 else [])
        for n, i in enumerate(ids)
    }
    Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=NUM_CLASSES,
        class_names=["a", "b", "c", "d"],
        ids={"train": ids, "val": ids},
        image_labels={"train": labels, "val": labels},
    ).save(root / "manifest.json")
    torch.manual_seed(0)
    classifier, segmenter = (
        build_classifier("small", NUM_CLASSES),
        build_segmenter("small", NUM_CLASSES),
    )
    save_model(root / "classifier.pt", classifier)
    save_model(root / "segmenter.pt", segmenter)
    manifest = Manifest.load(root / "manifest.json")
    return root, manifest, classifier.eval(), segmenter.eval()


def image(manifest, image_id):
    return ImageDataset(manifest.layout(), [image_id])[0]["image"][None]


def test_size_ordered_batches_group_equal_sizes_and_cover_every_index_once():
    sizes = [SIZES[i % 3] for i in range(10)]
    batches = size_ordered_batches(sizes, 3 * 48 * 48)
    assert sorted(i for batch in batches for i in batch) == list(range(10))
    assert all(len({sizes[i] for i in batch}) == 1 and len(batch) <= 3 for batch in batches)
    assert len(batches) == 4, "4 images of one size need 2 batches, 3 of the others 1 each"
    assert len(size_ordered_batches(sizes, 1)) == 10, "an image larger than the budget goes alone"


@pytest.mark.parametrize("images", [1, 16], ids=["one-image-batches", "gpu-size-batches"])
def test_extract_cams_equals_cams_computed_image_by_image(tmp_path, layout, images, monkeypatch):
    monkeypatch.setitem(BATCH_PIXELS, "cpu", images * 56 * 40)
    root, manifest, classifier, _ = layout
    out = tmp_path / "cams.h5"
    extract_cams.run(
        manifest_path=root / "manifest.json",
        model_path=root / "classifier.pt",
        out_path=out,
        shard="1-of-1",
        input_size=None,
        scales=[1.0, 0.5],
        flip=True,
        normalise="image",
        device="cpu",
        precision="fp32",
        threads=2,
    )
    labels = manifest.labels("train")
    with CamStore(out) as store:
        assert store.ids == sorted(manifest.ids["train"])
        for image_id in manifest.ids["train"]:
            expected = compute_cams_batch(
                classifier,
                image(manifest, image_id),
                [labels[image_id]],
                scales=[1.0, 0.5],
                flip=True,
                normalise="image",
            )[0]
            cams, class_ids = store[image_id]
            assert class_ids.tolist() == list(labels[image_id])
            np.testing.assert_allclose(cams, expected, atol=1e-3)  # stored as float16


def test_extract_cams_warped_to_the_input_size_come_back_at_each_images_size(tmp_path, layout):
    """cams.input_size and cams.normalise "attention" (the authors' extraction): each image
    warped to 24 x 24, its maps made at its own size, as one image at a time gives them."""
    root, manifest, classifier, _ = layout
    out = tmp_path / "cams.h5"
    extract_cams.run(
        manifest_path=root / "manifest.json",
        model_path=root / "classifier.pt",
        out_path=out,
        shard="1-of-1",
        input_size=24,
        scales=[1.0],
        flip=False,
        normalise="attention",
        device="cpu",
        precision="fp32",
        threads=1,
    )
    labels, layout_ = manifest.labels("train"), manifest.layout()
    with CamStore(out) as store:
        for image_id in manifest.ids["train"]:
            sample = ImageDataset(layout_, [image_id], input_size=24)[0]
            expected = compute_cams_batch(
                classifier,
                sample["image"][None],
                [labels[image_id]],
                normalise="attention",
                sizes=[sample["size"]],
            )[0]
            cams, _ = store[image_id]
            assert cams.shape[1:] == layout_.image_size(image_id) == sample["size"]
            np.testing.assert_allclose(cams, expected, atol=1e-3)  # stored as float16


@pytest.mark.parametrize("fusion", ["image", "logits"])
def test_predict_writes_the_labels_of_image_by_image_prediction(tmp_path, layout, fusion):
    root, manifest, _, segmenter = layout
    predict.run(
        manifest_path=root / "manifest.json",
        model_path=root / "segmenter.pt",
        split="val",
        out_dir=tmp_path / "pred",
        scales=[1.0, 0.75],
        fusion=fusion,
        crf=None,
        device="cpu",
        precision="fp32",
        threads=2,
    )
    other = {"image": "logits", "logits": "image"}[fusion]
    differ = 0
    for image_id in manifest.ids["val"]:
        images = image(manifest, image_id)
        expected = predict_labels(segmenter, images, [1.0, 0.75], fusion=fusion)[0]
        written = read_label(tmp_path / "pred" / f"{image_id}.png", NUM_CLASSES)
        assert np.array_equal(written, expected)
        differ += not np.array_equal(
            written, predict_labels(segmenter, images, [1.0, 0.75], fusion=other)[0]
        )
    assert differ, "the two fusions label these images differently: the stage used its own"


def test_a_scale_that_shrinks_an_image_below_the_output_stride_is_a_config_error(tmp_path, layout):
    root, _, _, _ = layout
    with pytest.raises(ConfigError) as raised:
        extract_cams.run(
            manifest_path=root / "manifest.json",
            model_path=root / "classifier.pt",
            out_path=tmp_path / "cams.h5",
            shard="1-of-1",
            input_size=None,
            scales=[1.0, 0.001],
            flip=False,
            normalise="image",
            device="cpu",
            precision="fp32",
            threads=1,
        )
    image_path = root / "JPEGImages" / "img 0.jpg"
    assert str(raised.value) == (
        f"config key 'cams.scales': scale 0.001 makes the 40-pixel side "
        f"of {image_path} 0 pixels, fewer than the networks' output "
        "stride of 8"
    )
    # 6 pixels: the small backbone would still run, VGG-16's poolings would fail
    with pytest.raises(ConfigError) as raised:
        predict.run(
            manifest_path=root / "manifest.json",
            model_path=root / "segmenter.pt",
            split="val",
            out_dir=tmp_path / "pred",
            scales=[0.15, 1.0],
            fusion="image",
            crf=None,
            device="cpu",
            precision="fp32",
            threads=1,
        )
    assert str(raised.value).startswith(
        "config key 'segmentation.inference_scales': scale 0.15 "
        f"makes the 40-pixel side of {image_path} 6 pixels"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_a_failing_write_stops_the_stage_and_leaves_no_store(tmp_path, layout, monkeypatch):
    root, _, _, _ = layout
    calls = []

    def failing_write(self, image_id, cams, class_ids):
        calls.append(threading.current_thread().name)
        raise CamStoreError(f"{self.path}: disk full (simulated)")

    monkeypatch.setattr("i2crc_core.infra.camstore.CamStoreWriter.write", failing_write)
    out = tmp_path / "cams.h5"
    with pytest.raises(CamStoreError, match="disk full"):
        extract_cams.run(
            manifest_path=root / "manifest.json",
            model_path=root / "classifier.pt",
            out_path=out,
            shard="1-of-1",
            input_size=None,
            scales=[1.0],
            flip=False,
            normalise="image",
            device="cpu",
            precision="fp32",
            threads=1,
        )
    assert calls[0] == "output-writer", "writes happen off the compute thread"
    assert not out.exists() and list(tmp_path.iterdir()) == [], "nothing half-written left"


@pytest.mark.timeout(60)
def test_a_corrupt_image_in_a_loader_worker_is_a_one_line_user_error(tmp_path, layout, monkeypatch):
    """On CUDA images are decoded in worker processes, whose errors the DataLoader re-raises
    with the worker's traceback in the message; forced here on the CPU."""
    root, _, _, _ = layout
    loader = loading.DataLoader
    monkeypatch.setattr(
        loading,
        "DataLoader",
        lambda *args, **options: loader(*args, **{**options, "num_workers": 2}),
    )
    rng = np.random.default_rng(1)
    ids = ["a", "b", "c"]
    for image_id in ids:
        write_image(
            tmp_path / "voc" / "JPEGImages" / f"{image_id}.jpg",
            rng.integers(0, 256, (40, 56, 3), dtype=np.uint8),
        )
    broken = tmp_path / "voc" / "JPEGImages" / "b.jpg"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size * 2 // 3])  # header intact
    Manifest(
        root=str(tmp_path / "voc"),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=NUM_CLASSES,
        class_names=["a", "b", "c", "d"],
        ids={"train": ids},
        image_labels={"train": {i: [1] for i in ids}},
    ).save(tmp_path / "manifest.json")
    out = tmp_path / "cams.h5"
    with pytest.raises(DatasetError, match="b.jpg: image file is unreadable") as raised:
        extract_cams.run(
            manifest_path=tmp_path / "manifest.json",
            model_path=root / "classifier.pt",
            out_path=out,
            shard="1-of-1",
            input_size=None,
            scales=[1.0],
            flip=False,
            normalise="image",
            device="cpu",
            precision="fp32",
            threads=2,
        )
    assert len(str(raised.value).splitlines()) == 1
    assert not out.exists()


@pytest.mark.timeout(30)
def test_background_writer_raises_the_writers_error_and_never_blocks():
    def write(item):
        raise ValueError(f"bad item {item}")

    with pytest.raises(ValueError, match="bad item 0"):
        with BackgroundWriter(write) as writer:
            for item in range(1000):  # far more than the queue holds: must not deadlock
                writer.put(item)
    written = []
    with BackgroundWriter(written.append) as writer:
        for item in range(100):
            writer.put(item)
    assert written == list(range(100))


def _heap_ranges() -> list[tuple[int, int]]:
    """Address ranges of this process's main malloc heap ([heap] in /proc/self/maps)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[heap]"):
                start, end = (int(bound, 16) for bound in line.split()[0].split("-"))
                ranges.append((start, end))
    return ranges


def test_off_heap_copies_an_output_exactly_into_memory_of_its_own():
    """What extract_cams hands its writer thread: a copy outside the malloc heap, where each one,
    freed by the thread at its own pace, left a hole, and the stage's memory grew with every
    image."""
    cams = np.random.default_rng(0).random((3, 375, 500), dtype=np.float32)
    copy = off_heap(cams)
    np.testing.assert_array_equal(copy, cams)
    assert copy.dtype == np.float32 and copy.shape == cams.shape and copy.flags.writeable
    address = copy.__array_interface__["data"][0]
    assert not any(start <= address < end for start, end in _heap_ranges())
    cams[:] = 0
    assert copy.any(), "a copy, not a view"
    assert off_heap(np.zeros((0, 4, 5), np.float32)).shape == (0, 4, 5)
