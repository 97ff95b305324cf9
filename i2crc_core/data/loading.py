"""DataLoaders whose user errors stay one line.

On CUDA the stages decode images in DataLoader worker processes, and the DataLoader re-raises
a worker's exception with the worker's traceback pasted into its message: a corrupt JPEG would
end the job in a 17-line "one-line" error. `UserErrorLoader` carries an `I2CRCError` out of
the worker as a value and raises it, unchanged, in the stage's process. Other exceptions are
bugs and keep their traceback.

Each worker runs OpenCV on one thread. The workers are the loader's parallelism, one per
thread of the job (device.py), and OpenCV's default pool of one thread per core in every one of
them would oversubscribe the job's cores. (torch already runs one thread in a DataLoader
worker.)
"""

from collections.abc import Iterator

import cv2
from torch.utils.data import DataLoader, Dataset
from torch.utils.data import default_collate as _default_collate

from ..infra.errors import I2CRCError


class _UserErrorsAsValues(Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return self.dataset[key]
        except I2CRCError as error:
            return error


class _Collate:
    """A collate function that passes the first user error of a batch through."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, samples):
        errors = [sample for sample in samples if isinstance(sample, I2CRCError)]
        return errors[0] if errors else self.collate(samples)


def _one_opencv_thread(worker_id: int) -> None:
    cv2.setNumThreads(1)


class UserErrorLoader:
    """Iterates like `DataLoader(dataset, **options)`, raising user errors as themselves."""

    def __init__(self, dataset, *, collate_fn=_default_collate, **options):
        self.loader = DataLoader(
            _UserErrorsAsValues(dataset),
            collate_fn=_Collate(collate_fn),
            worker_init_fn=_one_opencv_thread,
            **options,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            if isinstance(batch, I2CRCError):
                raise batch
            yield batch
