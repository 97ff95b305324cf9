"""A user error raised in a DataLoader worker process reaches the stage as itself, one line;
workers run OpenCV and torch on one thread each."""

import cv2
import pytest
import torch
from torch.utils.data import Dataset

from i2crc_core.data.loading import UserErrorLoader
from i2crc_core.infra.errors import DatasetError
from i2crc_core.nets.sampling import ChunkSampler, SeededSamples


class _Broken(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        if index == 4:
            raise DatasetError("img4.jpg: image file is unreadable or corrupt (truncated)")
        return torch.tensor(float(index))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [0, 2])
def test_user_error_from_a_worker_is_raised_as_itself(workers):
    options = {"num_workers": workers, "persistent_workers": True} if workers else {}
    loader = UserErrorLoader(
        SeededSamples(_Broken()), batch_size=2, sampler=ChunkSampler(6, seed=0), **options
    )
    with pytest.raises(DatasetError) as raised:
        list(loader)
    assert str(raised.value) == "img4.jpg: image file is unreadable or corrupt (truncated)"


@pytest.mark.timeout(60)
def test_a_bug_in_a_worker_keeps_its_traceback():
    class Buggy(_Broken):
        def __getitem__(self, index):
            return 1 / 0

    with pytest.raises(ZeroDivisionError, match="Traceback"):
        list(UserErrorLoader(Buggy(), batch_size=2, num_workers=1))


def test_batches_and_length_are_the_dataloaders():
    loader = UserErrorLoader(list(range(5)), batch_size=2)
    assert len(loader) == 3 and [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]


class _Threads(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.tensor([cv2.getNumThreads(), torch.get_num_threads()])


@pytest.mark.timeout(60)
def test_workers_run_opencv_and_torch_on_one_thread():
    before = cv2.getNumThreads()
    cv2.setNumThreads(4)  # what a forked worker would inherit without the init function
    try:
        counts = torch.cat(list(UserErrorLoader(_Threads(), batch_size=2, num_workers=1)))
    finally:
        cv2.setNumThreads(before)
    assert counts.tolist() == [[1, 1], [1, 1]]
