"""docs/method.md §1 formats: label PNGs (palette or L, 0..C and 255), images, atomic writes,
digests."""

import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from i2crc_core.infra.errors import DatasetError, SaliencyError
from i2crc_core.infra.fileio import (
    IGNORE,
    atomic_directory,
    atomic_path,
    content_digest,
    displayed_size,
    image_header,
    path_in,
    read_gray,
    read_image,
    read_label,
    voc_palette,
    write_gray,
    write_image,
    write_label,
)
from tests.helpers.images import bomb_png, turned_jpeg

C = 5


def _label(height=6, width=7, seed=0, num_classes=C):
    rng = np.random.default_rng(seed)
    values = np.array([*range(num_classes + 1), IGNORE], dtype=np.uint8)
    return values[rng.integers(len(values), size=(height, width))]


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# ---------------------------------------------------------------- palette


def test_voc_palette_matches_the_pascal_colour_map():
    palette = voc_palette()
    assert len(palette) == 256 * 3
    colours = [tuple(palette[3 * i : 3 * i + 3]) for i in range(256)]
    assert colours[0] == (0, 0, 0)
    assert colours[1] == (128, 0, 0)  # aeroplane
    assert colours[2] == (0, 128, 0)
    assert colours[3] == (128, 128, 0)
    assert colours[15] == (192, 128, 128)  # person
    assert colours[255] == (224, 224, 192)  # the VOC boundary / ignore colour
    assert all(0 <= value <= 255 for value in palette)


# ---------------------------------------------------------------- read_label / write_label


def test_write_label_round_trip_keeps_values_and_palette(tmp_path):
    label = _label()
    path = tmp_path / "sub" / "mask.png"
    write_label(path, label)
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "P"
        assert image.size == (label.shape[1], label.shape[0])
        assert image.getpalette()[: 256 * 3] == voc_palette()
        # The RGB rendering uses the VOC colours, so the file views like a VOC mask.
        rgb = np.asarray(image.convert("RGB"))
    ys, xs = np.nonzero(label == 1)
    assert tuple(rgb[ys[0], xs[0]]) == (128, 0, 0)
    read = read_label(path, C)
    assert read.dtype == np.uint8
    assert read.shape == label.shape
    np.testing.assert_array_equal(read, label)
    assert _leftovers(path.parent, {"mask.png"}) == []


def test_read_label_accepts_palette_png_written_by_pil(tmp_path):
    label = _label(seed=3)
    image = Image.fromarray(label, mode="P")
    image.putpalette(voc_palette())
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label(tmp_path / "p.png", C), label)


def test_read_label_accepts_single_channel_png(tmp_path):
    label = _label(seed=1)
    Image.fromarray(label, mode="L").save(tmp_path / "gray.png")
    with Image.open(tmp_path / "gray.png") as image:
        assert image.mode == "L"
    np.testing.assert_array_equal(read_label(tmp_path / "gray.png", C), label)


def test_read_label_accepts_all_background_and_all_ignore(tmp_path):
    write_label(tmp_path / "bg.png", np.zeros((3, 4), np.uint8))
    write_label(tmp_path / "ign.png", np.full((3, 4), IGNORE, np.uint8))
    assert (read_label(tmp_path / "bg.png", C) == 0).all()
    assert (read_label(tmp_path / "ign.png", C) == IGNORE).all()


def test_rgb_label_png_is_rejected_naming_the_file(tmp_path):
    path = tmp_path / "colour_mask.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), mode="RGB").save(path)
    with pytest.raises(DatasetError) as error:
        read_label(path, C)
    message = str(error.value)
    assert str(path) in message
    assert "RGB" in message


def test_label_values_outside_range_are_rejected_naming_file_and_values(tmp_path):
    label = np.array([[0, 1, 5, 6], [7, 200, 255, 0]], np.uint8)
    path = tmp_path / "bad_values.png"
    write_label(path, label)
    with pytest.raises(DatasetError) as error:
        read_label(path, C)
    message = str(error.value)
    assert str(path) in message
    assert "[6, 7, 200]" in message  # 255 (ignore) and 5 (= C) are valid, so not listed
    assert "0..5" in message


