"""One GPU per job on a multi-GPU machine: claim a free GPU index with a lock file.
(Placeholder: being written.)"""


def claim_gpu(count: int, lock_dir=None) -> int:
    raise NotImplementedError
