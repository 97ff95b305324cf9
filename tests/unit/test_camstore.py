"""The HDF5 CAM store: round trip, random access, merges, and every way it can be broken."""

import fcntl
import os
import shutil

import h5py
import numpy as np
import pytest

from i2crc_core.infra.camstore import (
    FORMAT,
    CamStore,
    CamStoreWriter,
    merge_cam_stores,
)
from i2crc_core.infra.errors import CamStoreError

IDS = ["2007_000032", "with space", "ünïcödé 猫", "a.b"]


def make_items(ids, seed=0, size=(13, 17)):
    rng = np.random.default_rng(seed)
    items = []
    for image_id in ids:
        k = int(rng.integers(1, 4))
        class_ids = sorted(rng.choice(np.arange(1, 21), k, replace=False).tolist())
        items.append((image_id, rng.random((k, *size)).astype(np.float32), class_ids))
    return items


def write_store(path, items, **options):
    with CamStoreWriter(path, **options) as writer:
        for image_id, cams, class_ids in items:
            writer.write(image_id, cams, class_ids)


def assert_store_holds(path, items):
    with CamStore(path) as store:
        assert store.ids == sorted(image_id for image_id, _, _ in items)
        assert len(store) == len(items)
        for image_id, cams, class_ids in reversed(items):  # random order access
            assert image_id in store
            read_cams, read_ids = store[image_id]
            assert read_cams.dtype == np.float32 and read_ids.dtype == np.int64
            np.testing.assert_allclose(read_cams, cams, atol=1e-3, rtol=1e-3)  # float16
            assert read_ids.tolist() == class_ids


@pytest.mark.parametrize("compression", ["lzf", "gzip"])
def test_round_trip_and_attributes(tmp_path, compression):
    items = make_items(IDS)
    path = tmp_path / "cams.h5"
    write_store(path, iter(items), compression=compression)
    assert_store_holds(path, items)
    with h5py.File(path, "r") as handle:
        assert handle.attrs["format"] == FORMAT
        dataset = handle["cams"][IDS[0]]
        assert dataset.dtype == np.float16 and dataset.compression == compression
        assert dataset.chunks == (1, 13, 17) and dataset.shuffle
        assert dataset.attrs["size"].tolist() == [13, 17]
        assert dataset.attrs["class_ids"].dtype == np.int64


def test_writer_streams_and_contains(tmp_path):
    path = tmp_path / "sub" / "cams.h5"
    with CamStoreWriter(path) as writer:
        writer.write("x", np.zeros((1, 4, 5)), [3])
        assert not path.exists()  # only appears on success
    with CamStore(path) as store:
        assert "x" in store and "y" not in store and "a/b" not in store and 3 not in store
        assert list(store) == ["x"]


def test_exception_inside_writer_leaves_no_file(tmp_path):
    path = tmp_path / "cams.h5"
    with pytest.raises(RuntimeError), CamStoreWriter(path) as writer:
        writer.write("x", np.zeros((1, 4, 5)), [3])
        raise RuntimeError("crash mid-extraction")
    assert not path.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "image_id, cams, class_ids, message",
    [
        ("a/b", np.zeros((1, 2, 2)), [1], "cannot be stored"),
        ("", np.zeros((1, 2, 2)), [1], "cannot be stored"),
        ("x", np.zeros((2, 2, 2)), [1], "do not match"),
        ("x", np.zeros((2, 2)), [1], "do not match"),
        ("x", np.zeros((1, 2, 2)), [0], "1-based"),
        ("x", np.full((1, 2, 2), np.nan), [1], "NaN"),
        ("x", np.full((1, 2, 2), 1e6), [1], "float16"),
    ],
)
def test_bad_writes_raise_and_leave_no_file(tmp_path, image_id, cams, class_ids, message):
    path = tmp_path / "cams.h5"
    with pytest.raises(CamStoreError, match=message):
        write_store(path, [(image_id, cams, class_ids)])
    assert not path.exists()


def test_duplicate_id_in_one_store_raises(tmp_path):
    with pytest.raises(CamStoreError, match="twice"):
        write_store(tmp_path / "c.h5", make_items(["a", "a"]))


def test_missing_id_names_id_and_file(tmp_path):
    path = tmp_path / "cams.h5"
    write_store(path, make_items(["a"]))
    with CamStore(path) as store, pytest.raises(CamStoreError, match=r"cams\.h5.*'nope'"):
        store["nope"]


def test_missing_truncated_foreign_files_raise(tmp_path):
    with pytest.raises(CamStoreError, match="missing"):
        CamStore(tmp_path / "absent.h5")

    path = tmp_path / "cams.h5"
    write_store(path, make_items(IDS))
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CamStoreError, match=r"cams\.h5.*truncated or corrupt"):
        CamStore(path)

    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(CamStoreError, match=r"text\.h5"):
        CamStore(text)

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.create_group("cams")
    with pytest.raises(CamStoreError, match=r"foreign\.h5.*not a CAM store"):
        CamStore(foreign)


