"""One GPU per job on a multi-GPU machine: claim a free GPU with a lock file.

Snakemake starts several GPU jobs at once, and without a scheduler each would pick GPU 0. A job
claims a GPU by holding an exclusive `flock` on `gpu-<UUID>.lock` for the rest of its life;
the OS releases it when the process ends, however it ends (SIGKILL and the OOM killer
included), so a dead job never keeps a GPU. The lock is keyed on the GPU's UUID, not its
index: jobs that see the GPUs in another order (another `CUDA_VISIBLE_DEVICES`) still claim
the same card under the same name. Used whenever a job sees more than one GPU (device.py); a
job that sees one (a scheduler's allocation) uses it. The lock files are node-local (`/tmp`
unless `$I2CRC_GPU_LOCK_DIR` says otherwise), as the GPUs are, and shared by the jobs of every
user of the machine.
"""

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = "/tmp/i2crc-gpu-locks"

# UUID -> (its index, the descriptor of its lock file); closing it would free the GPU, so it
# stays open
_held: dict[str, tuple[int, int]] = {}


class GpuQueryError(Exception):
    """nvidia-smi is absent or failed; the message says which, in a few words."""


def query_gpus(fields: str) -> list[str]:
    """One line per GPU of `nvidia-smi --query-gpu=<fields> --format=csv,noheader`."""
    if shutil.which("nvidia-smi") is None:
        raise GpuQueryError("nvidia-smi is not on PATH (no NVIDIA driver on this machine?)")
    try:
        result = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise GpuQueryError(f"nvidia-smi failed ({error})") from None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        detail = (result.stdout + result.stderr).strip().splitlines()
        raise GpuQueryError(
            f"nvidia-smi failed ({detail[0] if detail else f'exit {result.returncode}'})"
        )
    return lines


def claim_gpu(gpus: Sequence[str], lock_dir=None, *, poll_seconds: float = 5.0) -> int:
    """The index in `gpus` (the visible GPUs' UUIDs, in CUDA's order) of a GPU held by this
    process until it ends; waits while all are taken."""
    if not gpus:
        raise ValueError("claim_gpu needs at least one GPU, got none")
    if _held:
        return next(iter(_held.values()))[0]
    directory = Path(lock_dir or os.environ.get("I2CRC_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(parents=True)
        directory.chmod(0o1777)  # past the umask: other users' jobs create their locks here too
    index = _first_free(directory, gpus)
    if index is None:
        log.warning(
            "all %d GPUs are in use by other jobs; waiting for one to be free (lock files in %s)",
            len(gpus),
            directory,
        )
    while index is None:
        time.sleep(poll_seconds)
        index = _first_free(directory, gpus)
    return index


def _first_free(directory: Path, gpus: Sequence[str]) -> int | None:
    return next(
        (
            index
            for index, uuid in enumerate(gpus)
            if _lock(directory / f"gpu-{uuid}.lock", uuid, index)
        ),
        None,
    )


def _lock(path: Path, uuid: str, index: int) -> bool:
    try:
        fd = _open(path)
    except PermissionError:
        return False  # another user's file that we may not open: count that GPU as theirs
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held[uuid] = (index, fd)
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
