"""One GPU per job on a multi-GPU machine: claim a free GPU index with a lock file.

Snakemake starts several GPU jobs at once, and without a scheduler each would pick GPU 0. A job
claims GPU i by holding an exclusive `flock` on `gpu<i>.lock` for the rest of its life; the OS
releases it when the process ends, however it ends (SIGKILL and the OOM killer included), so a
dead job never keeps a GPU. Used only when `CUDA_VISIBLE_DEVICES` is not set (device.py): a
scheduler that sets it has already given the job its GPU. The lock files are node-local
(`/tmp` unless `$I2CRC_GPU_LOCK_DIR` says otherwise), as the GPUs are, and shared by the
jobs of every user of the machine.
"""

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = "/tmp/i2crc-gpu-locks"

# index -> descriptor of its lock file; closing it would free the GPU, so it stays open
_held: dict[int, int] = {}


class GpuQueryError(Exception):
    """nvidia-smi is absent or failed; the message says which, in a few words."""


def query_gpus(fields: str) -> list[str]:
    """One line per GPU of `nvidia-smi --query-gpu=<fields> --format=csv,noheader`."""
    if shutil.which("nvidia-smi") is None:
        raise GpuQueryError("nvidia-smi is not on PATH (no NVIDIA driver on this machine?)")
    try:
        result = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise GpuQueryError(f"nvidia-smi failed ({error})") from None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        detail = (result.stdout + result.stderr).strip().splitlines()
        raise GpuQueryError(f"nvidia-smi failed ({detail[0] if detail else f'exit {result.returncode}'})")
    return lines


def claim_gpu(count: int, lock_dir=None, *, poll_seconds: float = 5.0) -> int:
    """A GPU index in range(count), held by this process until it ends; waits while all are
    taken."""
    if count < 1:
        raise ValueError(f"claim_gpu needs at least one GPU, got count={count}")
    if _held:
        return next(iter(_held))
    directory = Path(lock_dir or os.environ.get("I2CRC_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(parents=True)
        directory.chmod(0o1777)  # past the umask: other users' jobs create their locks here too
    index = _first_free(directory, count)
    if index is None:
        log.warning("all %d GPUs are in use by other jobs; waiting for one to be free "
                    "(lock files in %s)", count, directory)
    while index is None:
        time.sleep(poll_seconds)
        index = _first_free(directory, count)
    return index


def _first_free(directory: Path, count: int) -> int | None:
    return next((i for i in range(count) if _lock(directory / f"gpu{i}.lock", i)), None)


def _lock(path: Path, index: int) -> bool:
    try:
        fd = _open(path)
    except PermissionError:
        return False  # another user's file that we may not open: count that GPU as theirs
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held[index] = fd
    with contextlib.suppress(OSError):  # the PID is only for people looking at the file
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return True


def _open(path: Path) -> int:
    # O_NOFOLLOW: anyone may plant a symlink in the shared directory, and we truncate the file.
    # Open before creating: with fs.protected_regular, O_CREAT fails on another user's existing
    # file in a sticky directory, even one we could open.
    flags = os.O_RDWR | os.O_NOFOLLOW
    with contextlib.suppress(FileNotFoundError):
        return os.open(path, flags)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return os.open(path, flags)
    os.fchmod(fd, 0o666)  # past the umask, so that other users' jobs can lock it as well
    return fd