def test_label_value_equal_to_num_classes_is_valid_and_one_above_is_not(tmp_path):
    write_label(tmp_path / "m.png", np.array([[0, 3]], np.uint8))
    np.testing.assert_array_equal(read_label(tmp_path / "m.png", 3), [[0, 3]])
    with pytest.raises(DatasetError, match=r"\[3\]"):
        read_label(tmp_path / "m.png", 2)


def test_missing_label_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "missing.png"
    with pytest.raises(DatasetError) as error:
        read_label(path, C)
    assert str(path) in str(error.value)
    assert "missing" in str(error.value)


@pytest.mark.parametrize("content", [b"", b"this is not a png", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_unreadable_label_file_is_dataset_error(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as error:
        read_label(path, C)
    assert str(path) in str(error.value)


def test_truncated_label_png_is_dataset_error(tmp_path):
    path = tmp_path / "cut.png"
    rng = np.random.default_rng(0)
    write_label(path, rng.integers(0, C + 1, size=(64, 64)).astype(np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as error:
        read_label(path, C)
    assert str(path) in str(error.value)


@settings(max_examples=40, deadline=None)
@given(
    num_classes=st.integers(1, 80),
    data=st.data(),
)
def test_label_round_trip_property(num_classes, data):
    values = [*range(num_classes + 1), IGNORE]
    label = data.draw(
        hnp.arrays(
            np.uint8,
            st.tuples(st.integers(1, 12), st.integers(1, 12)),
            elements=st.sampled_from(values),
        )
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "label.png"
        write_label(path, label)
        read = read_label(path, num_classes)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, label)


@settings(max_examples=25, deadline=None)
@given(
    label=hnp.arrays(
        np.uint8, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=st.integers(0, 255)
    ),
    num_classes=st.integers(1, 30),
)
def test_read_label_accepts_exactly_the_valid_values_property(label, num_classes):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "label.png"
        write_label(path, label)
        valid = bool(np.all((label <= num_classes) | (label == IGNORE)))
        if valid:
            np.testing.assert_array_equal(read_label(path, num_classes), label)
        else:
            with pytest.raises(DatasetError) as error:
                read_label(path, num_classes)
            smallest_bad = int(label[(label > num_classes) & (label != IGNORE)].min())
            assert str(smallest_bad) in str(error.value)


# ---------------------------------------------------------------- images


def test_write_and_read_image_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    # Smooth content so JPEG loses little.
    image = np.zeros((24, 40, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, 40, dtype=np.uint8)[None]
    image[..., 1] = np.linspace(0, 255, 24, dtype=np.uint8)[:, None]
    image[..., 2] = 90 + rng.integers(0, 3, size=(24, 40))
    path = tmp_path / "img.jpg"
    write_image(path, image)
    with Image.open(path) as opened:
        assert opened.format == "JPEG"
    read = read_image(path)
    assert read.shape == (24, 40, 3)
    assert read.dtype == np.uint8
    assert np.abs(read.astype(int) - image.astype(int)).mean() < 4


def test_read_image_converts_grayscale_to_rgb(tmp_path):
    Image.fromarray(np.full((5, 6), 77, np.uint8), mode="L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (5, 6, 3)
    assert (image == 77).all()


def test_missing_image_names_the_path(tmp_path):
    path = tmp_path / "JPEGImages" / "gone.jpg"
    with pytest.raises(DatasetError) as error:
        read_image(path)
    assert str(path) in str(error.value)
    assert "missing" in str(error.value)


def test_truncated_jpeg_is_dataset_error(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "cut.jpg"
    write_image(path, rng.integers(0, 256, size=(64, 64, 3)).astype(np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as error:
        read_image(path)
    assert str(path) in str(error.value)
    assert "corrupt" in str(error.value)


def test_garbage_jpeg_is_dataset_error(tmp_path):
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    with pytest.raises(DatasetError) as error:
        read_image(path)
    assert str(path) in str(error.value)


def test_a_16_bit_png_image_is_read_at_its_full_range_not_as_white(tmp_path):
    values = np.array([[0, 257, 1000, 32896], [40000, 65000, 65278, 65535]], np.uint16)
    expected = np.array([[0, 1, 4, 128], [156, 253, 254, 255]], np.uint8)  # round(v / 257)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        assert image.mode == "I;16", "a real 16-bit PNG"
    rgb = read_image(tmp_path / "deep.png")
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8 and rgb.flags.writeable
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], expected)


@pytest.mark.parametrize("values", [np.full((3, 4), 300, np.int32), np.full((3, 4), 0.5, "f4")])
def test_an_image_of_more_than_8_bits_that_is_not_16_bit_grey_is_one_line(tmp_path, values):
    path = tmp_path / "wide.tif"
    Image.fromarray(values).save(path, format="TIFF")
    with Image.open(path) as image:
        mode = image.mode
    with pytest.raises(DatasetError) as error:
        read_image(path)
    assert str(error.value) == (
        f"{path}: image has mode {mode}; expected 8 bits per channel (RGB, greyscale, palette, "
        "CMYK) or a 16-bit greyscale PNG"
    )


def test_an_exif_orientation_is_read_from_the_header_and_applied_only_when_asked(tmp_path):
    # Stored 80 wide and 40 high, the left half dark: shown 40 wide, 80 high, dark half on top.
    stored = np.full((40, 80, 3), 220, np.uint8)
    stored[:, :40] = 20
    path = turned_jpeg(tmp_path / "phone.jpg", stored)
    size, orientation = image_header(path)
    assert (size, orientation) == ((40, 80), 6)
    assert displayed_size(size, orientation) == (80, 40)
    assert read_image(path).shape == (40, 80, 3), "datasets keep the stored pixels"
    shown = read_image(path, displayed=True)
    assert shown.shape == (80, 40, 3)
    assert shown[:40].mean() < 40 and shown[40:].mean() > 200, "turned clockwise"
    write_image(tmp_path / "plain.jpg", np.zeros((5, 6, 3), np.uint8))
    assert image_header(tmp_path / "plain.jpg") == ((5, 6), 1)


@pytest.mark.parametrize(
    ("reader", "error", "what"),
    [
        (read_image, DatasetError, "image file"),
        (image_header, DatasetError, "image file"),
        (lambda path: read_label(path, C), DatasetError, "label file"),
        (read_gray, SaliencyError, "saliency map"),
    ],
    ids=["read_image", "image_header", "read_label", "read_gray"],
)
def test_a_decompression_bomb_is_one_line_naming_the_file_its_megapixels_and_the_limit(
    tmp_path, reader, error, what
):
    path = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(error) as caught:
        reader(path)
    assert str(caught.value) == (
        f"{path}: {what} of 900 megapixels is larger than the limit of 179 megapixels "
        "(Pillow's guard against decompression bombs)"
    )


# ---------------------------------------------------------------- gray maps


def test_gray_round_trip_and_colour_maps_become_luminance(tmp_path):
    array = np.arange(0, 240, 2, dtype=np.uint8).reshape(10, 12)
    write_gray(tmp_path / "s.png", array)
    np.testing.assert_array_equal(read_gray(tmp_path / "s.png"), array)
    Image.fromarray(np.full((3, 3, 3), 200, np.uint8), mode="RGB").save(tmp_path / "c.png")
    gray = read_gray(tmp_path / "c.png")
    assert gray.shape == (3, 3)
    assert (gray == 200).all()


def test_16_bit_gray_pngs_are_read_at_their_full_range_not_clipped(tmp_path):
    import cv2

    values = np.array([[0, 257, 1000, 32896], [40000, 65000, 65278, 65535]], np.uint16)
    expected = np.array([[0, 1, 4, 128], [156, 253, 254, 255]], np.uint8)  # round(v / 257)
    Image.fromarray(values).save(tmp_path / "pillow.png")
    cv2.imwrite(str(tmp_path / "opencv.png"), values)
    for name in ("pillow.png", "opencv.png"):
        with Image.open(tmp_path / name) as image:
            assert image.mode == "I;16", "a real 16-bit PNG"
        gray = read_gray(tmp_path / name)
        assert gray.dtype == np.uint8 and gray.flags.writeable
        np.testing.assert_array_equal(gray, expected)


def test_a_map_of_another_mode_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "float.png"
    Image.fromarray(np.full((3, 4), 300.5, np.float32)).save(path, format="TIFF")  # mode F
    with pytest.raises(SaliencyError) as error:
        read_gray(path)
    assert str(error.value) == (
        f"{path}: saliency map has image mode F; expected an 8-bit or "
        "16-bit greyscale PNG (or 8-bit colour)"
    )


def test_read_gray_missing_or_corrupt_is_saliency_error(tmp_path):
    with pytest.raises(SaliencyError, match="missing"):
        read_gray(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(SaliencyError) as error:
        read_gray(tmp_path / "bad.png")
    assert str(tmp_path / "bad.png") in str(error.value)


# ---------------------------------------------------------------- atomic_path


def test_atomic_path_writes_on_success_without_leftovers(tmp_path):
    target = tmp_path / "deep" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp != target
        tmp.write_text("done")
        assert not target.exists()  # nothing visible until the body finished
    assert target.read_text() == "done"
    assert _leftovers(target.parent, {"out.txt"}) == []


def test_atomic_path_leaves_no_file_when_the_body_raises(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_when_the_body_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new but unfinished")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_atomic_path_body_that_removes_its_temp_file_still_cleans_up(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.unlink()
            raise ValueError("after removing")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- content_digest


def test_content_digest_changes_with_file_bytes(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    first = content_digest(path)
    assert isinstance(first, str) and len(first) == 16
    assert content_digest(path) == first  # stable
    path.write_bytes(b"abd")
    second = content_digest(path)
    assert second != first
    path.write_bytes(b"abc")
    assert content_digest(path) == first  # depends on bytes, not on mtime


def test_content_digest_of_a_directory_sees_nested_changes_and_renames(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "x.txt").write_text("x")
    (root / "a" / "b" / "y.txt").write_text("y")
    first = content_digest(root)
    (root / "a" / "b" / "y.txt").write_text("Y")
    changed = content_digest(root)
    assert changed != first
    (root / "a" / "b" / "y.txt").write_text("y")
    assert content_digest(root) == first
    (root / "a" / "b" / "y.txt").rename(root / "a" / "b" / "z.txt")
    assert content_digest(root) != first


def test_content_digest_over_several_paths_depends_on_each(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"1")
    two.write_bytes(b"2")
    both = content_digest(one, two)
    assert both != content_digest(one)
    two.write_bytes(b"22")
    assert content_digest(one, two) != both


def test_readers_return_writable_arrays(tmp_path):
    # torch.from_numpy warns on (and cannot safely use) read-only arrays; callers may edit labels.
    write_image(tmp_path / "i.jpg", np.full((4, 5, 3), 100, np.uint8))
    write_label(tmp_path / "l.png", np.ones((4, 5), np.uint8))
    write_gray(tmp_path / "g.png", np.ones((4, 5), np.uint8))
    for array in (
        read_image(tmp_path / "i.jpg"),
        read_label(tmp_path / "l.png", C),
        read_gray(tmp_path / "g.png"),
    ):
        assert array.flags.writeable
        array[0, 0] = 0


def test_atomic_files_get_umask_permissions_not_mkstemp_0600(tmp_path):
    target = tmp_path / "result.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_atomic_directory_replaces_the_old_folder_as_a_whole(tmp_path):
    target = tmp_path / "maps"
    target.mkdir()
    (target / "stale.png").write_bytes(b"old")
    with atomic_directory(target) as staging:
        (staging / "new.png").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["new.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["maps"], "no staging or old folder left"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask


def test_failed_atomic_directory_leaves_the_old_folder_untouched(tmp_path):
    target = tmp_path / "maps"
    target.mkdir()
    (target / "kept.png").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "half.png").write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["kept.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["maps"]


# ---------------------------------------------------------------- path_in


@pytest.mark.parametrize("name", ["/elsewhere/x", "../x", "a/../../x", "x\0y"])
def test_path_in_refuses_a_name_that_leaves_its_folder(tmp_path, name):
    with pytest.raises(DatasetError) as error:
        path_in(tmp_path / "maps", name, ".png")
    assert (
        str(error.value)
        == f"{tmp_path / 'maps'}: image id {name!r} names a file outside this folder"
    )


def test_path_in_keeps_names_inside_the_folder_through_a_linked_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "maps").symlink_to(tmp_path / "real")
    for name in ["a b é", "..", "x.y"]:
        assert path_in(tmp_path / "maps", name, ".png") == tmp_path / "maps" / f"{name}.png"