def write_shards(directory, count=3):
    shards, all_items = [], []
    for index in range(count):
        items = make_items([f"s{index} {i}" for i in range(3)], seed=index)
        path = directory / f"shard{index}.h5"
        write_store(path, items)
        shards.append(path)
        all_items.extend(items)
    return shards, all_items


@pytest.mark.parametrize("mode", ["virtual", "copy"])
def test_merge_modes_read_transparently(tmp_path, mode):
    shards, items = write_shards(tmp_path)
    merged = tmp_path / "merged.h5"
    merge_cam_stores(shards, merged, mode=mode)
    assert_store_holds(merged, items)
    with h5py.File(merged, "r") as handle:
        dataset = handle["cams"]["s1 2"]
        assert dataset.is_virtual == (mode == "virtual")
        if mode == "copy":
            assert dataset.compression == "lzf"  # chunks copied as they are


def test_virtual_merge_survives_moving_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "a"
    folder.mkdir()
    shards, items = write_shards(folder, count=2)
    merge_cam_stores(shards, folder / "merged.h5")
    moved = tmp_path / "b"
    shutil.move(folder, moved)
    monkeypatch.chdir(tmp_path)  # relative shard names resolve against the store, not cwd
    assert_store_holds(moved / "merged.h5", items)


def test_virtual_merge_with_shards_in_another_folder(tmp_path):
    (tmp_path / "shards").mkdir()
    shards, items = write_shards(tmp_path / "shards", count=2)
    merge_cam_stores(shards, tmp_path / "out" / "merged.h5")
    assert_store_holds(tmp_path / "out" / "merged.h5", items)


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_broken_shard_behind_virtual_store_raises(tmp_path, damage):
    shards, _ = write_shards(tmp_path, count=2)
    merged = tmp_path / "merged.h5"
    merge_cam_stores(shards, merged)
    if damage == "delete":
        shards[1].unlink()
    else:
        with open(shards[1], "r+b") as handle:
            handle.truncate(os.path.getsize(shards[1]) // 2)
    with pytest.raises(CamStoreError, match=r"merged\.h5.*shard1\.h5"):
        CamStore(merged)


def test_duplicate_id_across_shards_raises(tmp_path):
    first, second = tmp_path / "1.h5", tmp_path / "2.h5"
    write_store(first, make_items(["a", "b"]))
    write_store(second, make_items(["c", "b"]))
    for mode in ("virtual", "copy"):
        with pytest.raises(CamStoreError, match="'b'.*two shards"):
            merge_cam_stores([first, second], tmp_path / "m.h5", mode=mode)
        assert not (tmp_path / "m.h5").exists()


def test_merging_a_virtual_store_is_refused(tmp_path):
    shards, _ = write_shards(tmp_path, count=2)
    merge_cam_stores(shards, tmp_path / "m.h5")
    with pytest.raises(CamStoreError, match="virtual"):
        merge_cam_stores([tmp_path / "m.h5"], tmp_path / "m2.h5")


@pytest.mark.parametrize("mode", [None, "virtual", "copy"])
def test_image_without_classes_round_trips(tmp_path, mode):
    items = [("empty", np.zeros((0, 3, 4), np.float32), []), *make_items(["full"])]
    path = tmp_path / "cams.h5"
    write_store(path, items)
    if mode is not None:
        merge_cam_stores([path], tmp_path / "merged.h5", mode=mode)
        path = tmp_path / "merged.h5"
    with CamStore(path) as store:
        cams, class_ids = store["empty"]
        assert cams.shape == (0, 3, 4) and class_ids.shape == (0,)


def test_virtual_merge_escapes_percent_signs(tmp_path):
    # HDF5 treats '%' in virtual source names as a pattern; ids and file names may hold one.
    items = make_items(["50%b", "x%%y", "q%"])
    shard = tmp_path / "shard %b.h5"
    write_store(shard, items)
    merge_cam_stores([shard], tmp_path / "merged.h5")
    assert_store_holds(tmp_path / "merged.h5", items)


@pytest.mark.parametrize("mode", ["virtual", "copy"])
def test_stores_open_where_file_locks_are_taken_or_unsupported(tmp_path, mode):
    """Many cluster NFS mounts refuse HDF5's file locks; stores never ask for one. An exclusive
    flock held elsewhere on every file stands in for such a mount: with HDF5's locking on,
    opening fails."""
    shards, items = write_shards(tmp_path)
    merged = tmp_path / "merged.h5"
    merge_cam_stores(shards, merged, mode=mode)
    held = [os.open(path, os.O_RDONLY) for path in [*shards, merged]]
    try:
        for fd in held:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OSError, match="lock"):
            h5py.File(merged, "r", locking=True)
        assert_store_holds(merged, items)
        merge_cam_stores(shards, tmp_path / "again.h5", mode=mode)
    finally:
        for fd in held:
            os.close(fd)
